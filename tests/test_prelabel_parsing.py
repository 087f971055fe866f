"""Untrusted pre-label output: every malformed form is repaired or dropped with a counted reason."""
from __future__ import annotations

import json
import unicodedata

import pytest

from dataset_builder.prelabel.parsing import extract_items, parse_response, parse_timestamp


@pytest.mark.parametrize(
    "value,seconds",
    [
        ("01:02.500", 62.5), ("1:02.5", 62.5), ("00:00:07.250", 7.25), ("1:00:00.000", 3600.0),
        ("12.75", 12.75), ("12,75", 12.75), ("03:04,5", 184.5), ("4.5s", 4.5), (4, 4.0), (4.25, 4.25),
        ("0:05", 5.0), ("  00:10.000 ", 10.0),
    ],
)
def test_timestamp_variants(value, seconds):
    assert parse_timestamp(value) == pytest.approx(seconds)


@pytest.mark.parametrize("value", ["", "abc", "01:75.0", "-3", None, True, "1:2:3:4", float("nan")])
def test_bad_timestamps_raise(value):
    with pytest.raises(ValueError):
        parse_timestamp(value)


SEGS = [
    {"start": "00:01.000", "end": "00:03.500", "text": "mình có một meeting", "translation": "mình có một cuộc họp"},
    {"start": "00:04.000", "end": "00:06.000", "text": "với team nha", "translation": "với nhóm nha"},
]


@pytest.mark.parametrize(
    "wrap",
    [
        lambda s: s,
        lambda s: f"```json\n{s}\n```",
        lambda s: f"Here is the transcription:\n```\n{s}\n```\nLet me know!",
        lambda s: f"Sure! {s} Hope this helps.",
        lambda s: json.dumps({"segments": json.loads(s)}),
    ],
)
def test_wrappers_are_stripped(wrap):
    items, truncated = extract_items(wrap(json.dumps(SEGS, ensure_ascii=False)))
    assert items == SEGS and not truncated


def test_truncated_array_keeps_complete_objects():
    full = json.dumps(SEGS + [{"start": "00:07.000", "end": "00:09.000", "text": "deadline", "translation": "hạn"}],
                      ensure_ascii=False)
    cut = full[: full.rindex('"text"') + 12]  # mid third object
    parsed = parse_response(cut, 305.0, finish_reason="MAX_TOKENS")
    assert parsed.truncated
    assert [s.text for s in parsed.segments] == ["mình có một meeting", "với team nha"]
    assert parsed.last_end == 6.0


def test_repairs_and_drops_are_counted():
    items = [
        {"start": "00:05.000", "end": "00:02.000", "text": "ngược", "translation": "ngược"},  # end < start
        {"start": "04:50.000", "end": "05:20.000", "text": "runs past", "translation": "x"},   # clamp end
        {"start": "05:30.000", "end": "05:33.000", "text": "beyond", "translation": "x"},      # start beyond
        {"start": "00:10.000", "end": "00:11.000", "text": "   ", "translation": "x"},         # empty
        {"start": "soon", "end": "00:12.000", "text": "bad time", "translation": "x"},         # bad timestamp
        {"start": "00:12.000", "end": "00:12.000", "text": "zero", "translation": "x"},        # zero length
        "not an object",
    ]
    parsed = parse_response(json.dumps(items), 305.0)
    assert [(s.start, s.end, s.text) for s in parsed.segments] == [(2.0, 5.0, "ngược"), (290.0, 305.0, "runs past")]
    assert parsed.repairs == {"swapped_start_end": 1, "end_clamped": 1}
    assert parsed.drops == {"start_beyond_chunk": 1, "empty_text": 1, "bad_timestamp": 1, "zero_length": 1,
                            "not_an_object": 1}


