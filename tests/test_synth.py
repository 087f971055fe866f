"""The synthetic corpus: layout, exact truth, captions, determinism, and the bilingual text generator."""
from __future__ import annotations

import json
import random
import re
import shutil
import subprocess
import unicodedata
from pathlib import Path

import numpy as np
import pytest

from dataset_builder.foundation.text import looks_vietnamese
from dataset_builder.synth import (
    ENGLISH_VOCAB, PROPER_NOUNS, make_sentence, make_utterance, synthesize_corpus,
)

needs_media = pytest.mark.skipif(
    not (shutil.which("espeak-ng") and shutil.which("ffmpeg") and shutil.which("ffprobe")),
    reason="needs espeak-ng, ffmpeg and ffprobe (make setup installs them)",
)

WORD = re.compile(r"[\w'-]+")
VOCAB_WORDS = {w.lower() for phrase in ENGLISH_VOCAB for w in WORD.findall(phrase)}


def _is_nfc(text: str) -> bool:
    return unicodedata.normalize("NFC", text) == text


def ffprobe(path: Path) -> dict:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration:stream=codec_name,sample_rate,channels",
         "-of", "json", str(path)], capture_output=True, text=True, check=True).stdout
    info = json.loads(out)
    stream = info["streams"][0]
    return {"duration": float(info["format"]["duration"]), "codec": stream["codec_name"],
            "sample_rate": int(stream["sample_rate"]), "channels": int(stream["channels"])}


def decode_16k(path: Path) -> np.ndarray:
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-ac", "1", "-ar", "16000", "-f", "s16le", "-"],
                         capture_output=True, check=True).stdout
    return np.frombuffer(raw, dtype=np.int16).astype(np.float32) / 32768.0


def parse_vtt(text: str) -> list[tuple[float, float, str]]:
    def secs(ts: str) -> float:
        h, m, s = ts.split(":")
        return int(h) * 3600 + int(m) * 60 + float(s)

    assert text.startswith("WEBVTT")
    cues = []
    for block in text.strip().split("\n\n")[1:]:
        lines = block.split("\n")
        m = re.fullmatch(r"(\d\d:\d\d:\d\d\.\d{3}) --> (\d\d:\d\d:\d\d\.\d{3})", lines[0])
        assert m, f"bad cue timing line {lines[0]!r}"
        cues.append((secs(m.group(1)), secs(m.group(2)), "\n".join(lines[1:])))
    return cues


def load(out: Path) -> tuple[dict, list[dict]]:
    meta = json.loads((out / "videos.json").read_text(encoding="utf-8"))
    truth = [json.loads(line) for line in (out / "truth.jsonl").read_text(encoding="utf-8").splitlines()]
    return meta, truth


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "corpus"
    synthesize_corpus(out, videos=2, minutes=0.3, seed=11, channels=2, fmt="m4a", progress=False)
    return out


@needs_media
def test_layout_and_truth(tiny):
    meta, truth = load(tiny)
    assert meta["seed"] == 11 and len(meta["videos"]) == 2
    assert len({v["channel"] for v in meta["videos"]}) == 2
    ids = [v["video_id"] for v in meta["videos"]]
    order = {vid: i for i, vid in enumerate(ids)}
    for v in meta["videos"]:
        assert re.fullmatch(r"[A-Za-z0-9_-]{11}", v["video_id"])
        audio, vtt = tiny / v["file"], tiny / v["captions"]
        assert audio.exists() and vtt.exists() and audio.stem == vtt.stem == v["video_id"]
        assert audio.parent == vtt.parent and audio.parent.name.isascii()
        probe = ffprobe(audio)
        assert (probe["codec"], probe["sample_rate"], probe["channels"]) == ("aac", 44100, 2)
        assert abs(probe["duration"] - v["duration"]) < 0.1
        assert v["duration"] >= 0.3 * 60
        utts = [u for u in truth if u["video_id"] == v["video_id"]]
        assert utts, "every video has speech"
        for a, b in zip(utts, utts[1:]):
            assert a["end"] < b["start"], "sorted and non-overlapping"
        for u in utts:
            assert 0 < u["start"] < u["end"] <= probe["duration"]
            assert 1.5 - 1e-3 <= u["end"] - u["start"] <= 15 + 1e-3
            assert u["channel"] == v["channel"]
            assert u["start"] == round(u["start"], 3) and u["end"] == round(u["end"], 3)
    # truth is grouped by video in videos.json order
    keys = [(order[u["video_id"]], u["start"]) for u in truth]
    assert keys == sorted(keys)
    for u in truth:
        assert u["kind"] in ("cs", "vi", "en")
        assert _is_nfc(u["transcript"]) and _is_nfc(u["translation"])
        if u["kind"] == "vi":
            assert u["english_spans"] == [] and u["translation"] == u["transcript"]
        else:
            assert u["english_spans"]
        for s, e in u["english_spans"]:
            piece = u["transcript"][s:e]
            assert piece == piece.strip() and piece
            for w in WORD.findall(piece):
                assert w.isascii() or w.lower() in VOCAB_WORDS, (w, u["transcript"])


