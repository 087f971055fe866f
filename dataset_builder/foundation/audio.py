"""The one audio loader: ffprobe, ffmpeg normalization to 16 kHz mono FLAC, sample-exact reads and writes.

Every stage that touches audio (ingest, pre-label, export, training, the Space) goes through here, so
decoding, resampling and sample-rate conventions are decided once. torchaudio has no CPU build here;
ffmpeg and libsndfile do the work.
"""
from __future__ import annotations

import io
import json
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import soundfile as sf

from .atomic import atomic_path
from .config import SAMPLE_RATE
from .secrets import child_env

#: Decoded audio may differ from the container's duration by codec priming/padding; more is truncation.
DURATION_TOLERANCE_S = 0.25
DURATION_TOLERANCE_FRAC = 0.005
#: Peak below -60 dBFS over the whole file: nothing to transcribe.
SILENCE_PEAK = 10 ** (-60 / 20)
#: Every ffprobe / ffmpeg call has a deadline: a crafted or stalled input must not hang a worker. ffmpeg's is
#: a floor plus a share of the audio's length (decoding runs at hundreds of times real time here).
FFPROBE_TIMEOUT_S = 60.0
FFMPEG_TIMEOUT_FLOOR_S = 120.0
FFMPEG_TIMEOUT_PER_AUDIO_S = 0.1
#: The longest audio a deadline is sized for when the length is not known (12 h, the default source cap).
LONGEST_AUDIO_S = 12 * 3600.0


def ffmpeg_timeout(audio_seconds: float | None = None) -> float:
    """Seconds an ffmpeg call on ``audio_seconds`` of audio may take (the longest audio when unknown)."""
    seconds = LONGEST_AUDIO_S if audio_seconds is None else max(0.0, audio_seconds)
    return FFMPEG_TIMEOUT_FLOOR_S + FFMPEG_TIMEOUT_PER_AUDIO_S * seconds


def _run(cmd: list[str], name: str, timeout: float, **kwargs) -> subprocess.CompletedProcess:
    """``subprocess.run`` with a deadline; past it the tool is killed and the file named in one line."""
    try:
        return subprocess.run(cmd, capture_output=True, timeout=timeout, env=child_env(), **kwargs)
    except subprocess.TimeoutExpired:
        raise MediaError(f"{name}: {cmd[0]} did not finish within {timeout:.0f} s (stalled or crafted input)") from None


class MediaError(ValueError):
    """Media that cannot be used: the message names the reason in one line."""


@dataclass(frozen=True)
class ProbeInfo:
    duration: float
    codec: str | None
    sample_rate: int | None
    channels: int | None
    format_name: str | None
    tags: dict


def _one_line(text: str, limit: int = 300) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    line = lines[-1] if lines else ""
    return line[:limit]


def probe(path: str | Path, name: str | None = None, *, need_duration: bool = True) -> ProbeInfo:
    """Container facts from ffprobe; raises MediaError for anything without a decodable audio stream.

    ``name`` is what error messages call the file (the user's source, not a scratch copy). A stream without a
    duration (a live recording) is refused unless ``need_duration`` is false; its duration is then 0.
    """
    path = Path(path)
    name = name or str(path)
    if not path.exists():
        raise MediaError(f"{name}: no such file")
    if path.stat().st_size == 0:
        raise MediaError(f"{name}: empty file (0 bytes)")
    proc = _run(["ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams", str(path)],
                name, FFPROBE_TIMEOUT_S, text=True, errors="replace")
    if proc.returncode != 0:
        reason = _one_line(proc.stderr).replace(str(path) + ": ", "") or "ffprobe failed"
        raise MediaError(f"{name}: not readable media ({reason})")
    try:
        data = json.loads(proc.stdout or "{}")
        data = data if isinstance(data, dict) else {}
    except ValueError:
        raise MediaError(f"{name}: not readable media (ffprobe's report is not JSON)") from None
    streams = [s for s in data.get("streams", []) if s.get("codec_type") == "audio"]
    if not streams:
        raise MediaError(f"{name}: no audio stream")
    fmt = data.get("format") if isinstance(data.get("format"), dict) else {}
    stream = streams[0]
    duration = fmt.get("duration") or stream.get("duration")
    if duration in (None, "N/A"):
        if need_duration:
            raise MediaError(f"{name}: container reports no duration")
        duration = 0.0
    try:
        seconds = float(duration)
        rate = int(stream["sample_rate"]) if stream.get("sample_rate") else None
    except (TypeError, ValueError):
        raise MediaError(f"{name}: not readable media (duration {str(duration)[:20]!r})") from None
    if not (seconds == seconds and 0 <= seconds < float("inf")):
        raise MediaError(f"{name}: container reports an impossible duration ({duration})")
    tags = {str(k).lower(): v for k, v in (fmt.get("tags") or {}).items()} if isinstance(fmt.get("tags"), dict) else {}
    return ProbeInfo(
        duration=seconds,
        codec=stream.get("codec_name"),
        sample_rate=rate,
        channels=stream.get("channels"),
        format_name=fmt.get("format_name"),
        tags=tags,
    )


