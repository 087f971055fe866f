"""One listener's live stream, as the Space's microphone delivers it: chunks at the browser's rate (48 kHz int16
in Chromium) → resampled to 16 kHz → the online processor → the translation stream. Bounded by ``max_seconds``
so a stream always ends, and rendered by whoever displays it (the Space, a test)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dataset_builder.foundation.audio import MediaError, StreamResampler
from dataset_builder.foundation.config import SAMPLE_RATE

from .online import OnlineProcessor, StreamUpdate
from .translation import TranslatedCommit, TranslationStream


@dataclass
class LiveView:
    segments: list[TranslatedCommit] = field(default_factory=list)
    tentative: str = ""
    language: str = ""
    seconds: float = 0.0  # audio received
    ended: str = ""  # why the stream stopped, when it did

    @property
    def latencies(self) -> list[float]:
        return [s.commit.latency for s in self.segments]


#: What a microphone may declare: telephone to studio rates. Anything else is refused before resampling (a
#: declared rate of 100 Hz would make a 48,000-sample chunk 7.7 M output samples).
RATES = (8_000, 192_000)
MAX_CHUNK_SECONDS = 10.0  # Gradio sends ``stream_every`` seconds (0.5 by default)


class LiveSession:
    def __init__(self, processor: OnlineProcessor, translation: TranslationStream | None = None, *,
                 max_seconds: float = 120.0, runners: tuple = ()) -> None:
        """``runners``: the shared models this session decodes with (a Space moves them to its GPU per chunk)."""
        self.proc, self.translation, self.max_seconds = processor, translation, max_seconds
        self.runners = runners
        self.resampler: StreamResampler | None = None
        self.view = LiveView(language=processor.tracker.current)

    def push(self, rate: int, chunk: np.ndarray) -> LiveView:
        """One microphone chunk; past ``max_seconds`` the stream is finished and further chunks ignored."""
        if self.view.ended:
            return self.view
        if not RATES[0] <= rate <= RATES[1]:
            raise MediaError(f"microphone chunk at {rate} Hz: expected {RATES[0]}–{RATES[1]} Hz")
        if len(chunk) > MAX_CHUNK_SECONDS * rate:
            raise MediaError(f"microphone chunk of {len(chunk) / rate:.1f} s: longer than {MAX_CHUNK_SECONDS:.0f} s")
        if self.resampler is None or self.resampler.orig != rate:
            self.resampler = StreamResampler(rate)
        samples = self.resampler(chunk)
        room = int((self.max_seconds - self.view.seconds) * SAMPLE_RATE)
        samples = samples[:max(0, room)]
        self.view.seconds += len(samples) / SAMPLE_RATE
        self.proc.insert_audio_chunk(samples)
        if self.translation is not None:
            self.translation.feed(samples)
        self._apply(self.proc.process_iter())
        if self.view.seconds >= self.max_seconds - 1e-6:
            self.finish(f"the {self.max_seconds:.0f} s limit of a live stream was reached")
        return self.view

    def finish(self, reason: str = "stopped") -> LiveView:
        if not self.view.ended:
            self._apply(self.proc.finish())
            self.view.ended = reason
        return self.view

    def _apply(self, update: StreamUpdate) -> None:
        if self.translation is not None:
            done = self.translation(update.commits)
        else:
            done = [TranslatedCommit(c, "", 0.0) for c in update.commits]
        self.view.segments += done
        self.view.tentative, self.view.language = update.tentative, update.language
