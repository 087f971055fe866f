"""silero-vad speech regions, shared by timestamp refinement and streaming.

silero-vad's ONNX model runs ~100x real time on one core through onnxruntime. Its PyPI package ships the
model, but its own loader needs torchaudio, so the ONNX graph is driven directly with numpy.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from .config import SAMPLE_RATE

WINDOW = 512  # samples per VAD step at 16 kHz (32 ms)
CONTEXT = 64  # silero v5 prepends the previous 64 samples to each window


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

    def probabilities(self, samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
        """Speech probability per 32 ms window."""
        if sample_rate != SAMPLE_RATE:
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

    def speech_regions(self, samples: np.ndarray, sample_rate: int = SAMPLE_RATE, threshold: float = 0.5,
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


def load_vad() -> SileroVAD | None:
    """The VAD, or None where silero-vad is not installed."""
    path = silero_model_path()
    return SileroVAD(path) if path else None
