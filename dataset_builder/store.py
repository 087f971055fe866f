"""The factory state store: channels → videos → chunks → segments (the Data Factory paper's schema, extended).

SQLite in WAL mode for one machine; PostgreSQL (``VECS_DB_URL``) when several workers share the work,
claiming chunks with ``SELECT … FOR UPDATE SKIP LOCKED``. Files are written before the rows that point
to them are committed, so a killed run never leaves a row naming a missing or partial file.
"""
from __future__ import annotations

import datetime as dt
import os
import socket
import sqlite3
import time
import uuid
from contextlib import contextmanager
from typing import Iterator, Sequence

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship, sessionmaker

from .foundation.config import SAMPLE_RATE, Settings, get_settings


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class Channel(Base):
    __tablename__ = "channels"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(300), unique=True)
    url: Mapped[str | None] = mapped_column(String(1000))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    videos: Mapped[list["Video"]] = relationship(back_populates="channel", order_by="Video.id")


class VideoStatus:
    INGESTING = "ingesting"
    READY = "ready"


class Video(Base):
    __tablename__ = "videos"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: Stable public id (the YouTube id, or a hash of a local file's path): the dataset's ``video_id``.
    video_id: Mapped[str] = mapped_column(String(64), unique=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id"))
    #: Canonical URL; unique so the same source twice adds nothing (the paper's ``original_url``).
    source_url: Mapped[str] = mapped_column(String(2000), unique=True)
    title: Mapped[str | None] = mapped_column(String(1000))
    extractor: Mapped[str | None] = mapped_column(String(100))
    #: Provenance as the source reports it (yt-dlp's info): the license (YouTube: "Creative Commons Attribution
    #: license (reuse allowed)" or none for the standard license), who published it and when.
    license: Mapped[str | None] = mapped_column(String(300))
    uploader: Mapped[str | None] = mapped_column(String(500))
    upload_date: Mapped[str | None] = mapped_column(String(8))  # YYYYMMDD
    channel_ref: Mapped[str | None] = mapped_column(String(200))  # the source's channel id (YouTube: UC…)
    channel_url: Mapped[str | None] = mapped_column(String(2000))
    sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    duration: Mapped[float] = mapped_column(Float, default=0.0)
    num_samples: Mapped[int] = mapped_column(Integer, default=0)
    #: Always SAMPLE_RATE (ingest normalizes every source to it); a column so older stores stay writable.
    sample_rate: Mapped[int] = mapped_column(Integer, default=SAMPLE_RATE)
    audio_path: Mapped[str | None] = mapped_column(String(2000))
    #: ``{"vi": "captions/ID.vi.vtt", ...}`` relative to ``$VECS_HOME``.
    captions: Mapped[dict] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(20), default=VideoStatus.INGESTING)
    #: While ``ingesting``: the worker (host:pid) that reserved this id and alone writes its files.
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    channel: Mapped[Channel] = relationship(back_populates="videos")
    chunks: Mapped[list["Chunk"]] = relationship(
        back_populates="video", order_by="Chunk.index", cascade="all, delete-orphan"
    )


class ChunkStatus:
    """Chunk state machine: pending → prelabeling (or batched: in a Gemini Batch API job) → prelabeled → (pushed)
    → verified; or failed."""

    PENDING = "pending"
    PRELABELING = "prelabeling"
    BATCHED = "batched"
    PRELABELED = "prelabeled"
    FAILED = "failed"
    PUSHED = "pushed"
    VERIFIED = "verified"
    ALL = (PENDING, PRELABELING, BATCHED, PRELABELED, FAILED, PUSHED, VERIFIED)


class Chunk(Base):
    """The atomic unit of pre-labeling: samples [start_sample, end_sample) of the video's audio."""

    __tablename__ = "chunks"
    __table_args__ = (UniqueConstraint("video_id", "index"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    video_id: Mapped[int] = mapped_column(ForeignKey("videos.id", ondelete="CASCADE"), index=True)
    index: Mapped[int] = mapped_column(Integer)
    start_sample: Mapped[int] = mapped_column(Integer)
    end_sample: Mapped[int] = mapped_column(Integer)
    is_last: Mapped[bool] = mapped_column(Boolean, default=False)
    audio_path: Mapped[str] = mapped_column(String(2000))
    status: Mapped[str] = mapped_column(String(20), default=ChunkStatus.PENDING, index=True)
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    claimed_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    #: Drawn afresh by each claim: a worker writes the chunk only while the token is still its own, so a
    #: worker whose claim was taken over cannot overwrite what the new holder (or a person) did since.
    claim_token: Mapped[str | None] = mapped_column(String(40))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    engine: Mapped[str | None] = mapped_column(String(100))
    video: Mapped[Video] = relationship(back_populates="chunks")
    segments: Mapped[list["Segment"]] = relationship(
        back_populates="chunk", order_by="Segment.start", cascade="all, delete-orphan"
    )

    @property
    def start(self) -> float:
        return self.start_sample / SAMPLE_RATE

    @property
    def end(self) -> float:
        return self.end_sample / SAMPLE_RATE

    @property
    def duration(self) -> float:
        return (self.end_sample - self.start_sample) / SAMPLE_RATE


class Segment(Base):
    """One utterance inside a chunk; times are chunk-relative (absolute = chunk.start + start)."""

    __tablename__ = "segments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    chunk_id: Mapped[int] = mapped_column(ForeignKey("chunks.id", ondelete="CASCADE"), index=True)
    start: Mapped[float] = mapped_column(Float)
    end: Mapped[float] = mapped_column(Float)
    raw_start: Mapped[float] = mapped_column(Float)
    raw_end: Mapped[float] = mapped_column(Float)
    text: Mapped[str] = mapped_column(Text, default="")
    translation: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[str] = mapped_column(String(100), default="")
    #: Annotation: the Argilla record this segment became, and a hash of what was pushed (a re-push of
    #: unchanged content is skipped; changed content updates the record unless someone has answered it).
    record_id: Mapped[str | None] = mapped_column(String(120), unique=True)
    pushed_hash: Mapped[str | None] = mapped_column(String(40))
    pushed_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    #: Human verification (filled by ``vecs argilla pull``).
    verified: Mapped[bool] = mapped_column(Boolean, default=False)
    discarded: Mapped[bool] = mapped_column(Boolean, default=False)
    verified_text: Mapped[str | None] = mapped_column(Text)
    verified_translation: Mapped[str | None] = mapped_column(Text)
    verified_start: Mapped[float | None] = mapped_column(Float)
    verified_end: Mapped[float | None] = mapped_column(Float)
    quality: Mapped[str | None] = mapped_column(String(50))
    annotator: Mapped[str | None] = mapped_column(String(200))
    verified_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    chunk: Mapped[Chunk] = relationship(back_populates="segments")

    @property
    def abs_start(self) -> float:
        return self.chunk.start + self.start

    @property
    def abs_end(self) -> float:
        return self.chunk.start + self.end


class KeyState(Base):
    """A (model, API key) slot of the pre-label key pool. The key itself is never stored, only its hash."""

    __tablename__ = "key_states"
    model: Mapped[str] = mapped_column(String(100), primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(20), primary_key=True)
    cooldown_until: Mapped[float] = mapped_column(Float, default=0.0)
    backoff_level: Mapped[int] = mapped_column(Integer, default=0)
    learned_limit: Mapped[int | None] = mapped_column(Integer)
    day: Mapped[str | None] = mapped_column(String(10))
    day_count: Mapped[int] = mapped_column(Integer, default=0)
    retired: Mapped[bool] = mapped_column(Boolean, default=False)
    #: When (the pool's clock) the slot was retired: a later run tries it once more before trusting it.
    retired_at: Mapped[float | None] = mapped_column(Float)
    reason: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class PrelabelAttempt(Base):
    """Every request made for a chunk, kept for audit: who answered, how fast, what it cost, what it said."""

    __tablename__ = "prelabel_attempts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    chunk_id: Mapped[int] = mapped_column(ForeignKey("chunks.id", ondelete="CASCADE"), index=True)
    engine: Mapped[str] = mapped_column(String(50))
    model: Mapped[str | None] = mapped_column(String(100))
    key_hash: Mapped[str | None] = mapped_column(String(20))
    started_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    latency_s: Mapped[float | None] = mapped_column(Float)
    offset_s: Mapped[float] = mapped_column(Float, default=0.0)
    prompt_tokens: Mapped[int | None] = mapped_column(Integer)
    output_tokens: Mapped[int | None] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(30))
    http_code: Mapped[int | None] = mapped_column(Integer)
    finish_reason: Mapped[str | None] = mapped_column(String(30))
    detail: Mapped[str | None] = mapped_column(Text)
    raw_response: Mapped[str | None] = mapped_column(Text)


class PrelabelBatch(Base):
    """A Gemini Batch API job: recorded before it is submitted (its display name is ``vecs-batch-<id>``), so a run
    killed at any moment finds it again — by name once the service gave one, else by listing the key's jobs."""

    __tablename__ = "prelabel_batches"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))  # batches/…, once created
    model: Mapped[str] = mapped_column(String(100))
    key_hash: Mapped[str] = mapped_column(String(20))
    claim_token: Mapped[str] = mapped_column(String(64))  # the token of the chunks it holds
    chunk_ids: Mapped[list] = mapped_column(JSON, default=list)
    state: Mapped[str] = mapped_column(String(30), default="submitting")
    detail: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class SplitAssignment(Base):
    """The split a video (or channel) was first exported into; it never moves as the corpus grows."""

    __tablename__ = "split_assignments"
    group_by: Mapped[str] = mapped_column(String(20), primary_key=True)
    seed: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    split: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


