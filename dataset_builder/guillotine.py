"""Which segments of a video are kept once, and over what absolute span: the 300-second guillotine of the Data
Factory paper (*End-to-End Speech Translation for Low-Resource Code-Switching*), made complete.

1. The 300-second guillotine: a segment is kept only from the chunk where its chunk-relative start is
   < 300 s (the last chunk keeps all).
2. The leading edge: a pre-labeler also transcribes the tail of an utterance that began just before a chunk
   (an utterance at 298–303 s is whole in chunk k and appears again at ~0.0 s of chunk k+1, where 0 < 300).
   A segment of chunk k+1 that overlaps one kept from chunk k is not kept again.
3. The tail: chunk k's copy of such an utterance ends at the 305 s file edge; its span is extended to the
   end of the overlapping segment of chunk k+1, so the audio cut from the full-length file keeps its tail.

Annotation (only kept segments are pushed: nobody verifies one twice) and export both use this.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

EPS = 1e-6
#: A segment ending this close to its chunk's end was cut by the file edge.
EDGE_S = 0.25


@dataclass(frozen=True)
class SegmentView:
    """What the rule needs to know of a segment; ``ref`` carries the caller's object through."""

    ref: object
    chunk_index: int
    chunk_start: float  # absolute, seconds
    chunk_end: float
    chunk_is_last: bool
    start: float  # chunk-relative
    end: float

    @property
    def abs_start(self) -> float:
        return self.chunk_start + self.start

    @property
    def abs_end(self) -> float:
        return self.chunk_start + self.end


@dataclass(frozen=True)
class Kept:
    view: SegmentView
    abs_start: float
    abs_end: float  # extended past the chunk edge when the next chunk saw the utterance's tail
    dropped_duplicates: tuple = ()  # views of chunk k+1 that were this utterance again


@dataclass
class Decision:
    kept: list[Kept]
    dropped_overlap_zone: list[SegmentView]  # start >= 300 s in a non-last chunk
    dropped_leading_edge: list[SegmentView]  # the same utterance again at the start of the next chunk


def resolve(segments: Iterable[SegmentView], cutoff: float = 300.0) -> Decision:
    """Apply the guillotine and the leading-edge rule to all segments of one video."""
    by_chunk: dict[int, list[SegmentView]] = {}
    for seg in segments:
        by_chunk.setdefault(seg.chunk_index, []).append(seg)
    kept: list[Kept] = []
    zone: list[SegmentView] = []
    edge: list[SegmentView] = []
    prev_kept: list[Kept] = []
    for index in sorted(by_chunk):
        current: list[Kept] = []
        for seg in sorted(by_chunk[index], key=lambda s: (s.start, s.end)):
            if seg.start >= cutoff - EPS and not seg.chunk_is_last:
                zone.append(seg)
                continue
            twin = next((k for k in prev_kept if seg.abs_start < k.abs_end - EPS and k.abs_start < seg.abs_end - EPS), None)
            if twin is not None:
                edge.append(seg)
                end = twin.abs_end
                if twin.view.abs_end >= twin.view.chunk_end - EDGE_S and seg.abs_end > end:
                    end = seg.abs_end  # chunk k's copy was cut at its file edge: chunk k+1 heard the tail
                new = Kept(twin.view, twin.abs_start, end, twin.dropped_duplicates + (seg,))
                kept[kept.index(twin)] = new
                prev_kept[prev_kept.index(twin)] = new
                continue
            current.append(Kept(seg, seg.abs_start, seg.abs_end))
        kept.extend(current)
        prev_kept = current
    kept.sort(key=lambda k: k.abs_start)
    return Decision(kept, zone, edge)
