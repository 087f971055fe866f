"""The translation stream: each committed segment is translated to Vietnamese as it commits — by a text MT model
(the cascade) or by the E2E model from the segment's own audio. Vietnamese stays Vietnamese: in the default
``spans`` mode only English runs are sent to the translator, which is what a code-switched listener needs."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from dataset_builder.foundation.config import SAMPLE_RATE

from .online import Commit


@dataclass
class TranslatedCommit:
    commit: Commit
    translation: str
    seconds: float  # wall time the translation of its batch took


class AudioHistory:
    """The last ``seconds`` of the stream, addressable by stream time (the E2E model translates from audio)."""

    def __init__(self, seconds: float = 60.0) -> None:
        self.limit = int(seconds * SAMPLE_RATE)
        self.samples = np.zeros(0, dtype=np.float32)
        self.start = 0  # stream sample index of samples[0]

    def append(self, samples: np.ndarray) -> None:
        self.samples = np.concatenate([self.samples, np.asarray(samples, dtype=np.float32)])
        extra = len(self.samples) - self.limit
        if extra > 0:
            self.samples, self.start = self.samples[extra:], self.start + extra

    def slice(self, start: float, end: float) -> np.ndarray:
        a = max(0, int(start * SAMPLE_RATE) - self.start)
        b = max(a, int(end * SAMPLE_RATE) - self.start)
        return self.samples[a:b]


def text_translation(translator, mode: str = "spans") -> Callable[[list[Commit], AudioHistory], list[str]]:
    """Cascade MT over the committed text (``modeling.mt.decode.Translator``)."""
    if mode not in ("spans", "sentence"):
        raise ValueError(f"translation mode {mode!r}: expected spans or sentence")

    def translate(commits: list[Commit], history: AudioHistory) -> list[str]:
        texts = [c.text for c in commits]
        return translator.translate_spans(texts) if mode == "spans" else translator.translate(texts)
    return translate


def speech_translation(e2e, margin: float = 0.2) -> Callable[[list[Commit], AudioHistory], list[str]]:
    """The E2E model's ``<2translate>`` task over each committed segment's audio (``E2ETranslator``)."""
    def translate(commits: list[Commit], history: AudioHistory) -> list[str]:
        arrays = [history.slice(max(0.0, c.start - margin), c.end + margin) for c in commits]
        todo = [i for i, a in enumerate(arrays) if len(a) >= SAMPLE_RATE // 10]
        out = [""] * len(commits)
        for i, r in zip(todo, e2e.run([arrays[i] for i in todo], "st") if todo else []):
            out[i] = r.text
        return out
    return translate


class TranslationStream:
    def __init__(self, translate: Callable[[list[Commit], AudioHistory], list[str]], *, history_seconds: float = 60.0):
        self.translate = translate
        self.history = AudioHistory(history_seconds)

    def feed(self, samples: np.ndarray) -> None:
        self.history.append(samples)

    def __call__(self, commits: list[Commit]) -> list[TranslatedCommit]:
        if not commits:
            return []
        t0 = time.perf_counter()
        texts = self.translate(commits, self.history)
        spent = round(time.perf_counter() - t0, 3)
        return [TranslatedCommit(c, t, spent) for c, t in zip(commits, texts)]


def translation_stream(model: str, *, mode: str = "spans", runtime=None) -> TranslationStream:
    """A translation stream on a saved model: an E2E checkpoint translates from audio, anything else is text MT."""
    from ..e2e.model import is_e2e

    if is_e2e(model):
        from ..e2e.decode import load_translator as load_e2e

        return TranslationStream(speech_translation(load_e2e(model, runtime=runtime)))
    from ..mt.decode import load_translator as load_mt

    return TranslationStream(text_translation(load_mt(model, runtime=runtime), mode))