# ---------------------------------------------------------------------------------------------------------
# Engine and sessions


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA busy_timeout=30000")
    # Switching to WAL needs an exclusive moment and SQLite answers "locked" at once (no busy handler) when
    # another process opens a fresh store at the same time (``ingest --jobs 2``): retry, it is persistent.
    for attempt in range(200):
        try:
            if cur.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                cur.execute("PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == 199:
                raise
            time.sleep(0.05)
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _sqlite_begin_immediate(conn) -> None:
    # Take the write lock at BEGIN so two writers never deadlock on a lock upgrade; this is what makes
    # a claim (select then update) atomic on SQLite, where FOR UPDATE does not exist.
    conn.exec_driver_sql("BEGIN IMMEDIATE")


_ENGINES: dict[str, Engine] = {}


def get_engine(settings: Settings | None = None) -> Engine:
    settings = settings or get_settings()
    url = settings.db_url
    engine = _ENGINES.get(url)
    if engine is not None:
        return engine
    if url.startswith("sqlite"):
        settings.home.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "isolation_level": None})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin_immediate)
    else:
        engine = create_engine(url, pool_pre_ping=True)
    for attempt in range(5):  # two processes creating a fresh store race on CREATE TABLE
        try:
            Base.metadata.create_all(engine)
            _add_missing_columns(engine)
            break
        except OperationalError as exc:
            if ("already exists" not in str(exc) and "duplicate column" not in str(exc)) or attempt == 4:
                raise
    _ENGINES[url] = engine
    return engine


