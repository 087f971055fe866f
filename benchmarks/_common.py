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


def scratch_home(prefix: str) -> Path:
    """A fresh temporary folder that this process's factory (``VECS_HOME``, SQLite) works in."""
    import tempfile

    work = Path(tempfile.mkdtemp(prefix=f"vecs-bench-{prefix}-"))
    os.environ["VECS_HOME"] = str(work / "home")
    os.environ.pop("VECS_DB_URL", None)
    return work


def corpus_videos(videos: int, minutes: float, seed: int) -> tuple[Path, list[dict]]:
    """The cached synthetic corpus and its ``videos.json`` entries."""
    corpus = synthetic_corpus(videos, minutes, seed)
    return corpus, json.loads((corpus / "videos.json").read_text())["videos"]


def vecs(home: Path, *args: str):
    """Run a ``vecs`` command against the state store in ``home``; exit with its stderr if it fails."""
    import subprocess
    import sys

    env = {**os.environ, "VECS_HOME": str(home)}
    env.pop("VECS_DB_URL", None)
    proc = subprocess.run([sys.executable, "-m", "dataset_builder.cli", *args], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"vecs {' '.join(args)} failed:\n{proc.stderr[-2000:]}")
    return proc


def prepared_home(corpus: Path, home: Path, videos: list[str], max_segment_s: float = 25.0) -> None:
    """A state store holding ``videos`` of the corpus, ingested and pre-labeled with the captions engine."""
    src = home.parent / f"{home.name}-sources"
    for name in videos:  # the media file and its caption sidecar, in its channel's folder
        for f in (corpus / name).parent.glob(Path(name).stem + ".*"):
            (src / f.parent.name).mkdir(parents=True, exist_ok=True)
            if not (src / f.parent.name / f.name).exists():
                os.symlink(f, src / f.parent.name / f.name)
    vecs(home, "ingest", str(src), "--no-progress", "--jobs", "2")
    vecs(home, "prelabel", "--engine", "captions", "--no-progress", "--max-segment-seconds", f"{max_segment_s:g}")
