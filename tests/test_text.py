"""The one text normalizer and word-level language tagging (English ratio, code-mixing index)."""
from __future__ import annotations

import unicodedata

import pytest

from dataset_builder.foundation.text import clean_text, cmi, en_ratio, looks_vietnamese, word_language


def test_clean_text_nfc_invisible_and_spaces():
    raw = unicodedata.normalize("NFD", "mình\u00a0có\u200b  một   meeting\ufeff ")
    assert clean_text(raw) == "mình có một meeting"
    assert unicodedata.is_normalized("NFC", clean_text(raw))


@pytest.mark.parametrize("word,lang", [
    ("mình", "vi"), ("nghiêng", "vi"), ("đẹp", "vi"), ("quá", "vi"), ("con", "vi"), ("ban", "vi"),
    ("meeting", "en"), ("deadline", "en"), ("team", "en"), ("hot", "en"), ("chill", "en"), ("Shopee", "en"),
])
def test_word_language(word, lang):
    assert word_language(word) == lang


def test_vietnamese_spelling_rules():
    assert looks_vietnamese("việc") and looks_vietnamese("sách")
    assert not looks_vietnamese("viec")  # a -c final needs a sharp or heavy tone
    assert not looks_vietnamese("mìnhh") and not looks_vietnamese("àá")


def test_en_ratio_and_cmi():
    assert en_ratio("mình có một meeting rất quan trọng với team") == pytest.approx(2 / 9)
    assert cmi("mình có một meeting rất quan trọng với team") == pytest.approx(100 * 2 / 9)
    assert cmi("hôm nay trời đẹp quá") == 0.0 and cmi("okay let's get started") == 0.0
    assert en_ratio("") == 0.0 and cmi("123 !!") == 0.0
