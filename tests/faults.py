"""Fault injection for the factory: ``kill -9`` at seeded random moments of ingest, pre-label, push, pull and
export, then a re-run, then the invariants.

Each stage runs as the user runs it — ``python -m dataset_builder.cli …`` in its own process group — against a
fresh copy of the state the previous stage left (so every kill point is an independent trial from the same
start). A calibration run gives the stage's duration T; each trial kills the process group at U(0.05, 1)·T,
runs the stage again to completion and checks:

* ingest: every source exactly once, ready, with exactly its chunks; every chunk file equal to its slice of the
  video's audio, which equals the source; no reservation left, no file the store does not name, no temp file;
* pre-label: every chunk pre-labeled once, with exactly its utterances (none lost, none twice);
* push: Argilla holds exactly one record per kept segment; records people answered keep their suggestion;
* pull: the store holds exactly the answers Argilla has (nothing lost, nothing invented);
* export: the folder is always a whole export (the old one or the new one, never a mix, no temp files); after
  the re-run every utterance is exported exactly once, with no duplicate row.

Tests import it as ``faults`` (``tests/test_faults.py``, a short seeded version); ``benchmarks/faults.py`` runs
the long version (>= 20 points per stage) and writes its figures to ``benchmarks/results/faults.json``.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import soundfile as sf

SR = 16000
FLASH = "gemini-2.5-flash"
KEYS = ["AIzaFAULTS-one-SECRET", "AIzaFAULTS-two-SECRET"]
STAGES = ("ingest", "prelabel", "push", "pull", "export")


@dataclass
class Trial:
    stage: str
    point: int
    delay_s: float
    landed: bool  # the process was still running when it was killed
    survived: bool
    rerun_s: float = 0.0
    error: str | None = None


@dataclass
class StageResult:
    stage: str
    calibration_s: float
    trials: list[Trial] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def summary(self) -> dict:
        return {"points": len(self.trials), "landed": sum(t.landed for t in self.trials),
                "survived": sum(t.survived for t in self.trials), "calibration_s": round(self.calibration_s, 2),
                "seconds": round(self.seconds, 1),
                "failures": [f"point {t.point} (kill at {t.delay_s:.2f} s): {t.error}" for t in self.trials
                             if not t.survived]}


class InvariantError(AssertionError):
    pass


def check(cond: bool, message: str) -> None:
    if not cond:
        raise InvariantError(message)


# -- processes -------------------------------------------------------------------------------------------------


def _env(home: Path, extra: dict | None = None) -> dict:
    env = {**os.environ, "VECS_HOME": str(home), **(extra or {})}
    env.pop("VECS_DB_URL", None)
    return env


def vecs_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "dataset_builder.cli", *args]


def run_to_end(cmd: list[str], env: dict, timeout: float = 600) -> tuple[subprocess.CompletedProcess, float]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    return proc, time.perf_counter() - t0


def run_killed(cmd: list[str], env: dict, delay: float) -> tuple[bool, float]:
    """Start ``cmd`` in its own process group and SIGKILL the group after ``delay`` s. Returns whether it was
    still running, and how long it ran."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        proc.wait(timeout=delay)
        landed = False
    except subprocess.TimeoutExpired:
        landed = True
    ran = time.perf_counter() - t0
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # the stage and whatever it started (ffmpeg, pool workers)
    except ProcessLookupError:
        pass
    proc.wait()
    return landed, ran


def copy_home(src: Path, dst: Path) -> Path:
    from dataset_builder.store import dispose_engines

    dispose_engines()  # nothing of ours holds the store open while it is copied
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst, symlinks=True)
    return dst


def settings_for(home: Path):
    from dataset_builder.foundation.config import Settings

    return Settings(home=home, db_url=f"sqlite:///{home / 'factory.db'}")


# -- the corpus and its truth ----------------------------------------------------------------------------------


