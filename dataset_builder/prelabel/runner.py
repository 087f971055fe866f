"""``vecs prelabel``: N concurrent workers claim pending chunks, label them, and commit each chunk whole.

A chunk's segments and its new status are one transaction; a crash leaves the chunk claimed by a dead
worker, and the next run takes it back — so nothing is lost or labeled twice. A worker writes a chunk only
while its claim token is still the chunk's (a claim taken over as stale is no longer its own), renews its
claims while it waits, and never replaces a segment that is in Argilla or that a person has answered.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import socket
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import delete, func, or_, select, update

from ..foundation.atomic import pid_alive
from ..foundation.config import Settings
from ..store import (
    Chunk,
    ChunkStatus,
    PrelabelAttempt,
    Segment,
    claim_chunks,
    renew_claims,
    session_scope,
    utcnow,
)
from .parsing import Segment as ParsedSegment

#: A claim not renewed for this long belongs to a dead worker (or one on another host) and may be taken over.
STALE_AFTER = dt.timedelta(hours=1)
#: How often a worker renews the claims it holds (well inside STALE_AFTER).
HEARTBEAT_S = 300.0


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
    claim_token: str | None = None
    held_status: str = ChunkStatus.PRELABELING  # a chunk in a Batch API job is held as "batched"


@dataclass
class Labeled:
    segments: list[ParsedSegment]
    raw_times: list[tuple[float, float]] | None = None  # before refinement, same order
    repairs: Counter = field(default_factory=Counter)
    drops: Counter = field(default_factory=Counter)
    agent: str | None = None  # what produced the labels (a model name), shown to annotators


class ChunkFailed(Exception):
    """The chunk cannot be labeled now; the message is stored as its reason."""


class StopRun(Exception):
    """Nothing can be labeled in this run (no usable API key): the chunk goes back to the queue, the run
    ends, and the message says why."""


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
    #: model → [input, output, thinking] tokens; ``batch_tokens`` the same for Batch API jobs (half price)
    tokens: dict = field(default_factory=lambda: defaultdict(lambda: [0, 0, 0]))
    batch_tokens: dict = field(default_factory=lambda: defaultdict(lambda: [0, 0, 0]))
    repairs: Counter = field(default_factory=Counter)
    drops: Counter = field(default_factory=Counter)
    failures: list = field(default_factory=list)
    #: Why chunks failed, counted (the first words of each reason).
    failure_reasons: Counter = field(default_factory=Counter)
    #: Chunks whose claim was taken over while this run labeled them: their labels were not written.
    claims_lost: int = 0
    #: Chunks not relabeled because people had answered (or been sent) some of their segments.
    kept_answers: int = 0
    #: Why the run stopped early (every key retired…), or None.
    stopped: str | None = None
    started: float = field(default_factory=time.perf_counter)

    def count_tokens(self, model: str, reply, *, batch: bool = False) -> None:
        tokens = (self.batch_tokens if batch else self.tokens)[model]
        tokens[0] += reply.prompt_tokens or 0
        tokens[1] += reply.output_tokens or 0
        tokens[2] += reply.thoughts_tokens or 0


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
            s.execute(update(Chunk).where(Chunk.id.in_(dead)).values(
                status=ChunkStatus.PENDING, claimed_by=None, claim_token=None))
            released = len(dead)
    return released


def claim_job(settings: Settings) -> ChunkJob | None:
    with session_scope(settings) as s:
        claimed = claim_chunks(s, limit=1, stale_after=STALE_AFTER)
        if not claimed:
            return None
        c = claimed[0]
        v = c.video
        return ChunkJob(
            chunk_id=c.id, video_id=v.video_id, index=c.index, audio_path=settings.home / c.audio_path,
            start=c.start, duration=c.duration,
            is_last=c.is_last, captions=dict(v.captions or {}), claim_token=c.claim_token,
        )


def pending_count(settings: Settings) -> int:
    """Chunks a run can claim: pending ones and claims gone stale."""
    cutoff = utcnow() - STALE_AFTER
    with session_scope(settings) as s:
        return s.scalar(select(func.count(Chunk.id)).where(
            (Chunk.status == ChunkStatus.PENDING)
            | ((Chunk.status == ChunkStatus.PRELABELING) & (Chunk.claimed_at < cutoff)))) or 0


def renew(settings: Settings, tokens: list[str]) -> int:
    with session_scope(settings) as s:
        return renew_claims(s, tokens)


def _held(job: ChunkJob):
    """The chunk, only while this job's claim is still the chunk's current one."""
    return (Chunk.id == job.chunk_id) & (Chunk.status == job.held_status) & (Chunk.claim_token == job.claim_token)


#: Segments that must never be replaced by machine labels: sent to annotators, or answered.
_HUMAN = or_(Segment.record_id.is_not(None), Segment.verified, Segment.discarded, Segment.verified_text.is_not(None))


def store_labels(settings: Settings, job: ChunkJob, labeled: Labeled, engine: str) -> str:
    """Replace the chunk's segments and mark it pre-labeled, in one transaction — only while the claim is
    still this job's. Returns ``"stored"``, ``"claim_lost"`` (nothing written) or ``"kept_answers"`` (the
    chunk has segments people have seen or answered: they stay, the new labels are not written)."""
    with session_scope(settings) as s:
        taken = s.execute(update(Chunk).where(_held(job)).values(
            status=ChunkStatus.PRELABELED, error=None, engine=engine, claimed_by=None, claim_token=None)
            .execution_options(synchronize_session=False))
        if (taken.rowcount or 0) != 1:
            return "claim_lost"
        human = s.execute(select(Segment.record_id, Segment.verified, Segment.discarded).where(
            Segment.chunk_id == job.chunk_id, _HUMAN)).all()
        if human:
            sent = [r for r in human if r.record_id is not None]
            status = ChunkStatus.PRELABELED if not sent else (
                ChunkStatus.VERIFIED if all(r.verified or r.discarded for r in sent) else ChunkStatus.PUSHED)
            s.execute(update(Chunk).where(Chunk.id == job.chunk_id).values(status=status))
            return "kept_answers"
        s.execute(delete(Segment).where(Segment.chunk_id == job.chunk_id))
        raw = labeled.raw_times or [(seg.start, seg.end) for seg in labeled.segments]
        for seg, (r0, r1) in zip(labeled.segments, raw):
            s.add(Segment(chunk_id=job.chunk_id, start=seg.start, end=seg.end, raw_start=r0, raw_end=r1,
                          text=seg.text, translation=seg.translation, source=labeled.agent or engine))
    return "stored"


def mark_failed(settings: Settings, job: ChunkJob, reason: str) -> bool:
    """Fail the chunk with its reason, if the claim is still this job's; False when it was taken over."""
    with session_scope(settings) as s:
        result = s.execute(update(Chunk).where(_held(job)).values(
            status=ChunkStatus.FAILED, error=reason[:2000], claimed_by=None, claim_token=None)
            .execution_options(synchronize_session=False))
        return (result.rowcount or 0) == 1


