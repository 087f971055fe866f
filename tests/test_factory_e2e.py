"""Synthetic corpus → ingest (yt-dlp, file://) → captions pre-labels, checked against the ground truth."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
from sqlalchemy import select

from conftest import run_vecs, synthetic_corpus
from dataset_builder.foundation.audio import load_audio
from dataset_builder.store import Chunk, Video, session_scope


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return synthetic_corpus(tmp_path_factory, "corpus", videos=2, minutes=5.3, seed=11)


def test_synth_ingest_prelabel_matches_truth(settings, corpus):
    proc = run_vecs("ingest", corpus.as_uri(), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert run_vecs("prelabel", "--engine", "captions", "--no-progress").returncode == 0
    meta = json.loads((corpus / "videos.json").read_text())
    truth = [json.loads(line) for line in (corpus / "truth.jsonl").read_text().splitlines()]
    with session_scope(settings) as s:
        videos = {v.video_id: v for v in s.scalars(select(Video)).all()}
        assert set(videos) == {v["video_id"] for v in meta["videos"]}
        for v in meta["videos"]:
            video = videos[v["video_id"]]
            assert video.channel.name == v["channel"] and video.title == v["title"]
            assert len(video.chunks) == 2  # > 305 s of audio: two chunks
            # the normalized audio is the source's timeline: same length, chunks cut from it exactly
            assert abs(video.duration - v["duration"]) < 0.05
            full, _ = sf.read(str(settings.home / video.audio_path), dtype="int16")
            for c in video.chunks:
                data, _ = sf.read(str(settings.home / c.audio_path), dtype="int16")
                assert np.array_equal(data, full[c.start_sample:c.end_sample])
        # every true utterance is pre-labeled at its absolute time (some twice, in the overlap; short ones merged
    # with a neighbour into a >= 2 s segment)
        segs = [(seg.chunk.video.video_id, seg.abs_start, seg.abs_end, seg.text, seg.translation)
                for c in s.scalars(select(Chunk)).all() for seg in c.segments]
    for u in truth:
        hits = [x for x in segs if x[0] == u["video_id"] and u["transcript"] in x[3]]
        assert hits, f"utterance missing: {u['transcript']!r}"
        # the translated subtitle track gives each segment its Vietnamese translation, paired by time
        assert any(u["translation"] in x[4] for x in hits), f"translation missing: {u['translation']!r}"
        # one straddling a chunk edge is clipped in each chunk; together they cover it
        assert min(x[1] for x in hits) <= u["start"] + 0.01 and max(x[2] for x in hits) >= u["end"] - 0.01
    # speech really is where the truth says it is, in the ingested (resampled) audio too
    u = truth[len(truth) // 2]
    video = meta["videos"][[v["video_id"] for v in meta["videos"]].index(u["video_id"])]
    audio = load_audio(settings.home / "audio" / f"{video['video_id']}.flac")
    inside = audio[int(u["start"] * 16000):int(u["end"] * 16000)]
    assert np.sqrt(np.mean(inside**2)) > 0.01
