"""Chunk geometry and exact cuts: chunk k covers samples [300k·sr, (300k+305)·sr) ∩ [0, N).

Cuts are made by sample index on the decoded 16 kHz PCM; stream-copy cuts on AAC/FLAC are off by
24–64 ms, which would misplace every pre-label timestamp by as much.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import soundfile as sf

from ..audio import write_flac


@dataclass(frozen=True)
class ChunkSpan:
    index: int
    start_sample: int
    end_sample: int
    is_last: bool


def chunk_spans(num_samples: int, sample_rate: int, chunk_seconds: int = 300, overlap_seconds: int = 5) -> list[ChunkSpan]:
    """The chunks of a video of ``num_samples``; the last one is shorter.

    A chunk starting in the previous chunk's overlap is still needed while audio extends past that overlap:
    the guillotine drops a segment that starts at >= 300 s from chunk k and only chunk k+1 exports it. A
    chunk that would lie wholly inside its predecessor's overlap (a 305 s video, or AAC padding making a
    300 s video 300.02 s) is not made: the predecessor is then the last chunk, which keeps all its segments.
    """
    if num_samples <= 0:
        return []
    step = chunk_seconds * sample_rate
    length = (chunk_seconds + overlap_seconds) * sample_rate
    overlap = overlap_seconds * sample_rate
    starts = [0] + [s for s in range(step, num_samples, step) if num_samples - s > overlap]
    return [
        ChunkSpan(k, s, min(s + length, num_samples) if k < len(starts) - 1 else num_samples, k == len(starts) - 1)
        for k, s in enumerate(starts)
    ]


def cut_chunks(
    audio_path: Path,
    spans: list[ChunkSpan],
    path_for: Callable[[ChunkSpan], Path],
    on_chunk: Callable[[ChunkSpan], None] | None = None,
) -> Iterator[tuple[ChunkSpan, Path]]:
    """Write each span of ``audio_path`` as its own FLAC, bit-exact (int16 in, int16 out), one at a time."""
    with sf.SoundFile(str(audio_path)) as fh:
        for span in spans:
            fh.seek(span.start_sample)
            data = fh.read(span.end_sample - span.start_sample, dtype="int16")
            if len(data) != span.end_sample - span.start_sample:
                raise ValueError(f"{audio_path}: short read at chunk {span.index}")
            target = path_for(span)
            write_flac(target, data, fh.samplerate)
            if on_chunk is not None:
                on_chunk(span)
            yield span, target
