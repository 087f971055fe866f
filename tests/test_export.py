"""The export end to end on a synthetic corpus: every true utterance exactly once, with its whole span, in
video-disjoint splits that load with ``load_dataset`` (both configs, audio decoded)."""
from __future__ import annotations

import asyncio
import json
import unicodedata

import datasets
import pytest
from sqlalchemy import select

from conftest import run_vecs, synthetic_corpus
from dataset_builder.ingest import ingest
from dataset_builder.prelabel.captions import CaptionsEngine
from dataset_builder.prelabel.runner import run_engine
from dataset_builder.store import Chunk, Segment, session_scope
from dataset_builder.synth import synthesize_corpus

COLUMNS = {"id", "audio", "transcript", "translation", "video_id", "channel", "start", "end", "duration",
           "source_url", "prelabel_transcript", "prelabel_translation", "verified", "cmi", "en_ratio",
           "title", "license", "uploader", "upload_date", "channel_id", "channel_url"}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return synthetic_corpus(tmp_path_factory, "export-corpus", videos=4, minutes=5.4, seed=33)


@pytest.fixture
def exported(settings, corpus, tmp_path):
    assert all(o.status == "ingested" for o in ingest([str(corpus)], settings=settings, progress=False))
    assert asyncio.run(run_engine(CaptionsEngine(settings.home), settings, progress=False)).done == 8
    with session_scope(settings) as s:  # annotators verified some segments (as a pull would record)
        # by chunk and time, not by id: the engine labels chunks concurrently, so ids interleave chunks and the
        # first id could be one the guillotine drops (overlap zone, leading edge), hiding the labels set below;
        # the first segments of a video's first chunk are always kept
        segs = s.scalars(select(Segment).join(Chunk).order_by(Chunk.index, Chunk.id, Segment.start)).all()
        for i, seg in enumerate(segs[::2]):
            seg.verified, seg.annotator = True, "lan"
            seg.verified_text = unicodedata.normalize("NFD", seg.text) + " [laughter]"
            seg.verified_translation = "bản dịch đã sửa"
            seg.quality = "music" if i == 0 else "ok"
        segs[1].discarded = True
    out = tmp_path / "repo"
    proc = run_vecs("export", str(out), "--splits", "50/25/25")
    assert proc.returncode == 0, proc.stderr
    return out


def test_both_configs_load_with_audio(exported):
    pre = datasets.load_dataset(str(exported), "prelabeled")
    ver = datasets.load_dataset(str(exported))  # "verified" is the default config
    for ds in (pre, ver):
        for split in ds.values():
            assert set(split.column_names) == COLUMNS
    ex = next(iter(ver.values()))[0]
    assert ex["verified"] and "[laughter]" not in ex["transcript"] and ex["translation"] == "bản dịch đã sửa"
    assert unicodedata.is_normalized("NFC", ex["transcript"])
    samples = ex["audio"].get_all_samples()
    assert samples.sample_rate == 16000
    assert abs(samples.data.shape[-1] / 16000 - ex["duration"]) < 0.002
    n_ver = sum(len(s) for s in ver.values())
    n_pre = sum(len(s) for s in pre.values())
    assert 0 < n_ver < n_pre  # unverified, discarded and music segments are not in "verified"


def test_every_true_utterance_exactly_once_with_its_tail(exported, corpus):
    pre = datasets.load_dataset(str(exported), "prelabeled")
    rows = [r for split in pre.values() for r in split.remove_columns("audio")]
    truth = [json.loads(line) for line in (corpus / "truth.jsonl").read_text().splitlines()]
    by_video: dict[str, list] = {}
    for r in rows:
        by_video.setdefault(r["video_id"], []).append((r["start"], r["end"], r["transcript"]))
    for spans in by_video.values():  # zero duplicates, asserted by absolute time
        spans.sort()
        assert all(a[1] <= b[0] + 1e-6 for a, b in zip(spans, spans[1:]))
    straddling = 0
    for u in truth:
        covering = [sp for sp in by_video[u["video_id"]] if sp[0] <= u["start"] + 0.01 and sp[1] >= u["end"] - 0.01]
        assert len(covering) == 1, (u["start"], u["transcript"])
        assert u["transcript"] in covering[0][2]
        if u["start"] < 305 < u["end"]:
            straddling += 1  # crossed chunk 0's file edge, yet covered whole above: its tail was restored
    assert straddling >= 2  # this seed has utterances across the edge (e.g. 299.92–306.38 s)
    assert len(rows) <= len(truth)


def test_splits_are_video_disjoint_and_shared_by_both_configs(exported, settings, corpus, tmp_path):
    pre = datasets.load_dataset(str(exported), "prelabeled")
    ver = datasets.load_dataset(str(exported))
    split_of = {}
    for ds in (pre, ver):
        for name, split in ds.items():
            for vid in set(split["video_id"]):
                assert split_of.setdefault(vid, name) == name
    # growing the corpus never moves a video
    more = tmp_path / "more"
    synthesize_corpus(more, videos=2, minutes=0.5, seed=77, channels=1, progress=False)
    ingest([str(more)], settings=settings, progress=False)
    asyncio.run(run_engine(CaptionsEngine(settings.home), settings, progress=False))
    assert run_vecs("export", str(exported), "--splits", "50/25/25", "--config", "prelabeled").returncode == 0
    again = datasets.load_dataset(str(exported), "prelabeled", download_mode="force_redownload")
    for name, split in again.items():
        for vid in set(split["video_id"]):
            if vid in split_of:
                assert split_of[vid] == name


