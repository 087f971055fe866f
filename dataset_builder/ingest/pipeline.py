"""``vecs ingest``: download → normalize → verify → chunk → commit, one video at a time per worker.

Before writing any file a worker reserves the video's id: a row in state ``ingesting``, unique, naming the
worker. The id — and so every file name under it — is then this worker's alone: two same-named sources get
two ids, and a worker that fails removes only what it wrote. Files are written (atomically) before the
transaction that makes the video ``ready`` with all its chunks, so a run killed at any point resumes by
redoing unfinished videos only (a dead worker's reservation and files are cleared first).
"""
from __future__ import annotations

import datetime as dt
import math
import shutil
import socket
import threading
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from ..foundation import audio
from ..foundation.atomic import pid_alive, remove_stale_temps, temp_prefix
from ..foundation.config import SAMPLE_RATE, Settings, get_settings
from ..store import Chunk, ChunkStatus, Video, VideoStatus, get_or_create_channel, session_scope, utcnow, worker_id
from .captions import find_sidecars, store_captions
from .chunking import ChunkWriter
from ..foundation.urls import strip_secrets
from .fetch import (
    NO_RUNTIME,
    Caps,
    Downloaded,
    LicenseSkipped,
    SourceEntry,
    SourceError,
    canonical_id,
    check_ytdlp,
    download,
    expand_source,
    file_sha256,
    is_creative_commons,
    js_runtime,
    url_hash,
)


@dataclass
class IngestOutcome:
    source: str
    status: str  # "ingested" | "skipped" | "failed"
    message: str = ""
    video_id: str | None = None
    chunks: int = 0
    duration: float = 0.0
    warnings: list[str] = field(default_factory=list)  # yt-dlp's, for the summary


Reporter = Callable[[str, float, float, str], None]  # (key, completed, total, description)


def ingest(
    sources: list[str],
    *,
    channel: str | None = None,
    jobs: int = 1,
    settings: Settings | None = None,
    progress: bool = True,
    console: Console | None = None,
    license_filter: str | None = None,
) -> list[IngestOutcome]:
    """Ingest every source; one failed source never stops the others. A yt-dlp without the fix for
    CVE-2024-38519 stops everything first (:class:`~.fetch.UnsafeToolError`); YouTube sources without a
    JavaScript runtime for yt-dlp fail with one line saying how to install one. ``license_filter="cc"`` keeps
    only Creative Commons videos (the others, and those whose license is unknown, are skipped and counted)."""
    check_ytdlp()
    settings = settings or get_settings()
    settings.ensure_dirs()
    remove_stale_temps(settings.home)
    clear_dead_reservations(settings)

    outcomes: list[IngestOutcome] = []
    entries: list[SourceEntry] = []
    seen: set[str] = set()
    for source in sources:
        if _is_youtube(source) and not js_runtime():  # before anything asks YouTube (or waits on it)
            outcomes.append(IngestOutcome(strip_secrets(source) or source, "failed",
                                          f"{strip_secrets(source) or source}: {NO_RUNTIME}"))
            continue
        try:
            for entry in expand_source(source):
                if entry.refused:
                    outcomes.append(IngestOutcome(entry.name, "failed", entry.refused))
                    continue
                if entry.canonical_url in seen:
                    outcomes.append(IngestOutcome(entry.name, "skipped", "listed twice in this run"))
                    continue
                seen.add(entry.canonical_url)
                entries.append(entry)
        except SourceError as exc:
            outcomes.append(IngestOutcome(source, "failed", str(exc)))

    console = console or Console(stderr=True)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not progress,
        transient=False,
    ) as bar:

        def run(entry: SourceEntry) -> IngestOutcome:
            label = (entry.title or entry.name)[:40]
            task = bar.add_task(label, total=1.0)

            def report(done: float, total: float, stage: str) -> None:
                bar.update(task, completed=done, total=max(total, 1e-9), description=f"{label} · {stage}")

            outcome = ingest_one(entry, channel=channel, settings=settings, report=report,
                                 license_filter=license_filter)
            bar.update(task, description=f"{label} · {outcome.status}", completed=1.0, total=1.0)
            return outcome

        if jobs <= 1:
            outcomes.extend(run(e) for e in entries)
        else:
            with ThreadPoolExecutor(max_workers=jobs) as pool:
                outcomes.extend(pool.map(run, entries))
    return outcomes


