"""The export under faults and on the Hub: a dry run writes nothing, a killed export leaves the previous one
whole, a push leaves exactly the new export on the Hub in one commit, and no row publishes a local path or a
secret in its ``source_url``."""
from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from sqlalchemy import func, select

from conftest import make_wav, run_vecs, synthetic_corpus
from dataset_builder.foundation.atomic import TMP_MARK
from dataset_builder.ingest import ingest
from dataset_builder.prelabel.captions import CaptionsEngine
from dataset_builder.prelabel.runner import run_engine
from dataset_builder.store import Chunk, Segment, SplitAssignment, session_scope
from fake_hub import FakeHfApi


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return synthetic_corpus(tmp_path_factory, "export-integrity", videos=3, minutes=1.0, seed=41)


@pytest.fixture
def labeled(settings, corpus):
    assert all(o.status == "ingested" for o in ingest([str(corpus)], settings=settings, progress=False))
    assert asyncio.run(run_engine(CaptionsEngine(settings.home), settings, progress=False)).failed == 0
    with session_scope(settings) as s:  # some answers, as a pull records them
        for seg in s.scalars(select(Segment).join(Chunk).order_by(Chunk.id, Segment.start)).all()[::2]:
            seg.verified, seg.annotator, seg.quality = True, "lan", "ok"
    return settings


def _snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _assert_whole(folder: Path) -> set[str]:
    """A complete, self-consistent export: every shard the card names and no other, all of each split's
    shards, as many rows as the report says, no temp files. Returns its configs."""
    from huggingface_hub import DatasetCard

    files = [p for p in folder.rglob("*") if p.is_file()]
    assert not [p for p in files if p.name.startswith(TMP_MARK)], "temp files in the export"
    card = DatasetCard.load(folder / "README.md").data.to_dict()
    report = json.loads((folder / "export_report.json").read_text())
    named = set()
    for c in card["configs"]:
        for df in c["data_files"]:
            shards = sorted(folder.glob(df["path"]))
            total = int(shards[0].name.split("-of-")[1][:5])
            assert [s.name.split("-")[1] for s in shards] == [f"{i:05d}" for i in range(total)]
            rows = sum(pq.ParquetFile(s).metadata.num_rows for s in shards)
            assert rows == report["configs"][c["config_name"]]["splits"][df["split"]]["segments"]
            named.update(shards)
    assert {p for p in files if p.suffix == ".parquet"} == named, "shards the card does not name"
    return {c["config_name"] for c in card["configs"]}


def test_dry_run_writes_nothing(labeled, tmp_path):
    out = tmp_path / "repo"
    proc = run_vecs("export", str(out), "--dry-run", "--push-to-hub", "me/vecs")
    assert proc.returncode == 0, proc.stderr
    assert "would write" in proc.stdout and not out.exists()
    with session_scope(labeled) as s:
        assert s.scalar(select(func.count()).select_from(SplitAssignment)) == 0


def test_a_killed_export_leaves_the_previous_one_whole(labeled, tmp_path):
    """``kill -9`` at seeded moments of a re-export: the folder is the old export or the new one, never a mix
    (shards, card, report and figures agree); the run after the kill finishes the new one."""
    out = tmp_path / "repo"
    t0 = time.perf_counter()
    assert run_vecs("export", str(out), "--config", "prelabeled", "--no-progress").returncode == 0
    took = time.perf_counter() - t0
    before = _snapshot(out)
    cmd = [sys.executable, "-m", "dataset_builder.cli", "export", str(out), "--config", "all", "--no-progress"]
    rng = random.Random(17)
    killed_mid_run = 0
    for _ in range(4):
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        time.sleep(rng.uniform(0.4, 1.0) * took)
        if proc.poll() is None:
            killed_mid_run += 1
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        if _snapshot(out) != before:  # it finished (or swapped) before the kill: then it is whole and new
            assert _assert_whole(out) == {"verified", "prelabeled"}
            break
        assert _assert_whole(out) == {"prelabeled"}
    assert killed_mid_run >= 1
    assert run_vecs("export", str(out), "--config", "all", "--no-progress").returncode == 0
    assert _assert_whole(out) == {"verified", "prelabeled"}
    assert not list(out.parent.glob(TMP_MARK + "*")) and not list(out.parent.glob(".*vecs-old*"))


