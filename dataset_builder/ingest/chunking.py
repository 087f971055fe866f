"""Chunk geometry and exact cuts: chunk k covers samples [300k·sr, (300k+305)·sr) ∩ [0, N).

Cuts are made by sample index on the decoded 16 kHz PCM; stream-copy cuts on AAC/FLAC are off by
24–64 ms, which would misplace every pre-label timestamp by as much.
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import soundfile as sf

from ..foundation.atomic import temp_prefix


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


class ChunkWriter:
    """Cuts chunks from the decoded stream as it arrives, exact to the sample, without a second decode.

    Which chunks exist depends on the total length, known only at the end: every chunk the stream enters
    is written to a temp file, and :meth:`finish` keeps those :func:`chunk_spans` names and drops the rest.
    """

    def __init__(self, sample_rate: int, path_for: Callable[[int], Path], chunk_seconds: int = 300,
                 overlap_seconds: int = 5) -> None:
        self.sample_rate = sample_rate
        self.path_for = path_for
        self.chunk_seconds = chunk_seconds
        self.overlap_seconds = overlap_seconds
        self.step = chunk_seconds * sample_rate
        self.length = (chunk_seconds + overlap_seconds) * sample_rate
        self.pos = 0
        self.peak = 0
        self._open: dict[int, tuple[sf.SoundFile, Path]] = {}
        self._done: dict[int, Path] = {}

    def _writer(self, k: int) -> sf.SoundFile:
        if k not in self._open:
            target = self.path_for(k)
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f"{temp_prefix()}{target.stem}.", suffix=".flac",
                                       dir=target.parent)
            os.close(fd)
            fh = sf.SoundFile(tmp, mode="w", samplerate=self.sample_rate, channels=1, format="FLAC", subtype="PCM_16")
            self._open[k] = (fh, Path(tmp))
        return self._open[k][0]

    def feed(self, block: np.ndarray) -> None:
        n = len(block)
        if n == 0:
            return
        self.peak = max(self.peak, int(np.abs(block.astype(np.int32)).max()))
        first_k = max(0, (self.pos - self.length) // self.step + 1)
        last_k = (self.pos + n - 1) // self.step
        for k in range(first_k, last_k + 1):
            lo = max(self.pos, k * self.step)
            hi = min(self.pos + n, k * self.step + self.length)
            if lo < hi:
                self._writer(k).write(block[lo - self.pos: hi - self.pos])
        for k in [k for k in self._open if k * self.step + self.length <= self.pos + n]:
            self._close(k)
        self.pos += n

    def _close(self, k: int) -> None:
        fh, tmp = self._open.pop(k)
        fh.close()
        self._done[k] = tmp

    def finish(self) -> list[ChunkSpan]:
        """Close every file, keep the chunks the total length calls for (renamed into place), drop the rest."""
        for k in list(self._open):
            self._close(k)
        spans = chunk_spans(self.pos, self.sample_rate, self.chunk_seconds, self.overlap_seconds)
        keep = {s.index for s in spans}
        for k, tmp in sorted(self._done.items()):
            if k in keep:
                with open(tmp, "rb") as fh:
                    os.fsync(fh.fileno())
                os.chmod(tmp, 0o644)
                os.replace(tmp, self.path_for(k))
            else:
                tmp.unlink(missing_ok=True)
        self._done.clear()
        return spans

    def abort(self) -> None:
        for k in list(self._open):
            self._close(k)
        for tmp in self._done.values():
            tmp.unlink(missing_ok=True)
        self._done.clear()
