"""Untrusted model output → clean chunk-relative segments, with every repair and drop counted by reason.

Models wrap JSON in code fences or prose, stop mid-array at the token limit, write timestamps as
``1:02.5`` or ``00:01:02,500`` or plain seconds, invert start and end, run past the file, and loop. None of
that may reach the store unrepaired.
"""
from __future__ import annotations

import json
import re
import zlib
from collections import Counter
from dataclasses import dataclass, field

from dataset_builder.foundation.text import clean_text, loop_key

#: Whisper's long-form threshold: text compressing better than this is repetitive.
COMPRESSION_RATIO_MAX = 2.4
#: Compression ratio means little on short text.
COMPRESSION_MIN_CHARS = 120
LOOP_REPEATS = 3

_TS = re.compile(
    r"^\s*(?:(?P<h>\d+):)??(?:(?P<m>\d+):)?(?P<s>\d+(?:[.,]\d*)?)\s*(?:s|sec|seconds)?\s*$", re.IGNORECASE
)
_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)(?:```|$)", re.S)


def parse_timestamp(value) -> float:
    """Seconds from ``MM:SS.mmm`` and the variants models emit: ``M:SS.s``, ``HH:MM:SS.mmm``, ``SS.mmm``,
    a comma for the decimal point, a trailing ``s``, or a bare number."""
    if isinstance(value, bool):
        raise ValueError(f"not a timestamp: {value!r}")
    if isinstance(value, (int, float)):
        if value != value or value < 0:
            raise ValueError(f"not a timestamp: {value!r}")
        return float(value)
    if not isinstance(value, str):
        raise ValueError(f"not a timestamp: {value!r}")
    m = _TS.match(value)
    if not m:
        raise ValueError(f"not a timestamp: {value!r}")
    hours = int(m.group("h") or 0)
    minutes = int(m.group("m") or 0)
    seconds = float(m.group("s").replace(",", "."))
    if m.group("m") is not None and seconds >= 60:
        raise ValueError(f"seconds field over 59 in {value!r}")
    return hours * 3600 + minutes * 60 + seconds


def extract_items(text: str) -> tuple[list, bool]:
    """The list of objects in a response, and whether it was cut short.

    Accepts fenced code, prose around the JSON, an object wrapping the array (``{"segments": [...]}``),
    and a truncated array, from which every complete object is kept.
    """
    text = (text or "").strip()
    fenced = _FENCE.search(text)
    if fenced:
        text = fenced.group(1).strip()
    start_candidates = [i for i in (text.find("["), text.find("{")) if i >= 0]
    if not start_candidates:
        return [], False
    start = min(start_candidates)
    decoder = json.JSONDecoder()
    try:
        value, _ = decoder.raw_decode(text, start)
        if isinstance(value, dict):
            for key in ("segments", "items", "data", "results"):
                if isinstance(value.get(key), list):
                    return value[key], False
            return [value], False
        if isinstance(value, list):
            return value, False
    except json.JSONDecodeError:
        pass
    # Truncated: walk the array object by object, keeping each that parses whole.
    items: list = []
    pos = text.find("[", start)
    pos = pos + 1 if pos >= 0 else start
    while True:
        obj_start = text.find("{", pos)
        if obj_start < 0:
            break
        try:
            value, end = decoder.raw_decode(text, obj_start)
        except json.JSONDecodeError:
            break
        if isinstance(value, dict):
            items.append(value)
        pos = end
    return items, True


@dataclass
class Segment:
    start: float
    end: float
    text: str
    translation: str


@dataclass
class Parsed:
    segments: list[Segment]
    truncated: bool
    repairs: Counter = field(default_factory=Counter)
    drops: Counter = field(default_factory=Counter)
    loop: str | None = None  # why the output looks like a hallucination loop, if it does
    unparseable: bool = False  # text with no JSON in it (a refusal, an apology)

    @property
    def last_end(self) -> float:
        return max((s.end for s in self.segments), default=0.0)


def clean_segments(items: list, duration: float, offset: float = 0.0) -> tuple[list[Segment], Counter, Counter]:
    """Validate, repair and clamp raw items into segments of a chunk of ``duration`` seconds.

    ``offset`` is added to every time (a continuation request covered only the chunk's tail).
    """
    repairs: Counter = Counter()
    drops: Counter = Counter()
    out: list[Segment] = []
    for item in items:
        if not isinstance(item, dict):
            drops["not_an_object"] += 1
            continue
        text = clean_text(str(item.get("text") or ""))
        translation = clean_text(str(item.get("translation") or ""))
        if not text:
            drops["empty_text"] += 1
            continue
        try:
            start = parse_timestamp(item.get("start")) + offset
            end = parse_timestamp(item.get("end")) + offset
        except ValueError:
            drops["bad_timestamp"] += 1
            continue
        if end < start:
            start, end = end, start
            repairs["swapped_start_end"] += 1
        if start >= duration:
            drops["start_beyond_chunk"] += 1
            continue
        if end > duration:
            end = duration
            repairs["end_clamped"] += 1
        if end - start <= 0:
            drops["zero_length"] += 1
            continue
        out.append(Segment(round(start, 3), round(end, 3), text, translation))
    out.sort(key=lambda s: (s.start, s.end))
    return out, repairs, drops


def detect_loop(segments: list[Segment]) -> str | None:
    """Why the output looks like a hallucination loop, or None."""
    run, prev = 0, None
    for seg in segments:
        key = loop_key(seg.text)
        run = run + 1 if key and key == prev else 1
        prev = key
        if run >= LOOP_REPEATS:
            return f"same text {LOOP_REPEATS}+ times in a row: {seg.text[:40]!r}"
    for seg in segments:  # Whisper's test is per ~30 s window; a segment is at most 25 s
        if len(seg.text) >= COMPRESSION_MIN_CHARS:
            data = seg.text.encode("utf-8")
            ratio = len(data) / len(zlib.compress(data))
            if ratio > COMPRESSION_RATIO_MAX:
                return f"compression ratio {ratio:.2f} > {COMPRESSION_RATIO_MAX} in {seg.text[:40]!r}"
    return None


def parse_response(text: str, duration: float, *, finish_reason: str | None = None, offset: float = 0.0) -> Parsed:
    items, cut = extract_items(text)
    truncated = cut or (finish_reason or "").upper() == "MAX_TOKENS"
    segments, repairs, drops = clean_segments(items, duration, offset)
    unparseable = not items and not re.search(r"[\[{]", text or "")
    return Parsed(segments, truncated, repairs, drops, detect_loop(segments), unparseable)
