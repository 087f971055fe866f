"""Claims: a worker writes only chunks it still holds, a live worker keeps its claim, and machine labels never
replace a segment a person has answered."""
from __future__ import annotations

import asyncio
import datetime as dt
import threading

from sqlalchemy import select, update

from conftest import wait_for
from dataset_builder.prelabel import runner
from dataset_builder.prelabel.parsing import Segment as Parsed
from dataset_builder.prelabel.runner import Labeled, run_engine
from dataset_builder.store import Chunk, ChunkStatus, Segment, Video, get_or_create_channel, session_scope


def _one_chunk(settings) -> int:
    with session_scope(settings) as s:
        ch = get_or_create_channel(s, "test")
        video = Video(video_id="v0", channel_id=ch.id, source_url="file:///v0.wav", duration=10.0)
        s.add(video)
        s.flush()
        chunks = [Chunk(video_id=video.id, index=k, start_sample=k * 160000, end_sample=(k + 1) * 160000,
                        is_last=k == 1, audio_path=f"chunks/v0/v0_c{k:04d}.flac") for k in range(2)]
        s.add_all(chunks)
        s.flush()
        return chunks[0].id


class Gated:
    """A pre-labeler that holds its chunk until told to answer (a worker waiting out a daily-quota cooldown)."""

    name = "gated"

    def __init__(self, text: str) -> None:
        self.text = text
        self.gate = threading.Event()

    async def label(self, job, run) -> Labeled:
        await asyncio.to_thread(self.gate.wait, 60)
        return Labeled([Parsed(1.0, 2.0, self.text, "")], agent="gated-model")


class Instant:
    name = "instant"

    async def label(self, job, run) -> Labeled:
        return Labeled([Parsed(1.0, 2.0, "first machine label", "")], agent="instant-model")


def _status(settings, cid: int) -> str:
    with session_scope(settings) as s:
        return s.get(Chunk, cid).status


def test_late_write_of_a_taken_over_claim_does_not_delete_verified_work(settings):
    cid = _one_chunk(settings)
    slow = Gated("late machine label")
    result: dict = {}
    thread = threading.Thread(target=lambda: result.setdefault("run", asyncio.run(
        run_engine(slow, settings, concurrency=1, limit=1, progress=False))))
    thread.start()
    try:
        assert wait_for(lambda: _status(settings, cid) == ChunkStatus.PRELABELING, timeout=30)
        with session_scope(settings) as s:  # two hours pass: the claim looks stale to anyone else
            s.execute(update(Chunk).values(claimed_at=dt.datetime(2000, 1, 1)))
        fast = asyncio.run(run_engine(Instant(), settings, concurrency=1, limit=1, progress=False))
        assert fast.done == 1
        with session_scope(settings) as s:  # pushed, answered by a person, pulled
            seg = s.scalars(select(Segment).where(Segment.chunk_id == cid)).one()
            seg.record_id, seg.pushed_hash = "v0-c0000-0001000", "abc"
            seg.verified, seg.verified_text, seg.annotator = True, "câu người đã sửa", "lan"
            s.get(Chunk, cid).status = ChunkStatus.VERIFIED
    finally:
        slow.gate.set()
        thread.join(timeout=60)
    late = result["run"]
    assert late.done == 0 and late.claims_lost == 1
    with session_scope(settings) as s:
        segs = s.scalars(select(Segment).where(Segment.chunk_id == cid)).all()
        assert [(x.text, x.verified_text, x.verified) for x in segs] == [
            ("first machine label", "câu người đã sửa", True)]
        assert s.get(Chunk, cid).status == ChunkStatus.VERIFIED


def test_a_late_failure_does_not_mark_someone_elses_chunk_failed(settings):
    cid = _one_chunk(settings)

    class FailsLate(Gated):
        async def label(self, job, run):
            await asyncio.to_thread(self.gate.wait, 60)
            raise runner.ChunkFailed("daily quota exhausted on every key")

    slow = FailsLate("")
    thread = threading.Thread(target=lambda: asyncio.run(run_engine(slow, settings, concurrency=1, limit=1, progress=False)))
    thread.start()
    try:
        assert wait_for(lambda: _status(settings, cid) == ChunkStatus.PRELABELING, timeout=30)
        with session_scope(settings) as s:
            s.execute(update(Chunk).values(claimed_at=dt.datetime(2000, 1, 1)))
        assert asyncio.run(run_engine(Instant(), settings, concurrency=1, limit=1, progress=False)).done == 1
    finally:
        slow.gate.set()
        thread.join(timeout=60)
    assert _status(settings, cid) == ChunkStatus.PRELABELED


def test_a_live_worker_keeps_its_claim(settings, monkeypatch):
    """A worker that waits (a long cooldown) renews its claim, so nobody takes the chunk from under it."""
    monkeypatch.setattr(runner, "HEARTBEAT_S", 0.1, raising=False)
    cid = _one_chunk(settings)
    slow = Gated("only label")
    thread = threading.Thread(target=lambda: asyncio.run(run_engine(slow, settings, concurrency=1, limit=1, progress=False)))
    thread.start()
    try:
        assert wait_for(lambda: _status(settings, cid) == ChunkStatus.PRELABELING, timeout=30)
        with session_scope(settings) as s:
            s.execute(update(Chunk).values(claimed_at=dt.datetime(2000, 1, 1)))

        def renewed() -> bool:
            with session_scope(settings) as s:
                return s.get(Chunk, cid).claimed_at > dt.datetime(2001, 1, 1)

        assert wait_for(renewed, timeout=10)
        other = asyncio.run(run_engine(Instant(), settings, concurrency=1, progress=False))
        assert other.done == 1  # the other chunk, not the one held
    finally:
        slow.gate.set()
        thread.join(timeout=60)
    with session_scope(settings) as s:
        assert s.scalars(select(Segment.text).where(Segment.chunk_id == cid)).all() == ["only label"]


def test_machine_labels_never_replace_human_answers(settings):
    """Even a chunk put back in the queue by hand keeps the segments people answered."""
    cid = _one_chunk(settings)
    assert asyncio.run(run_engine(Instant(), settings, concurrency=1, limit=1, progress=False)).done == 1
    with session_scope(settings) as s:
        seg = s.scalars(select(Segment).where(Segment.chunk_id == cid)).one()
        seg.discarded, seg.annotator = True, "lan"
        s.get(Chunk, cid).status = ChunkStatus.PENDING
    again = asyncio.run(run_engine(Instant(), settings, concurrency=1, limit=1, progress=False))
    assert again.done == 0 and again.failed == 0 and again.kept_answers == 1
    with session_scope(settings) as s:
        seg = s.scalars(select(Segment).where(Segment.chunk_id == cid)).one()
        assert seg.discarded and seg.annotator == "lan" and seg.text == "first machine label"
        assert s.get(Chunk, cid).status == ChunkStatus.PRELABELED  # exportable again, not failed or pending
