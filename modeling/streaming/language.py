"""Bilingual mode, as VoicePing runs it in production (*Whisper in Production: Real-Time Dual-Language
Switching*): the language is one of a configured pair, read from the model's language-token probabilities every
window, and a switch becomes official only after ``patience`` consecutive windows above ``threshold`` — so a
cough does not flip the stream to the other language."""
from __future__ import annotations

from dataset_builder.foundation.text import looks_vietnamese, word_language, words

SHORT_FRAGMENT = 6  # characters: below this the language token is noise; decide by script


class LanguageTracker:
    def __init__(self, pair: tuple[str, ...] = ("vi", "en"), *, threshold: float = 0.6, patience: int = 2,
                 initial: str | None = None) -> None:
        self.pair = pair
        self.threshold, self.patience = threshold, patience
        self.current = initial or pair[0]
        self._candidate: str | None = None
        self._streak = 0

    def update(self, probs: dict[str, float]) -> str:
        """Feed one window's pair probabilities; returns the official language after it."""
        best = max(self.pair, key=lambda lang: probs.get(lang, 0.0))
        if best == self.current or probs.get(best, 0.0) < self.threshold:
            self._candidate, self._streak = None, 0
            return self.current
        self._streak = self._streak + 1 if best == self._candidate else 1
        self._candidate = best
        if self._streak >= self.patience:
            self.current, self._candidate, self._streak = best, None, 0
        return self.current


def script_language(fragment: str, previous: str) -> str:
    """A short fragment's language by its letters: Vietnamese diacritics or a Vietnamese syllable → vi, plain
    ASCII words → en, anything else keeps ``previous``."""
    ws = words(fragment)
    if any(not w.isascii() and word_language(w) == "vi" for w in ws):
        return "vi"
    if ws and all(w.isascii() for w in ws) and not all(looks_vietnamese(w) for w in ws):
        return "en"
    return previous


def fragment_language(fragment: str, window_language: str, previous: str) -> str:
    """The tag for a committed fragment: by script when it is too short to trust the window's token."""
    if len(fragment.strip()) < SHORT_FRAGMENT:
        return script_language(fragment, previous)
    return window_language