@needs_media
def test_captions_match_truth(tiny):
    meta, truth = load(tiny)
    for v in meta["videos"]:
        cues = parse_vtt((tiny / v["captions"]).read_text(encoding="utf-8"))
        utts = [u for u in truth if u["video_id"] == v["video_id"]]
        assert " ".join(c[2] for c in cues) == " ".join(u["transcript"] for u in utts)
        assert len(utts) <= len(cues) <= 2 * len(utts)
        assert cues[0][0] == utts[0]["start"] and cues[-1][1] == utts[-1]["end"]
        for a, b in zip(cues, cues[1:]):
            assert a[0] < a[1] <= b[0]


def _check_energy(audio: np.ndarray, utts: list[dict]) -> None:
    """Speech inside every truth interval, near-silence just outside it: the times are tight and right."""
    sr = 16000

    def rms(a: float, b: float) -> float:
        seg = audio[max(0, int(a * sr)): max(0, int(b * sr))]
        return float(np.sqrt(np.mean(seg**2))) if seg.size else 0.0

    for u in utts:
        inside = rms(u["start"], u["end"])
        before = rms(u["start"] - 0.25, u["start"] - 0.04)
        after = rms(u["end"] + 0.04, u["end"] + 0.25)
        assert inside > 0.02, u
        assert before < inside / 20 and after < inside / 20, (u, inside, before, after)
        # tight: sound right at both edges (first/last 80 ms), not padding
        assert rms(u["start"], u["start"] + 0.08) > 5 * before, u
        assert rms(u["end"] - 0.08, u["end"]) > 5 * after, u


@needs_media
def test_audio_energy_follows_truth(tiny):
    meta, truth = load(tiny)
    for v in meta["videos"]:
        _check_energy(decode_16k(tiny / v["file"]), [u for u in truth if u["video_id"] == v["video_id"]])


@needs_media
def test_deterministic_and_parallel_identical(tiny, tmp_path):
    again = tmp_path / "again"
    synthesize_corpus(again, videos=2, minutes=0.3, seed=11, channels=2, fmt="m4a", jobs=2, progress=False)
    for name in ("truth.jsonl", "videos.json"):
        assert (again / name).read_bytes() == (tiny / name).read_bytes()
    meta, _ = load(tiny)
    for v in meta["videos"]:
        assert (again / v["file"]).read_bytes() == (tiny / v["file"]).read_bytes()
        assert (again / v["captions"]).read_bytes() == (tiny / v["captions"]).read_bytes()
    other = tmp_path / "other"
    synthesize_corpus(other, videos=2, minutes=0.3, seed=12, channels=2, fmt="m4a", progress=False)
    assert (other / "truth.jsonl").read_bytes() != (tiny / "truth.jsonl").read_bytes()
    assert load(other)[0]["videos"][0]["video_id"] != meta["videos"][0]["video_id"]


