"""The one text normalizer, shared by pre-labeling, export, training and metrics.

Vietnamese arrives in NFD from some sources and with zero-width or non-breaking spaces from subtitle tools;
the same words must compare equal everywhere, so every stage cleans text through these functions.
"""
from __future__ import annotations

import re
import unicodedata

_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"), None)
_SPACES = re.compile(r"[\s\u00a0\u2000-\u200a\u202f\u205f\u3000]+")


def clean_text(text: str | None) -> str:
    """NFC, invisible characters removed, every kind of space collapsed to one: lossless for the words."""
    if not text:
        return ""
    text = unicodedata.normalize("NFC", text).translate(_INVISIBLE)
    return _SPACES.sub(" ", text).strip()


def loop_key(text: str) -> str:
    """A form of ``text`` for spotting repeats: case and punctuation do not make a new sentence."""
    text = clean_text(text).lower()
    return re.sub(r"[^\w\s]", "", text).strip()