def normalize_stream(
    src: str | Path,
    dst: str | Path,
    on_block: Callable[[np.ndarray], None],
    *,
    sample_rate: int = SAMPLE_RATE,
    name: str | None = None,
    block_samples: int = SAMPLE_RATE * 10,
    timeout: float | None = None,
) -> int:
    """Decode anything ffmpeg reads to mono 16-bit FLAC at ``sample_rate`` (atomically), and stream the same
    int16 samples to ``on_block`` as they decode.

    yt-dlp's own post-processor stream-copies AAC and skips inputs already in the target format, so the
    normalization is ours. Any decode error rejects the file: bit-flipped media decodes "successfully"
    with gaps, and a training set must not learn from them.

    One decode serves both the full-length FLAC and whatever the caller builds from the samples (chunks,
    peak level), and ffmpeg's encoding overlaps with the caller's work on a second core. Returns the
    number of samples. ``on_block`` may raise to abort; the FLAC is then not written. Past ``timeout``
    seconds (:func:`ffmpeg_timeout` of the longest audio by default) ffmpeg is killed and the file rejected.
    """
    src, dst = Path(src), Path(dst)
    name = name or str(src)
    timeout = ffmpeg_timeout() if timeout is None else timeout
    graph = f"[0:a:0]aresample={sample_rate},aformat=sample_fmts=s16:channel_layouts=mono,asplit=2[flac][pcm]"
    # stderr goes to a file: a corrupt input can print more errors than a pipe holds, and a full pipe
    # would stall ffmpeg while we wait on its stdout.
    with atomic_path(dst) as tmp, tempfile.TemporaryFile() as errfile:
        proc = subprocess.Popen(
            ["ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-y", "-i", str(src), "-filter_complex", graph,
             "-map", "[flac]", "-c:a", "flac", "-compression_level", "5", str(tmp),
             "-map", "[pcm]", "-f", "s16le", "pipe:1"],
            stdout=subprocess.PIPE, stderr=errfile, env=child_env(),
        )
        assert proc.stdout is not None
        expired = threading.Event()

        def expire() -> None:
            expired.set()
            proc.kill()

        watchdog = threading.Timer(timeout, expire)
        watchdog.daemon = True
        watchdog.start()
        total = 0
        pending = b""
        try:
            while True:
                data = proc.stdout.read(block_samples * 2)
                if not data:
                    break
                data = pending + data
                usable = len(data) - len(data) % 2
                pending = data[usable:]
                block = np.frombuffer(data[:usable], dtype="<i2")
                total += len(block)
                on_block(block)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        finally:
            watchdog.cancel()
        proc.wait()
        if expired.is_set():
            raise MediaError(f"{name}: ffmpeg did not finish within {timeout:.0f} s (stalled or crafted input)")
        errfile.seek(0)
        stderr = errfile.read().decode(errors="replace")
        if proc.returncode != 0:
            raise MediaError(f"{name}: cannot be decoded ({_one_line(stderr) or f'ffmpeg exit {proc.returncode}'})")
        if stderr.strip():
            raise MediaError(f"{name}: corrupt audio data ({_one_line(stderr)})")
    return total


def check_duration(decoded_s: float, expected_s: float, name: str) -> None:
    """Reject truncated media: what decodes must last as long as the container says."""
    tolerance = max(DURATION_TOLERANCE_S, DURATION_TOLERANCE_FRAC * expected_s)
    if decoded_s <= 0:
        raise MediaError(f"{name}: zero-length audio")
    if abs(decoded_s - expected_s) > tolerance:
        raise MediaError(
            f"{name}: truncated or corrupt (decoded {decoded_s:.2f} s, container says {expected_s:.2f} s)"
        )


def load_audio(
    path: str | Path,
    *,
    sample_rate: int = SAMPLE_RATE,
    start: float | None = None,
    end: float | None = None,
    dtype: str = "float32",
) -> np.ndarray:
    """Mono samples at ``sample_rate`` (float32 in [-1, 1], or int16), optionally only [start, end) seconds.

    Files already at the rate (our FLACs) are read sample-exactly by libsndfile without decoding the rest;
    anything else is decoded and resampled by ffmpeg.
    """
    path = Path(path)
    if not path.exists():
        raise MediaError(f"{path}: no such file")
    try:
        info = sf.info(str(path))
    except Exception:
        info = None
    if info is not None and info.samplerate == sample_rate:
        first = int(round((start or 0.0) * sample_rate))
        last = info.frames if end is None else min(info.frames, int(round(end * sample_rate)))
        with sf.SoundFile(str(path)) as fh:
            fh.seek(first)
            data = fh.read(max(0, last - first), dtype=dtype, always_2d=True)
        return data.mean(axis=1).astype(dtype) if data.shape[1] > 1 else data[:, 0]
    cmd = ["ffmpeg", "-nostdin", "-v", "error"]
    if start:
        cmd += ["-ss", f"{start:.6f}"]
    cmd += ["-i", str(path)]
    if end is not None:
        cmd += ["-t", f"{end - (start or 0.0):.6f}"]
    cmd += ["-map", "0:a:0", "-ac", "1", "-ar", str(sample_rate), "-f", "f32le", "-"]
    proc = _run(cmd, str(path), ffmpeg_timeout(None if end is None else end - (start or 0.0)))
    if proc.returncode != 0:
        raise MediaError(f"{path}: cannot be decoded ({_one_line(proc.stderr.decode(errors='replace'))})")
    samples = np.frombuffer(proc.stdout, dtype=np.float32).copy()
    return samples if dtype == "float32" else (np.clip(samples, -1.0, 32767 / 32768) * 32768).astype(dtype)


