"""Fuzzing at scale: the properties of ``tests/test_fuzz.py`` (reply parser, timestamps, captions, sanitizers,
media headers) with ``--scale`` times the test suite's examples.

    python -m benchmarks.fuzz [--scale 25]

Writes ``benchmarks/results/fuzz.json``: per target, how many inputs were tried and what became of them (used,
or refused with which counted reason; for ``reply items``, every item of whole replies), and whether every
property held.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

from benchmarks._common import write_result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=25.0)
    args = ap.parse_args()
    os.environ["VECS_FUZZ_SCALE"] = str(args.scale)
    import pytest

    t0 = time.perf_counter()
    code = pytest.main(["-q", "-p", "no:cacheprovider", "tests/test_fuzz.py"])
    outcomes = sys.modules["test_fuzz"].OUTCOMES
    result = {
        "scale": args.scale, "passed": code == 0, "seconds": round(time.perf_counter() - t0, 1),
        "targets": {name: {"inputs": sum(c.values()), "outcomes": dict(c.most_common())}
                    for name, c in sorted(outcomes.items())},
    }
    result["inputs"] = sum(t["inputs"] for t in result["targets"].values())
    write_result("fuzz", result)
    if code != 0:
        raise SystemExit(code)


if __name__ == "__main__":
    main()