def test_card_yaml_parses(exported):
    from huggingface_hub import DatasetCard

    card = DatasetCard.load(exported / "README.md")
    data = card.data.to_dict()
    assert data["language"] == ["vi", "en"] and "automatic-speech-recognition" in data["task_categories"]
    assert {c["config_name"] for c in data["configs"]} == {"verified", "prelabeled"}
    assert [c for c in data["configs"] if c.get("default")][0]["config_name"] == "verified"


def test_report_counts_every_segment_and_card_shows_the_data(exported):
    report = json.loads((exported / "export_report.json").read_text())
    pre, ver = report["configs"]["prelabeled"], report["configs"]["verified"]
    loaded = datasets.load_dataset(str(exported), "prelabeled")
    assert pre["kept"] == sum(len(s) for s in loaded.values())
    assert {k: s["segments"] for k, s in pre["splits"].items()} == {k: len(s) for k, s in loaded.items()}
    # every prelabeled-kept segment is either kept or dropped for a reason in "verified"
    filters = ("empty_transcript", "too_short", "too_long")
    after_guillotine = pre["kept"] + sum(pre["dropped"].get(k, 0) for k in filters)
    ver_drops = sum(v for k, v in ver["dropped"].items() if k not in ("overlap_zone", "leading_edge_duplicate"))
    assert ver["kept"] + ver_drops == after_guillotine
    assert ver["dropped"]["discarded"] == 1 and ver["dropped"]["quality:music"] == 1
    assert pre["dropped"]["leading_edge_duplicate"] >= 2 and report["leakage_check"]["passed"]
    for split, st in pre["splits"].items():
        hours = sum(loaded[split]["duration"]) / 3600
        assert abs(st["hours"] - hours) < 1e-3 and st["videos"] == len(set(loaded[split]["video_id"]))
    card = (exported / "README.md").read_text()
    for rel in ("images/duration_histogram.png", "images/cmi_histogram.png"):
        assert (exported / rel).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"]({rel})" in card
    row = pre["splits"]["train"]
    assert f"| prelabeled | train | {row['segments']} | {row['hours']:.3f} |" in card
    assert "Known limitations" in card and "Leakage check: passed" in card


def test_dry_run_lists_and_push_uploads_the_folder(settings, corpus, tmp_path, monkeypatch):
    """Everything before the upload is real; the single network call (the Hub) is recorded instead."""
    from typer.testing import CliRunner

    from dataset_builder.cli import app

    ingest([str(corpus)], settings=settings, progress=False)
    asyncio.run(run_engine(CaptionsEngine(settings.home), settings, progress=False))
    out = tmp_path / "repo"
    runner = CliRunner()
    dry = runner.invoke(app, ["export", str(out), "--config", "prelabeled", "--dry-run", "--push-to-hub", "me/vecs"])
    assert dry.exit_code == 0, dry.output
    assert "README.md" in dry.output and "data/prelabeled/train-*.parquet" in dry.output
    assert not out.exists()

    import dataset_builder.export.hub as hub
    from fake_hub import FakeHfApi

    FakeHfApi.reset()
    monkeypatch.setattr(hub, "HfApi", FakeHfApi)
    monkeypatch.setenv("HF_TOKEN", "hf_SECRETTOKEN")
    res = runner.invoke(app, ["export", str(out), "--config", "prelabeled", "--push-to-hub", "me/vecs", "--private"])
    assert res.exit_code == 0, res.output
    repo = FakeHfApi.repos["me/vecs"]
    assert repo.private and len(repo.commits) == 1
    assert sorted(repo.files) == sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert (out / "README.md").exists() and list((out / "data" / "prelabeled").glob("*.parquet"))
    assert "hf_SECRETTOKEN" not in res.output


def test_builder_and_published_parquet_hold_the_same_rows(exported, settings, tmp_path):
    """The GeneratorBasedBuilder (Arrow) and the parallel Parquet writer share one generator and one schema."""
    from dataset_builder.export.builder import VecsDataset
    from dataset_builder.export.plan import build_plan

    plan = build_plan(settings, ratios={"train": 0.5, "validation": 0.25, "test": 0.25})
    builder = VecsDataset(config_name="prelabeled", plan=plan, cache_dir=str(tmp_path / "cache"))
    builder.download_and_prepare()
    published = datasets.load_dataset(str(exported), "prelabeled")
    for split, ds in published.items():
        arrow = builder.as_dataset(split=split).cast_column("audio", datasets.Audio(decode=False))
        parquet = ds.cast_column("audio", datasets.Audio(decode=False))
        assert sorted(arrow["id"]) == sorted(parquet["id"])
        a = {r["id"]: r for r in arrow}
        for r in parquet.select(range(min(5, len(parquet)))):
            assert a[r["id"]]["transcript"] == r["transcript"]
            assert a[r["id"]]["audio"]["bytes"] == r["audio"]["bytes"]
