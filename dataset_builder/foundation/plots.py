"""The figures people look at instead of reading tables: one place that draws them, headless, written atomically.

Used by ``vecs export`` (duration and CMI histograms for the dataset card) and ``vecs evaluate`` / the trainers
(length scatter, curves, per-model bars).
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # no display on servers, CI or the Space
import matplotlib.pyplot as plt  # noqa: E402

from .atomic import atomic_path  # noqa: E402

SPLIT_COLOURS = {"train": "#4C72B0", "validation": "#DD8452", "test": "#55A868"}


def _save(fig, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def histogram(groups: Mapping[str, Sequence[float]], path: Path, *, title: str, xlabel: str,
              bins: int = 30, range_: tuple[float, float] | None = None) -> Path:
    """Overlaid histograms, one per group (e.g. per split), on shared bins."""
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    values = [v for vs in groups.values() for v in vs]
    if range_ is None and values:
        range_ = (min(values), max(values) if max(values) > min(values) else min(values) + 1)
    for name, vs in groups.items():
        if len(vs):
            ax.hist(vs, bins=bins, range=range_, alpha=0.6, label=f"{name} ({len(vs)})",
                    color=SPLIT_COLOURS.get(name))
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("segments")
    if groups:
        ax.legend()
    return _save(fig, path)


def length_scatter(ref_lengths: Sequence[int], hyp_lengths: Sequence[int], path: Path, *, title: str,
                   unit: str = "words") -> Path:
    """Prediction vs reference length: loops and truncations are the points far from the diagonal."""
    fig, ax = plt.subplots(figsize=(4.8, 4.8))
    ax.scatter(ref_lengths, hyp_lengths, s=10, alpha=0.6)
    top = max([1, *ref_lengths, *hyp_lengths])
    ax.plot([0, top], [0, top], color="grey", lw=1, label="prediction = reference")
    ax.plot([0, top / 2], [0, top], color="red", lw=1, ls="--", label="2× reference (loop threshold)")
    ax.set_xlabel(f"reference length ({unit})")
    ax.set_ylabel(f"prediction length ({unit})")
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize=8)
    return _save(fig, path)


def curves(series: Mapping[str, tuple[Sequence[float], Sequence[float]]], path: Path, *, title: str,
           xlabel: str = "step", ylabel: str = "") -> Path:
    """Training curves: ``{"train loss": (steps, values), "validation CER": (steps, values)}``."""
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    for name, (xs, ys) in series.items():
        if len(xs):
            ax.plot(xs, ys, marker="o" if len(xs) < 30 else None, ms=3, label=name)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if series:
        ax.legend()
    return _save(fig, path)


def bars(table: Mapping[str, Mapping[str, float]], path: Path, *, title: str) -> Path:
    """Grouped bars: ``{model: {metric: value}}`` — one group per metric, one bar per model."""
    models = list(table)
    metrics = sorted({m for row in table.values() for m in row})
    fig, ax = plt.subplots(figsize=(max(4.8, 1.4 * len(metrics) + 2), 3.6))
    width = 0.8 / max(1, len(models))
    for i, model in enumerate(models):
        xs = [j + i * width for j in range(len(metrics))]
        ax.bar(xs, [table[model].get(m, 0.0) for m in metrics], width=width, label=model)
    ax.set_xticks([j + width * (len(models) - 1) / 2 for j in range(len(metrics))], metrics)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    if models:
        ax.legend(fontsize=8)
    return _save(fig, path)
