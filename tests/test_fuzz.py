"""Fuzzing with hypothesis: the Gemini reply parser, timestamps, the caption parser, the export's sanitizers and
media headers (truncated, bit-flipped, wrong extension). Never an unhandled exception; every input is either used
or refused with a counted reason; nothing malformed comes out.

Seeded (``derandomize``): the same examples on every run. ``VECS_FUZZ_SCALE`` multiplies the number of examples
(``benchmarks/fuzz.py`` runs it at scale and writes the counts the README quotes); ``OUTCOMES`` counts what
became of the inputs.
"""
from __future__ import annotations

import json
import math
import os
import string
import unicodedata
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dataset_builder.export.sanitize import public_source_url, sanitize
from dataset_builder.foundation.urls import secret_param
from dataset_builder.prelabel.captions import merge_cues, parse_captions, segments_for_chunk
from dataset_builder.prelabel.parsing import MAX_TIMESTAMP_S, parse_response, parse_timestamp

SCALE = float(os.environ.get("VECS_FUZZ_SCALE", "1"))
OUTCOMES: dict[str, Counter] = {}


def _settings(examples: int):
    return settings(max_examples=max(1, int(examples * SCALE)), deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])


def _count(target: str, outcome: str, n: int = 1) -> None:
    OUTCOMES.setdefault(target, Counter())[outcome] += n


# -- the Gemini reply parser -----------------------------------------------------------------------------------

def _mmss(seconds: float) -> str:
    ms = int(round(seconds * 1000))
    return f"{ms // 60000:02d}:{(ms % 60000) // 1000:02d}.{ms % 1000:03d}"


def _hhmmss(seconds: float, sep: str = ".") -> str:
    ms = int(round(seconds * 1000))
    return f"{ms // 3600000:02d}:{(ms % 3600000) // 60000:02d}:{(ms % 60000) // 1000:02d}{sep}{ms % 1000:03d}"


_good_time = st.floats(0, 400).flatmap(lambda t: st.sampled_from([t, round(t, 2), _mmss(t), _hhmmss(t), f"{t:.3f}s"]))
_times = st.one_of(
    _good_time, _good_time,
    st.floats(allow_nan=True, allow_infinity=True), st.integers(min_value=-10**6, max_value=10**400),
    st.from_regex(r"\A[0-9]{1,3}:[0-9]{1,2}(\.[0-9]{1,4})?\Z"), st.from_regex(r"\A\d{1,2}:\d{2}:\d{2}[.,]\d{1,3}\Z"),
    st.text(max_size=12), st.none(), st.booleans(), st.lists(st.integers(), max_size=2),
)
_words = st.lists(st.sampled_from(["mình", "có", "một", "meeting", "với", "team", "deadline", "nha", "okay", "á"]),
                  min_size=1, max_size=8).map(" ".join)
_field = st.one_of(st.text(max_size=40), st.none(), st.integers(), st.lists(st.text(max_size=5), max_size=2),
                   st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=2))
_good_item = st.tuples(st.floats(0, 310), st.floats(0.05, 25), _words, _words).map(
    lambda t: {"start": _mmss(t[0]), "end": _mmss(t[0] + t[1]), "text": t[2], "translation": t[3]})
_item = st.one_of(
    _good_item, _good_item, _good_item,
    st.fixed_dictionaries({"start": _times, "end": _times, "text": _field, "translation": _field}),
    st.fixed_dictionaries({"start": _times, "end": _times, "text": st.text(min_size=1, max_size=60),
                           "translation": st.text(max_size=60)}),
    st.integers(), st.text(max_size=10), st.none(),
)


def _json_text(items, wrap: int, cut: float | None) -> str:
    try:
        text = json.dumps(items, ensure_ascii=False)
    except (ValueError, OverflowError):
        text = str(items)
    if wrap == 1:
        text = f"```json\n{text}\n```"
    elif wrap == 2:
        text = f"Here is the transcription:\n{text}\nHope this helps."
    elif wrap == 3:
        text = json.dumps({"segments": items}, ensure_ascii=False, default=str)
    if cut is not None:
        text = text[: int(len(text) * cut)]
    return text


