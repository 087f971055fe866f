"""The cascade the paper dropped: this project's Whisper transcribes, a text MT model translates — the whole
sentence, or only the English spans in place (the Vietnamese words are already Vietnamese)."""
from __future__ import annotations

import time

import numpy as np

from .decoding import Heard
from .mt.decode import Translator
from .whisper.decode import WhisperTranscriber

MODES = ("sentence", "spans")


class Cascade:
    def __init__(self, transcriber: WhisperTranscriber, translator: Translator, mode: str = "sentence") -> None:
        if mode not in MODES:
            raise ValueError(f"cascade mode {mode!r}: expected one of {', '.join(MODES)}")
        self.asr, self.mt, self.mode = transcriber, translator, mode

    def to(self, device, dtype=None) -> "Cascade":
        self.asr.to(device, dtype)
        self.mt.to(device, dtype)
        return self

    def hear(self, arrays: list[np.ndarray], *, translate: bool = True) -> list[Heard]:
        t0 = time.perf_counter()
        heard = self.asr.transcribe(arrays)
        texts = [h.text for h in heard]
        if not translate:
            translated = [""] * len(texts)
        elif self.mode == "sentence":
            translated = self.mt.translate(texts)
        else:
            translated = self.mt.translate_spans(texts)
        each = (time.perf_counter() - t0) / max(1, len(arrays))
        return [Heard(h.text, t, h.language, each, h.audio_seconds) for h, t in zip(heard, translated)]


def spans_cascade(transcriber: WhisperTranscriber, translator: Translator) -> Cascade:
    """The cascade the Space shows: English spans translated in place (Vietnamese words kept)."""
    return Cascade(transcriber, translator, "spans")
