"""A synthetic YouTube: code-switched podcast "videos" with WebVTT captions and exact ground truth.

The factory downstream (ingest, chunking, pre-labels, export) can then be tested end to end offline,
against truth it never sees: ``truth.jsonl`` holds every utterance's tight times, transcript,
translation and English spans. Each video draws from its own ``random.Random(f"{seed}:{index}")``, so
videos can be rendered in any order, in parallel, and still come out byte-identical.
"""
from __future__ import annotations

import base64
import hashlib
import json
import multiprocessing
import random
import re
import unicodedata
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..foundation.atomic import remove_stale_temps, write_text_atomic
from .lexicon import VOCAB, _draw_kind, make_utterance, nfc
from .speech import SR, FORMATS, Host, encode, music, render_sentence

CHANNEL_NAMES = [
    "Cà Phê Tech", "Startup Sài Gòn", "Chuyện Công Sở", "Hà Nội Podcast", "Gen Z Nói Gì", "Deep Talk Cùng Mình",
    "Tiền Ơi Đừng Đi", "Sống Chậm Sài Gòn", "Code Dạo", "Marketing Không Khó", "Đi Làm Vui Vẻ", "Healthy Cùng Vy",
    "Review Dạo", "Chill Cùng Tụi Mình", "Nói Chuyện Nghề", "Góc Nhỏ Của Linh", "Tám Chuyện Tech",
    "Freelancer Việt", "Career Talk Việt Nam", "Một Ngày Của Dev",
]
MIN_UTTERANCE, MAX_UTTERANCE = 1.5, 15.0
P_LONG_GAP = 1 / 15
P_SPLIT_CUE = 0.3


