"""Timestamp refinement: snap each segment's start/end to the nearest silero-vad speech boundary.

LLM timestamps drift by hundreds of milliseconds; a segment cut from them clips words or carries breaths
and music.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Callable

import numpy as np

from ..foundation.vad import SileroVAD, silero_model_path
from .parsing import Segment

TOLERANCE_S = 0.5


def snap(segments: list[Segment], regions: list[tuple[float, float]], tolerance: float = TOLERANCE_S) -> list[Segment]:
    """Move each start to the nearest speech onset and each end to the nearest offset within ``tolerance``,
    never crossing a neighbour and never inverting a segment; times without a boundary nearby stay."""
    starts = np.array([r[0] for r in regions]) if regions else np.array([])
    ends = np.array([r[1] for r in regions]) if regions else np.array([])

    def nearest(values: np.ndarray, t: float) -> float | None:
        if values.size == 0:
            return None
        i = int(np.argmin(np.abs(values - t)))
        return float(values[i]) if abs(values[i] - t) <= tolerance else None

    snapped_starts = []
    for seg in segments:
        t = nearest(starts, seg.start)
        snapped_starts.append(seg.start if t is None else t)
    out: list[Segment] = []
    for i, seg in enumerate(segments):
        lo = out[-1].end if out else 0.0
        hi = snapped_starts[i + 1] if i + 1 < len(segments) else float("inf")
        start = max(snapped_starts[i], lo)
        new_end = nearest(ends, seg.end)
        end = new_end if new_end is not None and new_end <= max(hi, seg.end) else seg.end
        if end - start < 0.05:  # snapping would collapse it: keep the model's times
            start, end = max(seg.start, lo), seg.end
        out.append(replace(seg, start=round(start, 3), end=round(end, 3)))
    return out


class VadRefiner:
    def __init__(self, vad: SileroVAD, tolerance: float = TOLERANCE_S) -> None:
        self.vad = vad
        self.tolerance = tolerance

    def refine(self, samples: np.ndarray, sample_rate: int, segments: list[Segment]) -> list[Segment]:
        return snap(segments, self.vad.speech_regions(samples, sample_rate), self.tolerance)


def load_refiner(warn: Callable[[str], None] | None = None, tolerance: float = TOLERANCE_S) -> VadRefiner | None:
    path = silero_model_path()
    if path is None:
        if warn:
            warn("silero-vad is not installed: timestamps are kept as the model gave them (pip install silero-vad)")
        return None
    try:
        return VadRefiner(SileroVAD(path), tolerance)
    except ImportError:
        if warn:
            warn("onnxruntime is not installed: timestamps are kept as the model gave them")
        return None
