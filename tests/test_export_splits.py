"""Split assignment: disjoint, balanced by hours, deterministic, and stable as the corpus grows."""
from __future__ import annotations

import random

import pytest

from dataset_builder.export.splits import LeakageError, assign, check_leakage, parse_ratios

RATIOS = parse_ratios("80/10/10")


def corpus(n: int, seed: int = 0) -> dict[str, float]:
    rng = random.Random(seed)
    return {f"video{i:03d}": rng.uniform(0.1, 2.0) for i in range(n)}


def share(assignment, hours):
    total = sum(hours.values())
    return {s: sum(h for k, h in hours.items() if assignment[k] == s) / total for s in ("train", "validation", "test")}


def test_balanced_by_hours_and_deterministic():
    hours = corpus(200)
    a = assign(hours, RATIOS, seed=42)
    assert a == assign(hours, RATIOS, seed=42)
    assert a != assign(hours, RATIOS, seed=7)
    got = share(a, hours)
    assert got["train"] == pytest.approx(0.8, abs=0.02)
    assert got["validation"] == pytest.approx(0.1, abs=0.02) and got["test"] == pytest.approx(0.1, abs=0.02)


def test_adding_videos_never_moves_an_existing_one():
    first = corpus(50)
    a1 = assign(first, RATIOS, seed=1)
    grown = {**first, **{f"new{i:03d}": h for i, h in enumerate(corpus(150, seed=9).values())}}
    a2 = assign(grown, RATIOS, seed=1, existing=a1)
    assert all(a2[k] == a1[k] for k in first)
    assert share(a2, grown)["train"] == pytest.approx(0.8, abs=0.03)  # the new videos rebalance toward the target


def test_zero_ratio_split_stays_empty_and_bad_specs_fail():
    a = assign(corpus(30), parse_ratios("90/10/0"), seed=3)
    assert "test" not in a.values()
    for bad in ("80/20", "a/b/c", "-1/1/1", "0/0/0"):
        with pytest.raises(ValueError, match="--splits"):
            parse_ratios(bad)


def test_leakage_check():
    check_leakage([("v1", "train"), ("v1", "train"), ("v2", "test")])
    with pytest.raises(LeakageError, match="'v1' is in both 'train' and 'test'"):
        check_leakage([("v1", "train"), ("v2", "test"), ("v1", "test")])


def test_every_requested_split_gets_a_group_even_when_the_corpus_is_small():
    """Three equal videos at 60/20/20: hour-balancing alone would give train two and test none."""
    out = assign({"a": 0.1, "b": 0.1, "c": 0.1}, {"train": 0.6, "validation": 0.2, "test": 0.2}, seed=1)
    assert sorted(out.values()) == ["test", "train", "validation"]
    assert set(assign({"a": 0.1, "b": 0.1}, {"train": 0.8, "validation": 0.2, "test": 0.0}).values()) == {
        "train", "validation"}
