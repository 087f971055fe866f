"""Timestamp refinement: snap each segment's start/end to the nearest silero-vad speech boundary.

LLM timestamps drift by hundreds of milliseconds; a segment cut from them clips words or carries breaths
and music. silero-vad's ONNX model runs ~100x real time on one core through onnxruntime (its PyPI package
ships the model; its own loader needs torchaudio, which has no CPU build here, so we drive the ONNX graph
directly with numpy).
"""
from __future__ import annotations

import importlib.util
from dataclasses import replace
from pathlib import Path
from typing import Callable

import numpy as np

from .parsing import Segment

WINDOW = 512  # samples per VAD step at 16 kHz (32 ms)
CONTEXT = 64  # silero v5 prepends the previous 64 samples to each window
TOLERANCE_S = 0.5


def silero_model_path() -> Path | None:
    spec = importlib.util.find_spec("silero_vad")  # locate without importing (its __init__ imports torch)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "silero_vad.onnx"
    return path if path.exists() else None


class SileroVAD:
    def __init__(self, model_path: Path) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.inter_op_num_threads = 1
        opts.intra_op_num_threads = 1
        self.session = ort.InferenceSession(str(model_path), sess_options=opts, providers=["CPUExecutionProvider"])

    def probabilities(self, samples: np.ndarray, sample_rate: int = 16000) -> np.ndarray:
        """Speech probability per 32 ms window."""
        if sample_rate != 16000:
            raise ValueError("silero-vad is driven at 16 kHz here")
        samples = np.asarray(samples, dtype=np.float32)
        n = int(np.ceil(len(samples) / WINDOW))
        padded = np.zeros(n * WINDOW, dtype=np.float32)
        padded[: len(samples)] = samples
        state = np.zeros((2, 1, 128), dtype=np.float32)
        context = np.zeros((1, CONTEXT), dtype=np.float32)
        sr = np.array(sample_rate, dtype=np.int64)
        probs = np.empty(n, dtype=np.float32)
        for i in range(n):
            x = np.concatenate([context, padded[None, i * WINDOW:(i + 1) * WINDOW]], axis=1)
            out, state = self.session.run(None, {"input": x, "state": state, "sr": sr})
            probs[i] = float(out.reshape(-1)[0])
            context = x[:, -CONTEXT:]
        return probs

    def speech_regions(self, samples: np.ndarray, sample_rate: int = 16000, threshold: float = 0.5,
                       min_silence_s: float = 0.1, min_speech_s: float = 0.15) -> list[tuple[float, float]]:
        """Speech regions in seconds, with silero's hysteresis (on at ``threshold``, off 0.15 below)."""
        probs = self.probabilities(samples, sample_rate)
        step = WINDOW / sample_rate
        off = max(0.01, threshold - 0.15)
        regions: list[list[float]] = []
        speaking, start, silence_since = False, 0.0, None
        for i, p in enumerate(probs):
            t = i * step
            if not speaking and p >= threshold:
                speaking, start, silence_since = True, t, None
            elif speaking and p < off:
                silence_since = t if silence_since is None else silence_since
                if t + step - silence_since >= min_silence_s:
                    if silence_since - start >= min_speech_s:
                        regions.append([start, silence_since])
                    speaking, silence_since = False, None
            elif speaking:
                silence_since = None
        if speaking:
            end = len(samples) / sample_rate
            if end - start >= min_speech_s:
                regions.append([start, end])
        return [(round(a, 3), round(b, 3)) for a, b in regions]


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
