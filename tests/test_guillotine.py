"""The guillotine and the leading-edge rule: every utterance kept exactly once, with its whole span."""
from __future__ import annotations

from dataset_builder.guillotine import SegmentView, resolve


def seg(chunk: int, start: float, end: float, last: bool = False, name: str = "", total: float = 900.0):
    c0 = 300.0 * chunk
    return SegmentView(name or f"{chunk}:{start}", chunk, c0, min(c0 + 305.0, total), last, start, end)


def test_cutoff_edges():
    d = resolve([seg(0, 299.999, 302.0), seg(0, 300.0, 303.0), seg(0, 304.9, 305.0), seg(1, 0.0, 3.0, name="k1"),
                 seg(1, 4.9, 5.0, name="k1b")])
    assert [k.view.ref for k in d.kept] == ["0:299.999", "k1b"]
    assert [v.ref for v in d.dropped_overlap_zone] == ["0:300.0", "0:304.9"]
    assert [v.ref for v in d.dropped_leading_edge] == ["k1"]  # overlaps the segment kept from chunk 0


def test_last_chunk_keeps_everything():
    d = resolve([seg(0, 10, 12, last=True), seg(0, 301, 304, last=True)])
    assert len(d.kept) == 2 and not d.dropped_overlap_zone


def test_straddling_utterance_kept_once_with_its_tail():
    """298–303 s lies whole inside chunk 0 and again (its tail) at 0.0 s of chunk 1."""
    d = resolve([seg(0, 298.0, 303.0, name="whole"), seg(1, 0.0, 3.0, name="tail-copy")])
    assert [(k.view.ref, k.abs_start, k.abs_end) for k in d.kept] == [("whole", 298.0, 303.0)]
    assert [v.ref for v in d.dropped_leading_edge] == ["tail-copy"]


def test_utterance_cut_by_the_file_edge_gets_its_tail_back():
    """298.9–306.1 s: chunk 0 reports 298.9–305.0 (its file ends), chunk 1 reports 0.0–6.1."""
    d = resolve([seg(0, 298.9, 305.0, name="clipped"), seg(1, 0.0, 6.1, name="rest"), seg(1, 7.0, 9.0, name="next")])
    assert [(k.view.ref, k.abs_start, round(k.abs_end, 3)) for k in d.kept] == [("clipped", 298.9, 306.1),
                                                                                ("next", 307.0, 309.0)]


def test_no_two_kept_segments_overlap_in_time():
    import random

    rng = random.Random(0)
    truth, t = [], 0.5
    while t < 890:
        dur = rng.uniform(1.5, 12)
        truth.append((t, t + dur))
        t += dur + rng.uniform(0.3, 1.5)
    views = []
    for a, b in truth:  # report each utterance in every chunk whose window it overlaps, clipped, as a pre-labeler does
        for k in range(3):
            c0, c1 = 300.0 * k, min(300.0 * k + 305.0, 900.0)
            if b > c0 and a < c1:
                views.append(SegmentView((a, b), k, c0, c1, k == 2, max(a, c0) - c0, min(b, c1) - c0))
    d = resolve(views)
    spans = sorted((k.abs_start, k.abs_end) for k in d.kept)
    assert all(x[1] <= y[0] + 1e-9 for x, y in zip(spans, spans[1:]))
    assert sorted({k.view.ref for k in d.kept}) == sorted(truth)  # every utterance exactly once
    for k in d.kept:  # with its whole span
        assert abs(k.abs_start - k.view.ref[0]) < 1e-6 and abs(k.abs_end - k.view.ref[1]) < 1e-6