@needs_media
def test_webm(tmp_path):
    meta = synthesize_corpus(tmp_path, videos=1, minutes=0.15, seed=3, channels=1, fmt="webm", progress=False)
    v = meta["videos"][0]
    assert v["format"] == "webm" and v["file"].endswith(".webm")
    probe = ffprobe(tmp_path / v["file"])
    assert (probe["codec"], probe["sample_rate"], probe["channels"]) == ("opus", 48000, 2)
    _, truth = load(tmp_path)
    assert all(u["end"] <= probe["duration"] for u in truth)
    _check_energy(decode_16k(tmp_path / v["file"]), truth)


@needs_media
def test_bad_format(tmp_path):
    with pytest.raises(ValueError):
        synthesize_corpus(tmp_path, videos=1, minutes=0.1, seed=0, fmt="mp3", progress=False)


# ---------------------------------------------------------------------------------------------------------
# the text generator (no audio)


def test_lexicon_sentences():
    rng = random.Random(2024)
    kinds = {"cs": 0, "vi": 0, "en": 0}
    for _ in range(500):
        transcript, translation, spans, kind = make_sentence(rng)
        kinds[kind] += 1
        assert _is_nfc(transcript) and _is_nfc(translation)
        assert transcript == transcript.strip() and "  " not in transcript
        if kind == "cs":
            assert spans and all(transcript[s:e].strip() for s, e in spans)
            outside = list(transcript)
            for s, e in spans:
                outside[s:e] = " " * (e - s)
            assert any(looks_vietnamese(w) for w in WORD.findall("".join(outside))), transcript
            # every word outside the spans is Vietnamese
            for w in WORD.findall("".join(outside)):
                assert looks_vietnamese(w), (w, transcript)
        # spans are sorted, disjoint, in range
        for (s1, e1), (s2, e2) in zip(spans, spans[1:]):
            assert e1 < s2
        assert all(0 <= s < e <= len(transcript) for s, e in spans)
        # the translation is all Vietnamese, bar proper nouns
        for w in WORD.findall(translation):
            assert looks_vietnamese(w) or w in PROPER_NOUNS, (w, translation)
    assert kinds["cs"] > 300 and kinds["vi"] > 40 and kinds["en"] > 40


def test_utterances_join_sentences():
    rng = random.Random(77)
    multi = 0
    for _ in range(300):
        transcript, translation, spans, kind = make_utterance(rng, persona="em")
        multi += ", " in transcript
        assert all(transcript[s:e].isascii() and transcript[s:e].strip() == transcript[s:e] for s, e in spans)
        assert all(e1 < s2 for (_, e1), (s2, _) in zip(spans, spans[1:]))
        assert (kind == "vi") == (not spans)
        if kind == "en":
            assert not any(looks_vietnamese(w) and not w.isascii() for w in WORD.findall(transcript))
    assert multi > 50


def test_lexicon_deterministic_and_kinds():
    a = [make_sentence(random.Random(5)) for _ in range(3)]
    b = [make_sentence(random.Random(5)) for _ in range(3)]
    assert a == b
    rng = random.Random(9)
    assert make_sentence(rng, "en")[3] == "en"
    t, tr, spans, kind = make_sentence(rng, "vi")
    assert kind == "vi" and t == tr and spans == []
    assert make_sentence(rng, "cs")[3] == "cs"
    with pytest.raises(ValueError):
        make_sentence(rng, "fr")


def test_vocab_and_orthography():
    assert len(ENGLISH_VOCAB) >= 150
    assert ENGLISH_VOCAB["meeting"] == "cuộc họp" and ENGLISH_VOCAB["deadline"] == "hạn chót"
    assert "by the way" in ENGLISH_VOCAB and "work from home" in ENGLISH_VOCAB
    for w in ("mình", "nghiêng", "quá", "giữa", "khuya", "được", "Sài", "xoong"):
        assert looks_vietnamese(w), w
    for w in ("team", "meeting", "hot", "deadline", "check", "app", "OT", "KPI", "chill", "vibe"):
        assert not looks_vietnamese(w), w