_reply = st.one_of(
    st.builds(_json_text, st.lists(_good_item, max_size=8), st.integers(0, 3), st.none()),
    st.builds(_json_text, st.lists(_item, max_size=8), st.integers(0, 3), st.none() | st.floats(0, 1)),
    st.text(max_size=300),
    st.builds(lambda n, open_, close: open_ * n + close * n, st.integers(1, 3000), st.sampled_from("[{"),
              st.sampled_from("]}")),
)


@_settings(200)
@given(text=_reply, duration=st.floats(0.5, 305.0),
       finish=st.sampled_from([None, "STOP", "STOP", "STOP", "MAX_TOKENS", "SAFETY", "RECITATION", "OTHER"]),
       offset=st.floats(0.0, 200.0))
def test_reply_parser_never_raises_and_emits_only_valid_segments(text, duration, finish, offset):
    parsed = parse_response(text, duration, finish_reason=finish, offset=offset)
    for seg in parsed.segments:
        assert 0 <= seg.start < seg.end <= duration + 1e-6 and math.isfinite(seg.start)
        assert isinstance(seg.text, str) and seg.text and unicodedata.is_normalized("NFC", seg.text)
        assert isinstance(seg.translation, str)
    assert all(isinstance(v, int) and v > 0 for v in (*parsed.drops.values(), *parsed.repairs.values()))
    if parsed.unusable:
        _count("gemini reply", "unusable: " + parsed.unusable.split(" by ")[0])
    elif parsed.lossy:
        _count("gemini reply", "lost segments: retried")
    else:
        _count("gemini reply", "used" if parsed.segments else "used: no speech")


@_settings(150)
@given(items=st.lists(_item, max_size=10), duration=st.floats(1.0, 305.0))
def test_every_item_of_a_whole_reply_is_kept_or_dropped_for_a_counted_reason(items, duration):
    try:
        text = json.dumps(items, ensure_ascii=False)
    except (ValueError, OverflowError):
        return
    parsed = parse_response(text, duration, finish_reason="STOP")
    assert len(parsed.segments) + sum(parsed.drops.values()) == len(items)
    for reason, n in parsed.drops.items():  # counted per item: every item is kept or dropped for a reason
        _count("reply items", f"dropped: {reason}", n)
    _count("reply items", "kept", len(parsed.segments))


# -- timestamps ------------------------------------------------------------------------------------------------


@_settings(200)
@given(value=_times)
def test_timestamps_are_a_bounded_number_or_a_value_error(value):
    try:
        seconds = parse_timestamp(value)
    except ValueError:
        _count("timestamp", "refused")
        return
    assert isinstance(seconds, float) and 0 <= seconds <= MAX_TIMESTAMP_S
    _count("timestamp", "read")


@_settings(100)
@given(ms=st.integers(0, 10**8))
def test_timestamps_round_trip(ms):
    minutes, rest = divmod(ms, 60000)
    text = f"{minutes:02d}:{rest // 1000:02d}.{rest % 1000:03d}"
    assert parse_timestamp(text) == pytest.approx(ms / 1000, abs=1e-6)
    hours, minutes = divmod(minutes, 60)
    assert parse_timestamp(f"{hours:02d}:{minutes:02d}:{rest // 1000:02d},{rest % 1000:03d}") == pytest.approx(ms / 1000)


# -- captions --------------------------------------------------------------------------------------------------

_stamp = st.one_of(st.from_regex(r"\A\d{2}:\d{2}:\d{2}[.,]\d{3}\Z"), st.from_regex(r"\A\d{1,3}:\d{2}\.\d{3}\Z"),
                   st.text(alphabet=string.digits + ":.,-", max_size=14), st.just("9" * 400 + ":00.000"))
_bad_cue = st.tuples(st.one_of(st.none(), st.integers(0, 99)), _stamp, _stamp, st.text(max_size=40),
                     st.sampled_from(["", " align:start position:0%", " --> x"]))
