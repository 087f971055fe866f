"""espeak-ng rendering of code-switched sentences, music beds, and YouTube-like encoding.

Each language span is spoken by its own voice (a Vietnamese voice for Vietnamese, an English one for
English) and the pieces are butted together, trimmed by amplitude, so the truth times can be tight:
the start/end of an utterance is the first/last sample above the silence threshold.
"""
from __future__ import annotations

import math
import random
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..foundation.atomic import atomic_path
from ..foundation.audio import ffmpeg_timeout
from ..foundation.secrets import child_env
from ..foundation.espeak import SILENCE_THRESHOLD, SR, espeak

VI_VOICES = ("vi", "vi-vn-x-south", "vi-vn-x-central")
EN_VOICES = ("en-us", "en-gb")
FORMATS = {
    "m4a": ["-c:a", "aac", "-aac_coder", "fast", "-b:a", "128k", "-ar", "44100", "-ac", "2", "-movflags", "+faststart"],
    "webm": ["-c:a", "libopus", "-b:a", "96k", "-ar", "48000", "-ac", "2"],
}


@dataclass(frozen=True)
class Host:
    """One speaker: a Vietnamese voice and an English voice sharing pitch and tempo."""

    vi_voice: str
    en_voice: str
    speed: int  # espeak words per minute for Vietnamese
    en_speed: int
    pitch: int  # 0-99
    level: float  # target RMS of voiced samples

    @classmethod
    def pick(cls, rng: random.Random) -> "Host":
        speed = rng.randint(145, 180)
        return cls(
            vi_voice=rng.choice(VI_VOICES),
            en_voice=rng.choice(EN_VOICES),
            speed=speed,
            en_speed=int(speed * rng.uniform(0.95, 1.1)),
            pitch=rng.randint(30, 70),
            level=rng.uniform(0.07, 0.12),
        )

    def varied(self, rng: random.Random) -> "Host":
        """The same host on another day: tempo and pitch drift a little."""
        return Host(self.vi_voice, self.en_voice, max(120, self.speed + rng.randint(-8, 8)),
                    max(120, self.en_speed + rng.randint(-8, 8)), min(99, max(0, self.pitch + rng.randint(-5, 5))),
                    self.level * rng.uniform(0.9, 1.1))


_SPEAKABLE = re.compile(r"\w")
_SEAM = " ,;:"


def split_segments(transcript: str, spans: list[list[int]]) -> list[tuple[str, bool, bool]]:
    """Split into (text, is_english, pause_before) runs; ``pause_before`` marks punctuation at the seam."""
    cuts: list[tuple[int, int, bool]] = []
    pos = 0
    for s, e in spans:
        if s > pos:
            cuts.append((pos, s, False))
        cuts.append((s, e, True))
        pos = e
    if pos < len(transcript):
        cuts.append((pos, len(transcript), False))
    out: list[tuple[str, bool, bool]] = []
    seam = ""  # what lies between the previous spoken run and the next one
    for s, e, en in cuts:
        raw = transcript[s:e]
        core = raw.strip(_SEAM)
        if not _SPEAKABLE.search(core):
            seam += raw
            continue
        seam += raw[: len(raw) - len(raw.lstrip(_SEAM))]
        out.append((core, en, bool(out) and any(c in seam for c in ",;:.!?")))
        seam = raw[len(raw.rstrip(_SEAM)):]
    return out


def render_sentence(transcript: str, spans: list[list[int]], host: Host, rng: random.Random) -> np.ndarray:
    """Speak a code-switched sentence: each language run with its voice, 40-80 ms seams (longer at commas)."""
    pieces: list[np.ndarray] = []
    for text, en, pause in split_segments(transcript, spans):
        if en:
            audio = espeak(text, host.en_voice, host.en_speed, host.pitch)
        else:
            audio = espeak(text, host.vi_voice, host.speed, host.pitch)
        if audio.size == 0:
            continue
        if pieces:
            gap = rng.uniform(0.15, 0.3) if pause else rng.uniform(0.04, 0.08)
            pieces.append(np.zeros(int(gap * SR), dtype=np.float32))
        pieces.append(audio)
    if not pieces:
        return np.zeros(0, dtype=np.float32)
    audio = np.concatenate(pieces)
    voiced = audio[np.abs(audio) > SILENCE_THRESHOLD]
    rms = float(np.sqrt(np.mean(voiced.astype(np.float64) ** 2))) if voiced.size else 0.0
    if rms > 0:
        audio = audio * (host.level / rms)
        peak = float(np.max(np.abs(audio)))
        if peak > 0.9:
            audio *= 0.9 / peak
    return audio.astype(np.float32)


def music(rng: random.Random, seconds: float, sr: int = SR) -> np.ndarray:
    """A few seconds of a chord loop with a bass line and a little noise: an intro jingle / interlude."""
    nrng = np.random.default_rng(rng.getrandbits(63))
    n = int(seconds * sr)
    out = np.zeros(n, dtype=np.float64)
    root = 196.0 * 2 ** (rng.randint(0, 9) / 12)
    progression = rng.choice([(0, 7, 9, 5), (0, 5, 7, 0), (9, 5, 0, 7), (0, 9, 5, 7)])
    chord_len = int(rng.uniform(0.5, 0.9) * sr)
    t = np.arange(chord_len) / sr
    envelope = np.minimum(1.0, t / 0.02) * np.exp(-t * rng.uniform(1.5, 3.0))
    for k, start in enumerate(range(0, n, chord_len)):
        degree = progression[k % len(progression)]
        minor = degree in (9, 4, 2)
        base = root * 2 ** (degree / 12)
        voice = np.zeros(chord_len)
        for interval in (0, 3 if minor else 4, 7):
            f = base * 2 ** (interval / 12)
            voice += np.sin(2 * math.pi * f * t) + 0.3 * np.sin(4 * math.pi * f * t)
        voice += 0.8 * np.sin(2 * math.pi * base / 2 * t)
        seg = (voice * envelope)[: n - start]
        out[start: start + seg.size] += seg
    out += nrng.normal(0, 0.05, n)
    fade = min(n // 2, int(0.05 * sr))
    if fade:
        ramp = np.linspace(0.0, 1.0, fade)
        out[:fade] *= ramp
        out[-fade:] *= ramp[::-1]
    rms = float(np.sqrt(np.mean(out**2))) or 1.0
    return (out * (rng.uniform(0.03, 0.06) / rms)).astype(np.float32)


def encode(audio: np.ndarray, target: str | Path, fmt: str, sr: int = SR, metadata: dict | None = None) -> Path:
    """Encode mono float32 to a YouTube-like file (AAC in MP4 or Opus in WebM), atomically and bit-exactly.

    ``metadata`` (title, artist = channel) is written as container tags, where ingest finds them: yt-dlp's
    generic extractor reports neither title nor channel for a plain file."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {sorted(FORMATS)}, not {fmt!r}")
    target = Path(target)
    with atomic_path(target) as tmp:
        subprocess.run(
            ["ffmpeg", "-v", "error", "-y", "-f", "f32le", "-ar", str(sr), "-ac", "1", "-i", "pipe:0",
             *FORMATS[fmt], "-threads", "1", "-fflags", "+bitexact", "-flags:a", "+bitexact",
             "-map_metadata", "-1",
             *[arg for k, v in (metadata or {}).items() for arg in ("-metadata", f"{k}={v}")], str(tmp)],
            input=np.ascontiguousarray(audio, dtype="<f4").tobytes(), capture_output=True, check=True,
            timeout=ffmpeg_timeout(len(audio) / sr), env=child_env(),
        )
    return target
