"""Whisper quality on the synthetic corpus: a small model trained from scratch on CPU within a time budget,
scored on the video-disjoint test split, on a second corpus made with another seed, and with a listening check.

    python -m benchmarks.whisper_cpu [--minutes 25 --corpus-minutes 45 --max-segment-seconds 6 --input-seconds 6]

Goal: CER <= 15%, English-word error <= 30%, loop rate 0 after <= 25 min on 2 cores. The corpus (8 videos) is
synthesized, ingested, pre-labeled (captions engine; training data with segments up to the input's length, the
test split with the default 25 s ones) and exported once and cached under ``benchmarks/results/``;
training uses the offline path (tokenizer trained on the training transcripts) and the time budget as its schedule.

The listening check scores the trained model's cross-entropy on test clips with their own audio and with another
clip's audio: a model that listens is much worse on the wrong audio; one in "language-model mode" is not.
"""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path


from benchmarks._common import RESULTS, prepared_home, synthetic_corpus, vecs, write_result
from modeling.text_tokenizer import UNITS


def export_folder(videos: int, minutes: float, seed: int, max_segment_s: float = 25.0) -> Path:
    """The corpus exported (80/10/10, video-disjoint); ``max_segment_s`` bounds how far captions are merged."""
    corpus = synthetic_corpus(videos, minutes, seed)
    bound = "" if max_segment_s == 25.0 else f"_seg{max_segment_s:g}"
    root = RESULTS / f"whisper_data_v{videos}_m{minutes:g}_s{seed}{bound}"
    out = root / "export"
    if not (out / "export_report.json").exists():
        files = [v["file"] for v in json.loads((corpus / "videos.json").read_text())["videos"]]
        prepared_home(corpus, root / "home", files, max_segment_s)
        vecs(root / "home", "export", str(out), "--config", "prelabeled", "--splits", "80/10/10", "--no-progress")
    return out


def within_input(eval_dir: Path, data: Path, seconds: float) -> dict:
    """The test scores over the clips that fit the model's input (the rest are transcribed long-form)."""
    from modeling.data import load_split
    from modeling.metrics import asr_scores

    durations = dict(zip(*(lambda d: (d.samples.meta["id"], d.durations))(load_split(str(data), "prelabeled", "test"))))
    rows = [json.loads(line) for line in (eval_dir / "predictions.jsonl").read_text().splitlines()]
    rows = [r for r in rows if durations.get(r["id"], 1e9) <= seconds]
    scores = asr_scores([r["reference"] for r in rows], [r["prediction"] for r in rows])
    return {"samples": len(rows), **{k: scores[k] for k in ("cer", "wer", "en_error_rate", "loop_rate") if k in scores}}


