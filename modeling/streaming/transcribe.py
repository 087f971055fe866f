"""``vecs transcribe``: a file decoded offline (long-form) or streamed chunk by chunk through the online
processor, as the Space does with a microphone — committed segments with language tags, times and latency."""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np

from dataset_builder.foundation.audio import SILENCE_PEAK, MediaError, load_audio, probe
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
    """The clip as 16 kHz mono, or a one-line reason it cannot be transcribed. Probed before it is decoded (what
    is not audio, or lasts longer than the limit, is refused without decoding it: 25 MB of Opus can hold hours),
    and decoded with a cap just past the limit, since a container can lie about its duration."""
    info = probe(path, need_duration=False)
    if info.duration > max_seconds + 0.5:
        raise MediaError(f"{path}: {info.duration:.0f} s is longer than the {max_seconds:.0f} s limit")
    samples = load_audio(path, end=max_seconds + 1.0)
    if len(samples) == 0:
        raise MediaError(f"{path}: no audio")
    if len(samples) / SAMPLE_RATE > max_seconds:
        raise MediaError(f"{path}: {len(samples) / SAMPLE_RATE:.0f} s is longer than the {max_seconds:.0f} s limit")
    if float(np.abs(samples).max()) < SILENCE_PEAK:
        raise MediaError(f"{path}: silence only")
    return samples


def transcribe_offline(samples: np.ndarray, model: str, *, runtime=None) -> list[Segment]:
    from ..whisper.decode import load_transcriber

    out = load_transcriber(model, runtime=runtime).transcribe([samples])[0]
    return [Segment(out.text, out.language, 0.0, round(len(samples) / SAMPLE_RATE, 3))] if out.text else []


def silero_regions():
    """silero-vad's speech regions (its ONNX model, shipped with the package), or None where it is missing."""
    from dataset_builder.foundation.vad import load_vad

    vad = load_vad()
    return vad.speech_regions if vad else None


def streaming_backend(model, *, runtime=None):
    """The backend for ``model``: a repo id or folder (loaded for ``runtime``: transformers or CTranslate2), an
    already loaded transcriber (the Space shares one across visitors), or a ``(model, processor)`` pair."""
    from ..whisper.ct2 import CT2Transcriber
    from ..whisper.decode import WhisperTranscriber, load_transcriber
    from .ct2_backend import CT2Backend
    from .whisper_backend import WhisperBackend

    if isinstance(model, str):
        model = load_transcriber(model, runtime=runtime)
    if isinstance(model, CT2Transcriber):
        return CT2Backend(model.whisper)
    if isinstance(model, WhisperTranscriber):
        return WhisperBackend(model.model, model.processor)
    return WhisperBackend(*model)


def online_processor(model, *, languages=("vi", "en"), vad: bool = True, padding: bool = True, clock=None,
                     runtime=None):
    """The streaming stack on a Whisper model (see :func:`streaming_backend`): bilingual backend, silero VAD,
    universal padding."""
    from .online import OnlineProcessor
    from .padding import universal_padding

    backend = streaming_backend(model, runtime=runtime)
    return OnlineProcessor(backend, languages=tuple(languages), trim_seconds=min(15.0, backend.window - 1.0),
                           vad=silero_regions() if vad else None, padding=universal_padding() if padding else None,
                           clock=clock)


def transcribe_stream(samples: np.ndarray, model: str, *, chunk: float = 0.5, languages=("vi", "en"),
                      realtime: bool = False, vad: bool = True, padding: bool = True, translate: str | None = None,
                      on_update=None, processor=None, runtime=None) -> list[Segment]:
    """Feeds ``samples`` chunk by chunk; with ``translate`` (an MT or E2E model) each commit is translated too."""
    from .translation import translation_stream

    start = time.perf_counter()
    translation = translation_stream(translate) if translate else None
    proc = processor or online_processor(model, languages=languages, vad=vad, padding=padding, runtime=runtime,
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
