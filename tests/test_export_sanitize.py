"""Sanitization: tags and markup go, words and diacritics stay, Vietnamese comes out NFC."""
from __future__ import annotations

import unicodedata

import pytest

from dataset_builder.export.sanitize import sanitize


@pytest.mark.parametrize("raw,clean", [
    ("[laughter] mình có một meeting", "mình có một meeting"),
    ("mình có một meeting [Music] với team", "mình có một meeting với team"),
    ("deadline (cười) là thứ sáu nha", "deadline là thứ sáu nha"),
    ("ok (Applause) ♪ la la ♪", "ok la la"),
    ("cái **deadline** này *gấp* lắm", "cái deadline này gấp lắm"),
    ("<i>xin chào</i> các bạn", "xin chào các bạn"),
    ("mình\u00a0có\u200b một  meeting\ufeff", "mình có một meeting"),
    ("đợi chút [inaudible 00:12] nha", "đợi chút nha"),
    ("anh (Nam) nói vậy đó", "anh (Nam) nói vậy đó"),  # parentheses that are speech stay
    ("file_name và snake_case", "file_name và snake_case"),  # underscores inside words are not emphasis
    ("ừ [laughter] , vậy đi", "ừ, vậy đi"),
    ("[music]", ""),
])
def test_sanitize(raw, clean):
    assert sanitize(raw) == clean


def test_nfd_becomes_nfc():
    nfd = unicodedata.normalize("NFD", "tiếng Việt có dấu")
    assert nfd != "tiếng Việt có dấu" and sanitize(nfd) == "tiếng Việt có dấu"
    assert unicodedata.is_normalized("NFC", sanitize(nfd))
