"""Untrusted model output → clean chunk-relative segments, with every repair and drop counted by reason.

Models wrap JSON in code fences or prose, stop mid-array at the token limit, write timestamps as
``1:02.5`` or ``00:01:02,500`` or plain seconds, invert start and end, run past the file, and loop. None of
that may reach the store unrepaired. A hostile or broken reply (numbers of hundreds of digits, fields of the
wrong type, nesting deep enough to exhaust the stack, junk that stopped normally) never raises: it is marked
``unusable``, or its lost segments are counted in ``lossy``, and the caller asks again.
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
#: No timestamp is later than this (about 11.6 days): anything larger is garbage, not a time.
MAX_TIMESTAMP_S = 1e6
#: Drops that lose an utterance the model did hear (the reply is retried rather than accepted without it).
LOSSY_DROPS = ("bad_timestamp", "not_an_object", "wrong_type")
#: Finish reasons of a complete reply; MAX_TOKENS is a cut one, continued; any other (SAFETY, RECITATION,
#: OTHER…) may have withheld segments, so the reply is not trusted.
COMPLETE_FINISH = (None, "", "STOP", "FINISH_REASON_UNSPECIFIED")

_TS = re.compile(  # ASCII digits only: int() would also read Devanagari or Khmer ones
    r"^\s*(?:(?P<h>[0-9]{1,6}):)??(?:(?P<m>[0-9]{1,7}):)?(?P<s>[0-9]{1,9}(?:[.,][0-9]{0,9})?)\s*(?:s|sec|seconds)?\s*$",
    re.IGNORECASE,
)
_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)(?:```|$)", re.S)


def parse_timestamp(value) -> float:
    """Seconds from ``MM:SS.mmm`` and the variants models emit: ``M:SS.s``, ``HH:MM:SS.mmm``, ``SS.mmm``,
    a comma for the decimal point, a trailing ``s``, or a bare number."""
    if isinstance(value, bool):
        raise ValueError(f"not a timestamp: {_show(value)}")
    if isinstance(value, (int, float)):
        try:
            seconds = float(value)
        except OverflowError:  # an int of hundreds of digits
            raise ValueError(f"not a timestamp: {_show(value)}") from None
        return _bounded(seconds, value)
    if not isinstance(value, str):
        raise ValueError(f"not a timestamp: {_show(value)}")
    m = _TS.match(value)
    if not m:
        raise ValueError(f"not a timestamp: {_show(value)}")
    hours = int(m.group("h") or 0)
    minutes = int(m.group("m") or 0)
    seconds = float(m.group("s").replace(",", "."))
    if m.group("m") is not None and seconds >= 60:
        raise ValueError(f"seconds field over 59 in {_show(value)}")
    return _bounded(hours * 3600 + minutes * 60 + seconds, value)


def _bounded(seconds: float, value) -> float:
    if not (0 <= seconds <= MAX_TIMESTAMP_S):  # also NaN and infinities
        raise ValueError(f"not a timestamp: {_show(value)}")
    return float(seconds)


def _show(value) -> str:
    """A bounded repr for messages (a 400-digit number must not make a 400-character error)."""
    text = repr(value) if not isinstance(value, int) or value.bit_length() < 200 else f"<{value.bit_length()}-bit int>"
    return text if len(text) <= 60 else text[:57] + "..."


def extract_items(text: str) -> tuple[list, bool]:
    """The list of objects in a response, and whether it was cut short.

    Accepts fenced code, prose around the JSON, an object wrapping the array (``{"segments": [...]}``),
    and a truncated array, from which every complete object is kept.
    """
    items, state = _extract(text)
    return items, state in ("cut", "broken")


def _decode(decoder: json.JSONDecoder, text: str, pos: int):
    """``raw_decode`` that reports any failure as ValueError: a number over the digit limit and nesting that
    exhausts the stack raise ValueError / RecursionError, not JSONDecodeError."""
    try:
        return decoder.raw_decode(text, pos)
    except RecursionError:
        raise ValueError("nesting too deep") from None


def _extract(text: str) -> tuple[list, str]:
    """(items, state): ``ok`` (whole JSON), ``cut`` (complete objects, then the text ends mid-object),
    ``broken`` (complete objects, then something that is not JSON), ``none`` (no JSON at all)."""
    text = (text or "").strip()
    fenced = _FENCE.search(text)
    if fenced:
        text = fenced.group(1).strip()
    start_candidates = [i for i in (text.find("["), text.find("{")) if i >= 0]
    if not start_candidates:
        return [], "none"
    start = min(start_candidates)
    decoder = json.JSONDecoder()
    try:
        value, _ = _decode(decoder, text, start)
        if isinstance(value, dict):
            for key in ("segments", "items", "data", "results"):
                if isinstance(value.get(key), list):
                    return value[key], "ok"
            return [value], "ok"
        if isinstance(value, list):
            return value, "ok"
    except ValueError:
        pass
    # Cut or broken: walk the array object by object, keeping each that parses whole.
    items: list = []
    pos = text.find("[", start)
    pos = pos + 1 if pos >= 0 else start
    while True:
        obj_start = text.find("{", pos)
        if obj_start < 0:
            break
        try:
            value, end = _decode(decoder, text, obj_start)
        except ValueError:
            # What follows the last whole object: a prefix of one more object means a cut reply.
            rest = text[obj_start:]
            return items, "cut" if _could_continue(rest) else "broken"
        if isinstance(value, dict):
            items.append(value)
        pos = end
    return items, "cut" if items else "broken"


def _could_continue(rest: str) -> bool:
    """Whether ``rest`` (from the object that failed to parse) can be one more object cut short, as a token
    limit leaves it: it never closes. A closed object that still fails is broken, not cut."""
    return "}" not in rest


def to_ms(start: float, end: float, duration: float) -> tuple[float, float]:
    """Times rounded to the millisecond without leaving the chunk (rounding 1.4375 up would end past it)."""
    return round(start, 3), min(round(end, 3), duration)


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
    unusable: str | None = None  # why the reply cannot be used at all (no JSON, broken JSON, withheld…)

    @property
    def last_end(self) -> float:
        return max((s.end for s in self.segments), default=0.0)

    @property
    def lossy(self) -> int:
        """Items dropped that were utterances the model heard (bad times, wrong types): the reply lost them."""
        return sum(self.drops.get(k, 0) for k in LOSSY_DROPS)


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
        raw_text, raw_translation = item.get("text"), item.get("translation")
        if not isinstance(raw_text, (str, type(None))) or not isinstance(raw_translation, (str, type(None))):
            drops["wrong_type"] += 1
            continue
        text = clean_text(raw_text or "")
        translation = clean_text(raw_translation or "")
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
        start, end = to_ms(start, end, duration)
        if end - start <= 0:
            drops["zero_length"] += 1
            continue
        out.append(Segment(start, end, text, translation))
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
    """Segments of one reply. A reply cut at the token limit (``MAX_TOKENS``) is ``truncated`` (its complete
    objects are kept and the rest is asked for again); broken JSON that was not cut, a reply with no JSON, and
    a reply withheld for safety or recitation are ``unusable`` — never "truncated", never an empty success."""
    finish = (finish_reason or "").upper()
    items, state = _extract(text)
    segments, repairs, drops = clean_segments(items, duration, offset)
    unparseable = state == "none"
    truncated = finish == "MAX_TOKENS" or (state == "cut" and finish in ("", "MAX_TOKENS"))
    unusable = None
    if unparseable:
        unusable = "no JSON in the reply"
    elif finish not in COMPLETE_FINISH and finish != "MAX_TOKENS":
        unusable = f"reply stopped by {finish}"
    elif state in ("cut", "broken") and not truncated:
        unusable = "broken JSON" if items or state == "broken" else "truncated JSON"
    elif truncated and not items:
        unusable = "cut before its first segment"
    return Parsed(segments, truncated, repairs, drops, detect_loop(segments), unparseable, unusable)
