"""What the export contains: every kept segment once (guillotine + leading edge), sanitized, filtered,
in the split its video (or channel) was given — decided once, for both configs, before any audio is read."""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from dataset_builder.foundation.text import cmi, en_ratio

from ..foundation.config import Settings
from ..guillotine import SegmentView, resolve
from ..store import Chunk, ChunkStatus, SplitAssignment, Video, session_scope
from .sanitize import public_source_url, sanitize
from .splits import SPLITS, assign

CONFIGS = ("verified", "prelabeled")
EXPORTABLE = (ChunkStatus.PRELABELED, ChunkStatus.PUSHED, ChunkStatus.VERIFIED)
#: Quality labels whose segments are not training material.
UNUSABLE = {"no_speech", "music", "overlap", "not_vi_en"}


@dataclass(frozen=True)
class Example:
    id: str
    video_id: str
    channel: str
    audio_path: Path
    start: float
    end: float
    transcript: str
    translation: str
    prelabel_transcript: str
    prelabel_translation: str
    verified: bool
    source_url: str
    # provenance, as the source reported it at ingest
    title: str | None = None
    license: str | None = None
    uploader: str | None = None
    upload_date: str | None = None
    channel_id: str | None = None
    channel_url: str | None = None

    @property
    def duration(self) -> float:
        return round(self.end - self.start, 3)

    @cached_property
    def _mix(self) -> tuple[float, float]:
        return round(cmi(self.transcript), 2), round(en_ratio(self.transcript), 3)

    def row(self) -> dict:
        return {
            "id": self.id, "transcript": self.transcript, "translation": self.translation,
            "video_id": self.video_id, "channel": self.channel, "start": round(self.start, 3),
            "end": round(self.end, 3), "duration": self.duration, "source_url": self.source_url,
            "prelabel_transcript": self.prelabel_transcript, "prelabel_translation": self.prelabel_translation,
            "verified": self.verified, "cmi": self._mix[0], "en_ratio": self._mix[1],
            "title": self.title, "license": self.license, "uploader": self.uploader,
            "upload_date": self.upload_date, "channel_id": self.channel_id, "channel_url": self.channel_url,
        }


@dataclass
class Plan:
    examples: dict[str, dict[str, list[Example]]] = field(
        default_factory=lambda: {c: {s: [] for s in SPLITS} for c in CONFIGS})
    dropped: dict[str, Counter] = field(default_factory=lambda: {c: Counter() for c in CONFIGS})
    assignment: dict[str, str] = field(default_factory=dict)
    group_by: str = "video"

    def hours(self, config: str) -> dict[str, float]:
        return {s: round(sum(e.duration for e in exs) / 3600, 4) for s, exs in self.examples[config].items()}


def build_plan(settings: Settings, *, group_by: str = "video", ratios: dict[str, float], seed: int = 42,
               min_duration: float = 0.5, max_duration: float = 30.0, persist: bool = True) -> Plan:
    """The plan of an export. New groups' splits are remembered in the store (``persist``) so that growing
    the corpus never moves them; a dry run passes ``persist=False`` and writes nothing."""
    if group_by not in ("video", "channel"):
        raise ValueError(f"--group-by {group_by!r}: expected video or channel")
    plan = Plan(group_by=group_by)
    candidates: dict[str, list[Example]] = {c: [] for c in CONFIGS}
    with session_scope(settings) as s:
        videos = s.scalars(select(Video).options(
            selectinload(Video.chunks).selectinload(Chunk.segments), selectinload(Video.channel)).order_by(Video.id)).all()
        existing = {a.key: a.split for a in s.scalars(select(SplitAssignment).where(
            SplitAssignment.group_by == group_by, SplitAssignment.seed == seed)).all()}
    group_hours: dict[str, float] = defaultdict(float)
    for video in videos:
        chunks = [c for c in video.chunks if c.status in EXPORTABLE]
        if not chunks:
            continue
        decision = resolve(SegmentView(seg, c.index, c.start, c.end, c.is_last, seg.start,
                                       seg.end) for c in chunks for seg in c.segments)
        for config in CONFIGS:
            plan.dropped[config]["overlap_zone"] += len(decision.dropped_overlap_zone)
            plan.dropped[config]["leading_edge_duplicate"] += len(decision.dropped_leading_edge)
        key = video.video_id if group_by == "video" else video.channel.name
        for kept in decision.kept:
            seg = kept.view.ref
            common = dict(video_id=video.video_id, channel=video.channel.name,
                          audio_path=settings.home / (video.audio_path or ""),
                          source_url=public_source_url(video.source_url), title=video.title,
                          license=video.license, uploader=video.uploader, upload_date=video.upload_date,
                          channel_id=video.channel_ref,
                          channel_url=public_source_url(video.channel_url) if video.channel_url else None,
                          prelabel_transcript=sanitize(seg.text), prelabel_translation=sanitize(seg.translation))
            pre = Example(id=f"{video.video_id}-{int(round(kept.abs_start * 1000)):08d}", start=kept.abs_start,
                          end=kept.abs_end, transcript=common["prelabel_transcript"],
                          translation=common["prelabel_translation"], verified=bool(seg.verified), **common)
            candidates["prelabeled"].append(pre)
            group_hours[key] += pre.duration / 3600
            if seg.discarded:
                plan.dropped["verified"]["discarded"] += 1
            elif not seg.verified:
                plan.dropped["verified"]["not_verified"] += 1
            elif seg.quality in UNUSABLE:
                plan.dropped["verified"][f"quality:{seg.quality}"] += 1
            else:
                start, end = kept.abs_start, kept.abs_end
                if seg.verified_start is not None and seg.verified_end is not None and seg.verified_end > seg.verified_start:
                    start, end = seg.verified_start, seg.verified_end
                candidates["verified"].append(Example(
                    id=pre.id, start=start, end=end, transcript=sanitize(seg.verified_text or seg.text),
                    translation=sanitize(seg.verified_translation or seg.translation), verified=True, **common))
    plan.assignment = assign(group_hours, ratios, seed=seed, existing=existing)
    if persist:
        with session_scope(settings) as s:  # remember new groups' splits: growing the corpus never moves them
            for key, split in plan.assignment.items():
                if key not in existing:
                    s.add(SplitAssignment(group_by=group_by, seed=seed, key=key, split=split))
    for config, exs in candidates.items():
        for ex in exs:
            if not ex.transcript:
                plan.dropped[config]["empty_transcript"] += 1
            elif ex.duration < min_duration:
                plan.dropped[config]["too_short"] += 1
            elif ex.duration > max_duration:
                plan.dropped[config]["too_long"] += 1
            else:
                key = ex.video_id if group_by == "video" else ex.channel
                plan.examples[config][plan.assignment[key]].append(ex)
    return plan