def test_text_is_nfc_and_offset_applies():
    nfd = unicodedata.normalize("NFD", "mình có một meeting\u200b  quan trọng")
    parsed = parse_response(json.dumps([{"start": 1, "end": 2, "text": nfd, "translation": nfd}]), 305.0, offset=100.0)
    [seg] = parsed.segments
    assert seg.text == "mình có một meeting quan trọng" and unicodedata.is_normalized("NFC", seg.text)
    assert (seg.start, seg.end) == (101.0, 102.0)


def test_loops_detected():
    looped = [{"start": i, "end": i + 1, "text": "Cảm ơn các bạn đã xem!", "translation": "x"} for i in range(3)]
    assert "3+ times" in parse_response(json.dumps(looped), 305.0).loop
    varied = [{"start": i, "end": i + 1, "text": t, "translation": t}
              for i, t in enumerate(["một", "hai", "một"])]
    assert parse_response(json.dumps(varied), 305.0).loop is None
    long_loop = [{"start": 0, "end": 30, "text": "okay okay okay okay " * 40, "translation": "x"}]
    assert "compression ratio" in parse_response(json.dumps(long_loop), 305.0).loop


def test_garbage_gives_no_segments():
    parsed = parse_response("I cannot help with that.", 305.0)
    assert parsed.segments == [] and parsed.unparseable and not parsed.truncated
    assert not parse_response("[]", 305.0).unparseable  # an honest "no speech here"


def test_long_natural_transcript_is_not_a_loop():
    """A 5-minute chunk of varied speech compresses well as a whole; that alone is no loop."""
    import random

    from dataset_builder.synth.lexicon import make_sentence

    rng = random.Random(0)
    items = []
    for i in range(60):
        text = make_sentence(rng)[0]
        items.append({"start": i * 5, "end": i * 5 + 4, "text": text, "translation": text})
    assert parse_response(json.dumps(items, ensure_ascii=False), 305.0).loop is None


# -- hostile replies: never an exception, always a counted reason -----------------------------------------


def test_huge_numbers_are_bad_timestamps_not_crashes():
    huge = int("9" * 400)
    for value in (huge, float("inf"), "9" * 400, "9" * 400 + ":00", "1:" + "9" * 30 + ".5", 1e300):
        with pytest.raises(ValueError):
            parse_timestamp(value)
    items = [dict(SEGS[0], start=huge), dict(SEGS[1])]
    parsed = parse_response(json.dumps(items), 305.0)
    assert [s.text for s in parsed.segments] == ["với team nha"]
    assert parsed.drops == {"bad_timestamp": 1} and parsed.lossy == 1


def test_wrong_types_are_dropped_and_count_as_lost():
    items = [dict(SEGS[0], text={"vi": "mình"}), dict(SEGS[1], translation=["với nhóm"]), dict(SEGS[0], start=[1])]
    parsed = parse_response(json.dumps(items), 305.0)
    assert parsed.segments == [] and parsed.lossy == 3
    assert parsed.drops == {"wrong_type": 2, "bad_timestamp": 1}
    assert all("{" not in s.text for s in parse_response(json.dumps([dict(SEGS[0], text=7)]), 305.0).segments)


@pytest.mark.parametrize("text", ["[" * 60000 + "]" * 60000, '{"segments": ' * 60000, "{" * 60000])
def test_deep_nesting_is_unusable_not_a_crash(text):
    parsed = parse_response(text, 305.0, finish_reason="STOP")
    assert parsed.segments == [] and parsed.unusable


@pytest.mark.parametrize("junk", ["<html><body>502 Bad Gateway</body></html> {oops", '[{"start": "00:01", oh no',
                                  "{" + "x" * 500])
def test_broken_json_that_stopped_is_unusable_not_truncated(junk):
    parsed = parse_response(junk, 305.0, finish_reason="STOP")
    assert parsed.unusable and not parsed.truncated


def test_a_reply_stopped_by_safety_is_unusable_even_when_it_parses():
    assert parse_response("[]", 305.0, finish_reason="SAFETY").unusable
    assert not parse_response("[]", 305.0, finish_reason="STOP").unusable