def make_sources(folder: Path, videos: int, seconds: float, seed: int) -> dict[str, np.ndarray]:
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for v in range(videos):
        rng = np.random.default_rng(seed * 100 + v)
        data = rng.integers(-8000, 8000, size=int(seconds * SR), dtype=np.int16)
        sf.write(str(folder / f"talk{v}.wav"), data, SR, subtype="PCM_16")
        out[f"talk{v}"] = data
    return out


def utterances(duration: float) -> list[tuple[float, float]]:
    """Absolute utterances of every video: 3 s long, one every 10 s (some fall in chunk overlaps)."""
    return [(t, t + 3.0) for t in np.arange(1.0, duration - 3.5, 10.0).round(3)]


def text_of(video_id: str, start: float) -> str:
    return f"{video_id} câu {start:.0f} với team nha"


def truth_by_chunk(home: Path) -> dict[str, list[dict]]:
    """sha256 of each chunk file → the utterances it contains, chunk-relative and clipped to it, as a
    pre-labeler reports a segment straddling a chunk edge."""
    from sqlalchemy import select

    from dataset_builder.store import Chunk, session_scope

    out = {}
    with session_scope(settings_for(home)) as s:
        for c in s.scalars(select(Chunk)).all():
            segs = []
            for a, b in utterances(c.video.duration):
                lo, hi = max(a, c.start), min(b, c.end)
                if hi - lo > 0.2:
                    segs.append({"start": round(lo - c.start, 3), "end": round(hi - c.start, 3),
                                 "text": text_of(c.video.video_id, a), "translation": text_of(c.video.video_id, a)})
            out[hashlib.sha256((home / c.audio_path).read_bytes()).hexdigest()] = segs
    return out


# -- invariants ------------------------------------------------------------------------------------------------


def _store_files(home: Path) -> set[Path]:
    return {p for d in ("audio", "chunks", "captions") for p in (home / d).rglob("*") if p.is_file()}


def check_ingest(home: Path, sources: dict[str, np.ndarray]) -> None:
    from sqlalchemy import select

    from dataset_builder.foundation.atomic import TMP_MARK
    from dataset_builder.ingest import chunk_spans
    from dataset_builder.store import Video, VideoStatus, session_scope

    named: set[Path] = set()
    with session_scope(settings_for(home)) as s:
        videos = s.scalars(select(Video)).all()
        check(sorted(v.video_id for v in videos) == sorted(sources), f"videos {[v.video_id for v in videos]}")
        for v in videos:
            check(v.status == VideoStatus.READY, f"{v.video_id} is {v.status}")
            full = sf.read(str(home / v.audio_path), dtype="int16")[0]
            check(np.array_equal(full, sources[v.video_id]), f"{v.video_id}: audio differs from its source")
            spans = [(c.start_sample, c.end_sample) for c in v.chunks]
            check(spans == [(x.start_sample, x.end_sample) for x in chunk_spans(len(full), SR)],
                  f"{v.video_id}: chunks {spans}")
            for c in v.chunks:
                data = sf.read(str(home / c.audio_path), dtype="int16")[0]
                check(np.array_equal(data, full[c.start_sample:c.end_sample]), f"{c.audio_path}: not its slice")
                named.add(home / c.audio_path)
            named.add(home / v.audio_path)
    orphans = _store_files(home) - named
    check(not orphans, f"files the store does not name: {sorted(p.name for p in orphans)[:5]}")
    temps = list(home.rglob(TMP_MARK + "*"))
    check(not temps, f"temp files left: {[p.name for p in temps][:5]}")


def check_prelabel(home: Path, truth: dict[str, list[dict]]) -> None:
    from sqlalchemy import select

    from dataset_builder.store import Chunk, ChunkStatus, session_scope

    with session_scope(settings_for(home)) as s:
        for c in s.scalars(select(Chunk)).all():
            check(c.status == ChunkStatus.PRELABELED, f"chunk {c.video.video_id}#{c.index} is {c.status}")
            want = truth[hashlib.sha256((home / c.audio_path).read_bytes()).hexdigest()]
            got = sorted((seg.start, seg.end, seg.text) for seg in c.segments)
            check(got == sorted((w["start"], w["end"], w["text"]) for w in want),
                  f"chunk {c.video.video_id}#{c.index}: {len(got)} segments, expected {len(want)}")


