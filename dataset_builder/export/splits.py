"""Video- (or channel-) disjoint splits that never move a group once assigned, balanced by hours.

The paper shuffled with a seed, which reshuffles everything as the corpus grows: a video tested on last
month trains today. Here each group keeps the split it was first given (the caller persists them); new
groups are taken in the order of a stable hash of (seed, key), each into the split furthest below its
share of the hours so far. Channel grouping keeps a host's voice out of two splits.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping

SPLITS = ("train", "validation", "test")


class LeakageError(ValueError):
    """A group (video or channel) appears in more than one split."""


def parse_ratios(spec: str) -> dict[str, float]:
    """``"80/10/10"`` → {"train": 0.8, "validation": 0.1, "test": 0.1}."""
    try:
        parts = [float(p) for p in spec.split("/")]
    except ValueError:
        raise ValueError(f"--splits {spec!r}: expected three numbers like 80/10/10") from None
    if len(parts) != 3 or any(p < 0 for p in parts) or sum(parts) <= 0:
        raise ValueError(f"--splits {spec!r}: expected three non-negative numbers like 80/10/10")
    total = sum(parts)
    return {name: p / total for name, p in zip(SPLITS, parts)}


def stable_key(seed: int, key: str) -> str:
    return hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()


def assign(
    hours: Mapping[str, float],
    ratios: Mapping[str, float],
    seed: int = 42,
    existing: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Split of every group in ``hours``; groups in ``existing`` keep theirs."""
    existing = dict(existing or {})
    out = {k: v for k, v in existing.items() if k in hours}
    totals = {s: 0.0 for s in SPLITS}
    for key, split in out.items():
        totals[split] += hours[key]
    used = set(out.values())
    for key in sorted((k for k in hours if k not in out), key=lambda k: stable_key(seed, k)):
        grand = sum(totals.values()) + hours[key]
        empty = [s for s in SPLITS if ratios.get(s, 0.0) > 0 and s not in used]
        # every split asked for gets a group first (a small corpus would otherwise have no test split)
        split = empty[0] if empty else max(
            SPLITS, key=lambda s: (ratios.get(s, 0.0) * grand - totals[s], -SPLITS.index(s))
            if ratios.get(s, 0.0) > 0 else (float("-inf"), 0))
        used.add(split)
        out[key] = split
        totals[split] += hours[key]
    return out


def check_leakage(rows: Iterable[tuple[str, str]]) -> None:
    """``rows`` of (group key, split) — e.g. every exported example's video and split — must agree."""
    seen: dict[str, str] = {}
    for key, split in rows:
        first = seen.setdefault(key, split)
        if first != split:
            raise LeakageError(f"group {key!r} is in both {first!r} and {split!r}")
