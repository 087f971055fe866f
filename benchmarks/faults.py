"""Fault injection, the long version: ``kill -9`` at >= 20 seeded random moments of each of ingest, pre-label,
push, pull and export, each followed by a re-run and the invariants of ``tests/faults.py``.

    python -m benchmarks.faults [--points 20] [--seed 0] [--videos 3] [--seconds 320]

Starts its own Argilla (``vecs argilla serve``'s launcher) and a Gemini stand-in; writes
``benchmarks/results/faults.json`` (per stage: points, kills that landed mid-run, points survived, failures).
"""
from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from benchmarks._common import write_result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=20, help="kill points per stage")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--videos", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=320.0, help="length of each source video")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    args = ap.parse_args()

    from annotation.server import launcher
    from tests import faults

    work = Path(tempfile.mkdtemp(prefix="vecs-bench-faults-"))
    port = launcher.free_port()
    while not launcher.port_free("127.0.0.1", port + 1):
        port = launcher.free_port()
    info = launcher.serve(work / "argilla-home", port=port)
    try:
        result = faults.run(work / "run", info.url, info.api_key, points=args.points, seed=args.seed,
                            videos=args.videos, seconds=args.seconds, log=lambda m: print(m, flush=True))
    finally:
        launcher.stop(work / "argilla-home")
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    write_result("faults", result)
    if result["total_survived"] != result["total_points"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
