"""Captions pre-labeler pieces and timestamp snapping (pure logic, no server)."""
from __future__ import annotations

from pathlib import Path

from dataset_builder.prelabel.captions import Cue, merge_cues, parse_captions, segments_for_chunk
from dataset_builder.prelabel.parsing import Segment
from dataset_builder.prelabel.refine import snap

VTT = """WEBVTT
Kind: captions
Language: vi

00:00:01.000 --> 00:00:03.500 align:start position:0%
mình có một <c>meeting</c> rất quan trọng

00:00:03.600 --> 00:00:05.000
với team

NOTE this is a comment

00:04:58.000 --> 00:05:03.000
deadline là thứ sáu nha.
"""

SRT = """1
00:00:01,000 --> 00:00:02,000
okay

2
00:00:02,100 --> 00:00:04,000
let's get started.
"""


def test_parse_vtt_and_srt():
    cues = parse_captions(VTT)
    assert [(c.start, c.end, c.text) for c in cues] == [
        (1.0, 3.5, "mình có một meeting rất quan trọng"), (3.6, 5.0, "với team"),
        (298.0, 303.0, "deadline là thứ sáu nha."),
    ]
    assert [(c.start, c.text) for c in parse_captions(SRT)] == [(1.0, "okay"), (2.1, "let's get started.")]


def test_youtube_rolling_captions_deduplicated():
    rolling = [Cue(0, 2, "xin chào"), Cue(2, 2.01, "xin chào"), Cue(2, 4, "xin chào các bạn")]
    from dataset_builder.prelabel.captions import _drop_rolling_repeats

    assert [c.text for c in _drop_rolling_repeats(rolling)] == ["xin chào", "các bạn"]


def test_merge_joins_split_sentences_and_short_cues_only():
    merged = merge_cues(parse_captions(VTT))
    assert [c.text for c in merged] == ["mình có một meeting rất quan trọng với team", "deadline là thứ sáu nha."]
    long = [Cue(i * 3.0, i * 3.0 + 2.95, f"phần {i}") for i in range(12)]  # no sentence ends, 50 ms gaps
    assert all(c.end - c.start <= 25.0 for c in merge_cues(long))


def test_max_segment_bounds_merging_for_short_input_models_and_the_gemini_prompt():
    from dataset_builder.prelabel.captions import CaptionsEngine
    from dataset_builder.prelabel.prompts import user_prompt

    long = [Cue(i * 3.0, i * 3.0 + 2.95, f"phần {i}") for i in range(12)]  # one run-on sentence, 36 s
    default, short = merge_cues(long), merge_cues(long, 6.0)
    assert len(default) == 2 and max(c.end - c.start for c in default) > 20
    assert [c.text for c in short] == [f"phần {i} phần {i + 1}" for i in range(0, 12, 2)]
    assert all(c.end - c.start <= 6.0 for c in short)
    wide = [Cue(0.0, 9.0, "một câu dài chín giây"), Cue(9.1, 11.0, "tiếp")]
    assert [c.text for c in merge_cues(wide, 6.0)] == ["một câu dài chín giây", "tiếp"]  # a long cue stays whole
    assert "(2-6 seconds)" in user_prompt(6.0) and "(2-25 seconds)" in user_prompt()
    try:
        CaptionsEngine(Path("."), max_segment_s=1.0)
    except ValueError as exc:
        assert "at least 2 s" in str(exc)
    else:
        raise AssertionError("a bound below the 2 s minimum was accepted")


def test_chunk_windows_report_straddling_utterances_in_both_chunks():
    cues = merge_cues(parse_captions(VTT))
    k0 = segments_for_chunk(cues, 0.0, 305.0)
    k1 = segments_for_chunk(cues, 300.0, 10.0)
    assert [(s.start, s.end) for s in k0] == [(1.0, 5.0), (298.0, 303.0)]
    assert [(s.start, s.end, s.text) for s in k1] == [(0.0, 3.0, "deadline là thứ sáu nha.")]


def test_snap_moves_to_nearest_boundary_within_tolerance_without_crossing():
    regions = [(0.98, 3.4), (3.62, 5.3), (9.0, 12.0)]
    segs = [Segment(1.2, 3.1, "a", ""), Segment(3.3, 5.0, "b", ""), Segment(7.0, 8.0, "c", "")]
    out = snap(segs, regions, tolerance=0.5)
    assert [(s.start, s.end) for s in out] == [(0.98, 3.4), (3.62, 5.3), (7.0, 8.0)]
    # a boundary that would cross the previous segment's end is refused
    out = snap([Segment(1.0, 3.5, "a", ""), Segment(3.5, 5.0, "b", "")], [(0.9, 3.6), (3.3, 5.0)], 0.5)
    assert out[1].start >= out[0].end
