"""``vecs argilla pull``: submitted and discarded responses → the state store, incrementally.

Only records whose answer changed since the last pull are written; a chunk becomes ``verified`` when every
segment of it that went to Argilla has been answered.
"""
from __future__ import annotations

from dataclasses import dataclass

import argilla as rg
from sqlalchemy import select, update

from dataset_builder.foundation.config import Settings
from dataset_builder.store import Chunk, ChunkStatus, Segment, session_scope, utcnow
from dataset_builder.foundation.text import clean_text

from .client import AnnotationError, workspace


@dataclass
class PullReport:
    verified: int = 0
    discarded: int = 0
    unchanged: int = 0
    unknown: int = 0  # records with no segment in this store (pushed from elsewhere)
    chunks_verified: int = 0


def _float(value) -> float | None:
    try:
        return float(str(value).strip().replace(",", ".")) if value not in (None, "") else None
    except ValueError:
        return None


def _answers(record: rg.Record) -> tuple[str | None, dict, str | None]:
    """(status, {question: value}, user_id) of the record's first submitted answer, else its discard."""
    by_user: dict[str, dict] = {}
    status_of: dict[str, str] = {}
    for resp in record.responses:
        uid = str(resp.user_id)
        by_user.setdefault(uid, {})[resp.question_name] = resp.value
        status_of[uid] = str(getattr(resp.status, "value", resp.status))
    for uid, status in status_of.items():
        if status == "submitted":
            return "submitted", by_user[uid], uid
    for uid, status in status_of.items():
        if status == "discarded":
            return "discarded", by_user[uid], uid
    return None, {}, None


def pull(settings: Settings, client: rg.Argilla, *, dataset: str = "vecs-verify", workspace_name: str = "vecs") -> PullReport:
    ws = workspace(client, workspace_name)
    ds = client.datasets(name=dataset, workspace=ws)
    if ds is None:
        raise AnnotationError(f"dataset {dataset!r} not found in workspace {workspace_name!r} (push first)")
    users = {str(u.id): u.username for u in client.users}
    report = PullReport()
    query = rg.Query(filter=rg.Filter(("response.status", "in", ["submitted", "discarded"])))
    batch: list[tuple[str, str, dict, str | None]] = []
    for record in ds.records(query=query, with_responses=True, batch_size=500):
        status, values, uid = _answers(record)
        if status is not None:
            batch.append((str(record.id), status, values, users.get(uid or "", uid)))
        if len(batch) >= 500:
            _apply(settings, batch, report)
            batch = []
    _apply(settings, batch, report)
    report.chunks_verified = _mark_verified(settings)
    return report


def _apply(settings: Settings, batch: list, report: PullReport) -> None:
    if not batch:
        return
    with session_scope(settings) as s:
        segs = {seg.record_id: seg for seg in s.scalars(select(Segment).where(
            Segment.record_id.in_([rid for rid, *_ in batch]))).all()}
        for rid, status, values, annotator in batch:
            seg = segs.get(rid)
            if seg is None:
                report.unknown += 1
                continue
            new = dict(
                verified=status == "submitted",
                discarded=status == "discarded",
                verified_text=clean_text(values.get("transcript")) or None,
                verified_translation=clean_text(values.get("translation")) or None,
                quality=values.get("quality"),
                verified_start=_float(values.get("corrected_start")),
                verified_end=_float(values.get("corrected_end")),
                annotator=annotator,
            )
            if all(getattr(seg, k) == v for k, v in new.items()):
                report.unchanged += 1
                continue
            for k, v in new.items():
                setattr(seg, k, v)
            seg.verified_at = utcnow()
            if status == "submitted":
                report.verified += 1
            else:
                report.discarded += 1


def _mark_verified(settings: Settings) -> int:
    """Pushed chunks with no segment left unanswered become ``verified``."""
    with session_scope(settings) as s:
        open_chunks = select(Segment.chunk_id).where(
            Segment.record_id.is_not(None), ~Segment.verified, ~Segment.discarded)
        answered_any = select(Segment.chunk_id).where(Segment.record_id.is_not(None))
        result = s.execute(
            update(Chunk).where(Chunk.status == ChunkStatus.PUSHED, Chunk.id.in_(answered_any),
                                Chunk.id.not_in(open_chunks)).values(status=ChunkStatus.VERIFIED)
        )
        return result.rowcount or 0