def decode_audio_bytes(data: bytes, *, sample_rate: int = SAMPLE_RATE, name: str = "audio") -> np.ndarray:
    """Mono float32 samples at ``sample_rate`` from an encoded file's bytes (a dataset row's ``audio``).

    libsndfile reads FLAC/WAV/Ogg in memory; other containers or rates go through ffmpeg on a pipe.
    """
    if not data:
        raise MediaError(f"{name}: empty audio")
    try:
        with sf.SoundFile(io.BytesIO(data)) as fh:
            if fh.samplerate == sample_rate:
                samples = fh.read(dtype="float32", always_2d=True)
                return samples.mean(axis=1) if samples.shape[1] > 1 else samples[:, 0]
    except Exception:
        pass
    # about 1 MB per 30 s at the bit rates people upload
    proc = _run(["ffmpeg", "-nostdin", "-v", "error", "-i", "pipe:0", "-map", "0:a:0", "-ac", "1",
                 "-ar", str(sample_rate), "-f", "f32le", "-"], name, ffmpeg_timeout(len(data) / 1e6 * 30), input=data)
    if proc.returncode != 0 or not proc.stdout:
        raise MediaError(f"{name}: cannot be decoded ({_one_line(proc.stderr.decode(errors='replace')) or 'no audio'})")
    return np.frombuffer(proc.stdout, dtype=np.float32).copy()


class StreamResampler:
    """Resamples a stream chunk by chunk (a browser microphone sends 48 kHz) to mono float32 at ``sample_rate``.

    A Hann-windowed sinc evaluated at each output instant, with the input's tail carried between chunks, so a
    stream cut into chunks resamples to the same samples as the whole signal at once (no clicks at chunk edges).
    """

    def __init__(self, orig_rate: int, sample_rate: int = SAMPLE_RATE, half_width: int = 16) -> None:
        if orig_rate <= 0:
            raise MediaError(f"sample rate {orig_rate}: not a positive rate")
        self.orig, self.rate = int(orig_rate), int(sample_rate)
        self.block = 8192  # output samples computed at once: memory stays bounded whatever a chunk holds
        self.cutoff = min(1.0, self.rate / self.orig)  # of the input Nyquist: low-pass before going down
        self.half = int(np.ceil(half_width / self.cutoff))
        self.history = np.zeros(0, dtype=np.float64)
        self.consumed = 0  # input samples dropped from the front of ``history``
        self.produced = 0  # output samples emitted so far

    @staticmethod
    def to_float(samples: np.ndarray) -> np.ndarray:
        """Mono float in [-1, 1] from int16/int32/float arrays, channels last (how Gradio hands them over)."""
        x = np.asarray(samples)
        if x.ndim == 2:
            x = x.mean(axis=1)
        if np.issubdtype(x.dtype, np.integer):
            return x.astype(np.float64) / float(np.iinfo(x.dtype).max + 1)
        return x.astype(np.float64)

    def __call__(self, samples: np.ndarray, *, final: bool = False) -> np.ndarray:
        self.history = np.concatenate([self.history, self.to_float(samples)])
        end_in = self.consumed + len(self.history)  # absolute index past the last input sample
        # an output sample needs ``half`` input samples to its right, unless the stream has ended
        if final:
            n_out = max(0, int(np.ceil(end_in * self.rate / self.orig)) - self.produced)
        else:
            n_out = max(0, int(np.floor((end_in - self.half) * self.rate / self.orig)) + 1 - self.produced)
        taps = np.arange(-self.half, self.half + 1)
        padded = np.concatenate([self.history, [0.0]])  # index -1 reads this zero: taps outside the input
        out = np.empty(n_out, dtype=np.float32)
        for b in range(0, n_out, self.block):
            times = (self.produced + b + np.arange(min(self.block, n_out - b))) * self.orig / self.rate
            idx = np.floor(times).astype(np.int64)[:, None] + taps[None, :]
            offset = times[:, None] - idx
            weights = self.cutoff * np.sinc(self.cutoff * offset) * (0.5 + 0.5 * np.cos(np.pi * offset / (self.half + 1)))
            local = idx - self.consumed
            local[(local < 0) | (local >= len(self.history))] = -1
            out[b:b + len(times)] = (padded[local] * weights).sum(axis=1)
        self.produced += n_out
        keep_from = max(0, int(np.floor(self.produced * self.orig / self.rate)) - self.half - 1 - self.consumed)
        self.history = self.history[keep_from:]
        self.consumed += keep_from
        return out
