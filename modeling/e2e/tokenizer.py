"""The E2E decoder's text: mBART-50's tokenizer (or the offline one) plus the two task tokens the model is
prompted with."""
from __future__ import annotations

from typing import Iterable

from ..text_tokenizer import load_text_tokenizer, train_text_tokenizer

TASKS = {"asr": "<2transcribe>", "st": "<2translate>"}
TARGET_LANG = "vi_VN"


def train_tokenizer(texts: Iterable[str], vocab_size: int = 1000, unit: str = "bpe"):
    return train_text_tokenizer(texts, vocab_size, extra_special=tuple(TASKS.values()), unit=unit)


def load_tokenizer(name_or_path: str):
    return load_text_tokenizer(name_or_path, extra_special=tuple(TASKS.values()))