def kept_records(home: Path) -> dict[str, str]:
    """Record id → pre-label text of every segment the guillotine keeps (what Argilla must hold)."""
    from sqlalchemy import select

    from annotation.push import record_id
    from dataset_builder.guillotine import SegmentView, resolve
    from dataset_builder.store import Video, session_scope

    out = {}
    with session_scope(settings_for(home)) as s:
        for video in s.scalars(select(Video)).all():
            views = [SegmentView(seg, c.index, c.start, c.end, c.is_last, seg.start, seg.end)
                     for c in video.chunks for seg in c.segments]
            for k in resolve(views).kept:
                out[record_id(video.video_id, k.view.chunk_index, k.view.ref.start)] = k.view.ref.text
    return out


def argilla_records(client, dataset: str, workspace: str) -> dict[str, dict]:
    import argilla as rg

    ds = client.datasets(name=dataset, workspace=workspace)
    out: dict[str, dict] = {}
    for r in ds.records(with_suggestions=True, with_responses=True):
        rid = str(r.id)
        check(rid not in out, f"record {rid} twice")
        answers = {resp.question_name: resp.value for resp in r.responses}
        status = {str(getattr(resp.status, "value", resp.status)) for resp in r.responses}
        out[rid] = {"suggestion": r.suggestions["transcript"].value, "answers": answers, "status": status,
                    "server_id": str(r._server_id)}
    del rg
    return out


def check_push(home: Path, client, dataset: str, workspace: str, answered: dict[str, str]) -> None:
    from sqlalchemy import select

    from dataset_builder.store import Segment, session_scope

    kept = kept_records(home)
    records = argilla_records(client, dataset, workspace)
    check(set(records) == set(kept), f"Argilla holds {len(records)} records, {len(kept)} kept segments "
          f"({len(set(records) - set(kept))} extra, {len(set(kept) - set(records))} missing)")
    for rid, rec in records.items():
        if rid in answered:  # answered before this push: untouched
            check(rec["suggestion"] == answered[rid], f"{rid}: an answered record's suggestion was overwritten")
            check("submitted" in rec["status"], f"{rid}: its answer is gone")
        else:
            check(rec["suggestion"] == kept[rid], f"{rid}: suggestion {rec['suggestion']!r} is not the pre-label")
    with session_scope(settings_for(home)) as s:
        ids = [r for r in s.scalars(select(Segment.record_id).where(Segment.record_id.is_not(None))).all()]
    check(len(ids) == len(set(ids)), "a record id twice in the store")
    check(set(kept) - set(answered) <= set(ids), "pushed records the store does not know")


def check_pull(home: Path, answers: dict[str, dict]) -> None:
    from sqlalchemy import select

    from dataset_builder.store import Segment, session_scope

    with session_scope(settings_for(home)) as s:
        segs = s.scalars(select(Segment).where(Segment.record_id.is_not(None))).all()
        verified = {seg.record_id: seg for seg in segs if seg.verified or seg.discarded}
        check(set(verified) == set(answers), f"{len(verified)} answered in the store, {len(answers)} in Argilla")
        for rid, want in answers.items():
            seg = verified[rid]
            check(seg.verified_text == want["transcript"], f"{rid}: {seg.verified_text!r} != {want['transcript']!r}")


