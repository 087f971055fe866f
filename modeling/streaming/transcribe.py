"""``vecs transcribe``: a file decoded offline (long-form) or streamed chunk by chunk through the online
processor, as the Space does with a microphone — committed segments with language tags, times and latency."""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np

from dataset_builder.foundation.audio import SILENCE_PEAK, MediaError, load_audio
from dataset_builder.foundation.config import SAMPLE_RATE

MAX_SECONDS = 3600.0


@dataclass
class Segment:
    text: str
    language: str
    start: float
    end: float
    latency: float | None = None
    translation: str | None = None


def read_clip(path: str, max_seconds: float = MAX_SECONDS) -> np.ndarray:
    """The clip as 16 kHz mono, or a one-line reason it cannot be transcribed."""
    samples = load_audio(path)
    if len(samples) == 0:
        raise MediaError(f"{path}: no audio")
    if len(samples) / SAMPLE_RATE > max_seconds:
        raise MediaError(f"{path}: {len(samples) / SAMPLE_RATE:.0f} s is longer than the {max_seconds:.0f} s limit")
    if float(np.abs(samples).max()) < SILENCE_PEAK:
        raise MediaError(f"{path}: silence only")
    return samples


def transcribe_offline(samples: np.ndarray, model: str) -> list[Segment]:
    from ..whisper.decode import WhisperTranscriber
    from ..whisper.model import load

    out = WhisperTranscriber(*load(model)).transcribe([samples])[0]
    return [Segment(out.text, out.language, 0.0, round(len(samples) / SAMPLE_RATE, 3))] if out.text else []


def silero_regions():
    """silero-vad's speech regions (its ONNX model, shipped with the package), or None where it is missing."""
    from dataset_builder.foundation.vad import load_vad

    vad = load_vad()
    return vad.speech_regions if vad else None


def online_processor(model, *, languages=("vi", "en"), vad: bool = True, padding: bool = True, clock=None):
    """The streaming stack on a Whisper model: bilingual backend, silero VAD, universal padding. ``model`` is a
    repo id or folder, or an already loaded ``(model, processor)`` pair (the Space shares one across visitors)."""
    from ..whisper.model import load
    from .online import OnlineProcessor
    from .padding import universal_padding
    from .whisper_backend import WhisperBackend

    backend = WhisperBackend(*(load(model) if isinstance(model, str) else model))
    return OnlineProcessor(backend, languages=tuple(languages), trim_seconds=min(15.0, backend.window - 1.0),
                           vad=silero_regions() if vad else None, padding=universal_padding() if padding else None,
                           clock=clock)


def transcribe_stream(samples: np.ndarray, model: str, *, chunk: float = 0.5, languages=("vi", "en"),
                      realtime: bool = False, vad: bool = True, padding: bool = True, translate: str | None = None,
                      on_update=None, processor=None) -> list[Segment]:
    """Feeds ``samples`` chunk by chunk; with ``translate`` (an MT or E2E model) each commit is translated too."""
    from .translation import translation_stream

    start = time.perf_counter()
    translation = translation_stream(translate) if translate else None
    proc = processor or online_processor(model, languages=languages, vad=vad, padding=padding,
                                         clock=(lambda: time.perf_counter() - start) if realtime else None)
    step = int(chunk * SAMPLE_RATE)
    segments: list[Segment] = []

    def take(update) -> None:
        done = translation(update.commits) if translation is not None else []
        for i, c in enumerate(update.commits):
            segments.append(Segment(**asdict(c), translation=done[i].translation if done else None))
        if on_update:
            on_update(update)

    for i in range(0, len(samples), step):
        if realtime:  # wait for the audio to "arrive"
            time.sleep(max(0.0, (i + step) / SAMPLE_RATE - (time.perf_counter() - start)))
        proc.insert_audio_chunk(samples[i:i + step])
        if translation is not None:
            translation.feed(samples[i:i + step])
        take(proc.process_iter())
    take(proc.finish())
    return segments