_good_cue = st.tuples(st.one_of(st.none(), st.integers(0, 99)), st.floats(0, 3600), st.floats(0.1, 8), _words,
                      st.sampled_from([".", ","]), st.sampled_from(["", " align:start position:0%"])).map(
    lambda t: (t[0], _hhmmss(t[1], t[4]), _hhmmss(t[1] + t[2], t[4]), t[3], t[5]))
_cue = st.one_of(_good_cue, _good_cue, _good_cue, _bad_cue)


def _captions(cues, header: bool, newline: str) -> str:
    blocks = []
    for num, a, b, text, setting in cues:
        lines = [] if num is None else [str(num)]
        lines += [f"{a} --> {b}{setting}", *text.splitlines()]
        blocks.append("\n".join(lines))
    return (("WEBVTT\n\n" if header else "") + "\n\n".join(blocks)).replace("\n", newline)


@_settings(200)
@given(text=st.one_of(st.builds(_captions, st.lists(_cue, max_size=10), st.booleans(), st.sampled_from(["\n", "\r\n", "\r"])),
                      st.text(max_size=300)),
       chunk_start=st.floats(0, 3600), duration=st.floats(1, 305))
def test_caption_parser_never_raises_and_keeps_only_sane_cues(text, chunk_start, duration):
    cues = parse_captions(text)
    for cue in cues:
        assert 0 <= cue.start < cue.end <= MAX_TIMESTAMP_S and cue.text and "\n" not in cue.text
    for seg in segments_for_chunk(merge_cues(cues), chunk_start, duration):
        assert 0 <= seg.start < seg.end <= duration + 1e-6
    _count("captions", f"{'cues read' if cues else 'no cue'}")


# -- the export's sanitizers -----------------------------------------------------------------------------------

_markup = st.lists(st.sampled_from(list("[]()<>*_♪♫ \u200b\u00a0") + ["cười", "music", "b", "/", "laughter", "mình",
                                                                        "team", "a\u0301"]), max_size=30).map("".join)


@_settings(200)
@given(text=st.one_of(st.text(max_size=200), _markup, st.none()))
def test_transcript_sanitizer_is_total_clean_and_idempotent(text):
    out = sanitize(text)
    assert isinstance(out, str) and unicodedata.is_normalized("NFC", out) and out == out.strip()
    assert "♪" not in out and "\u200b" not in out
    assert sanitize(out) == out, "sanitizing twice changed the text"
    _count("transcript sanitizer", "changed" if out != (text or "") else "unchanged")


_secret_names = st.sampled_from(["token", "access_token", "sig", "X-Amz-Signature", "api_key", "key", "password",
                                 "X-Goog-Credential", "client_secret"])
_plain_names = st.sampled_from(["v", "list", "t", "lang", "page"])
_value = st.text(alphabet=string.ascii_letters + string.digits + "-_.~%", min_size=1, max_size=12)


@st.composite
def _urls(draw):
    scheme = draw(st.sampled_from(["http", "https", "ftp", "file", "HTTPS", ""]))
    user = draw(st.none() | _value)
    password = draw(st.none() | _value.map(lambda v: "PW" + v))
    host = draw(st.sampled_from(["example.com", "127.0.0.1", "[::1]", "xn--bcher-kva.example", ""]))
    port = draw(st.none() | st.integers(0, 65535).map(str) | st.just("notaport"))
    path = "/" + "/".join(draw(st.lists(_value, max_size=3)))
    secrets = {f"{n}": "SECRET" + v for n, v in draw(st.dictionaries(_secret_names, _value, max_size=3)).items()}
    plain = draw(st.dictionaries(_plain_names, _value, max_size=3))
    params = [f"{k}={v}" for k, v in {**plain, **secrets}.items()]
    draw(st.randoms()).shuffle(params)
    netloc = ""
    if user is not None:
        netloc = user + (f":{password}" if password else "") + "@"
    netloc += host + (f":{port}" if port else "")
    fragment = draw(st.sampled_from(["", "#t=30", "#access_token=SECRETfrag"]))
    url = f"{scheme}://{netloc}{path}" if scheme else path
    url += ("?" + "&".join(params) if params else "") + fragment
    return url, password


