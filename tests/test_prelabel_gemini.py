"""The Gemini pre-labeler end to end: the real google-genai client against a quota-limited local server."""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import unicodedata

import pytest
from sqlalchemy import func, select

from conftest import assert_all_valid as _assert_all_valid, run_vecs, stored_segments as _stored, wait_for
from dataset_builder.prelabel.gemini import GeminiCaller, GeminiEngine
from dataset_builder.prelabel.keypool import KeyPool, key_hash
from dataset_builder.prelabel.runner import run_engine
from dataset_builder.store import Chunk, ChunkStatus, KeyState, PrelabelAttempt, session_scope
from fake_gemini import Fault, FakeGemini, Response, TruthResponder, fence_json, make_segments_response, wrap_prose

FLASH, PRO = "gemini-2.5-flash", "gemini-2.5-pro"
KEYS = ["AIzaTEST-alpha-SECRET", "AIzaTEST-bravo-SECRET", "AIzaTEST-charlie-SECRET"]


def _responder(chunks) -> TruthResponder:
    return TruthResponder({sha: segs for sha, (_, segs) in chunks.items()})


def _run(settings, fake, keys=KEYS, tiers=(FLASH, PRO), concurrency=4, window=60.0, limit=None):
    pool = KeyPool(list(keys), list(tiers), settings=settings, window=window, seed=0)
    engine = GeminiEngine(pool, GeminiCaller(base_url=fake.url, timeout_s=5.0), settings, seed=0)
    return asyncio.run(run_engine(engine, settings, concurrency=concurrency, limit=limit, progress=False))


def test_all_chunks_labeled_through_quota_and_5xx(settings, chunks):
    with FakeGemini(keys={k: "ok" for k in KEYS}, rate={FLASH: 2, PRO: 1}, window=1.0,
                    error_rate=0.1, seed=3, responder=_responder(chunks)) as fake:
        run = _run(settings, fake, window=1.0)
    assert run.done == 5 and run.failed == 0
    stored = _stored(settings)
    for cid, segs in chunks.values():
        assert [(a, b, t) for a, b, t in stored[cid]] == [(s["start"], s["end"], s["text"]) for s in segs]
    with session_scope(settings) as s:
        assert s.scalar(select(func.count()).where(Chunk.status == ChunkStatus.PRELABELED)) == 5
        outcomes = dict(s.execute(select(PrelabelAttempt.outcome, func.count()).group_by(PrelabelAttempt.outcome)).all())
    assert outcomes["ok"] == 5, outcomes
    assert outcomes.get("transient", 0) == fake.count("5xx")
    _assert_all_valid(settings)


def test_malformed_outputs_are_repaired_or_dropped(settings, chunks):
    responder = _responder(chunks)
    good = [{"start": 1.0, "end": 3.0, "text": "mình có một meeting", "translation": "mình có một cuộc họp"}]
    bad = [
        {"start": "00:05.000", "end": "00:04.000", "text": "ngược giờ", "translation": "ngược giờ"},
        {"start": "09:00.000", "end": "09:02.000", "text": "ngoài chunk", "translation": "x"},
        {"start": "0:07.5", "end": "0:09", "text": "  ", "translation": "x"},
        {"start": "00:00:10.000", "end": "12.5", "text": unicodedata.normalize("NFD", "được rồi"), "translation": "x"},
    ]
    loop = [{"start": i, "end": i + 1, "text": "cảm ơn các bạn đã xem", "translation": "x"} for i in range(5)]
    with FakeGemini(keys={k: "ok" for k in KEYS}, responder=responder) as fake:
        fake.script(
            Response(fence_json(make_segments_response(good))),
            Response(wrap_prose(make_segments_response(good + bad))),
            Response(make_segments_response(loop)),  # → one retry on the other tier
            model=FLASH,
        )
        run = _run(settings, fake, concurrency=1)
        retry_models = [r.model for r in fake.log if r.outcome == "ok"]
    assert run.done == 5 and run.failed == 0
    assert run.drops["start_beyond_chunk"] >= 1 and run.drops["empty_text"] >= 1
    assert run.repairs["swapped_start_end"] >= 1 and run.repairs["retried_on_other_tier"] == 1
    assert PRO in retry_models  # the loop was retried on the other tier
    _assert_all_valid(settings)
    texts = {t for segs in _stored(settings).values() for _, _, t in segs}
    assert "cảm ơn các bạn đã xem" not in texts and "được rồi" in texts


