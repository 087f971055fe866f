"""The cascade the paper dropped: this project's Whisper transcribes, a text MT model translates — the whole
sentence, or only the English spans in place (the Vietnamese words are already Vietnamese)."""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .mt.model import Translator
from .whisper.decode import WhisperTranscriber

MODES = ("sentence", "spans")


@dataclass
class CascadeOutput:
    transcript: str
    translation: str
    seconds: float
    audio_seconds: float


class Cascade:
    def __init__(self, transcriber: WhisperTranscriber, translator: Translator, mode: str = "sentence") -> None:
        if mode not in MODES:
            raise ValueError(f"cascade mode {mode!r}: expected one of {', '.join(MODES)}")
        self.asr, self.mt, self.mode = transcriber, translator, mode

    def run(self, arrays: list[np.ndarray]) -> list[CascadeOutput]:
        t0 = time.perf_counter()
        heard = self.asr.transcribe(arrays)
        texts = [h.text for h in heard]
        translated = self.mt.translate(texts) if self.mode == "sentence" else self.mt.translate_spans(texts)
        each = (time.perf_counter() - t0) / max(1, len(arrays))
        return [CascadeOutput(h.text, t, each, h.audio_seconds) for h, t in zip(heard, translated)]