def ingest_one(
    entry: SourceEntry,
    *,
    channel: str | None = None,
    settings: Settings | None = None,
    report: Callable[[float, float, str], None] | None = None,
    license_filter: str | None = None,
) -> IngestOutcome:
    settings = settings or get_settings()
    report = report or (lambda done, total, stage: None)
    with session_scope(settings) as s:
        existing = s.scalar(select(Video).where(Video.source_url == entry.canonical_url))
        if existing is not None:
            if existing.status != VideoStatus.READY:
                return IngestOutcome(entry.name, "skipped", f"being ingested by another worker as {existing.video_id}",
                                     existing.video_id)
            return IngestOutcome(entry.name, "skipped", f"already ingested as {existing.video_id}", existing.video_id)

    if entry.local_path is not None and entry.local_path.stat().st_size == 0:
        return IngestOutcome(entry.name, "failed", f"{entry.local_path}: empty file (0 bytes)")
    # Per worker (host, pid and thread): two workers on one source must not delete each other's download.
    scratch = settings.downloads_dir / f"{temp_prefix()}{url_hash(entry.canonical_url)}-{threading.get_ident()}"
    shutil.rmtree(scratch, ignore_errors=True)
    written: list[Path] = []
    reserved: list[str] = []
    try:
        report(0, 1, "download")
        got = download(entry, scratch, Caps(settings.max_source_seconds, settings.max_source_bytes),
                       license_filter=license_filter)
        outcome = _process(entry, got, channel, settings, report, written, reserved)
        outcome.warnings = got.warnings
        return outcome
    except LicenseSkipped as exc:
        return IngestOutcome(entry.name, "skipped", str(exc).removeprefix(f"{entry.name}: "))
    except (SourceError, audio.MediaError) as exc:
        _give_up(settings, written, reserved)
        return IngestOutcome(entry.name, "failed", str(exc))
    except Exception as exc:  # unexpected: still one line, still nothing half-written
        _give_up(settings, written, reserved)
        return IngestOutcome(entry.name, "failed", f"{entry.name}: {type(exc).__name__}: {exc}")
    except BaseException:  # interrupted: the reservation stays for the next run to clear (as after kill -9)
        _remove(written)
        raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _process(
    entry: SourceEntry,
    got: Downloaded,
    channel: str | None,
    settings: Settings,
    report: Callable[[float, float, str], None],
    written: list[Path],
    reserved: list[str],
) -> IngestOutcome:
    """The steps after download: identity and reservation, normalize + chunk, captions, naming, record."""
    name = entry.name
    info = audio.probe(got.path, name=name)
    if info.duration > settings.max_source_seconds:
        raise SourceError(f"{name}: {info.duration / 3600:.2f} h, over the "
                          f"{settings.max_source_seconds / 3600:.2f} h cap per source")
    sha = file_sha256(got.path)
    channel_name, _ = _naming(entry, got, info, channel, "")
    video_id = _reserve(entry, got, settings, name, sha, channel_name)
    if video_id is None:
        return IngestOutcome(entry.name, "skipped", "being ingested by another worker")
    reserved.append(video_id)
    flac, chunk_dir = settings.audio_dir / f"{video_id}.flac", settings.chunks_dir / video_id
    written.extend([flac, chunk_dir])  # the id is this worker's: so are these paths
    frames, spans = _normalize_and_chunk(got.path, flac, chunk_dir, video_id, info, settings, report, name)
    captions = _captions(entry, got, video_id, settings)
    written.extend(settings.home / p for p in captions.values())
    _, title = _naming(entry, got, info, channel, video_id)
    _record(got, settings, video_id, frames, flac, chunk_dir, spans, captions, title)
    return IngestOutcome(entry.name, "ingested", f"{len(spans)} chunks", video_id, len(spans), frames / SAMPLE_RATE)


def _is_youtube(url: str) -> bool:
    host = (urllib.parse.urlsplit(url).hostname or "").lower()
    return host == "youtu.be" or host == "youtube.com" or host.endswith(".youtube.com")


def _candidates(entry: SourceEntry, got: Downloaded):
    """Video ids to try, in order: the source's own id, then forms made unique by the source's URL."""
    base = canonical_id(got.info, entry)
    yield base
    yield f"{base}-{url_hash(entry.canonical_url, 8)}"
    for n in range(2, 50):
        yield f"{base}-{url_hash(f'{entry.canonical_url}#{n}', 8)}"


