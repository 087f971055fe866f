"""Speech from espeak-ng, shared by the synthetic corpus and streaming's padding clip.

espeak-ng renders at its native 22,050 Hz; callers resample (ffmpeg for the corpus, the stream resampler for the
padding clip).
"""
from __future__ import annotations

import functools
import io
import subprocess

import numpy as np
import soundfile as sf

from .secrets import child_env

SR = 22050  # espeak-ng's native rate
SILENCE_THRESHOLD = 0.004  # espeak pads with exact zeros; its quietest onsets stay above this


def espeak(text: str, voice: str, speed: int, pitch: int) -> np.ndarray:
    """Speak ``text``: float32 mono at ``SR``, silence trimmed, read-only.

    Short runs (the English words a host keeps repeating) are cached; long Vietnamese runs rarely
    repeat and would only fill memory.
    """
    if len(text) <= 32:
        return _espeak_cached(text, voice, speed, pitch)
    return _espeak(text, voice, speed, pitch)


def _espeak(text: str, voice: str, speed: int, pitch: int) -> np.ndarray:
    # stdin, so nothing in the text can be read as an option; -z drops the ~0.3 s pause espeak appends
    proc = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-z", "--stdin", "--stdout"],
        input=text.encode("utf-8"), capture_output=True, check=True, env=child_env(), timeout=120,
    )
    audio, sr = sf.read(io.BytesIO(proc.stdout), dtype="float32")
    if sr != SR:  # pragma: no cover - every espeak-ng voice renders at 22050 Hz
        raise RuntimeError(f"espeak-ng returned {sr} Hz, expected {SR}")
    audio = trim(audio)
    audio.setflags(write=False)
    return audio


_espeak_cached = functools.lru_cache(maxsize=2048)(_espeak)


def trim(audio: np.ndarray, threshold: float = SILENCE_THRESHOLD, relative: float = 0.02) -> np.ndarray:
    """Cut leading/trailing silence: 5 ms frames quieter than ``relative`` x the loudest frame go, then
    samples under ``threshold``.

    The frame pass matters for Vietnamese: espeak renders an unreleased final stop ("việc", "sách") as
    60 ms of silence and then a -50 dB click, which a plain sample threshold would count as speech.
    """
    frame = 110
    n = -(-audio.size // frame)
    if n == 0:
        return audio[:0]
    padded = np.zeros(n * frame, dtype=np.float64)
    padded[: audio.size] = audio
    rms = np.sqrt(np.mean(padded.reshape(n, frame) ** 2, axis=1))
    frames = np.flatnonzero(rms > max(threshold / 2, relative * float(rms.max())))
    if frames.size == 0:
        return audio[:0]
    lo, hi = frames[0] * frame, min(audio.size, (frames[-1] + 1) * frame)
    loud = np.flatnonzero(np.abs(audio[lo:hi]) > threshold)
    if loud.size == 0:  # pragma: no cover - a loud frame has a loud sample
        return audio[:0]
    return audio[lo + loud[0]: lo + loud[-1] + 1]


