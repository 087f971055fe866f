"""``vecs evaluate``: score a model on a VECS split — error rates overall and per language, hallucination
diagnostics, latency — and write ``metrics.json``, ``predictions.jsonl`` and the plots."""
from __future__ import annotations

import json
from pathlib import Path

from tqdm.auto import tqdm

from dataset_builder.foundation.atomic import write_text_atomic

from .data import load_split
from .metrics import Latency, asr_scores, is_loop, translation_scores
from dataset_builder.foundation.text import normalize_for_scoring


def evaluate_asr(model: str, dataset: str, *, config: str = "verified", split: str = "test", out_dir: Path,
                 batch_size: int = 8, limit: int | None = None, progress: bool = True, runtime=None) -> dict:
    """A speech model's transcripts (Whisper, or the E2E model's ``<2transcribe>`` output) against the split."""
    from dataset_builder.foundation.plots import length_scatter

    from .registry import family_of

    family = family_of(model)
    if not family.speech:
        raise ValueError(f"--task asr needs a speech model; {model!r} is a {family.name} model")
    runner = family.load(model, runtime=runtime)  # fails with one line before any audio is read
    data = load_split(dataset, config, split, limit=limit)
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
        outs = runner.hear([a for _, a in arrays], translate=False)
        for (s, _), o in zip(arrays, outs):
            refs.append(s.transcript)
            hyps.append(o.transcript)
            latency.seconds.append(o.seconds)
            latency.audio_seconds.append(o.audio_seconds)
            rows.append({"id": s.id, "reference": s.transcript, "prediction": o.transcript, "language": o.language,
                         "loop": is_loop(o.transcript, s.transcript), "seconds": round(o.seconds, 4)})
    metrics = {"model": model, "family": family.name, "dataset": dataset, "config": config, "split": split, "task": "asr",
               **asr_scores(refs, hyps), **latency.summary(), "skipped": dict(data.skipped),
               "device": str(runner.device)}
    write_text_atomic(out_dir / "metrics.json", json.dumps(metrics, indent=2, ensure_ascii=False) + "\n")
    write_text_atomic(out_dir / "predictions.jsonl",
                      "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    length_scatter([len(normalize_for_scoring(r).split()) for r in refs],
                   [len(normalize_for_scoring(h).split()) for h in hyps], out_dir / "length_scatter.png",
                   title=f"{Path(model).name}: prediction vs reference length ({split})")
    return metrics


def evaluate_st(dataset: str, *, e2e: str | None = None, asr_model: str | None = None, mt_model: str | None = None,
                config: str = "verified", split: str = "test", out_dir: Path, batch_size: int = 8,
                limit: int | None = None, progress: bool = True, runtime=None) -> dict:
    """E2E and the cascade (both modes) on the same clips: BLEU/chrF with signatures, latency per clip."""
    from dataset_builder.foundation.plots import bars

    from .cascade import Cascade
    from .registry import E2E, MT, WHISPER

    systems: dict[str, object] = {}
    if e2e:
        systems["e2e"] = E2E.load(e2e, runtime=runtime)
    if asr_model and mt_model:
        transcriber, translator = WHISPER.load(asr_model, runtime=runtime), MT.load(mt_model, runtime=runtime)
        systems["cascade (sentence)"] = Cascade(transcriber, translator, "sentence")
        systems["cascade (English spans)"] = Cascade(transcriber, translator, "spans")
    if not systems:
        raise ValueError("--task st needs --model (an E2E model) and/or --asr-model with --mt-model (the cascade)")
    data = load_split(dataset, config, split, need=("transcript", "translation"), limit=limit)
    refs = [s.translation for s in data.samples]
    outputs: dict[str, list[str]] = {name: [] for name in systems}
    latency = {name: Latency([], []) for name in systems}
    for i in tqdm(range(0, len(data.samples), batch_size), desc=f"evaluate st {split}", disable=not progress):
        arrays = [s.samples() for s in data.samples[i:i + batch_size]]
        for name, system in systems.items():
            outs = system.hear(arrays)
            outputs[name] += [o.translation for o in outs]
            latency[name].seconds += [o.seconds for o in outs]
            latency[name].audio_seconds += [o.audio_seconds for o in outs]
    table = {name: {**translation_scores(refs, hyps), **latency[name].summary(), "samples": len(hyps)}
             for name, hyps in outputs.items()}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics = {"task": "st", "dataset": dataset, "config": config, "split": split, "e2e": e2e,
               "asr_model": asr_model, "mt_model": mt_model, "systems": table, "skipped": dict(data.skipped)}
    write_text_atomic(out_dir / "metrics.json", json.dumps(metrics, indent=2, ensure_ascii=False) + "\n")
    write_text_atomic(out_dir / "predictions.jsonl", "".join(
        json.dumps({"id": s.id, "reference": s.translation, **{n: outputs[n][k] for n in outputs}},
                   ensure_ascii=False) + "\n" for k, s in enumerate(data.samples)))
    bars({n: {"BLEU": r["bleu"], "chrF": r["chrf"]} for n, r in table.items()}, out_dir / "st_scores.png",
         title=f"Speech translation ({split})")
    return metrics
