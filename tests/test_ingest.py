"""Ingestion: exact chunks, idempotency, bad input, resume after kill -9."""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
from sqlalchemy import func, select

from conftest import make_m4a, make_wav, run_vecs, wait_for
from dataset_builder.foundation.atomic import TMP_MARK
from dataset_builder.ingest import chunk_spans, ingest
from dataset_builder.store import Chunk, Video, session_scope

SR = 16000


def _expected_spans(seconds: float) -> list[tuple[int, int]]:
    """The rule, restated independently: chunk k>0 exists while audio runs past the previous overlap."""
    n = int(round(seconds * SR))
    starts = [0] + [k * 300 * SR for k in range(1, n // (300 * SR) + 1) if n - k * 300 * SR > 5 * SR]
    return [(s, min(s + 305 * SR, n)) for s in starts]


@pytest.mark.parametrize(
    "seconds,expected",
    [
        (299, [(0, 299)]),
        (300, [(0, 300)]),
        (305, [(0, 305)]),
        (305.5, [(0, 305), (300, 305.5)]),
        (600, [(0, 305), (300, 600)]),
        (601, [(0, 305), (300, 601)]),
        (905, [(0, 305), (300, 605), (600, 905)]),
        (906, [(0, 305), (300, 605), (600, 905), (900, 906)]),
    ],
)
def test_chunk_geometry(seconds, expected):
    spans = chunk_spans(int(seconds * SR), SR)
    assert [(s.start_sample / SR, s.end_sample / SR) for s in spans] == expected
    assert [s.is_last for s in spans] == [False] * (len(spans) - 1) + [True]


def test_chunk_geometry_invariants():
    for n in [1, 5 * SR, 300 * SR - 1, 300 * SR + 1, 305 * SR + 1, 3600 * SR + 12345, 7 * 300 * SR]:
        spans = chunk_spans(n, SR)
        assert spans[0].start_sample == 0 and spans[-1].end_sample == n
        for k, s in enumerate(spans):
            assert s.index == k and s.start_sample == 300 * SR * k
            assert 0 < s.end_sample - s.start_sample <= 305 * SR
        for a, b in zip(spans, spans[1:]):  # contiguous coverage with exactly 5 s of overlap
            assert a.end_sample - b.start_sample == 5 * SR


@pytest.mark.parametrize("seconds", [299, 300, 305, 600, 601])
def test_chunks_exact_to_the_sample(settings, tmp_path, seconds):
    """16 kHz PCM passes through normalization untouched, so chunks must equal slices of the source."""
    src = tmp_path / "src" / f"v{seconds}.wav"
    original = make_wav(src, seconds, seed=seconds)
    [outcome] = ingest([str(src)], settings=settings, progress=False)
    assert outcome.status == "ingested", outcome.message
    full, sr = sf.read(str(settings.home / "audio" / f"v{seconds}.flac"), dtype="int16")
    assert sr == SR and np.array_equal(full, original)
    with session_scope(settings) as s:
        video = s.scalar(select(Video).where(Video.video_id == f"v{seconds}"))
        assert video.num_samples == len(original) and video.duration == seconds
        chunks = list(video.chunks)
        got = [(c.start_sample, c.end_sample) for c in chunks]
        assert got == _expected_spans(seconds)
        assert chunks[-1].is_last and not any(c.is_last for c in chunks[:-1])
        for c in chunks:
            data, _ = sf.read(str(settings.home / c.audio_path), dtype="int16")
            assert np.array_equal(data, original[c.start_sample : c.end_sample]), f"chunk {c.index}"


def test_aac_source_normalized_and_cut_exactly(settings, tmp_path):
    src = make_m4a(tmp_path / "src" / "talk.m4a", 310)
    [outcome] = ingest([str(src)], settings=settings, progress=False)
    assert outcome.status == "ingested", outcome.message
    info = sf.info(str(settings.home / "audio" / "talk.flac"))
    assert info.samplerate == SR and info.channels == 1
    assert abs(info.frames / SR - 310) < 0.1
    full, _ = sf.read(str(settings.home / "audio" / "talk.flac"), dtype="int16")
    with session_scope(settings) as s:
        chunks = s.scalars(select(Chunk).order_by(Chunk.index)).all()
        assert [c.start_sample for c in chunks] == [0, 300 * SR]
        assert chunks[0].end_sample == 305 * SR and chunks[1].end_sample == len(full)
        for c in chunks:
            data, _ = sf.read(str(settings.home / c.audio_path), dtype="int16")
            assert np.array_equal(data, full[c.start_sample : c.end_sample])


def test_idempotent_and_duplicates(settings, tmp_path):
    src = tmp_path / "src"
    make_wav(src / "a.wav", 20, seed=1)
    make_wav(src / "b.wav", 20, seed=2)
    first = ingest([str(src)], settings=settings, progress=False)
    assert [o.status for o in first] == ["ingested", "ingested"]
    mtimes = sorted(p.stat().st_mtime_ns for p in (settings.home / "chunks").rglob("*.flac"))
    again = ingest([str(src), (src / "a.wav").as_uri()], settings=settings, progress=False)
    assert {o.status for o in again} == {"skipped"}
    assert sorted(p.stat().st_mtime_ns for p in (settings.home / "chunks").rglob("*.flac")) == mtimes
    # The same bytes under another name are a duplicate, reported and not ingested.
    (src / "copy").mkdir()
    (src / "copy" / "a_again.wav").write_bytes((src / "a.wav").read_bytes())
    [dup] = ingest([str(src / "copy" / "a_again.wav")], settings=settings, progress=False)
    assert dup.status == "failed" and "duplicate of video a" in dup.message
    with session_scope(settings) as s:
        assert s.scalar(select(func.count(Video.id))) == 2
        assert s.scalar(select(func.count(Chunk.id))) == 2


def test_same_name_in_two_folders_gets_distinct_ids(settings, tmp_path):
    make_wav(tmp_path / "x" / "ep1.wav", 3, seed=3)
    make_wav(tmp_path / "y" / "ep1.wav", 3, seed=4)
    outcomes = ingest([str(tmp_path / "x"), str(tmp_path / "y")], settings=settings, progress=False)
    ids = [o.video_id for o in outcomes]
    assert [o.status for o in outcomes] == ["ingested", "ingested"]
    assert ids[0] == "ep1" and ids[1].startswith("ep1-") and len(set(ids)) == 2


def _bad_inputs(d):
    make_m4a(d / "good.m4a", 12)
    (d / "empty.m4a").write_bytes(b"")
    (d / "garbage.m4a").write_bytes(random.Random(5).randbytes(50_000))  # seeded: some random bytes parse as a stream
    (d / "notes.mp3").write_text("this is not audio\n" * 100)
    full = make_m4a(d / "tmp_full.m4a", 60, freq=660).read_bytes()
    (d / "truncated.m4a").write_bytes(full[: len(full) // 2])
    (d / "tmp_full.m4a").unlink()
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "anullsrc=d=4", "-ac", "2", "-ar", "44100",
                    "-c:a", "aac", str(d / "silent.m4a")], check=True)
    return d


def test_bad_input_one_line_each_others_ingested(settings, tmp_path):
    d = _bad_inputs(tmp_path / "in")
    missing = tmp_path / "does-not-exist.m4a"
    unreachable = "https://video.invalid/watch?v=abc"  # no network here, and .invalid never resolves
    proc = run_vecs("ingest", str(d), str(missing), unreachable, "--no-progress")
    assert proc.returncode == 1
    failed = [ln for ln in proc.stderr.splitlines() if ln.startswith("FAILED")]
    reasons = {
        "empty.m4a": "empty file",
        "garbage.m4a": "not readable media",
        "notes.mp3": "not readable media",
        "truncated.m4a": "",  # truncated AAC: "partial file" or a duration mismatch, both name the file
        "silent.m4a": "silent audio",
        "does-not-exist.m4a": "no such file",
        "video.invalid": "cannot be reached",
    }
    assert len(failed) == len(reasons), proc.stderr
    for name, reason in reasons.items():
        line = next((ln for ln in failed if name in ln), None)
        assert line is not None, f"{name} not reported:\n{proc.stderr}"
        assert reason in line
        assert "Traceback" not in proc.stderr
    assert "ingested good" in proc.stderr
    # Nothing half-written: only the good video's files exist, no temp files anywhere.
    assert sorted(p.name for p in (settings.home / "audio").iterdir()) == ["good.flac"]
    assert sorted(p.name for p in (settings.home / "chunks").iterdir()) == ["good"]
    assert not list(settings.home.rglob(TMP_MARK + "*"))
    assert not list((settings.home / "downloads").iterdir())
    with session_scope(settings) as s:
        assert s.scalars(select(Video.video_id)).all() == ["good"]


def test_truncated_media_detected_by_duration(tmp_path):
    """Where the decoder does not complain, the duration check still rejects a short decode."""
    from dataset_builder.foundation.audio import MediaError, check_duration

    check_duration(300.02, 300.0, "ok.m4a")
    with pytest.raises(MediaError, match=r"t\.m4a: truncated or corrupt \(decoded 150\.00 s, container says 300\.00 s\)"):
        check_duration(150.0, 300.0, "t.m4a")


def test_captions_sidecar_stored(settings, tmp_path):
    make_wav(tmp_path / "talk.wav", 4, seed=5)
    (tmp_path / "talk.vtt").write_text("WEBVTT\n\n00:00:00.000 --> 00:00:02.000\nxin chào team\n", encoding="utf-8")
    (tmp_path / "talk.en.srt").write_text("1\n00:00:00,000 --> 00:00:02,000\nhello team\n", encoding="utf-8")
    [o] = ingest([str(tmp_path / "talk.wav")], settings=settings, progress=False)
    assert o.status == "ingested"
    with session_scope(settings) as s:
        video = s.scalar(select(Video))
        assert set(video.captions) == {"und", "en"}
        assert "xin chào team" in (settings.home / video.captions["und"]).read_text(encoding="utf-8")


def test_resume_after_kill_9(settings, tmp_path):
    src = tmp_path / "src"
    originals = {f"long{i}": make_wav(src / f"long{i}.wav", 640, seed=10 + i) for i in range(3)}
    cmd = [sys.executable, "-m", "dataset_builder.cli", "ingest", str(src), "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # Kill while the second video is being written: the first is committed, the second is half-done.
    hit = wait_for(lambda: (settings.home / "audio" / "long1.flac").exists()
                   or any((settings.home / "audio").glob(f"{TMP_MARK}*long1*")), timeout=120, interval=0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert hit, "ingest never reached the second video"
    with session_scope(settings) as s:
        committed = set(s.scalars(select(Video.video_id)).all())
    assert "long2" not in committed
    again = run_vecs("ingest", str(src), "--no-progress")
    assert again.returncode == 0, again.stderr
    with session_scope(settings) as s:
        videos = s.scalars(select(Video).order_by(Video.video_id)).all()
        assert [v.video_id for v in videos] == ["long0", "long1", "long2"]
        assert s.scalar(select(func.count(Chunk.id))) == 3 * len(_expected_spans(640))
        for v in videos:
            for c in v.chunks:
                data, _ = sf.read(str(settings.home / c.audio_path), dtype="int16")
                assert np.array_equal(data, originals[v.video_id][c.start_sample : c.end_sample])
    assert not list(settings.home.rglob(TMP_MARK + "*")), "temp files left behind"


def test_status_json_reports_chunks(settings, tmp_path):
    make_wav(tmp_path / "a" / "v1.wav", 601, seed=7)
    make_wav(tmp_path / "a" / "v2.wav", 30, seed=8)
    assert run_vecs("ingest", str(tmp_path / "a"), "--channel", "Cà Phê Tech", "--no-progress").returncode == 0
    proc = run_vecs("status", "--json")
    data = json.loads(proc.stdout)
    assert data["totals"]["videos"] == 2 and data["totals"]["chunks"]["pending"] == 3
    assert abs(data["totals"]["hours"] - 631 / 3600) < 1e-3
    [ch] = data["channels"]
    assert ch["name"] == "Cà Phê Tech"
    assert {v["video_id"]: v["chunk_count"] for v in ch["video_list"]} == {"v1": 2, "v2": 1}
    human = run_vecs("status", "--videos")
    assert human.returncode == 0 and "Cà Phê Tech" in human.stdout and "v1" in human.stdout