@_settings(200)
@given(case=st.one_of(_urls(), st.text(max_size=80).map(lambda t: (t, None))))
def test_source_url_sanitizer_never_publishes_a_secret_or_a_path(case):
    url, password = case
    out = public_source_url(url)
    assert isinstance(out, str)
    assert "SECRET" not in out or "SECRET" in url.split("://", 1)[-1].split("?")[0].split("#")[0]
    if password:
        assert password not in out or password in url.split("@", 1)[-1]
    assert not out.lower().startswith("file:") and ("/" not in out or "://" in out or not url.lower().startswith("file:"))
    for piece in out.partition("?")[2].split("&"):
        if "=" in piece:
            assert not secret_param(piece.split("=", 1)[0])
    _count("source url", "file name" if url.lower().startswith("file:") else "url kept" if out == url else
           "secrets removed" if out else "refused")


# -- media headers ---------------------------------------------------------------------------------------------

MEDIA_FORMATS = {"wav": ["-c:a", "pcm_s16le"], "flac": ["-c:a", "flac"], "m4a": ["-c:a", "aac"],
                 "ogg": ["-c:a", "libvorbis"], "mp3": ["-c:a", "libmp3lame"]}


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, bytes]:
    import subprocess

    d = tmp_path_factory.mktemp("fuzz-media")
    out = {}
    for ext, codec in MEDIA_FORMATS.items():
        path = d / f"a.{ext}"
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "sine=f=440:d=2", "-ar", "16000",
                        *codec, str(path)], check=True)
        out[ext] = path.read_bytes()
    return out


@st.composite
def _mutation(draw):
    fmt = draw(st.sampled_from(sorted(MEDIA_FORMATS)))
    kind = draw(st.sampled_from(["truncate", "flip", "extension", "header", "zeros"]))
    return fmt, kind, draw(st.floats(0, 1)), draw(st.integers(1, 64)), draw(st.sampled_from(sorted(MEDIA_FORMATS)))


def _mutate(data: bytes, kind: str, where: float, flips: int, rng_seed: int) -> bytes:
    import random

    rng = random.Random(rng_seed)
    if kind == "truncate":
        return data[: int(len(data) * where)]
    if kind == "zeros":
        return bytes(len(data))
    buf = bytearray(data)
    span = max(1, min(len(buf), 256)) if kind == "header" else len(buf)
    for _ in range(flips if kind in ("flip", "header") else 0):
        i = rng.randrange(span)
        buf[i] ^= 1 << rng.randrange(8)
    return bytes(buf)


def test_media_headers_truncated_flipped_or_misnamed_fail_with_one_line(media, tmp_path):
    """Every damaged file is either decoded whole or refused with a ``MediaError`` naming it in one line;
    nothing else escapes, no temp file is left, and a refused file writes no output."""
    from dataset_builder.foundation import audio
    from dataset_builder.foundation.atomic import TMP_MARK

    counter = iter(range(10**9))

    @_settings(40)
    @given(case=_mutation())
    def one(case):
        fmt, kind, where, flips, ext = case
        n = next(counter)
        data = _mutate(media[fmt], kind, where, flips, n)
        path = tmp_path / f"in{n}.{ext if kind == 'extension' else fmt}"
        path.write_bytes(data)
        out = tmp_path / f"out{n}.flac"
        try:
            info = audio.probe(path, name=path.name)
            assert info.duration >= 0
            frames = audio.normalize_stream(path, out, lambda block: None, name=path.name,
                                            timeout=audio.ffmpeg_timeout(max(info.duration, 1)))
            audio.check_duration(frames / 16000, info.duration, path.name)
            _count("media", f"{kind}: decoded")
        except audio.MediaError as exc:
            message = str(exc)
            assert "\n" not in message and path.name in message
            _count("media", f"{kind}: refused ({message.split('(')[0].split(': ', 1)[1].strip()[:40]})")
        assert not list(tmp_path.glob(TMP_MARK + "*"))

    one()
