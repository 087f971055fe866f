"""Ingest throughput against its limit: plain ffmpeg decode + FLAC encode of the same files, same run.

    python -m benchmarks.ingest [--videos 6 --minutes 10]

Goal: ingest time <= 2x the limit. Both run sequentially (one video at a time) so the ratio
compares like with like; ``--jobs`` adds a parallel ingest figure beside it.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
from pathlib import Path


from benchmarks._common import corpus_videos, vecs, write_result


def plain_ffmpeg(files: list[Path], out_dir: Path) -> float:
    t0 = time.perf_counter()
    for f in files:
        subprocess.run(
            ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(f), "-vn", "-ac", "1", "-ar", "16000",
             "-sample_fmt", "s16", "-c:a", "flac", str(out_dir / (f.stem + ".flac"))],
            check=True,
        )
    return time.perf_counter() - t0


def vecs_ingest(corpus: Path, home: Path, jobs: int) -> float:
    t0 = time.perf_counter()
    vecs(home, "ingest", str(corpus), "--no-progress", "--jobs", str(jobs))
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=6)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()

    corpus, videos = corpus_videos(args.videos, args.minutes, args.seed)
    files = [corpus / v["file"] for v in videos]
    hours = sum(v["duration"] for v in videos) / 3600

    work = Path(tempfile.mkdtemp(prefix="vecs-bench-ingest-"))
    try:
        runs = []
        for rep in range(2):  # alternate the two so drift on a noisy machine hits both alike
            lim_dir = work / f"limit{rep}"
            lim_dir.mkdir()
            limit_s = plain_ffmpeg(files, lim_dir)
            ours_s = vecs_ingest(corpus, work / f"home{rep}", jobs=1)
            runs.append({"limit_s": round(limit_s, 3), "ingest_s": round(ours_s, 3), "ratio": round(ours_s / limit_s, 3)})
        parallel_s = vecs_ingest(corpus, work / "home_parallel", jobs=args.jobs)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    best = min(runs, key=lambda r: r["ratio"])
    worst = max(runs, key=lambda r: r["ratio"])
    result = {
        "corpus": {"videos": len(files), "hours": round(hours, 3), "format": videos[0].get("format")},
        "runs": runs,
        "ratio_ingest_over_limit": {"best": best["ratio"], "worst": worst["ratio"]},
        "hours_per_minute": {
            "ingest_jobs1": round(hours / (min(r["ingest_s"] for r in runs) / 60), 2),
            f"ingest_jobs{args.jobs}": round(hours / (parallel_s / 60), 2),
            "plain_ffmpeg": round(hours / (min(r["limit_s"] for r in runs) / 60), 2),
        },
        "goal": "ingest time <= 2x plain ffmpeg decode + FLAC encode",
        "goal_met": worst["ratio"] <= 2.0,
    }
    write_result("ingest", result)


if __name__ == "__main__":
    main()