def _reserve(entry: SourceEntry, got: Downloaded, settings: Settings, name: str, sha: str,
             channel_name: str) -> str | None:
    """Insert the video's row (``ingesting``, no chunks) under an id no other video has, and return the id;
    None when another worker reserved this same source first. The same bytes twice are a duplicate."""
    for video_id in _candidates(entry, got):
        try:
            with session_scope(settings) as s:
                if s.scalar(select(Video.id).where(Video.source_url == entry.canonical_url)) is not None:
                    return None  # the same source, reserved by another worker: not a duplicate of itself
                twin = s.scalar(select(Video).where(Video.sha256 == sha))
                if twin is not None and twin.source_url == entry.canonical_url:
                    return None  # reserved by another worker after the read above (each read sees new commits)
                if twin is not None:
                    raise SourceError(f"{name}: duplicate of video {twin.video_id} ({twin.source_url})")
                if s.scalar(select(Video.id).where(Video.video_id == video_id)) is not None:
                    continue
                ch = get_or_create_channel(s, channel_name, got.info.get("channel_url"))
                s.add(Video(video_id=video_id, channel_id=ch.id, source_url=entry.canonical_url, sha256=sha,
                            extractor=got.extractor, status=VideoStatus.INGESTING, claimed_by=worker_id(),
                            sample_rate=SAMPLE_RATE))
            return video_id
        except IntegrityError:  # a concurrent worker took this id (or this source) first: look again
            continue
    raise SourceError(f"{name}: no free video id (too many sources named {canonical_id(got.info, entry)!r})")


#: A reservation by a worker on another host (whose liveness cannot be checked) is given up after this long.
FOREIGN_RESERVATION_TTL = dt.timedelta(hours=24)


def clear_dead_reservations(settings: Settings) -> int:
    """Reservations of workers that no longer run (killed mid-video) are removed with the files under their
    ids, so the next attempt starts clean. Another host's reservations are left alone until they are a day old."""
    host = socket.gethostname()
    cutoff = utcnow() - FOREIGN_RESERVATION_TTL
    with session_scope(settings) as s:
        rows = s.execute(select(Video.id, Video.video_id, Video.claimed_by, Video.created_at)
                         .where(Video.status == VideoStatus.INGESTING)).all()
    dead = []
    for pk, video_id, who, created in rows:
        w_host, _, pid = (who or "").rpartition(":")
        if (w_host == host and pid.isdigit() and not pid_alive(int(pid))) or (
                w_host != host and created is not None and created < cutoff):
            dead.append((pk, video_id))
    for pk, video_id in dead:
        _remove(_files_of(settings, video_id))
        with session_scope(settings) as s:
            s.execute(delete(Video).where(Video.id == pk, Video.status == VideoStatus.INGESTING))
    return len(dead)


def _files_of(settings: Settings, video_id: str) -> list[Path]:
    return [settings.audio_dir / f"{video_id}.flac", settings.chunks_dir / video_id,
            *settings.captions_dir.glob(f"{video_id}.*")]


def _give_up(settings: Settings, written: list[Path], reserved: list[str]) -> None:
    """A failed video: remove what this worker wrote, then its reservation."""
    _remove(written)
    if reserved:
        with session_scope(settings) as s:
            s.execute(delete(Video).where(Video.video_id.in_(reserved), Video.status == VideoStatus.INGESTING,
                                          Video.claimed_by == worker_id()))


def _normalize_and_chunk(source: Path, flac: Path, chunk_dir: Path, video_id: str, info, settings: Settings,
                         report: Callable[[float, float, str], None], name: str) -> tuple[int, list]:
    """One decode: the full-length FLAC and the exact chunks from the same PCM; truncated or silent media fail."""
    writer = ChunkWriter(SAMPLE_RATE, lambda k: chunk_dir / f"{video_id}_c{k:04d}.flac",
                         settings.chunk_seconds, settings.overlap_seconds)
    expected = max(info.duration, 1e-9) * SAMPLE_RATE
    # The container's duration can lie; what decodes may not pass the cap either.
    cap = (min(info.duration * 1.01 + 60, settings.max_source_seconds)) * SAMPLE_RATE

    def feed(block) -> None:
        if writer.pos + len(block) > cap:
            raise audio.MediaError(f"{name}: decodes to more audio than its container says "
                                   f"({info.duration:.1f} s) or the cap allows")
        writer.feed(block)
        report(min(writer.pos, expected), expected, "normalize + chunk")

    try:
        frames = audio.normalize_stream(source, flac, feed, sample_rate=SAMPLE_RATE, name=name,
                                        timeout=audio.ffmpeg_timeout(info.duration))
        audio.check_duration(frames / SAMPLE_RATE, info.duration, name)
        if writer.peak / 32768 < audio.SILENCE_PEAK:
            db = 20 * math.log10(writer.peak / 32768) if writer.peak > 0 else float("-inf")
            raise audio.MediaError(f"{name}: silent audio (peak {db:.0f} dBFS)")
        return frames, writer.finish()
    except BaseException:
        writer.abort()
        raise


