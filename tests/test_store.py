"""The state store: claims shared by concurrent workers on PostgreSQL (SKIP LOCKED) and SQLite."""
from __future__ import annotations

import datetime as dt
import multiprocessing as mp
import time

from sqlalchemy import func, select, update

from conftest import make_wav, run_vecs
from dataset_builder.foundation.config import Settings
from dataset_builder.store import (
    Chunk,
    ChunkStatus,
    Video,
    claim_chunks,
    dispose_engines,
    get_or_create_channel,
    session_scope,
)


def _seed_chunks(settings: Settings, n_videos: int = 4, per_video: int = 10) -> int:
    with session_scope(settings) as s:
        ch = get_or_create_channel(s, "test")
        for v in range(n_videos):
            video = Video(video_id=f"v{v}", channel_id=ch.id, source_url=f"file:///v{v}", duration=1.0)
            s.add(video)
            s.flush()
            for k in range(per_video):
                s.add(Chunk(video_id=video.id, index=k, start_sample=k, end_sample=k + 1, audio_path=f"c{v}_{k}"))
    return n_videos * per_video


def _worker(db_url: str, home: str, name: str, queue, barrier) -> None:
    """Claim one chunk at a time, "work" on it, mark it done — as a pre-labeling worker does."""
    import os

    os.environ["VECS_DB_URL"] = db_url
    os.environ["VECS_HOME"] = home
    settings = Settings.from_env()
    with session_scope(settings) as s:  # connect (and import everything) before the race starts
        s.scalar(select(func.count(Chunk.id)))
    barrier.wait(timeout=60)
    got = []
    while True:
        with session_scope(settings) as s:  # claim and commit at once, work outside the transaction
            claimed = [c.id for c in claim_chunks(s, limit=1, worker=name)]
        if not claimed:
            break
        time.sleep(0.01)  # the "work"
        with session_scope(settings) as s:
            s.execute(update(Chunk).where(Chunk.id.in_(claimed)).values(status=ChunkStatus.PRELABELED))
        got.extend(claimed)
    dispose_engines()
    queue.put((name, got))