def give_back(settings: Settings, job: ChunkJob) -> None:
    """Return a claimed chunk to the queue untouched (the run is stopping, not the chunk failing)."""
    with session_scope(settings) as s:
        s.execute(update(Chunk).where(_held(job)).values(status=ChunkStatus.PENDING, claimed_by=None,
                                                          claim_token=None).execution_options(synchronize_session=False))


def reason_key(reason: str) -> str:
    """The counted form of a failure reason: its words before the first colon (no ids, no numbers)."""
    head = reason.split(":", 1)[0].strip().lower()
    return " ".join(w for w in head.split() if not any(ch.isdigit() for ch in w))[:60] or "unknown"


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
    held: set[str] = set()

    async def heartbeat() -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_S)
            if held:
                await asyncio.to_thread(renew, settings, list(held))

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
                if job.claim_token:
                    held.add(job.claim_token)
                try:
                    await handle(job)
                finally:
                    held.discard(job.claim_token)
                refresh()

        async def handle(job: ChunkJob) -> None:
            try:
                labeled = await engine.label(job, run)
                outcome = await asyncio.to_thread(store_labels, settings, job, labeled, engine.name)
            except StopRun as exc:
                await asyncio.to_thread(give_back, settings, job)
                run.stopped = run.stopped or str(exc)
                budget[0] = 0  # no worker claims another chunk
                return
            except ChunkFailed as exc:
                await fail(job, str(exc))
                return
            except Exception as exc:  # noqa: BLE001 - anything one chunk raises fails that chunk only
                await fail(job, f"internal error: {type(exc).__name__}: {str(exc)[:300]}")
                return
            if outcome == "claim_lost":
                run.claims_lost += 1
            elif outcome == "kept_answers":
                run.kept_answers += 1
            else:
                run.done += 1
                run.audio_s += job.duration
                run.repairs.update(labeled.repairs)
                run.drops.update(labeled.drops)

        async def fail(job: ChunkJob, reason: str) -> None:
            if not await asyncio.to_thread(mark_failed, settings, job, reason):
                run.claims_lost += 1
                return
            run.failed += 1
            run.failures.append((job.video_id, job.index, reason))
            run.failure_reasons[reason_key(reason)] += 1

        beat = asyncio.create_task(heartbeat())
        try:
            await asyncio.gather(*(worker() for _ in range(max(1, concurrency))))
        finally:
            beat.cancel()
        refresh()
    return run
