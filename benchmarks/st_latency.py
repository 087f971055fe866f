"""E2E vs cascade on CPU: latency per clip and BLEU/chrF on the same test clips, side by side.

    python -m benchmarks.st_latency [--e2e-minutes 5 --mt-minutes 2 --clips 60]

Uses the synthetic export and the Whisper trained by ``benchmarks/whisper_cpu.py`` (run it first); trains a
small E2E model and a small MT model from scratch within the given budgets, then runs ``evaluate_st``.
Small models trained for minutes: the latencies are the point here, the scores only show the pipeline works.
"""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path


from benchmarks._common import RESULTS, write_result
from benchmarks.whisper_cpu import export_folder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--e2e-minutes", type=float, default=5.0)
    ap.add_argument("--mt-minutes", type=float, default=2.0)
    ap.add_argument("--clips", type=int, default=60)
    ap.add_argument("--whisper", default=str(RESULTS / "whisper_cpu_ctc0.3" / "best"))
    ap.add_argument("--corpus-minutes", type=float, default=45.0, help="the corpus the Whisper was trained on")
    args = ap.parse_args()
    if not Path(args.whisper).is_dir():
        raise SystemExit(f"{args.whisper}: no trained Whisper; run benchmarks/whisper_cpu.py first")

    import torch

    from modeling.e2e.train import E2ETrainingArguments
    from modeling.evaluate import evaluate_st
    from modeling.mt.train import MTTrainingArguments
    from modeling.registry import E2E, MT

    torch.set_num_threads(2)
    data = export_folder(8, args.corpus_minutes, 5)
    runs = RESULTS / "st_latency"
    shutil.rmtree(runs, ignore_errors=True)
    common = dict(dataset=str(data), dataset_config="prelabeled", max_steps=0, eval_steps=100_000,
                  save_steps=100_000, logging_steps=50, max_eval_samples=8, progress=False)
    e2e = E2E.train(E2ETrainingArguments(output_dir=str(runs / "e2e"), encoder_name_or_path="scratch",
                                         per_device_train_batch_size=8, learning_rate=1e-3, warmup_steps=50,
                                         max_train_minutes=args.e2e_minutes, max_seconds=8.0, **common))
    mt = MT.train(MTTrainingArguments(output_dir=str(runs / "mt"), model_name_or_path="scratch",
                                      per_device_train_batch_size=16, learning_rate=1e-3, warmup_steps=50,
                                      max_train_minutes=args.mt_minutes, **common))
    metrics = evaluate_st(str(data), e2e=str(runs / "e2e" / "best"), asr_model=args.whisper,
                          mt_model=str(runs / "mt" / "best"), config="prelabeled", split="test",
                          out_dir=runs / "eval", batch_size=1, limit=args.clips, progress=False)
    write_result("st_latency", {
        "clips": args.clips, "batch_size": 1, "device": "cpu", "threads": 2,
        "e2e": {"steps": e2e["steps"], "minutes": args.e2e_minutes},
        "mt": {"steps": mt["steps"], "minutes": args.mt_minutes}, "whisper": args.whisper,
        "systems": {name: {k: r[k] for k in ("bleu", "chrf", "latency_mean_ms", "latency_p95_ms", "rtf")}
                    for name, r in metrics["systems"].items()},
        "signatures": {k: next(iter(metrics["systems"].values()))[k] for k in ("bleu_signature", "chrf_signature")},
    })
    print(json.dumps(metrics["systems"], indent=2)[:2000])


if __name__ == "__main__":
    main()