def listening_check(model_dir: Path, data: Path, n: int = 48) -> dict:
    """Mean token cross-entropy of ``n`` test clips with their own audio vs each with the next clip's audio."""
    import torch

    from modeling.data import load_split
    from modeling.whisper.collate import WhisperCollator
    from modeling.whisper.model import input_seconds, load

    model, processor = load(str(model_dir))
    model.eval()
    split = load_split(str(data), "prelabeled", "test", max_seconds=input_seconds(model), limit=n)
    batch = WhisperCollator(processor)([(s, s.samples()) for s in split.samples])
    feats = batch["input_features"]
    with torch.no_grad():
        own = model(input_features=feats, decoder_input_ids=batch["decoder_input_ids"], labels=batch["labels"]).loss
        other = model(input_features=feats.roll(1, dims=0), decoder_input_ids=batch["decoder_input_ids"],
                      labels=batch["labels"]).loss
    return {"clips": len(split.samples), "ce_own_audio": round(float(own), 4),
            "ce_other_audio": round(float(other), 4), "ratio": round(float(other / own), 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=8)
    ap.add_argument("--corpus-minutes", type=float, default=45.0, help="per video; about half of its speech fits 6 s inputs")
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--max-segment-seconds", type=float, default=6.0,
                    help="training data: captions merged into segments up to this long (the test split is always "
                         "the 25 s export's, so runs compare)")
    ap.add_argument("--second-seed", type=int, default=11, help="a second corpus (4 videos) scored too; -1: none")
    ap.add_argument("--minutes", type=float, default=25.0, help="training time budget; it sizes the schedule")
    ap.add_argument("--ctc-weight", type=float, default=0.3)
    ap.add_argument("--input-seconds", type=float, default=6.0)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--schedule", choices=("linear", "cosine"), default="cosine")
    ap.add_argument("--d-model", type=int, default=192)
    ap.add_argument("--encoder-layers", type=int, default=3)
    ap.add_argument("--decoder-layers", type=int, default=3)
    ap.add_argument("--vocab-size", type=int, default=1200)
    ap.add_argument("--tokenizer", choices=UNITS, default="char", help="scratch tokenizer unit")
    ap.add_argument("--timestamp-fraction", type=float, default=0.0)
    ap.add_argument("--eval-steps", type=int, default=250)
    ap.add_argument("--spec-augment", action="store_true")
    ap.add_argument("--speed-perturbation", default="", help="e.g. 0.9,1.0,1.1 (one factor per clip)")
    ap.add_argument("--dropout", type=float, default=0.0)
    ap.add_argument("--steps", type=int, default=0, help="a fixed schedule length instead of the time budget")
    ap.add_argument("--name", default=None, help="the run's name (default: whisper_cpu_ctc<weight>)")
    args = ap.parse_args()

    import torch

    from modeling.evaluate import evaluate_asr
    from modeling.registry import WHISPER
    from modeling.whisper.train import WhisperTrainingArguments

    torch.set_num_threads(2)
    train_data = export_folder(args.videos, args.corpus_minutes, args.seed, args.max_segment_seconds)
    data = export_folder(args.videos, args.corpus_minutes, args.seed)
    report = json.loads((train_data / "export_report.json").read_text())["configs"]["prelabeled"]
    name = args.name or f"whisper_cpu_ctc{args.ctc_weight:g}"
    run = RESULTS / name
    shutil.rmtree(run, ignore_errors=True)
    summary = WHISPER.train(WhisperTrainingArguments(
        output_dir=str(run), dataset=str(train_data), dataset_config="prelabeled", model_name_or_path="scratch",
        scratch_d_model=args.d_model, scratch_encoder_layers=args.encoder_layers, scratch_vocab_size=args.vocab_size,
        scratch_tokenizer=args.tokenizer,
        scratch_decoder_layers=args.decoder_layers, input_seconds=args.input_seconds, ctc_weight=args.ctc_weight,
        per_device_train_batch_size=args.batch, learning_rate=args.lr, warmup_steps=100, max_steps=args.steps,
        lr_scheduler_type=args.schedule, max_train_minutes=args.minutes, eval_steps=args.eval_steps,
        save_steps=args.eval_steps, logging_steps=25, max_eval_samples=60, timestamp_fraction=args.timestamp_fraction,
        spec_augment=args.spec_augment, mask_time_prob=0.05, mask_feature_prob=0.05 if args.spec_augment else 0.0,
        dropout=args.dropout, speed_perturbation=args.speed_perturbation, report_to="none", ct2_quantization="none", progress=True))
    keys = ("samples", "wer", "cer", "en_error_rate", "vi_error_rate", "loop_rate", "latency_mean_ms",
            "latency_p95_ms", "rtf")
    test = evaluate_asr(str(run / "best"), str(data), config="prelabeled", split="test", out_dir=run / "eval_test",
                        progress=False)
    second = None
    if args.second_seed >= 0:
        other = export_folder(4, 12.0, args.second_seed)
        second = evaluate_asr(str(run / "best"), str(other), config="prelabeled", split="test",
                              out_dir=run / "eval_second_corpus", progress=False)
        second = {"corpus_seed": args.second_seed, **{k: second[k] for k in keys}}
    listening = listening_check(run / "best", data)
    short = within_input(run / "eval_test", data, args.input_seconds)
    history = [h for h in summary.get("history", [])] or json.loads((run / "train_results.json").read_text())["history"]
    write_result(name, {
        "corpus": {"hours": sum(report["hours"].values()), "splits": report["hours"],
                   "max_segment_seconds": args.max_segment_seconds,
                   "train_segments_used": summary["train_samples"], "skipped": summary["skipped"]},
        "model": {"vocab_size": args.vocab_size, "tokenizer": args.tokenizer, "schedule": args.schedule,
                  "timestamp_fraction": args.timestamp_fraction, "d_model": args.d_model, "encoder_layers": args.encoder_layers,
                  "decoder_layers": args.decoder_layers, "input_seconds": args.input_seconds,
                  "ctc_weight": args.ctc_weight, "batch": args.batch, "lr": args.lr,
                  "spec_augment": args.spec_augment, "dropout": args.dropout,
                  "speed_perturbation": args.speed_perturbation},
        "train_minutes": round(summary["train_seconds_this_run"] / 60, 2), "steps": summary["steps"],
        "best_validation_cer": summary["best_eval_cer"], "best_step": summary["best_step"],
        "test": {k: test[k] for k in keys}, "test_clips_within_input": short, "second_corpus_test": second, "listening_check": listening,
        "validation_cer_curve": [(h["step"], h["eval_cer"]) for h in history if "eval_cer" in h],
        "goal": {"cer": 0.15, "en_error_rate": 0.30, "loop_rate": 0.0, "minutes": 25},
        "figures": [str(run / "cer_curve.png"), str(run / "eval_test" / "length_scatter.png")],
    })


if __name__ == "__main__":
    main()
