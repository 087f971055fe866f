"""The factory's progress as the Data Factory paper's dashboard shows it: channels → videos → chunks.

Aggregated in SQL so a store of thousands of videos answers at once.
"""
from __future__ import annotations

from collections import defaultdict

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from .foundation.config import Settings
from .store import Channel, Chunk, ChunkStatus, Segment, Video, VideoStatus, session_scope

#: Chunks in these states have machine labels.
PRELABELED_STATES = (ChunkStatus.PRELABELED, ChunkStatus.PUSHED, ChunkStatus.VERIFIED)


def collect_status(session: Session, settings: Settings) -> dict:
    chunk_samples = settings.chunk_samples
    core = case(
        (Chunk.end_sample - Chunk.start_sample < chunk_samples, Chunk.end_sample - Chunk.start_sample),
        else_=chunk_samples,
    ) * 1.0 / Video.sample_rate

    videos = session.execute(
        select(Video.id, Video.video_id, Video.title, Video.duration, Video.channel_id, Channel.name)
        .join(Channel, Channel.id == Video.channel_id)
        .where(Video.status == VideoStatus.READY)  # a reservation being ingested has no audio yet
        .order_by(Channel.name, Video.id)
    ).all()
    chunk_rows = session.execute(
        select(Chunk.video_id, Chunk.status, func.count(), func.sum(core))
        .join(Video, Video.id == Chunk.video_id)
        .group_by(Chunk.video_id, Chunk.status)
    ).all()
    seg_rows = session.execute(
        select(
            Chunk.video_id,
            func.count(Segment.id),
            func.sum(case((Segment.verified & ~Segment.discarded, 1), else_=0)),
            func.sum(case((Segment.verified & ~Segment.discarded, Segment.end - Segment.start), else_=0.0)),
        )
        .join(Chunk, Chunk.id == Segment.chunk_id)
        .group_by(Chunk.video_id)
    ).all()

    chunks_by_video: dict[int, dict[str, int]] = defaultdict(dict)
    prelabeled_s: dict[int, float] = defaultdict(float)
    for vid, status, n, secs in chunk_rows:
        chunks_by_video[vid][status] = n
        if status in PRELABELED_STATES:
            prelabeled_s[vid] += float(secs or 0.0)
    segs = {vid: (n, int(v or 0), float(sec or 0.0)) for vid, n, v, sec in seg_rows}

    channels: dict[str, dict] = {}
    for pk, video_id, title, duration, _cid, ch_name in videos:
        ch = channels.setdefault(
            ch_name,
            {"name": ch_name, "videos": 0, "hours": 0.0, "prelabeled_hours": 0.0, "verified_hours": 0.0,
             "segments": 0, "verified_segments": 0, "chunks": defaultdict(int), "video_list": []},
        )
        n_seg, n_ver, ver_s = segs.get(pk, (0, 0, 0.0))
        chunks = chunks_by_video.get(pk, {})
        total_chunks = sum(chunks.values())
        done = chunks.get(ChunkStatus.VERIFIED, 0)
        ch["videos"] += 1
        ch["hours"] += duration / 3600
        ch["prelabeled_hours"] += prelabeled_s[pk] / 3600
        ch["verified_hours"] += ver_s / 3600
        ch["segments"] += n_seg
        ch["verified_segments"] += n_ver
        for status, n in chunks.items():
            ch["chunks"][status] += n
        ch["video_list"].append({
            "video_id": video_id, "title": title, "duration": round(duration, 3),
            "chunks": dict(chunks), "chunk_count": total_chunks,
            "progress": f"{done}/{total_chunks} verified",
            "segments": n_seg, "verified_segments": n_ver,
            "prelabeled_hours": round(prelabeled_s[pk] / 3600, 4), "verified_hours": round(ver_s / 3600, 4),
        })

    out_channels = []
    for ch in channels.values():
        ch["chunks"] = {s: ch["chunks"].get(s, 0) for s in ChunkStatus.ALL}
        pending = sum(v for k, v in ch["chunks"].items() if k != ChunkStatus.VERIFIED)
        ch["state"] = "up to date" if pending == 0 else "needs review"
        for key in ("hours", "prelabeled_hours", "verified_hours"):
            ch[key] = round(ch[key], 4)
        out_channels.append(ch)

    totals = {
        "channels": len(out_channels),
        "videos": sum(c["videos"] for c in out_channels),
        "chunks": {s: sum(c["chunks"][s] for c in out_channels) for s in ChunkStatus.ALL},
        "hours": round(sum(c["hours"] for c in out_channels), 4),
        "prelabeled_hours": round(sum(c["prelabeled_hours"] for c in out_channels), 4),
        "verified_hours": round(sum(c["verified_hours"] for c in out_channels), 4),
        "segments": sum(c["segments"] for c in out_channels),
        "verified_segments": sum(c["verified_segments"] for c in out_channels),
    }
    return {"totals": totals, "channels": out_channels, "annotators": annotator_stats(session)}


def annotator_stats(session: Session) -> list[dict]:
    """Per annotator: segments and hours verified, and throughput over their active span."""
    rows = session.execute(
        select(Segment.annotator, func.count(Segment.id), func.sum(Segment.end - Segment.start),
               func.min(Segment.verified_at), func.max(Segment.verified_at), func.sum(case((Segment.discarded, 1), else_=0)))
        .where(Segment.annotator.is_not(None)).group_by(Segment.annotator).order_by(Segment.annotator)
    ).all()
    out = []
    for name, n, secs, first, last, discarded in rows:
        span_h = max((last - first).total_seconds() / 3600, 1 / 60) if first and last else None
        out.append({"annotator": name, "segments": n, "discarded": int(discarded or 0),
                    "audio_hours": round(float(secs or 0) / 3600, 4),
                    "segments_per_hour": round(n / span_h, 1) if span_h else None})
    return out


def status(settings: Settings) -> dict:
    with session_scope(settings) as s:
        return collect_status(s, settings)
