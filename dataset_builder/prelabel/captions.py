"""Pre-labels from captions stored at ingest (WebVTT / SRT, YouTube's automatic captions included).

Free, instant and offline: ``make demo`` runs the whole factory on it. Cues are merged into 2–25 s segments
at caption boundaries (a lower bound suits models with short inputs: more of the audio fits them), and every
chunk gets the segments that overlap its window, clipped to it — the way a real pre-labeler reports an
utterance straddling a chunk edge (the export resolves those overlaps).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from dataset_builder.foundation.config import MAX_SEGMENT_SECONDS as MAX_SEGMENT_S
from dataset_builder.foundation.text import clean_text

from .parsing import Segment, parse_timestamp, to_ms
from .runner import ChunkFailed, ChunkJob, Labeled, Run

MIN_SEGMENT_S = 2.0
#: Cues closer than this, with no sentence end between them, are one utterance split by the caption tool.
JOIN_GAP_S = 0.25
_ARROW = re.compile(r"^\s*(\S+)\s+-->\s+(\S+)")
_TAG = re.compile(r"<[^>]*>")
_SENTENCE_END = re.compile(r"[.!?…。]['\"”’)]*$")
#: Caption languages in order of preference for a code-switched transcript.
LANG_PREFERENCE = ("und", "vi", "en")
TRANSLATION_SUFFIX = "-x-translation"  # a subtitle track holding the Vietnamese translation (e.g. vi-x-translation)


@dataclass
class Cue:
    start: float
    end: float
    text: str


def parse_captions(text: str) -> list[Cue]:
    """WebVTT or SRT → cues with plain text (styling tags, cue settings and notes removed)."""
    cues: list[Cue] = []
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    i = 0
    while i < len(lines):
        m = _ARROW.match(lines[i])
        if not m:
            i += 1
            continue
        try:
            start = parse_timestamp(m.group(1))
            end = parse_timestamp(m.group(2))
        except ValueError:
            i += 1
            continue
        i += 1
        body = []
        while i < len(lines) and lines[i].strip():
            body.append(_TAG.sub("", lines[i]))
            i += 1
        cue_text = clean_text(" ".join(body))
        if cue_text and end > start:
            cues.append(Cue(start, end, cue_text))
    return _drop_rolling_repeats(cues)


def _drop_rolling_repeats(cues: list[Cue]) -> list[Cue]:
    """YouTube's automatic captions repeat the previous line at the top of each cue; keep only what is new."""
    out: list[Cue] = []
    for cue in cues:
        text = cue.text
        if out:
            prev = out[-1].text
            if text == prev:
                out[-1].end = max(out[-1].end, cue.end)
                continue
            if text.startswith(prev + " "):
                text = text[len(prev) + 1:]
        out.append(Cue(cue.start, cue.end, text))
    return out


def merge_cues(cues: list[Cue], max_segment_s: float = MAX_SEGMENT_S) -> list[Cue]:
    """Join cues into segments of 2 s to ``max_segment_s``, only at caption boundaries (a single cue longer than
    the bound stays whole: its text cannot be cut without an alignment)."""
    merged: list[Cue] = []
    for cue in sorted(cues, key=lambda c: c.start):
        if merged:
            cur = merged[-1]
            gap = cue.start - cur.end
            too_short = cur.end - cur.start < MIN_SEGMENT_S and gap < 1.0
            split_sentence = gap < JOIN_GAP_S and not _SENTENCE_END.search(cur.text)
            if (too_short or split_sentence) and cue.end - cur.start <= max_segment_s:
                cur.end = max(cur.end, cue.end)
                cur.text = f"{cur.text} {cue.text}"
                continue
        merged.append(Cue(cue.start, cue.end, cue.text))
    return merged


def segments_for_chunk(cues: list[Cue], chunk_start: float, duration: float) -> list[Segment]:
    out = []
    for cue in cues:
        rel_start, rel_end = cue.start - chunk_start, cue.end - chunk_start
        if rel_end <= 0 or rel_start >= duration:
            continue
        start, end = to_ms(max(0.0, rel_start), min(duration, rel_end), duration)
        if end > start:
            out.append(Segment(start, end, cue.text, ""))
    return out


def translation_for(cues: list[Cue], start: float, end: float) -> str:
    """The translated track's text for [start, end): the cues whose midpoint falls inside it, in order."""
    return " ".join(c.text for c in cues if start <= (c.start + c.end) / 2 < end)


class CaptionsEngine:
    name = "captions"

    def __init__(self, home: Path, translator=None, max_segment_s: float = MAX_SEGMENT_S) -> None:
        if max_segment_s < MIN_SEGMENT_S:
            raise ValueError(f"max segment length {max_segment_s:g} s: must be at least {MIN_SEGMENT_S:g} s")
        self.home = home
        self.max_segment_s = max_segment_s
        self.translator = translator  # optional MT: callable(list[str]) -> list[str]
        self._cache: dict[str, list[Cue]] = {}
        self._translations: dict[str, list[Cue]] = {}
        self._langs: dict[str, str] = {}

    def _read(self, rel: str) -> list[Cue]:
        path = self.home / rel
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise ChunkFailed(f"captions unreadable: {path.name}: {exc.strerror}") from None
        return merge_cues(parse_captions(text), self.max_segment_s)

    def _cues(self, job: ChunkJob) -> list[Cue]:
        if job.video_id not in self._cache:
            spoken = {k: v for k, v in job.captions.items() if not k.endswith(TRANSLATION_SUFFIX)}
            lang = next((lang for lang in LANG_PREFERENCE if lang in spoken), None)
            lang = lang or next(iter(sorted(spoken)), None)
            if lang is None:
                raise ChunkFailed("no captions stored for this video (ingest found none)")
            self._cache[job.video_id] = self._read(spoken[lang])
            self._langs[job.video_id] = lang
            track = next((v for k, v in sorted(job.captions.items()) if k.endswith(TRANSLATION_SUFFIX)), None)
            self._translations[job.video_id] = self._read(track) if track else []
        return self._cache[job.video_id]

    async def label(self, job: ChunkJob, run: Run) -> Labeled:
        if not job.audio_path.exists():
            raise ChunkFailed(f"chunk audio missing: {job.audio_path.name}")
        segments = segments_for_chunk(self._cues(job), job.start, job.duration)
        translated = self._translations.get(job.video_id)
        if translated:
            for seg in segments:
                seg.translation = translation_for(translated, job.start + seg.start, job.start + seg.end)
        elif self.translator is not None and segments:
            for seg, tr in zip(segments, self.translator([s.text for s in segments])):
                seg.translation = tr
        run.requests += 1
        return Labeled(segments, agent=f"captions:{self._langs.get(job.video_id, 'und')}")
