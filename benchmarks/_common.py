"""Helpers shared by the benchmark scripts: where results go, how a corpus is cached, JSON output."""
from __future__ import annotations

import json
import platform
import os
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict:
    return {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()}


def write_result(name: str, result: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    result = {"benchmark": name, "when": time.strftime("%Y-%m-%dT%H:%M:%S"), "machine": machine(), **result}
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2, ensure_ascii=False))
    print(f"wrote {path}")
    return path


def synthetic_corpus(videos: int, minutes: float, seed: int, jobs: int = 2, channels: int = 2) -> Path:
    """A synthetic corpus, made once per (videos, minutes, seed) and reused by later runs."""
    from dataset_builder.synth import synthesize_corpus

    out = RESULTS / f"corpus_v{videos}_m{minutes:g}_s{seed}"
    if not (out / "videos.json").exists():
        synthesize_corpus(out, videos=videos, minutes=minutes, seed=seed, channels=channels, jobs=jobs)
    return out
