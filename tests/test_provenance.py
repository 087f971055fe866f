"""Real sources and real publishing: what yt-dlp reports about YouTube support (offline, from its own verbose
header), provenance and licenses from a source's metadata to the dataset's columns and card, Creative-Commons-only
ingest, and a takedown that leaves nothing of a recording behind."""
from __future__ import annotations

import asyncio
import shutil

import datasets
import pytest
import yaml

from conftest import run_vecs, synthetic_corpus

YOUTUBE_CC = {  # the fields yt-dlp's YouTube extractor reports, for a Creative Commons video
    "id": "dQw4w9WgXcQ", "extractor_key": "Youtube", "extractor": "youtube", "title": "Chuyện team và meeting",
    "license": "Creative Commons Attribution license (reuse allowed)", "uploader": "Cà Phê Tech",
    "upload_date": "20250312", "channel_id": "UC1234567890abcdefghijkl",
    "channel_url": "https://www.youtube.com/channel/UC1234567890abcdefghijkl?si=SECRETSHARE&token=abc",
    "channel": "Cà Phê Tech", "webpage_url": "https://www.youtube.com/watch?v=dQw4w9WgXcQ",
}


def test_yt_dlp_reports_the_js_runtime_and_ejs_it_found(tmp_path):
    proc = run_vecs("ingest", "--check")
    assert proc.returncode == 0, proc.stderr
    assert "JS runtime: deno-" in proc.stdout and "EJS: yt_dlp_ejs-" in proc.stdout  # yt-dlp's own -v lines
    proc = run_vecs("ingest", "--check", env={"VECS_JS_RUNTIME": "none"})
    assert proc.returncode == 1 and "JS runtime: none" in proc.stdout
    assert "YouTube needs a JavaScript runtime for yt-dlp and none was found: pip install deno" in proc.stderr
    # a YouTube source without a runtime fails at once, in one line, before any network call
    proc = run_vecs("ingest", "https://www.youtube.com/watch?v=dQw4w9WgXcQ", "--no-progress",
                    env={"VECS_JS_RUNTIME": "none", "VECS_HOME": str(tmp_path / "home")})
    failed = [line for line in proc.stderr.splitlines() if line.startswith("FAILED")]
    assert proc.returncode == 1 and len(failed) == 1 and "needs a JavaScript runtime" in failed[0]


def test_creative_commons_is_read_from_what_the_source_reports():
    from dataset_builder.ingest.fetch import is_creative_commons

    assert is_creative_commons(YOUTUBE_CC) is True
    assert is_creative_commons({**YOUTUBE_CC, "license": None}) is False  # YouTube's standard license
    assert is_creative_commons({"extractor_key": "Generic"}) is None  # unknown: a local file, most sites


@pytest.fixture
def youtube_like_export(settings, tmp_path_factory, tmp_path):
    """A synthetic video ingested as if yt-dlp had downloaded it from YouTube (its info dict, its captions),
    pre-labeled from the captions and exported."""
    from dataset_builder.ingest.fetch import Downloaded, SourceEntry
    from dataset_builder.ingest.pipeline import _process
    from dataset_builder.prelabel.captions import CaptionsEngine
    from dataset_builder.prelabel.runner import run_engine

    corpus = synthetic_corpus(tmp_path_factory, "yt-corpus", videos=1, minutes=0.8, seed=4)
    media = next(corpus.rglob("*.m4a"))
    work = tmp_path / "download"
    work.mkdir()
    shutil.copy(media, work / "media.m4a")
    shutil.copy(media.with_suffix(".vtt"), work / "media.vi.vtt")
    url = YOUTUBE_CC["webpage_url"]
    got = Downloaded(work / "media.m4a", dict(YOUTUBE_CC), {"vi": work / "media.vi.vtt"})
    outcome = _process(SourceEntry(url, url), got, None, settings, lambda *a: None, [], [])
    assert outcome.status == "ingested", outcome.message
    assert asyncio.run(run_engine(CaptionsEngine(settings.home), settings, progress=False)).done >= 1
    return settings