def check_export_whole(out: Path) -> set[str]:
    """The folder is one complete export: the card's shards and no others, all of each split, as many rows as
    the report says, no temp file. Returns its configs."""
    import pyarrow.parquet as pq
    import yaml

    from dataset_builder.foundation.atomic import TMP_MARK

    files = [p for p in out.rglob("*") if p.is_file()]
    check(not [p for p in files if p.name.startswith(TMP_MARK)], "temp files in the export")
    text = (out / "README.md").read_text(encoding="utf-8")
    card = yaml.safe_load(text.split("---", 2)[1])
    report = json.loads((out / "export_report.json").read_text())
    named = set()
    for c in card["configs"]:
        for df in c["data_files"]:
            shards = sorted(out.glob(df["path"]))
            check(bool(shards), f"{df['path']}: no shard")
            total = int(shards[0].name.split("-of-")[1][:5])
            check([x.name.split("-")[1] for x in shards] == [f"{i:05d}" for i in range(total)],
                  f"{df['path']}: shards {[x.name for x in shards]}")
            rows = sum(pq.ParquetFile(x).metadata.num_rows for x in shards)
            check(rows == report["configs"][c["config_name"]]["splits"][df["split"]]["segments"],
                  f"{df['path']}: {rows} rows, the report says otherwise")
            named.update(shards)
    check({p for p in files if p.suffix == ".parquet"} == named, "shards the card does not name")
    return {c["config_name"] for c in card["configs"]}


def check_export_rows(out: Path, home: Path, sources: dict[str, np.ndarray]) -> None:
    """Every utterance exactly once in ``prelabeled``; ``verified`` holds exactly the usable answers."""
    import pyarrow.parquet as pq

    rows = []
    for shard in sorted((out / "data" / "prelabeled").glob("*.parquet")):
        rows += pq.read_table(shard, columns=["id", "video_id", "start", "end", "transcript"]).to_pylist()
    ids = [r["id"] for r in rows]
    check(len(ids) == len(set(ids)), "duplicate rows")
    got = sorted((r["video_id"], round(r["start"], 2)) for r in rows)
    want = sorted((v, round(a, 2)) for v, data in sources.items() for a, _ in utterances(len(data) / SR))
    check(got == want, f"{len(got)} rows for {len(want)} utterances")
    for r in rows:
        check(r["transcript"] == text_of(r["video_id"], r["start"]), f"{r['id']}: wrong text")


# -- a stage's trials ------------------------------------------------------------------------------------------


def trials(stage: str, points: int, rng: random.Random, prepare: Callable[[int], tuple[list[str], dict]],
           verify: Callable[[int], None], log: Callable[[str], None] = print, after_kill: Callable | None = None
           ) -> StageResult:
    """Calibrate the stage on a fresh state, then ``points`` trials: fresh state, kill -9 at a random moment,
    (``after_kill``), run again to completion, check the invariants."""
    started = time.perf_counter()
    cmd, env = prepare(-1)
    proc, took = run_to_end(cmd, env)
    if proc.returncode != 0:
        raise RuntimeError(f"{stage}: the calibration run failed: {proc.stderr[-2000:]}")
    verify(-1)
    result = StageResult(stage, took)
    for point in range(points):
        cmd, env = prepare(point)
        delay = rng.uniform(0.05, 1.0) * took
        landed, ran = run_killed(cmd, env, delay)
        if not landed:  # it finished first: a slow calibration overstated the stage; aim within what it takes
            took = min(took, ran)
        trial = Trial(stage, point, round(delay, 3), landed, False)
        try:
            if after_kill is not None:
                after_kill(point)
            proc, trial.rerun_s = run_to_end(cmd, env)
            check(proc.returncode == 0, f"the re-run failed: {(proc.stderr or '').strip().splitlines()[-1:]}")
            verify(point)
            trial.survived = True
        except Exception as exc:  # noqa: BLE001 - a broken invariant (or anything else) is this trial's failure
            trial.error = f"{type(exc).__name__}: {exc}"[:500]
        result.trials.append(trial)
        log(f"  {stage} point {point}: kill at {delay:.2f} s ({'mid-run' if landed else 'after the end'}) → "
            f"{'ok' if trial.survived else trial.error}")
    result.seconds = time.perf_counter() - started
    return result


# -- the pipeline ----------------------------------------------------------------------------------------------