def video_id(seed: int, index: int) -> str:
    """11 URL-safe base64 characters, like a YouTube id, fixed by (seed, index)."""
    digest = hashlib.sha1(f"vecs-synth:{seed}:{index}".encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()[:11]


def slugify(name: str) -> str:
    text = unicodedata.normalize("NFD", name.replace("Đ", "D").replace("đ", "d"))
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-") or "channel"


def channel_names(seed: int, count: int) -> list[str]:
    names = list(CHANNEL_NAMES)
    random.Random(f"{seed}:channels").shuffle(names)
    out = []
    for i in range(count):
        base = names[i % len(names)]
        out.append(base if i < len(names) else f"{base} {i // len(names) + 1}")
    return out


def _en(cls: str, rng: random.Random) -> str:
    surface = rng.choice([s for s, _ in VOCAB[cls] if s is not None])
    return surface.replace("[", "").replace("]", "")


def make_title(rng: random.Random, channel: str, episode: int) -> str:
    """A plausible code-switched podcast/vlog title."""
    templates = [
        lambda: f"{_en('TOPIC', rng)} cho người mới bắt đầu | {channel} #{episode}",
        lambda: f"Chuyện {_en('WORK', rng)} và {_en('EVENT', rng)} ở công ty {rng.choice(['startup', 'nước ngoài', 'agency'])}",
        lambda: f"Review {_en('PRODUCT', rng)} sau một tháng sử dụng",
        lambda: f"Một ngày {rng.choice(['work from home', 'làm remote', 'đi làm'])} của mình | Vlog #{episode}",
        lambda: f"Có nên làm {_en('JOB', rng)} năm nay không? | Tập {episode}",
        lambda: f"Làm sao để bớt {_en('ADJ_NEG', rng)} khi {_en('WORK', rng)} dồn dập?",
        lambda: f"{rng.choice(['5', '7', '10'])} tips {_en('TOPIC', rng)} mình ước biết sớm hơn",
        lambda: f"Tám chuyện {_en('TOPIC', rng)} cùng {rng.choice(['một founder', 'một CEO', 'một KOL', 'chị manager'])}",
        lambda: f"Mình đã tăng {_en('METRIC', rng)} gấp đôi như thế nào? | {channel}",
        lambda: f"{_en('GAIN', rng).capitalize()} quan trọng hơn bằng cấp? | Tập {episode}",
        lambda: f"Deep talk: {_en('ADJ_NEG', rng)}, deadline và work-life balance",
    ]
    return nfc(rng.choice(templates)())


def format_ts(seconds: float) -> str:
    ms = int(round(seconds * 1000))
    h, rem = divmod(ms, 3_600_000)
    m, rem = divmod(rem, 60_000)
    s, ms = divmod(rem, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


TRANSLATION_TRACK = "vi-x-translation"  # BCP-47 private use: Vietnamese, the translation of the spoken words


def make_vtt(utterances: list[dict], rng: random.Random, field: str = "transcript") -> str:
    """One cue per utterance; some long ones split in two at a word boundary, as YouTube captions do.
    ``field="translation"`` writes the translated track (a creator's or YouTube's translated subtitles)."""
    lines = ["WEBVTT", "Kind: captions", "Language: vi", ""]
    for u in utterances:
        start, end, text = u["start"], u["end"], u[field]
        words = text.split(" ")
        cues = [(start, end, text)]
        if end - start > 6.0 and len(words) >= 6 and rng.random() < P_SPLIT_CUE:
            k = len(words) // 2 + rng.randint(-1, 1)
            first, second = " ".join(words[:k]), " ".join(words[k:])
            mid = round(start + (end - start) * (len(first) + 1) / (len(text) + 1), 3)
            cues = [(start, mid, first), (mid, end, second)]
        for s, e, t in cues:
            lines += [f"{format_ts(s)} --> {format_ts(e)}", t, ""]
    return "\n".join(lines)


@dataclass(frozen=True)
class VideoJob:
    seed: int
    index: int
    minutes: float
    channel: str
    host: Host
    fmt: str
    out_dir: str
    episode: int


def _speak_utterance(rng: random.Random, host: Host, persona: str) -> tuple[tuple, np.ndarray]:
    """An utterance whose rendering lasts 1.5-15 s. The kind is drawn once, so that short English lines
    being retried does not skew the cs/vi/en mix; retries come from the same RNG, hence deterministic."""
    kind = _draw_kind(rng)
    for _ in range(50):
        sentence = make_utterance(rng, kind, persona)
        audio = render_sentence(sentence[0], sentence[2], host, rng)
        if MIN_UTTERANCE <= audio.size / SR <= MAX_UTTERANCE:
            return sentence, audio
    return sentence, audio[: int(MAX_UTTERANCE * SR)]  # pragma: no cover - astronomically unlikely


def synthesize_video(job: VideoJob) -> dict:
    """Render one video: audio file, VTT sidecar; returns its videos.json entry and its utterances."""
    rng = random.Random(f"{job.seed}:{job.index}")
    vid = video_id(job.seed, job.index)
    host = job.host.varied(rng) if rng.random() < 0.75 else Host.pick(rng)  # a guest now and then
    title = make_title(rng, job.channel, job.episode)
    persona = rng.choice(("mình", "mình", "em", "tui"))
    target = int(job.minutes * 60 * SR)

    placed: list[tuple[int, np.ndarray]] = []
    utterances: list[dict] = []
    cursor = int(rng.uniform(0.4, 1.2) * SR)
    if rng.random() < 0.35:  # intro jingle
        jingle = music(rng, rng.uniform(2.0, 4.0))
        placed.append((cursor, jingle))
        cursor += jingle.size + int(rng.uniform(0.3, 0.8) * SR)
    while True:
        (transcript, translation, spans, kind), audio = _speak_utterance(rng, host, persona)
        placed.append((cursor, audio))
        utterances.append({
            "video_id": vid, "channel": job.channel,
            "start": round(cursor / SR, 3), "end": round((cursor + audio.size) / SR, 3),
            "transcript": transcript, "translation": translation, "english_spans": spans, "kind": kind,
        })
        cursor += audio.size
        if cursor >= target:
            break
        if rng.random() < P_LONG_GAP:  # interlude: music or dead air, with a breath either side
            cursor += int(rng.uniform(0.3, 0.6) * SR)
            if rng.random() < 0.6:
                bed = music(rng, rng.uniform(3.0, 6.0))
                placed.append((cursor, bed))
                cursor += bed.size
            else:
                cursor += int(rng.uniform(2.0, 4.0) * SR)
            cursor += int(rng.uniform(0.3, 0.6) * SR)
        else:
            cursor += int(rng.uniform(0.3, 1.5) * SR)
    total = cursor + int(rng.uniform(0.6, 1.5) * SR)

    timeline = np.random.default_rng(rng.getrandbits(63)).normal(0.0, 6e-4, total).astype(np.float32)
    for offset, piece in placed:
        timeline[offset: offset + piece.size] += piece
    np.clip(timeline, -1.0, 1.0, out=timeline)

    out_dir = Path(job.out_dir)
    rel_audio = f"{slugify(job.channel)}/{vid}.{job.fmt}"
    rel_vtt = f"{slugify(job.channel)}/{vid}.vtt"
    encode(timeline, out_dir / rel_audio, job.fmt, metadata={"title": title, "artist": job.channel})
    write_text_atomic(out_dir / rel_vtt, make_vtt(utterances, rng))
    # the Vietnamese translation as a second subtitle track, named as yt-dlp names a language variant
    write_text_atomic(out_dir / f"{slugify(job.channel)}/{vid}.{TRANSLATION_TRACK}.vtt",
                      make_vtt(utterances, random.Random(f"{vid}:translation"), field="translation"))
    meta = {
        "video_id": vid, "channel": job.channel, "title": title, "file": rel_audio, "captions": rel_vtt,
        "duration": round(total / SR, 3), "format": job.fmt,
    }
    return {"meta": meta, "utterances": utterances}


def synthesize_corpus(
    out_dir: str | Path,
    videos: int,
    minutes: float,
    seed: int,
    channels: int = 2,
    fmt: str = "m4a",
    jobs: int = 1,
    progress: bool = True,
) -> dict:
    """Write ``videos`` synthetic videos of ~``minutes`` each under ``out_dir``; return videos.json's content.

    Same arguments, same seed: identical truth.jsonl and videos.json (and audio bytes, ffmpeg permitting),
    whatever ``jobs`` is.
    """
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {sorted(FORMATS)}, not {fmt!r}")
    if videos < 1 or channels < 1 or minutes <= 0:
        raise ValueError("videos, channels and minutes must be positive")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(out)
    names = channel_names(seed, min(channels, videos))
    hosts = [Host.pick(random.Random(f"{seed}:host:{k}")) for k in range(len(names))]
    work = [
        VideoJob(seed=seed, index=i, minutes=minutes, channel=names[i % len(names)], host=hosts[i % len(names)],
                 fmt=fmt, out_dir=str(out), episode=i // len(names) + 1)
        for i in range(videos)
    ]

    results: list[dict | None] = [None] * videos
    bar = tqdm(total=videos, unit="video", desc="synth", disable=not progress)
    try:
        if jobs <= 1 or videos == 1:
            for i, job in enumerate(work):
                results[i] = synthesize_video(job)
                bar.update()
        else:
            # spawn, not fork: the caller may hold threads (tqdm's monitor, a UI) and forking them can deadlock
            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=min(jobs, videos), mp_context=ctx) as pool:
                futures = {pool.submit(synthesize_video, job): i for i, job in enumerate(work)}
                for fut in as_completed(futures):
                    results[futures[fut]] = fut.result()
                    bar.update()
    finally:
        bar.close()

    truth_lines = [
        json.dumps(u, ensure_ascii=False)
        for r in results
        for u in sorted(r["utterances"], key=lambda u: u["start"])
    ]
    write_text_atomic(out / "truth.jsonl", "\n".join(truth_lines) + "\n")
    content = {"seed": seed, "videos": [r["meta"] for r in results]}
    write_text_atomic(out / "videos.json", json.dumps(content, ensure_ascii=False, indent=2) + "\n")
    return content

