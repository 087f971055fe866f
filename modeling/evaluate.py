"""``vecs evaluate``: score a model on a VECS split — error rates overall and per language, hallucination
diagnostics, latency — and write ``metrics.json``, ``predictions.jsonl`` and the plots."""
from __future__ import annotations

import json
from pathlib import Path

from tqdm.auto import tqdm

from dataset_builder.atomic import write_text_atomic

from .data import load_split
from .metrics import Latency, asr_scores, is_loop
from .text import normalize_for_scoring


def evaluate_asr(model: str, dataset: str, *, config: str = "verified", split: str = "test", out_dir: Path,
                 batch_size: int = 8, limit: int | None = None, progress: bool = True) -> dict:
    from .plots import length_scatter
    from .whisper.decode import WhisperTranscriber
    from .whisper.model import load

    whisper, processor = load(model)  # fails with one line before any audio is read
    data = load_split(dataset, config, split, limit=limit)
    transcriber = WhisperTranscriber(whisper, processor)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    refs, hyps, rows = [], [], []
    latency = Latency([], [])
    for i in tqdm(range(0, len(data.samples), batch_size), desc=f"evaluate {split}", disable=not progress):
        chunk = data.samples[i:i + batch_size]
        arrays = []
        for s in chunk:
            try:
                arrays.append((s, s.samples()))
            except Exception:
                data.skipped["undecodable_audio"] += 1
        if not arrays:
            continue
        outs = transcriber.transcribe([a for _, a in arrays])
        for (s, _), o in zip(arrays, outs):
            refs.append(s.transcript)
            hyps.append(o.text)
            latency.seconds.append(o.seconds)
            latency.audio_seconds.append(o.audio_seconds)
            rows.append({"id": s.id, "reference": s.transcript, "prediction": o.text, "language": o.language,
                         "loop": is_loop(o.text, s.transcript), "seconds": round(o.seconds, 4)})
    metrics = {"model": model, "dataset": dataset, "config": config, "split": split, "task": "asr",
               **asr_scores(refs, hyps), **latency.summary(), "skipped": dict(data.skipped),
               "device": str(transcriber.device)}
    write_text_atomic(out_dir / "metrics.json", json.dumps(metrics, indent=2, ensure_ascii=False) + "\n")
    write_text_atomic(out_dir / "predictions.jsonl",
                      "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    length_scatter([len(normalize_for_scoring(r).split()) for r in refs],
                   [len(normalize_for_scoring(h).split()) for h in hyps], out_dir / "length_scatter.png",
                   title=f"{Path(model).name}: prediction vs reference length ({split})")
    return metrics