def test_provenance_reaches_the_dataset_and_the_card_names_the_license(youtube_like_export, tmp_path):
    from dataset_builder.store import Video, session_scope

    with session_scope(youtube_like_export) as s:
        video = s.query(Video).one()
        assert (video.license, video.uploader, video.upload_date, video.channel_ref) == (
            YOUTUBE_CC["license"], "Cà Phê Tech", "20250312", "UC1234567890abcdefghijkl")
        assert "SECRETSHARE" not in (video.channel_url or "")  # stored without share tokens
    out = tmp_path / "export"
    proc = run_vecs("export", str(out), "--config", "prelabeled", "--splits", "100/0/0", "--no-progress",
                    env={"VECS_HOME": str(youtube_like_export.home)})
    assert proc.returncode == 0, proc.stderr
    rows = datasets.load_dataset("parquet", data_files=str(out / "data" / "prelabeled" / "train-*.parquet"),
                                 split="train")
    row = rows[0]
    assert row["license"] == YOUTUBE_CC["license"] and row["uploader"] == "Cà Phê Tech"
    assert row["upload_date"] == "20250312" and row["channel_id"] == "UC1234567890abcdefghijkl"
    assert row["title"] == YOUTUBE_CC["title"] and row["channel_url"].startswith("https://www.youtube.com/channel/")
    assert "SECRETSHARE" not in row["channel_url"] and "token" not in row["channel_url"]
    card = (out / "README.md").read_text()
    meta = yaml.safe_load(card.split("---")[1])
    assert meta["license"] == "other" and "rights stay with their owners" in meta["license_details"]
    assert "## License and takedown" in card and "with its `video_id` or `source_url`" in card
    proc = run_vecs("export", str(out), "--config", "prelabeled", "--splits", "100/0/0", "--no-progress",
                    "--license", "cc-by-4.0", "--gated-prompt", "Use for research on code-switched speech only.",
                    env={"VECS_HOME": str(youtube_like_export.home)})
    assert proc.returncode == 0, proc.stderr
    meta = yaml.safe_load((out / "README.md").read_text().split("---")[1])
    assert meta["license"] == "cc-by-4.0" and "license_details" not in meta
    assert meta["extra_gated_prompt"] == "Use for research on code-switched speech only."


def test_a_takedown_removes_the_recording_everywhere(youtube_like_export, tmp_path):
    home = youtube_like_export.home
    video_id = YOUTUBE_CC["id"]
    assert list((home / "chunks" / video_id).iterdir()) and (home / "audio" / f"{video_id}.flac").exists()
    proc = run_vecs("remove", video_id, "missing-id", env={"VECS_HOME": str(home)})
    assert proc.returncode == 1  # one of the two was not in the store: said, and the exit code says so
    assert f"{video_id}: removed" in proc.stderr and "missing-id: not in this store" in proc.stderr
    assert not (home / "chunks" / video_id).exists() and not (home / "audio" / f"{video_id}.flac").exists()
    assert not list((home / "captions").glob(f"{video_id}*"))
    from dataset_builder.store import Chunk, Segment, Video, session_scope

    with session_scope(youtube_like_export) as s:
        assert s.query(Video).count() == 0 and s.query(Chunk).count() == 0 and s.query(Segment).count() == 0


def test_license_cc_skips_sources_whose_license_is_unknown_and_counts_them(settings, tmp_path_factory):
    corpus = synthetic_corpus(tmp_path_factory, "cc-corpus", videos=2, minutes=0.3, seed=6)
    proc = run_vecs("ingest", str(corpus), "--license", "cc", "--no-progress", env={"VECS_HOME": str(settings.home)})
    assert proc.returncode == 0, proc.stderr  # skipped, not failed
    skipped = [line for line in proc.stderr.splitlines() if line.startswith("skipped")]
    assert len(skipped) == 2 and all("license is unknown" in line for line in skipped)
    assert "0 ingested, 2 skipped, 0 failed" in proc.stderr
    assert not list((settings.home / "audio").glob("*.flac"))
    proc = run_vecs("ingest", str(corpus), "--license", "gpl", env={"VECS_HOME": str(settings.home)})
    assert proc.returncode == 2 and "--license 'gpl': expected cc" in proc.stderr
