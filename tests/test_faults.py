"""Fault injection, the short seeded version: ``kill -9`` at random moments of ingest, pre-label, push, pull and
export, then a re-run, then the invariants (see ``tests/faults.py``). ``python -m benchmarks.faults`` runs the
long version (>= 20 points per stage) and writes the figures the README quotes."""
from __future__ import annotations

import faults


def test_the_factory_survives_kill_9_at_random_moments(tmp_path, argilla_server):
    points = {"ingest": 1, "prelabel": 2, "push": 1, "pull": 1, "export": 2}
    result = faults.run(tmp_path / "faults", argilla_server.url, argilla_server.api_key, points=points, seed=1,
                        videos=2, seconds=306.0, log=print)
    failures = {name: s["failures"] for name, s in result["stages"].items() if s["failures"]}
    assert not failures, failures
    assert set(result["stages"]) == set(faults.STAGES)
    assert result["total_survived"] == result["total_points"] == sum(points.values())
    assert result["total_landed"] >= 3  # kills hit running stages (a kill after the end is still a valid point)