def _captions(entry: SourceEntry, got: Downloaded, video_id: str, settings: Settings) -> dict:
    """The source's captions (YouTube's, or sidecar files next to a local file), stored under ``$VECS_HOME``."""
    found = dict(got.subtitles)
    if entry.local_path is not None:
        for lang, path in find_sidecars(entry.local_path).items():
            found.setdefault(lang, path)
    return store_captions(found, settings.captions_dir, video_id, settings.home)


def _naming(entry: SourceEntry, got: Downloaded, info, channel: str | None, video_id: str) -> tuple[str, str]:
    """Channel and title: what the operator said, else what yt-dlp or the file's tags report."""
    channel_name = (
        channel
        or got.info.get("channel")
        or got.info.get("uploader")
        or info.tags.get("album_artist")
        or info.tags.get("artist")
        or (entry.local_path.parent.name if entry.local_path else None)
        or "unknown"
    )
    title = (
        (got.info.get("title") if got.extractor != "generic" else None)
        or info.tags.get("title")
        or got.info.get("title")
        or video_id
    )
    return channel_name, title


def _record(got: Downloaded, settings: Settings, video_id: str, frames: int, flac: Path, chunk_dir: Path,
            spans: list, captions: dict, title: str) -> None:
    """The reserved row made ``ready`` with all its chunk rows, in one transaction, once its files exist."""
    with session_scope(settings) as s:
        video = s.scalar(select(Video).where(Video.video_id == video_id))
        if video is None or video.status != VideoStatus.INGESTING or video.claimed_by != worker_id():
            raise RuntimeError(f"the reservation of {video_id} is no longer this worker's")
        info = got.info
        s.execute(update(Video).where(Video.id == video.id).values(
            title=title, duration=frames / SAMPLE_RATE, num_samples=frames, sample_rate=SAMPLE_RATE,
            audio_path=str(flac.relative_to(settings.home)), captions=captions, status=VideoStatus.READY,
            claimed_by=None, license=_text(info.get("license"), 300) or (
                "standard YouTube license" if is_creative_commons(info) is False else None),
            uploader=_text(info.get("uploader"), 500), upload_date=_text(info.get("upload_date"), 8),
            channel_ref=_text(info.get("channel_id"), 200),
            channel_url=_text(strip_secrets(str(info.get("channel_url") or "")) or None, 2000)))
        for span in spans:
            s.add(Chunk(video_id=video.id, index=span.index, start_sample=span.start_sample,
                        end_sample=span.end_sample, is_last=span.is_last, status=ChunkStatus.PENDING,
                        audio_path=str((chunk_dir / f"{video_id}_c{span.index:04d}.flac").relative_to(settings.home))))


def _text(value, limit: int) -> str | None:
    """A provenance field as stored: text, bounded (a source's metadata is untrusted)."""
    return str(value)[:limit] if value not in (None, "") else None


def _remove(paths: list[Path]) -> None:
    for path in paths:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def remove_videos(settings: Settings, video_ids: list[str]) -> dict[str, str]:
    """Take recordings out of the factory (a takedown): their rows, chunks, segments and audit trail in one
    transaction, then their audio, chunk and caption files. Returns ``video_id → what happened``."""
    done: dict[str, str] = {}
    files: list[Path] = []
    with session_scope(settings) as s:
        for video_id in video_ids:
            video = s.scalar(select(Video).where(Video.video_id == video_id))
            if video is None:
                done[video_id] = "not in this store"
                continue
            files += [settings.home / video.audio_path] if video.audio_path else []
            files += [settings.chunks_dir / video_id, *(settings.home / p for p in (video.captions or {}).values())]
            s.delete(video)
            done[video_id] = "removed"
    _remove([f for f in files if f.exists()])
    return done