def test_a_push_leaves_exactly_the_new_export_on_the_hub(labeled, tmp_path, monkeypatch):
    """Re-pushing a smaller export: the shards it no longer has are deleted in the same commit that adds
    the new ones — no stale shards for the card's globs to load twice, no removed rows left public."""
    from typer.testing import CliRunner

    import dataset_builder.export.hub as hub
    from dataset_builder.cli import app

    FakeHfApi.reset()
    monkeypatch.setattr(hub, "HfApi", FakeHfApi)
    monkeypatch.setenv("HF_TOKEN", "hf_SECRETTOKEN")
    out = tmp_path / "repo"
    runner = CliRunner()
    first = runner.invoke(app, ["export", str(out), "--config", "all", "--push-to-hub", "me/vecs", "--no-progress"])
    assert first.exit_code == 0, first.output
    repo = FakeHfApi.repos["me/vecs"]
    assert set(repo.files) == set(_snapshot(out))
    assert any(f.startswith("data/verified/") for f in repo.files)
    second = runner.invoke(app, ["export", str(out), "--config", "prelabeled", "--push-to-hub", "me/vecs",
                                 "--no-progress"])
    assert second.exit_code == 0, second.output
    assert {f: hashlib.sha256(b).hexdigest() for f, b in repo.files.items()} == _snapshot(out)
    assert len(repo.commits) == 2, "one commit per push"
    assert any(f.startswith("data/verified/") for f in repo.commits[-1].deleted)
    assert "hf_SECRETTOKEN" not in first.output + second.output
    assert FakeHfApi.tokens[-1] == "hf_SECRETTOKEN"


def test_source_urls_publish_no_local_path_and_no_secret(settings, tmp_path):
    """A local file is published by its name only; a URL loses its credentials and secret query parameters."""
    import datasets

    folder = tmp_path / "home-of-someone" / "private"
    make_wav(folder / "talk.wav", 8, seed=21)
    (folder / "talk.vtt").write_text("WEBVTT\n\n00:00:01.000 --> 00:00:04.000\nmình có một meeting với team\n",
                                     encoding="utf-8")
    assert ingest([str(folder / "talk.wav")], settings=settings, progress=False)[0].status == "ingested"
    from dataset_builder.export.sanitize import public_source_url

    assert public_source_url((folder / "talk.wav").as_uri()) == "talk.wav"
    for url, clean in [
        ("https://user:hunter2@media.example.com/a/b.m4a?token=SECRET&x=1", "https://media.example.com/a/b.m4a?x=1"),
        ("https://s3.example.com/b.m4a?X-Amz-Signature=abc&X-Amz-Credential=k&v=2", "https://s3.example.com/b.m4a?v=2"),
        ("https://www.youtube.com/watch?v=dQw4w9WgXcQ&list=PL1&t=30", "https://www.youtube.com/watch?v=dQw4w9WgXcQ&list=PL1&t=30"),
        ("https://cdn.example.com/x.webm?sig=1&expires=2&api_key=3&access_token=4#access_token=5", "https://cdn.example.com/x.webm"),
    ]:
        assert public_source_url(url) == clean
    asyncio.run(run_engine(CaptionsEngine(settings.home), settings, progress=False))
    out = tmp_path / "repo"
    assert run_vecs("export", str(out), "--config", "prelabeled", "--splits", "100/0/0").returncode == 0
    rows = [r for split in datasets.load_dataset(str(out), "prelabeled").values() for r in split.remove_columns("audio")]
    assert rows and {r["source_url"] for r in rows} == {"talk.wav"}
    blob = b"".join(p.read_bytes() for p in out.rglob("*") if p.is_file())
    assert b"home-of-someone" not in blob and b"file://" not in blob