def _add_missing_columns(engine: Engine) -> None:
    """Columns added since a store was created (all nullable) are added to it, so older stores stay usable."""
    insp = inspect(engine)
    for table in Base.metadata.sorted_tables:
        if not insp.has_table(table.name):
            continue
        have = {c["name"] for c in insp.get_columns(table.name)}
        for column in table.columns:
            if column.name in have or not column.nullable:
                continue
            ddl = column.type.compile(dialect=engine.dialect)
            with engine.begin() as conn:
                conn.execute(text(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {ddl}'))


def dispose_engines() -> None:
    for engine in _ENGINES.values():
        engine.dispose()
    _ENGINES.clear()


@contextmanager
def session_scope(settings: Settings | None = None) -> Iterator[Session]:
    """One transaction: committed on success, rolled back on any error (no partial commits)."""
    maker = sessionmaker(bind=get_engine(settings), expire_on_commit=False)
    session = maker()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def get_or_create_channel(session: Session, name: str, url: str | None = None) -> Channel:
    channel = session.scalar(select(Channel).where(Channel.name == name))
    if channel is None:
        channel = Channel(name=name, url=url)
        session.add(channel)
        session.flush()
    return channel


# ---------------------------------------------------------------------------------------------------------
# Claims: several workers share the chunks without two taking the same one.


def claim_chunks(
    session: Session,
    *,
    limit: int = 1,
    from_status: str = ChunkStatus.PENDING,
    to_status: str = ChunkStatus.PRELABELING,
    worker: str | None = None,
    stale_after: dt.timedelta | None = dt.timedelta(hours=1),
) -> list[Chunk]:
    """Atomically move up to ``limit`` chunks from ``from_status`` to ``to_status`` for this worker.

    PostgreSQL: ``FOR UPDATE SKIP LOCKED`` lets concurrent workers pass over each other's rows. SQLite:
    the transaction began with ``BEGIN IMMEDIATE`` so the select-then-update runs alone. A claim older
    than ``stale_after`` (a worker that died without renewing it) is taken over. Each claim draws a fresh
    ``claim_token``: writes meant for the claim must match it. The caller's transaction commits the claim.
    """
    worker = worker or worker_id()
    cond = Chunk.status == from_status
    if stale_after is not None:
        cutoff = utcnow() - stale_after
        cond = cond | ((Chunk.status == to_status) & (Chunk.claimed_at < cutoff))
    stmt = select(Chunk.id).where(cond).order_by(Chunk.id).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    ids: Sequence[int] = session.scalars(stmt).all()
    if not ids:
        return []
    session.execute(
        update(Chunk)
        .where(Chunk.id.in_(ids))
        .values(status=to_status, claimed_by=worker, claimed_at=utcnow(), claim_token=uuid.uuid4().hex,
                attempts=Chunk.attempts + 1)
        .execution_options(synchronize_session=False)
    )
    return list(session.scalars(select(Chunk).where(Chunk.id.in_(ids)).order_by(Chunk.id)))


def renew_claims(session: Session, tokens: Sequence[str], status: str = ChunkStatus.PRELABELING) -> int:
    """A live worker's heartbeat: its claims stay fresh, so nobody takes them over as stale."""
    if not tokens:
        return 0
    result = session.execute(update(Chunk).where(Chunk.claim_token.in_(list(tokens)), Chunk.status == status)
                             .values(claimed_at=utcnow()).execution_options(synchronize_session=False))
    return result.rowcount or 0
