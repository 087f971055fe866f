"""Audio clips for the annotators' player: the segment with about a second of context either side.

Served by URL from ``$VECS_HOME/argilla_audio`` (``vecs argilla serve`` runs a static file server for it;
a remote Argilla needs the folder published at ``--audio-base-url``) rather than embedded as data URLs:
measured in ``benchmarks/argilla.py``, a data URL makes each record ~36x larger (11.6 kB vs 323 B), and Argilla stores a
record's fields in its database and sends them with every search page.
"""
from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from pathlib import Path

import soundfile as sf

from dataset_builder.foundation.atomic import atomic_path
from dataset_builder.foundation.audio import load_audio
from dataset_builder.foundation.config import SAMPLE_RATE

CONTEXT_S = 1.0
CLIP_DIR = "argilla_audio"


@dataclass(frozen=True)
class Clip:
    path: Path  # absolute
    relpath: str  # relative to the clip folder (the URL path)
    clip_start: float  # absolute seconds in the video
    duration: float
    seg_start: float  # offsets of the segment inside the clip
    seg_end: float


def make_clip(home: Path, audio_path: Path, video_id: str, record_id: str, abs_start: float, abs_end: float,
              video_duration: float) -> Clip:
    """Cut [start − 1 s, end + 1 s] from the full-length audio (once; reused while the file exists).

    The file is named for its span as well as its record: when a segment's boundaries change, the clip is
    cut again under a new URL (no browser plays the old one from its cache), and the old clip stays for any
    record that was answered on it."""
    c0 = max(0.0, abs_start - CONTEXT_S)
    c1 = min(video_duration, abs_end + CONTEXT_S)
    span = hashlib.sha1(f"{c0:.3f}-{c1:.3f}".encode()).hexdigest()[:8]
    relpath = f"{video_id}/{record_id}-{span}.ogg"
    path = home / CLIP_DIR / relpath
    if not path.exists():
        samples = load_audio(audio_path, start=c0, end=c1)
        with atomic_path(path) as tmp:
            sf.write(str(tmp), samples, SAMPLE_RATE, format="OGG", subtype="VORBIS")
    return Clip(path, relpath, round(c0, 3), round(c1 - c0, 3), round(abs_start - c0, 3), round(abs_end - c0, 3))


def data_url(path: Path) -> str:
    return "data:audio/ogg;base64," + base64.b64encode(path.read_bytes()).decode()


def remove_clips(home: Path, video_id: str) -> bool:
    """A removed recording's annotation clips (a takedown): the clip server stops serving them."""
    import shutil

    folder = Path(home) / CLIP_DIR / video_id
    if not folder.exists():
        return False
    shutil.rmtree(folder)
    return True
