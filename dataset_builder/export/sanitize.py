"""Sanitization of what the export publishes.

Transcripts, for training — what a model must not learn to emit: annotation tags ([laughter], [music],
(cười)…), markdown emphasis, HTML tags and music notes are removed; then the one text normalizer (NFC,
invisible characters, spaces). Words are never changed.

Source URLs, for the public: no credentials, tokens or signatures, and no local paths (a ``file://`` source
is published by its file name alone).
"""
from __future__ import annotations

import re
import urllib.parse
from pathlib import PurePosixPath

from dataset_builder.foundation.text import clean_text
from dataset_builder.foundation.urls import strip_secrets

#: Bracketed annotations of any kind: [laughter], [Music], [Âm nhạc], [inaudible 00:12]
_BRACKETS = re.compile(r"\[[^\[\]]{1,40}\]")
#: Parenthesised annotations only when they name a known event (parentheses can be speech too)
_PAREN_TAGS = re.compile(
    r"\((?:\s*(?:cười|tiếng cười|vỗ tay|nhạc|âm nhạc|nhạc nền|im lặng|không rõ|ho|laughs?|laughter|laughing|"
    r"applause|music|inaudible|silence|crosstalk|coughs?|sighs?)\s*)\)",
    re.IGNORECASE,
)
_HTML = re.compile(r"</?[a-zA-Z][^<>]{0,60}>")
_MUSIC = re.compile(r"[♪♫♬]+")
_STRONG = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_EMPHASIS = re.compile(r"(?<![\w*])([*_])(?=\S)([^*_]+?)(?<=\S)\1(?![\w*])")


def sanitize(text: str | None) -> str:
    """The transcript without markup; a fixed point (``sanitize(sanitize(x)) == sanitize(x)``): removing one
    tag can expose another (``[[laughter]]``), so passes repeat until nothing changes."""
    text = text or ""
    for _ in range(8):
        cleaned = _sanitize_once(text)
        if cleaned == text:
            break
        text = cleaned
    return text


def _sanitize_once(text: str) -> str:
    text = _HTML.sub(" ", text)
    text = _BRACKETS.sub(" ", text)
    text = _PAREN_TAGS.sub(" ", text)
    text = _MUSIC.sub(" ", text)
    text = _STRONG.sub(r"\2", text)
    text = _EMPHASIS.sub(r"\2", text)
    text = clean_text(text)
    return re.sub(r"\s+([,.!?;:…])", r"\1", text)


def public_source_url(url: str | None) -> str:
    """What a row may say about where its audio came from: a URL without secrets, or a local file's name."""
    url = (url or "").strip()
    try:
        scheme = urllib.parse.urlsplit(url).scheme.lower()
    except ValueError:
        return ""
    if scheme == "file" or (not scheme and url.startswith(("/", "~", "."))):
        path = urllib.parse.unquote(urllib.parse.urlsplit(url).path if scheme else url)
        name = clean_text(PurePosixPath(path).name)
        return strip_secrets(name) if ("?" in name or "#" in name) else name
    return strip_secrets(url)
