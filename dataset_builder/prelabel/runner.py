"""``vecs prelabel``: N concurrent workers claim pending chunks, label them, and commit each chunk whole.

A chunk's segments and its new status are one transaction; a crash leaves the chunk claimed by a dead
worker, and the next run takes it back — so nothing is lost or labeled twice.
"""
from __future__ import annotations

import asyncio
import socket
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import delete, func, select, update

from ..foundation.atomic import pid_alive
from ..foundation.config import Settings
from ..store import Chunk, ChunkStatus, PrelabelAttempt, Segment, claim_chunks, session_scope, utcnow
from .parsing import Segment as ParsedSegment


@dataclass
class ChunkJob:
    chunk_id: int
    video_id: str
    index: int
    audio_path: Path
    start: float  # absolute start of the chunk in the video, seconds
    duration: float
    is_last: bool
    captions: dict


@dataclass
class Labeled:
    segments: list[ParsedSegment]
    raw_times: list[tuple[float, float]] | None = None  # before refinement, same order
    repairs: Counter = field(default_factory=Counter)
    drops: Counter = field(default_factory=Counter)
    agent: str | None = None  # what produced the labels (a model name), shown to annotators


class ChunkFailed(Exception):
    """The chunk cannot be labeled now; the message is stored as its reason."""


class Engine(Protocol):
    name: str

    async def label(self, job: ChunkJob, run: "Run") -> Labeled: ...


@dataclass
class Run:
    """Counters shown on the progress bar and in the summary."""

    done: int = 0
    failed: int = 0
    requests: int = 0
    rate_limited: int = 0
    server_errors: int = 0
    audio_s: float = 0.0
    tier: str = "-"
    tokens: dict = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    repairs: Counter = field(default_factory=Counter)
    drops: Counter = field(default_factory=Counter)
    failures: list = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)


# -- store access (sync; run in threads) ------------------------------------------------------------------


def _host() -> str:
    return socket.gethostname()


def release_dead_claims(settings: Settings) -> int:
    """Chunks claimed by workers of this host that no longer run go back to pending."""
    released = 0
    with session_scope(settings) as s:
        rows = s.execute(
            select(Chunk.id, Chunk.claimed_by).where(Chunk.status == ChunkStatus.PRELABELING)
        ).all()
        dead = []
        for cid, who in rows:
            host, _, pid = (who or "").rpartition(":")
            if host == _host() and pid.isdigit() and not pid_alive(int(pid)):
                dead.append(cid)
        if dead:
            s.execute(update(Chunk).where(Chunk.id.in_(dead)).values(status=ChunkStatus.PENDING, claimed_by=None))
            released = len(dead)
    return released


def claim_job(settings: Settings) -> ChunkJob | None:
    with session_scope(settings) as s:
        claimed = claim_chunks(s, limit=1)
        if not claimed:
            return None
        c = claimed[0]
        v = c.video
        return ChunkJob(
            chunk_id=c.id, video_id=v.video_id, index=c.index, audio_path=settings.home / c.audio_path,
            start=c.start, duration=c.duration,
            is_last=c.is_last, captions=dict(v.captions or {}),
        )


def pending_count(settings: Settings) -> int:
    with session_scope(settings) as s:
        return s.scalar(select(func.count(Chunk.id)).where(Chunk.status == ChunkStatus.PENDING)) or 0


def store_labels(settings: Settings, job: ChunkJob, labeled: Labeled, engine: str) -> None:
    """Replace the chunk's segments and mark it pre-labeled, in one transaction."""
    with session_scope(settings) as s:
        s.execute(delete(Segment).where(Segment.chunk_id == job.chunk_id))
        raw = labeled.raw_times or [(seg.start, seg.end) for seg in labeled.segments]
        for seg, (r0, r1) in zip(labeled.segments, raw):
            s.add(Segment(chunk_id=job.chunk_id, start=seg.start, end=seg.end, raw_start=r0, raw_end=r1,
                          text=seg.text, translation=seg.translation, source=labeled.agent or engine))
        s.execute(update(Chunk).where(Chunk.id == job.chunk_id).values(
            status=ChunkStatus.PRELABELED, error=None, engine=engine, claimed_by=None))


def mark_failed(settings: Settings, job: ChunkJob, reason: str) -> None:
    with session_scope(settings) as s:
        s.execute(update(Chunk).where(Chunk.id == job.chunk_id).values(
            status=ChunkStatus.FAILED, error=reason[:2000], claimed_by=None))


def record_attempt(settings: Settings, **fields) -> None:
    with session_scope(settings) as s:
        s.add(PrelabelAttempt(started_at=utcnow(), **fields))


def retry_failed(settings: Settings) -> int:
    with session_scope(settings) as s:
        result = s.execute(update(Chunk).where(Chunk.status == ChunkStatus.FAILED).values(
            status=ChunkStatus.PENDING, error=None))
        return result.rowcount or 0


# -- the run ---------------------------------------------------------------------------------------------


async def run_engine(
    engine: Engine,
    settings: Settings,
    *,
    concurrency: int = 4,
    limit: int | None = None,
    progress: bool = True,
    console: Console | None = None,
) -> Run:
    run = Run()
    await asyncio.to_thread(release_dead_claims, settings)
    total = await asyncio.to_thread(pending_count, settings)
    if limit is not None:
        total = min(total, limit)
    budget = [total]
    claim_lock = asyncio.Lock()

    with Progress(
        TextColumn("[bold]pre-label[/bold]"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        TextColumn("{task.description}"), console=console or Console(stderr=True), disable=not progress,
    ) as bar:
        task = bar.add_task("", total=total)

        def refresh() -> None:
            bar.update(task, completed=run.done + run.failed, description=(
                f"done {run.done} · failed {run.failed} · requests {run.requests} · "
                f"429s {run.rate_limited} · tier {run.tier}"))

        async def worker() -> None:
            while True:
                async with claim_lock:
                    if budget[0] <= 0:
                        return
                    job = await asyncio.to_thread(claim_job, settings)
                    if job is None:
                        return
                    budget[0] -= 1
                try:
                    labeled = await engine.label(job, run)
                    await asyncio.to_thread(store_labels, settings, job, labeled, engine.name)
                    run.done += 1
                    run.audio_s += job.duration
                    run.repairs.update(labeled.repairs)
                    run.drops.update(labeled.drops)
                except ChunkFailed as exc:
                    await asyncio.to_thread(mark_failed, settings, job, str(exc))
                    run.failed += 1
                    run.failures.append((job.video_id, job.index, str(exc)))
                refresh()

        await asyncio.gather(*(worker() for _ in range(max(1, concurrency))))
        refresh()
    return run
