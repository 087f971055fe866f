"""E2E vs cascade on CPU: latency per clip and BLEU/chrF on the same test clips, side by side.

    python -m benchmarks.st_latency [--e2e-minutes 25 --mt-minutes 2 --clips 60]

Uses the synthetic export and the Whisper trained by ``benchmarks/whisper_cpu.py`` (run it first); trains a
small E2E model (the Whisper recipe's counterpart: CTC 0.3 on the encoder, 6 s clips, cosine schedule) and a small
MT model from scratch within the given budgets, then runs ``evaluate_st`` and scores the E2E model's transcripts.
Goals: E2E BLEU >= 30 and chrF >= 50 after <= 25 min, the cascade BLEU >= 35. ``--mt-minutes 0`` trains and
scores the E2E model alone (``--name`` keeps such runs apart).
"""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path


from benchmarks._common import RESULTS, write_result
from benchmarks.whisper_cpu import export_folder
from modeling.text_tokenizer import UNITS


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--e2e-minutes", type=float, default=25.0)
    ap.add_argument("--mt-minutes", type=float, default=2.0)
    ap.add_argument("--clips", type=int, default=60)
    ap.add_argument("--whisper", default=str(RESULTS / "whisper_cpu_ctc0.3" / "best"))
    ap.add_argument("--corpus-minutes", type=float, default=45.0, help="the corpus the Whisper was trained on")
    ap.add_argument("--max-segment-seconds", type=float, default=6.0,
                    help="E2E and MT training data: captions merged up to this long (the test split is the 25 s "
                         "export's)")
    ap.add_argument("--e2e-ctc-weight", type=float, default=0.3)
    ap.add_argument("--e2e-hidden", type=int, default=192, help="the scratch wav2vec2 encoder's width")
    ap.add_argument("--e2e-d-model", type=int, default=192, help="the scratch mBART decoder's width")
    ap.add_argument("--e2e-layers", type=int, default=3, help="encoder and decoder layers each")
    ap.add_argument("--e2e-seconds", type=float, default=6.0, help="longest training clip")
    ap.add_argument("--e2e-batch", type=int, default=16)
    ap.add_argument("--e2e-tokenizer", choices=UNITS, default="bpe", help="the scratch decoder's unit")
    ap.add_argument("--e2e-frozen-front-end", action="store_true",
                    help="keep the scratch encoder's (random) convolutional front end fixed: cheaper steps")
    ap.add_argument("--name", default="st_latency", help="the run's name (results/<name>.json, results/<name>/)")
    args = ap.parse_args()
    if args.mt_minutes > 0 and not Path(args.whisper).is_dir():
        raise SystemExit(f"{args.whisper}: no trained Whisper; run benchmarks/whisper_cpu.py first")

    import torch

    from modeling.e2e.train import E2ETrainingArguments
    from modeling.evaluate import evaluate_asr, evaluate_st
    from modeling.mt.train import MTTrainingArguments
    from modeling.registry import E2E, MT

    torch.set_num_threads(2)
    data = export_folder(8, args.corpus_minutes, 5)
    train_data = export_folder(8, args.corpus_minutes, 5, args.max_segment_seconds)
    runs = RESULTS / args.name
    shutil.rmtree(runs, ignore_errors=True)
    common = dict(dataset=str(train_data), dataset_config="prelabeled", max_steps=0, eval_steps=100_000,
                  save_steps=100_000, logging_steps=50, max_eval_samples=8, progress=False)
    e2e = E2E.train(E2ETrainingArguments(
        output_dir=str(runs / "e2e"), encoder_name_or_path="scratch", scratch_hidden_size=args.e2e_hidden,
        scratch_d_model=args.e2e_d_model, scratch_encoder_layers=args.e2e_layers,
        scratch_decoder_layers=args.e2e_layers, scratch_tokenizer=args.e2e_tokenizer,
        ctc_weight=args.e2e_ctc_weight, per_device_train_batch_size=args.e2e_batch, learning_rate=1e-3,
        lr_scheduler_type="cosine", warmup_steps=100, max_train_minutes=args.e2e_minutes, max_seconds=args.e2e_seconds,
        freeze_feature_encoder=True if args.e2e_frozen_front_end else None, **common))
    mt = None if args.mt_minutes <= 0 else MT.train(MTTrainingArguments(
        output_dir=str(runs / "mt"), model_name_or_path="scratch", per_device_train_batch_size=16, learning_rate=1e-3,
        warmup_steps=50, max_train_minutes=args.mt_minutes, **common))
    cascade = dict(asr_model=args.whisper, mt_model=str(runs / "mt" / "best")) if mt else {}
    metrics = evaluate_st(str(data), e2e=str(runs / "e2e" / "best"), config="prelabeled", split="test",
                          out_dir=runs / "eval", batch_size=1, limit=args.clips, progress=False, **cascade)
    heard = evaluate_asr(str(runs / "e2e" / "best"), str(data), config="prelabeled", split="test",
                         out_dir=runs / "eval_e2e_asr", limit=args.clips, progress=False)
    write_result(args.name, {
        "clips": args.clips, "batch_size": 1, "device": "cpu", "threads": 2,
        "e2e": {"steps": e2e["steps"], "minutes": args.e2e_minutes, "ctc_weight": args.e2e_ctc_weight,
                "hidden": args.e2e_hidden, "d_model": args.e2e_d_model, "layers": args.e2e_layers,
                "max_seconds": args.e2e_seconds, "batch": args.e2e_batch, "tokenizer": args.e2e_tokenizer,
                "train_samples": e2e["train_samples"],
                "frozen_front_end": args.e2e_frozen_front_end,
                "transcribe": {k: heard[k] for k in ("cer", "wer", "en_error_rate", "loop_rate")}},
        "max_segment_seconds": args.max_segment_seconds,
        "mt": mt and {"steps": mt["steps"], "minutes": args.mt_minutes}, "whisper": mt and args.whisper,
        "systems": {name: {k: r[k] for k in ("bleu", "chrf", "latency_mean_ms", "latency_p95_ms", "rtf")}
                    for name, r in metrics["systems"].items()},
        "signatures": {k: next(iter(metrics["systems"].values()))[k] for k in ("bleu_signature", "chrf_signature")},
    })
    print(json.dumps(metrics["systems"], indent=2)[:2000])


if __name__ == "__main__":
    main()