def _run_workers(settings: Settings, n_workers: int) -> dict[str, list[int]]:
    ctx = mp.get_context("spawn")
    queue, barrier = ctx.Queue(), ctx.Barrier(n_workers)
    procs = [
        ctx.Process(target=_worker, args=(settings.db_url, str(settings.home), f"w{i}", queue, barrier))
        for i in range(n_workers)
    ]
    for p in procs:
        p.start()
    results = dict(queue.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    return results


def _assert_each_claimed_once(settings: Settings, results: dict[str, list[int]], total: int) -> None:
    claimed = [cid for ids in results.values() for cid in ids]
    assert len(claimed) == total and len(set(claimed)) == total, "a chunk was claimed twice or missed"
    assert sum(1 for ids in results.values() if ids) >= 2, "the work was not shared"
    with session_scope(settings) as s:
        assert s.scalar(select(func.count()).where(Chunk.status == ChunkStatus.PRELABELED)) == total
        assert s.scalar(select(func.max(Chunk.attempts))) == 1


def test_postgres_skip_locked_claims(pg_settings):
    total = _seed_chunks(pg_settings)
    results = _run_workers(pg_settings, 4)
    _assert_each_claimed_once(pg_settings, results, total)


def test_postgres_skip_locked_passes_over_locked_rows(pg_settings):
    """While one transaction holds a claim open, another worker takes the next chunk instead of waiting."""
    _seed_chunks(pg_settings, 1, 3)
    with session_scope(pg_settings) as a:
        first = claim_chunks(a, limit=1, worker="a")
        t0 = time.monotonic()
        with session_scope(pg_settings) as b:
            second = claim_chunks(b, limit=1, worker="b")
        assert time.monotonic() - t0 < 2
        assert [c.index for c in first] == [0] and [c.index for c in second] == [1]


def test_sqlite_claims_across_processes(settings):
    total = _seed_chunks(settings, 2, 10)
    results = _run_workers(settings, 3)
    _assert_each_claimed_once(settings, results, total)


def test_stale_claim_is_taken_over(settings):
    _seed_chunks(settings, 1, 1)
    with session_scope(settings) as s:
        [c] = claim_chunks(s, worker="dead")
    with session_scope(settings) as s:
        assert claim_chunks(s, worker="live") == []  # fresh claims are respected
        s.execute(update(Chunk).values(claimed_at=dt.datetime(2000, 1, 1)))
    with session_scope(settings) as s:
        [c] = claim_chunks(s, worker="live")
        assert c.claimed_by == "live" and c.attempts == 2


def test_concurrent_ingest_on_postgres(pg_settings, tmp_path):
    """Two ingest processes on the same sources against one PostgreSQL store: each video exactly once."""
    import subprocess
    import sys

    for i in range(4):
        make_wav(tmp_path / "src" / f"clip{i}.wav", 310, seed=40 + i)
    cmd = [sys.executable, "-m", "dataset_builder.cli", "ingest", str(tmp_path / "src"), "--no-progress"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    with session_scope(pg_settings) as s:
        assert sorted(s.scalars(select(Video.video_id)).all()) == [f"clip{i}" for i in range(4)]
        assert s.scalar(select(func.count(Chunk.id))) == 8
    status = run_vecs("status", "--json")
    assert '"videos": 4' in status.stdout


def _open_fresh_store(home: str, barrier) -> None:
    import os

    os.environ["VECS_HOME"] = home
    os.environ.pop("VECS_DB_URL", None)
    settings = Settings.from_env()
    barrier.wait(timeout=60)
    with session_scope(settings) as s:
        get_or_create_channel(s, f"ch-{os.getpid()}")


def test_processes_opening_a_fresh_sqlite_store_at_once(tmp_path):
    """``ingest --jobs 2`` on a new home: switching to WAL and creating tables must not race ("locked")."""
    ctx = mp.get_context("fork")
    for round_ in range(10):
        home = tmp_path / f"home{round_}"
        barrier = ctx.Barrier(4)
        procs = [ctx.Process(target=_open_fresh_store, args=(str(home), barrier)) for _ in range(4)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(timeout=60)
        assert [p.exitcode for p in procs] == [0, 0, 0, 0]


def test_a_source_reserved_between_two_reads_is_skipped_not_a_duplicate(pg_settings, tmp_path):
    """PostgreSQL reads each statement afresh (READ COMMITTED): another host that reserves the same source just
    after this worker looked it up, and before it looked for the same bytes, has taken it — "skipped", not a
    failed "duplicate of video …" (seen on two hosts ingesting one folder)."""
    from sqlalchemy import event

    from dataset_builder.ingest.fetch import expand_source, file_sha256
    from dataset_builder.ingest.pipeline import ingest_one
    from dataset_builder.store import get_engine

    src = tmp_path / "src" / "clip.wav"
    make_wav(src, 20, seed=7)
    [entry] = expand_source(str(src))
    fired = []

    def other_host_reserves(conn, cursor, statement, parameters, context, executemany):
        if fired or "videos.sha256 =" not in statement:
            return
        fired.append(statement)
        with session_scope(pg_settings) as s:
            ch = get_or_create_channel(s, "other")
            s.add(Video(video_id="clip-other", channel_id=ch.id, source_url=entry.canonical_url,
                        sha256=file_sha256(src), status="ingesting", claimed_by="host-b:1"))

    engine = get_engine(pg_settings)
    event.listen(engine, "before_cursor_execute", other_host_reserves)
    try:
        outcome = ingest_one(entry, settings=pg_settings)
    finally:
        event.remove(engine, "before_cursor_execute", other_host_reserves)
    assert fired, "the race was not staged"
    assert outcome.status == "skipped" and "another worker" in outcome.message, outcome
    with session_scope(pg_settings) as s:
        assert s.scalars(select(Video.video_id)).all() == ["clip-other"]
