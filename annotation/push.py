"""``vecs argilla push``: pre-labeled segments → Argilla records, one per segment that survives the guillotine.

Record ids are stable (video, chunk, start), so a re-push updates instead of duplicating; a record that
someone has already answered is never touched — checked for each batch just before it is sent, so an answer
given while a long push runs is not overwritten either; the store remembers each pushed batch, so an
interrupted push resumes where it stopped.
"""
from __future__ import annotations

import hashlib
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Callable, Iterator

import argilla as rg
from sqlalchemy import select, update
from sqlalchemy.orm import selectinload

from dataset_builder.foundation.config import Settings
from dataset_builder.guillotine import SegmentView, resolve
from dataset_builder.store import Chunk, ChunkStatus, Segment, Video, session_scope, utcnow
from dataset_builder.foundation.text import en_ratio

from .client import AnnotationError, workspace
from .clips import data_url, make_clip
from .design import dataset_settings

PUSHABLE = (ChunkStatus.PRELABELED, ChunkStatus.PUSHED, ChunkStatus.VERIFIED)


def record_id(video_id: str, chunk_index: int, start: float) -> str:
    return f"{video_id}-c{chunk_index:04d}-{int(round(start * 1000)):07d}"


def double_check_selected(rid: str, fraction: float) -> bool:
    """A stable pseudo-random choice: the same records go to two annotators on every push."""
    return int(hashlib.sha1(rid.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF < fraction


@dataclass
class PushReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped_answered: int = 0
    double_check: int = 0
    missing_audio: list = field(default_factory=list)
    batches: int = 0


@dataclass
class _Item:
    segment_id: int
    rid: str
    digest: str
    record: rg.Record
    double: bool
    update: bool


def get_or_create_dataset(client: rg.Argilla, name: str, ws: rg.Workspace, min_submitted: int) -> rg.Dataset:
    return _dataset(client, name, ws, min_submitted)[0]


def _dataset(client: rg.Argilla, name: str, ws: rg.Workspace, min_submitted: int) -> tuple[rg.Dataset, bool]:
    """The dataset, created (and published) if missing, and whether it was created now. Creating takes several
    requests — the draft, then its fields, questions and metadata, then publishing — so a push killed in
    between leaves an unpublished draft with part of its settings; it can hold no records, and is created
    again whole."""
    ds = client.datasets(name=name, workspace=ws)
    # The client keeps the server's status only on its model (its own rollback of a failed create reads it).
    if ds is not None and getattr(getattr(ds, "_model", None), "status", "ready") != "ready":
        ds.delete()
        ds = None
    if ds is not None:
        return ds, False
    return rg.Dataset(name=name, workspace=ws, settings=dataset_settings(min_submitted), client=client).create(), True


ANSWERED = ["submitted", "draft", "discarded"]


def answered_ids(ds: rg.Dataset, among: list[str] | None = None) -> set[str]:
    """Ids of records that have any response (submitted, draft or discarded), of ``among`` only if given."""
    conditions = [("response.status", "in", ANSWERED)]
    if among is not None:
        if not among:
            return set()
        conditions.append(("id", "in", list(among)))
    query = rg.Query(filter=rg.Filter(conditions))
    return {str(r.id) for r in ds.records(query=query, batch_size=500)}


def _context(prev: str | None, nxt: str | None) -> str:
    parts = []
    if prev:
        parts.append(f"**Trước / before:** {prev}")
    if nxt:
        parts.append(f"**Sau / after:** {nxt}")
    return "\n\n".join(parts)


def iter_items(settings: Settings, audio_base_url: str | None, embed_audio: bool, double_check: float,
               report: PushReport, covered: list[int]) -> Iterator[_Item]:
    """Everything that should be in Argilla and is not yet there as it is now, video by video (so sending
    starts before the last clip is cut); the chunks it covers are appended to ``covered``."""
    # Read in one short transaction and build outside it: on SQLite an open transaction holds the write
    # lock, and each pushed batch is recorded while later items are still being built.
    with session_scope(settings) as s:
        videos = s.scalars(
            select(Video).options(selectinload(Video.chunks).selectinload(Chunk.segments), selectinload(Video.channel))
            .order_by(Video.id)
        ).all()
    for video in videos:
        chunks = [c for c in video.chunks if c.status in PUSHABLE]
        if not chunks:
            continue
        audio_path = settings.home / (video.audio_path or "")
        if not audio_path.exists():
            report.missing_audio.append(video.video_id)
            continue
        covered.extend(c.id for c in chunks if c.status == ChunkStatus.PRELABELED)
        views = [SegmentView(seg, c.index, c.start, c.end, c.is_last, seg.start, seg.end)
                 for c in chunks for seg in c.segments]
        kept = resolve(views).kept
        texts = [k.view.ref.text for k in kept]
        for i, k in enumerate(kept):
            seg: Segment = k.view.ref
            rid = record_id(video.video_id, k.view.chunk_index, seg.start)
            digest = hashlib.sha1(
                f"{seg.text}\x00{seg.translation}\x00{k.abs_start:.3f}\x00{k.abs_end:.3f}".encode()
            ).hexdigest()
            if seg.pushed_hash == digest:
                report.unchanged += 1
                continue
            clip = make_clip(settings.home, audio_path, video.video_id, rid, k.abs_start, k.abs_end, video.duration)
            src = data_url(clip.path) if embed_audio else f"{audio_base_url.rstrip('/')}/{clip.relpath}"
            suggestions = [rg.Suggestion("transcript", seg.text, agent=seg.source or "prelabel", type="model")]
            if seg.translation:
                suggestions.append(rg.Suggestion("translation", seg.translation, agent=seg.source or "prelabel",
                                                 type="model"))
            suggestions += [rg.Suggestion("corrected_start", f"{k.abs_start:.3f}", agent="prelabel"),
                            rg.Suggestion("corrected_end", f"{k.abs_end:.3f}", agent="prelabel")]
            fields = {
                "audio": {"src": src, "video_id": video.video_id, "abs_start": round(k.abs_start, 3),
                          "abs_end": round(k.abs_end, 3), "clip_duration": clip.duration,
                          "seg_start": clip.seg_start, "seg_end": clip.seg_end},
                "context": _context(texts[i - 1] if i else None, texts[i + 1] if i + 1 < len(texts) else None),
            }
            metadata = {"channel": video.channel.name, "video_id": video.video_id, "chunk": k.view.chunk_index,
                        "start": round(k.abs_start, 3), "duration": round(k.abs_end - k.abs_start, 3),
                        "en_ratio": round(en_ratio(seg.text), 3)}
            yield _Item(seg.id, rid, digest, rg.Record(id=rid, fields=fields, metadata=metadata,
                                                       suggestions=suggestions),
                        double_check_selected(rid, double_check), seg.pushed_hash is not None)


def collect(settings: Settings, audio_base_url: str | None, embed_audio: bool, double_check: float,
            report: PushReport) -> tuple[list[_Item], list[int]]:
    covered: list[int] = []
    return list(iter_items(settings, audio_base_url, embed_audio, double_check, report, covered)), covered


def push(
    settings: Settings,
    client: rg.Argilla,
    *,
    dataset: str = "vecs-verify",
    workspace_name: str = "vecs",
    min_submitted: int = 1,
    double_check: float = 0.0,
    audio_base_url: str | None = None,
    embed_audio: bool = False,
    batch_size: int = 200,  # the server's bulk-upsert maximum
    create_workspace: bool = False,
    on_batch: Callable[[int], None] | None = None,
) -> PushReport:
    if not embed_audio and not audio_base_url:
        raise AnnotationError("no --audio-base-url: where will annotators' browsers fetch the clips? "
                              "(vecs argilla serve prints it; or pass --embed-audio)")
    ws = workspace(client, workspace_name, create=create_workspace)
    report = PushReport()
    covered: list[int] = []
    main = double = None
    fresh = False  # every dataset of this push created by it: nothing in them predates this run

    def send(batch: list[_Item]) -> tuple[list[_Item], int]:
        # Who answered what is read for this batch, just before it is sent: an answer given while a long
        # push runs (or to a record an interrupted push sent without recording it) is left alone. A dataset
        # this push created holds only records it sent, each once: no answer there can predate its sending.
        rids = [it.rid for it in batch]
        taken = set() if fresh else (
            answered_ids(main, rids) | (answered_ids(double, rids) if double is not None else set()))
        if taken:
            batch = [it for it in batch if it.rid not in taken]
        if not batch:
            return batch, len(taken)
        main.records.log([it.record for it in batch], batch_size=len(batch))
        doubles = [it for it in batch if it.double]
        if double is not None and doubles:
            double.records.log([rg.Record(id=it.rid, fields=it.record.fields, metadata=it.record.metadata,
                                          suggestions=list(it.record.suggestions)) for it in doubles],
                               batch_size=len(doubles))
        return batch, len(taken)

    def done(sent: tuple[list[_Item], int]) -> None:
        batch, skipped = sent
        report.skipped_answered += skipped
        with session_scope(settings) as s:  # the batch is in Argilla: remember it (a re-run resumes after it)
            for it in batch:
                seg = s.get(Segment, it.segment_id)
                seg.record_id, seg.pushed_hash, seg.pushed_at = it.rid, it.digest, utcnow()
        report.batches += 1
        report.created += sum(not it.update for it in batch)
        report.updated += sum(it.update for it in batch)
        report.double_check += sum(it.double for it in batch) if double is not None else 0
        if on_batch:
            on_batch(report.created + report.updated)

    # Items stream in video by video; two batches are in flight while the next is prepared, so cutting
    # clips and serializing overlap with the server storing what it was sent.
    with ThreadPoolExecutor(max_workers=2) as pool:
        pending: set = set()
        batch: list[_Item] = []

        def flush() -> None:
            nonlocal pending
            pending.add(pool.submit(send, list(batch)))
            batch.clear()
            if len(pending) >= 2:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in finished:
                    done(fut.result())

        for item in iter_items(settings, audio_base_url, embed_audio, double_check, report, covered):
            if main is None:
                main, fresh = _dataset(client, dataset, ws, min_submitted)
                if double_check > 0:
                    double, fresh_double = _dataset(client, f"{dataset}-double", ws, 2)
                    fresh = fresh and fresh_double
            batch.append(item)
            if len(batch) >= batch_size:
                flush()
        if batch:
            flush()
        for fut in pending:
            done(fut.result())
    _mark_pushed(settings, covered)
    return report


def _mark_pushed(settings: Settings, chunk_ids: list[int]) -> None:
    """Chunks whose kept segments are all in Argilla (those the guillotine drops need no one)."""
    with session_scope(settings) as s:
        s.execute(update(Chunk).where(Chunk.id.in_(chunk_ids), Chunk.status == ChunkStatus.PRELABELED)
                  .values(status=ChunkStatus.PUSHED))