def run(root: Path, argilla_url: str, argilla_key: str, *, points: int | dict[str, int] = 20, seed: int = 0,
        videos: int = 3, seconds: float = 320.0, stages: tuple[str, ...] = STAGES,
        log: Callable[[str], None] = print) -> dict:
    """Every stage of ``stages`` (in pipeline order; each needs the ones before), ``points`` kill points each
    (or per stage, as a dict)."""
    per = (lambda stage: points.get(stage, 0)) if isinstance(points, dict) else (lambda stage: points)
    try:  # imported as ``faults`` by the tests (tests/ on sys.path) or as ``tests.faults`` by the benchmark
        from fake_gemini import FakeGemini, TruthResponder
    except ImportError:
        from tests.fake_gemini import FakeGemini, TruthResponder

    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    sources = make_sources(root / "src", videos, seconds, seed)
    results: dict[str, StageResult] = {}
    t0 = time.perf_counter()

    # ingest: from nothing
    def ingest_prepare(point: int):
        home = root / f"ingest-{point}"
        if home.exists():
            shutil.rmtree(home)
        return vecs_cmd("ingest", str(root / "src"), "--jobs", "2", "--no-progress"), _env(home)

    results["ingest"] = trials("ingest", per("ingest"), rng, ingest_prepare,
                               lambda p: check_ingest(root / f"ingest-{p}", sources), log)
    ingested = root / "ingest--1"

    # pre-label: from the ingested store, through the real google-genai client and a stand-in server
    truth = truth_by_chunk(ingested)
    fake = FakeGemini(keys={k: "ok" for k in KEYS}, responder=TruthResponder(truth), latency=0.15, seed=seed).start()
    try:
        def prelabel_prepare(point: int):
            home = copy_home(ingested, root / f"prelabel-{point}")
            return (vecs_cmd("prelabel", "--no-progress", "--no-refine", "--concurrency", "2", "--tiers", FLASH),
                    _env(home, {"GEMINI_API_KEYS": ",".join(KEYS), "VECS_GEMINI_BASE_URL": fake.url}))

        if "prelabel" in stages:
            results["prelabel"] = trials("prelabel", per("prelabel"), rng, prelabel_prepare,
                                         lambda p: check_prelabel(root / f"prelabel-{p}", truth), log)
    finally:
        fake.stop()
    labeled = root / "prelabel--1"

    if "push" in stages or "pull" in stages:
        import httpx

        from annotation.client import connect, workspace
        from annotation.team import add_user

        client = connect(argilla_url, argilla_key)
        ws = f"faults-{seed}-{uuid.uuid4().hex[:6]}"
        workspace(client, ws, create=True)
        user = add_user(client, f"ann-{uuid.uuid4().hex[:6]}", "annotator", ws)
        rest = httpx.Client(base_url=argilla_url, headers={"X-Argilla-Api-Key": user.api_key}, timeout=60)
        push_args = ["--workspace", ws, "--audio-base-url", "http://127.0.0.1:9/", "--batch-size", "20"]
        argilla_env = {"ARGILLA_API_URL": argilla_url, "ARGILLA_API_KEY": argilla_key}

        def answer(dataset: str, every: int, tag: str) -> dict[str, dict]:
            """An annotator submits every ``every``-th record (corrected text), as through the UI."""
            answers = {}
            for i, (rid, rec) in enumerate(sorted(argilla_records(client, dataset, ws).items())):
                if i % every:
                    continue
                text = f"{rec['suggestion']} ({tag})"
                resp = rest.post(f"/api/v1/records/{rec['server_id']}/responses", json={"status": "submitted", "values": {
                    "transcript": {"value": text}, "translation": {"value": "bản dịch"}, "quality": {"value": "ok"}}})
                check(resp.status_code in (200, 201), f"answer refused: {resp.text[:200]}")
                answers[rid] = {"transcript": text, "suggestion": rec["suggestion"]}
            return answers

        # push: a re-push of changed pre-labels over answered records (even points) and the first push of a
        # dataset (odd points and the calibration), each interrupted and resumed
        base = f"ft-{uuid.uuid4().hex[:6]}"
        repush = f"{base}-re"
        pushed = copy_home(labeled, root / "pushed")
        proc, _ = run_to_end(vecs_cmd("argilla", "push", "--dataset", repush, "--create-workspace", *push_args),
                             _env(pushed, argilla_env))
        check(proc.returncode == 0, f"push: {proc.stderr[-500:]}")
        shutil.copytree(pushed / "argilla_audio", labeled / "argilla_audio", dirs_exist_ok=True)  # clips cut once
        before = answer(repush, 4, "answered before the re-push")
        answered_before = {rid: a["suggestion"] for rid, a in before.items()}

        def push_prepare(point: int):
            first = point % 2 != 0
            home = copy_home(labeled if first else pushed, root / f"push-{point}")
            dataset = f"{base}-{point + 1}" if first else repush
            if not first:
                from dataset_builder.store import Segment, session_scope

                with session_scope(settings_for(home)) as s:  # the pre-labeler ran again: new text everywhere
                    for seg in s.query(Segment).all():
                        seg.text = f"{seg.text.split(' (v')[0]} (v{point})"
                from dataset_builder.store import dispose_engines

                dispose_engines()
            return vecs_cmd("argilla", "push", "--dataset", dataset, *push_args), _env(home, argilla_env)

        def push_verify(point: int) -> None:
            first = point % 2 != 0
            check_push(root / f"push-{point}", client, f"{base}-{point + 1}" if first else repush, ws,
                       {} if first else answered_before)

        if "push" in stages:
            results["push"] = trials("push", per("push"), rng, push_prepare, push_verify, log)

        # pull: the answered dataset (the push trials changed suggestions, never answers), pulled into fresh
        # copies of the store that pushed it
        answers = before
        pull_cmd = vecs_cmd("argilla", "pull", "--dataset", repush, "--workspace", ws)

        def pull_prepare(point: int):
            return pull_cmd, _env(copy_home(pushed, root / f"pull-{point}"), argilla_env)

        if "pull" in stages:
            results["pull"] = trials("pull", per("pull"), rng, pull_prepare,
                                     lambda p: check_pull(root / f"pull-{p}", answers), log)
        pulled = root / "pull--1"
    else:
        pulled = labeled

    # export: over a complete earlier export, alternating configs, into fresh copies of the store
    if "export" in stages:
        exported = copy_home(pulled, root / "exported")  # a complete earlier export, in the home it came from
        proc, _ = run_to_end(vecs_cmd("export", str(exported / "out"), "--config", "prelabeled", "--no-progress"),
                             _env(exported))
        check(proc.returncode == 0, f"export: {proc.stderr[-500:]}")

        def export_prepare(point: int):
            home = copy_home(exported, root / f"export-{point}")
            return vecs_cmd("export", str(home / "out"), "--config", "all", "--no-progress"), _env(home)

        def export_after_kill(point: int) -> None:
            check_export_whole(root / f"export-{point}" / "out")  # whole right after the kill: old or new

        def export_verify(point: int) -> None:
            out = root / f"export-{point}" / "out"
            check(check_export_whole(out) == {"verified", "prelabeled"}, "the re-run did not finish the new export")
            check_export_rows(out, root / f"export-{point}", sources)
            check(not [p for p in out.parent.iterdir() if p.name.startswith((".vecs-tmp-", ".out.vecs-old"))],
                  "staging or backup folders left")

        results["export"] = trials("export", per("export"), rng, export_prepare, export_verify, log,
                                   export_after_kill)

    summary = {name: r.summary for name, r in results.items()}
    return {"seed": seed, "points_per_stage": points, "videos": videos, "seconds_per_video": seconds,
            "stages": summary, "total_points": sum(s["points"] for s in summary.values()),
            "total_survived": sum(s["survived"] for s in summary.values()),
            "total_landed": sum(s["landed"] for s in summary.values()),
            "seconds": round(time.perf_counter() - t0, 1),
            "trials": [asdict(t) for r in results.values() for t in r.trials]}