def test_truncated_reply_is_continued_from_the_last_end(settings, chunks):
    # Only the long video's first chunk gets a truncated answer; the continuation covers the rest.
    first = next((cid, segs) for cid, segs in chunks.values() if len(segs) > 20)
    cid, segs = first
    head = make_segments_response(segs[:10])
    cut = head[:-1] + ', {"start": "' + "01:5"  # mid-object, as a token limit leaves it
    continuation = [{**s, "start": s["start"] - segs[9]["end"], "end": s["end"] - segs[9]["end"]} for s in segs[10:]]
    responder = _responder(chunks)
    with FakeGemini(keys={k: "ok" for k in KEYS}, responder=responder) as fake:
        fake.script(Response(cut, finish_reason="MAX_TOKENS"), Response(make_segments_response(continuation)))
        # the first request must be the chunk with the long truth: label only it, alone
        with session_scope(settings) as s:
            s.execute(Chunk.__table__.update().where(Chunk.id != cid).values(status="hold"))
        run = _run(settings, fake, concurrency=1)
        requests = list(fake.requests)
    assert run.done == 1 and run.repairs["continued_after_truncation"] == 1
    got = _stored(settings)[cid]
    assert [round(a, 3) for a, _, _ in got] == pytest.approx([s["start"] for s in segs], abs=2e-3)
    assert requests[1].audio_seconds == pytest.approx(305.0 - segs[9]["end"], abs=0.01)
    with session_scope(settings) as s:
        offsets = s.scalars(select(PrelabelAttempt.offset_s).order_by(PrelabelAttempt.id)).all()
    assert offsets == [0.0, segs[9]["end"]]


def test_invalid_key_is_retired_and_never_logged(settings, chunks, capfd):
    keys = {KEYS[0]: "invalid", KEYS[1]: "forbidden", KEYS[2]: "ok"}
    with FakeGemini(keys=keys, responder=_responder(chunks)) as fake:
        run = _run(settings, fake)
    assert run.done == 5
    with session_scope(settings) as s:
        retired = {r.key_hash: r.reason for r in s.scalars(select(KeyState).where(KeyState.retired)).all()}
        details = " ".join(d or "" for d in s.scalars(select(PrelabelAttempt.detail)).all())
    assert set(retired) == {key_hash(KEYS[0]), key_hash(KEYS[1])}
    assert "API key not valid" in retired[key_hash(KEYS[0])]
    out = capfd.readouterr()
    for k in KEYS:
        assert k not in details and k not in out.out and k not in out.err
    from dataset_builder.store import dispose_engines

    dispose_engines()
    assert b"SECRET" not in b"".join(p.read_bytes() for p in settings.home.glob("factory.db*"))


def test_missing_chunk_audio_fails_only_that_chunk(settings, chunks):
    with session_scope(settings) as s:
        victim = s.scalars(select(Chunk).order_by(Chunk.id)).first()
        (settings.home / victim.audio_path).unlink()
        victim_id = victim.id
    with FakeGemini(keys={k: "ok" for k in KEYS}, responder=_responder(chunks)) as fake:
        run = _run(settings, fake)
    assert run.done == 4 and run.failed == 1
    with session_scope(settings) as s:
        c = s.get(Chunk, victim_id)
        assert c.status == ChunkStatus.FAILED and "unreadable" in c.error


def test_timeouts_and_server_errors_are_retried(settings, chunks):
    with FakeGemini(keys={k: "ok" for k in KEYS}, responder=_responder(chunks), hang=3.0, hang_rate=0.3,
                    seed=2) as fake:
        fake.script(Fault(503), Fault(500))
        pool = KeyPool(KEYS, [FLASH, PRO], settings=settings, seed=0)
        caller = GeminiCaller(base_url=fake.url, timeout_s=1.0)
        run = asyncio.run(run_engine(GeminiEngine(pool, caller, settings, seed=0), settings, concurrency=3, progress=False))
    assert run.done == 5 and run.failed == 0
    with session_scope(settings) as s:
        details = s.scalars(select(PrelabelAttempt.detail).where(PrelabelAttempt.outcome == "transient")).all()
    assert sum("503" in d or "500" in d for d in details) == 2
    assert any("Timeout" in d for d in details), details  # hung requests timed out and were retried
    assert run.server_errors == len(details)


def test_no_keys_is_an_error_before_any_work(settings, chunks):
    proc = run_vecs("prelabel", "--no-progress", env={"GEMINI_API_KEYS": "", "GEMINI_API_KEY": ""})
    assert proc.returncode == 2 and "GEMINI_API_KEYS" in proc.stderr and "Traceback" not in proc.stderr
    with session_scope(settings) as s:
        assert s.scalar(select(func.count()).where(Chunk.status == ChunkStatus.PENDING)) == 5


