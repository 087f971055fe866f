"""Export throughput and memory: hours of audio exported per minute, and peak memory at two corpus sizes.

    python -m benchmarks.export [--videos 8 --minutes 16]

Goal: >= 60 h of audio per minute on 2 cores, and memory that does not grow with the corpus (the
export streams segments from the full-length FLACs into Arrow/Parquet instead of holding the corpus in RAM).
The corpus is synthesized, ingested and pre-labeled (captions engine) once; each export runs as its own
``vecs export`` process so its peak RSS is measured alone.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


from benchmarks._common import corpus_videos, prepared_home, write_result


_MEASURED = (
    "import resource, sys\n"
    "from dataset_builder.cli import main\n"
    "sys.argv = ['vecs', *sys.argv[1:]]\n"
    "try:\n    main()\n"
    "finally:\n    print('PEAK_RSS_KIB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
)


def timed_export(home: Path, out: Path) -> dict:
    """One export in its own process: wall time, that process's peak RSS, the hours it wrote."""
    env = {**os.environ, "VECS_HOME": str(home)}
    env.pop("VECS_DB_URL", None)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _MEASURED, "export", str(out), "--config", "prelabeled",
                           "--splits", "80/10/10", "--no-progress"], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"export failed:\n{proc.stderr[-2000:]}")
    peak_mib = int(proc.stderr.rsplit("PEAK_RSS_KIB", 1)[1].split()[0]) / 1024
    full = json.loads((out / "export_report.json").read_text())
    report, timing = full["configs"]["prelabeled"], full["timing"]
    hours = sum(report["hours"].values())
    parquet_mib = sum(p.stat().st_size for p in (out / "data").rglob("*.parquet")) / 2**20
    return {"segments": report["kept"], "audio_hours": round(hours, 3),
            "export_s": timing["seconds"], "hours_per_minute": timing["hours_per_minute"],
            "process_wall_s": round(wall, 2), "hours_per_minute_incl_startup": round(hours / (wall / 60), 1),
            "peak_rss_mib": round(peak_mib, 1),
"parquet_mib": round(parquet_mib, 1),
            "pcm_mib_if_held": round(hours * 3600 * 16000 * 2 / 2**20, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=8)
    ap.add_argument("--minutes", type=float, default=16.0)
    ap.add_argument("--seed", type=int, default=5)
    args = ap.parse_args()

    corpus, videos = corpus_videos(args.videos, args.minutes, args.seed)
    files = [v["file"] for v in videos]
    work = Path(tempfile.mkdtemp(prefix="vecs-bench-export-"))
    try:
        runs = {}
        for label, subset in (("half", files[: max(1, len(files) // 2)]), ("full", files)):
            home = work / f"home-{label}"
            prepared_home(corpus, home, subset)
            runs[label] = timed_export(home, work / f"out-{label}")
            print(label, runs[label], flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    full, half = runs["full"], runs["half"]
    result = {
        "corpus": {"videos": len(files), "hours": round(sum(v["duration"] for v in videos) / 3600, 3)},
        "runs": runs,
        "hours_per_minute": full["hours_per_minute"],
        "goal_hours_per_minute": 60,
        "memory_growth_full_vs_half": round(full["peak_rss_mib"] / half["peak_rss_mib"], 3),
        "audio_growth_full_vs_half": round(full["audio_hours"] / half["audio_hours"], 3),
        "note": "each export in its own process (vecs export --config prelabeled --no-progress); hours_per_minute = "
                "audio hours / the export's own time (plan, shards, figures, card, report) as written in "
                "export_report.json; _incl_startup adds interpreter start and imports; peak RSS = its ru_maxrss",
    }
    write_result("export", result)


if __name__ == "__main__":
    main()