def test_crash_mid_run_redoes_only_unfinished_chunks(settings, chunks):
    second_keys = ["AIzaTEST-delta-SECRET", "AIzaTEST-echo-SECRET"]  # tell the runs' requests apart: a request
    # in flight at the kill is logged by the fake when its latency ends, which may be after the kill
    with FakeGemini(keys={k: "ok" for k in KEYS + second_keys}, responder=_responder(chunks), latency=0.4) as fake:
        env = {**os.environ, "GEMINI_API_KEYS": ",".join(KEYS), "VECS_GEMINI_BASE_URL": fake.url}
        cmd = [sys.executable, "-m", "dataset_builder.cli", "prelabel", "--no-progress", "--no-refine",
               "--concurrency", "1"]
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def done_count() -> int:
            with session_scope(settings) as s:
                return s.scalar(select(func.count()).where(Chunk.status == ChunkStatus.PRELABELED))

        assert wait_for(lambda: done_count() >= 2, timeout=60)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        finished_first = done_count()
        again = subprocess.run(cmd, env={**env, "GEMINI_API_KEYS": ",".join(second_keys)}, capture_output=True,
                               text=True, timeout=120)
        assert again.returncode == 0, again.stderr
        requests_second = sum(fake.count("ok", key=k) for k in second_keys)
    # the second run asked only about what the first had not finished (the one in flight included)
    assert finished_first >= 2 and requests_second == 5 - finished_first
    stored = _stored(settings)
    for cid, segs in chunks.values():
        assert len(stored[cid]) == len(segs), "a chunk was labeled twice or lost"
    assert "KILLED" not in again.stderr


def _hostile(segs: list[dict], kind: str) -> Response:
    good = make_segments_response(segs)
    if kind == "huge_timestamp":
        return Response(good.replace('"start": "', '"start": "' + "9" * 400 + ":", 1))
    if kind == "wrong_type":
        return Response(make_segments_response(segs).replace('"text": "', '"text": {"vi": "', 1).replace(
            '", "translation"', '"}, "translation"', 1))
    if kind == "huge_int":
        return Response(good.replace('"start": "00:00.500"', '"start": ' + "9" * 400, 1).replace(
            '"start": "', '"start": ' + "9" * 400 + ', "x": "', 1))
    if kind == "deep":
        return Response("[" * 60000 + "]" * 60000)
    return Response("<html><body>502 Bad Gateway</body></html> {" + good[:40])  # junk, finishReason STOP


def test_hostile_replies_never_lose_utterances(settings, chunks):
    """A stand-in that answers half of the requests with hostile replies (a 400-digit timestamp, fields of the
    wrong type, 60k-deep nesting, non-JSON junk): no chunk is marked done with utterances missing, nothing
    crashes the run, and a clean ``--retry-failed`` run brings every utterance in."""
    import random

    truth = {sha: segs for sha, (_, segs) in chunks.items()}
    rng = random.Random(7)
    kinds = ["huge_timestamp", "wrong_type", "huge_int", "deep", "junk"]
    served: list[str] = []

    def responder(req):
        segs = truth.get(req.audio_sha256)
        if segs is None:  # a continuation: not used here
            return "[]"
        if rng.random() < 0.5:
            kind = rng.choice(kinds)
            served.append(kind)
            return _hostile(segs, kind)
        return make_segments_response(segs)

    with FakeGemini(keys={k: "ok" for k in KEYS}, responder=responder) as fake:
        first = _run(settings, fake, concurrency=3)
    assert served, "the stand-in served no hostile reply"
    stored = _stored(settings)
    with session_scope(settings) as s:
        status = dict(s.execute(select(Chunk.id, Chunk.status)).all())
    for cid, segs in chunks.values():
        if status[cid] == ChunkStatus.PRELABELED:  # done means whole
            assert [(a, b, t) for a, b, t in stored.get(cid, [])] == [(x["start"], x["end"], x["text"]) for x in segs]
        else:
            assert status[cid] == ChunkStatus.FAILED
    assert first.done + first.failed == 5 and sum(first.failure_reasons.values()) == first.failed
    _assert_all_valid(settings)

    from dataset_builder.prelabel.runner import retry_failed

    retry_failed(settings)
    with FakeGemini(keys={k: "ok" for k in KEYS}, responder=_responder(chunks)) as fake:
        second = _run(settings, fake)
    assert second.failed == 0 and first.done + second.done == 5
    stored = _stored(settings)
    assert sum(len(v) for v in stored.values()) == sum(len(segs) for _, segs in chunks.values())


def test_when_every_key_is_retired_the_run_stops_and_no_chunk_fails(settings, chunks):
    """No usable key is the run's problem, not the chunks': they stay in the queue for a run with good keys."""
    with FakeGemini(keys={k: "invalid" for k in KEYS}, responder=_responder(chunks)) as fake:
        run = _run(settings, fake, concurrency=2)
        env = {"GEMINI_API_KEYS": ",".join(KEYS), "VECS_GEMINI_BASE_URL": fake.url}
        proc = run_vecs("prelabel", "--no-progress", "--no-refine", env=env)
    assert run.failed == 0 and run.done == 0 and "retired" in (run.stopped or "")
    with session_scope(settings) as s:
        assert s.scalar(select(func.count()).where(Chunk.status == ChunkStatus.PENDING)) == 5
    assert proc.returncode == 2 and "retired" in proc.stderr and "Traceback" not in proc.stderr
    assert not any(k in proc.stderr for k in KEYS)
