"""``vecs prelabel --mode batch``: a backlog through the Gemini Batch API (the real google-genai client against the
local stand-in): the same labels as single requests at half the price, thinking tokens counted, a run killed at
any moment picked up by the next, and whatever a job cannot deliver — an item's error, an expired job, a reply cut
short — back in the queue, never a chunk done with utterances missing."""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys

from sqlalchemy import func, select

from conftest import assert_all_valid as _assert_all_valid, stored_segments as _stored, wait_for
from dataset_builder.prelabel.batch import BatchRunner, run_batch
from dataset_builder.prelabel.gemini import GeminiCaller
from dataset_builder.prelabel.keypool import KeyPool
from dataset_builder.store import Chunk, ChunkStatus, PrelabelAttempt, PrelabelBatch, session_scope
from fake_gemini import Fault, FakeGemini, Response, TruthResponder, truncate_json, make_segments_response
from test_prelabel_gemini import FLASH, KEYS, PRO


def _runner(settings, fake, *, job_bytes=None, thinking=None) -> BatchRunner:
    pool = KeyPool(list(KEYS), [FLASH, PRO], settings=settings, seed=0)
    caller = GeminiCaller(base_url=fake.url, timeout_s=10.0, thinking_budget=thinking)
    return BatchRunner(pool, caller, settings, **({"job_bytes": job_bytes} if job_bytes else {}))


def _per_job(settings, n: int) -> int:
    """A job budget ``n`` of the largest chunks fill (base64 and the request around each)."""
    with session_scope(settings) as s:
        largest = max((settings.home / c.audio_path).stat().st_size for c in s.scalars(select(Chunk)).all())
    return n * (largest * 4 // 3 + 4096)


def _statuses(settings) -> dict[str, int]:
    with session_scope(settings) as s:
        return dict(s.execute(select(Chunk.status, func.count()).group_by(Chunk.status)).all())


def test_a_backlog_is_labeled_through_batch_jobs_at_half_price(settings, chunks):
    truth = TruthResponder({sha: segs for sha, (_, segs) in chunks.items()})
    with FakeGemini(keys={k: "ok" for k in KEYS}, batch_seconds=0.3,
                    responder=lambda r: Response(truth(r), thoughts_tokens=11)) as fake:
        run, report = asyncio.run(run_batch(_runner(settings, fake, job_bytes=_per_job(settings, 2), thinking=256),
                                            limit=None, wait=True, poll_s=0.2))
        jobs = len(fake.batches)
        thinking_config = fake.requests[-1].generation_config["thinkingConfig"]  # proto JSON takes either spelling
        budget = thinking_config.get("thinkingBudget", thinking_config.get("thinking_budget"))
    assert report.submitted_chunks == 5 and report.collected_jobs == jobs and 2 <= jobs < 5 and report.open_jobs == 0
    assert run.done == 5 and _statuses(settings) == {ChunkStatus.PRELABELED: 5}
    stored = _stored(settings)
    for cid, segs in chunks.values():
        assert [(a, b, t) for a, b, t in stored[cid]] == [(s["start"], s["end"], s["text"]) for s in segs]
    _assert_all_valid(settings)
    assert budget == 256 and not run.tokens  # every token went through the Batch API
    tin, tout, thinking = run.batch_tokens[FLASH]
    assert tin > 0 and tout > 0 and thinking == 5 * 11
    from dataset_builder.foundation.config import token_cost

    assert token_cost(FLASH, (tin, tout, thinking), batch=True) == token_cost(FLASH, (tin, tout, thinking)) / 2
    with session_scope(settings) as s:
        assert s.scalar(select(func.count()).where(PrelabelAttempt.outcome == "batch_ok")) == 5
        assert {b.state for b in s.scalars(select(PrelabelBatch)).all()} == {"succeeded"}


def test_what_a_job_cannot_deliver_goes_back_to_the_queue(settings, chunks):
    truth = TruthResponder({sha: segs for sha, (_, segs) in chunks.items()})
    with FakeGemini(keys={k: "ok" for k in KEYS}, batch_seconds=0.2,
                    batch_fate=lambda i: "expired" if i == 1 else "succeeded", responder=truth) as fake:
        fake.script(Fault(500, "INTERNAL", "item failed"),  # job 0 (the first long chunk): an item's error
                    truth,  # job 1 (the second long chunk): answered, but the job expires
                    lambda req: Response(truncate_json(make_segments_response(truth.segments_for(req.audio))),
                                         finish_reason="MAX_TOKENS"))  # job 2's first request: cut short
        run, report = asyncio.run(run_batch(_runner(settings, fake, job_bytes=_per_job(settings, 1)), limit=None,
                                            wait=True, poll_s=0.2))
        assert [len(job["outputs"]) for job in fake.batches.values()] == [1, 1, 3]
    statuses = _statuses(settings)
    assert statuses.get(ChunkStatus.PENDING, 0) == 3 and statuses.get(ChunkStatus.PRELABELED, 0) == 2
    assert report.requeued == 3 and run.failed == 0 and run.done == 2
    assert run.failure_reasons["batch item error"] == 1 and run.failure_reasons["batch job expired"] == 1
    assert run.failure_reasons["batch reply truncated"] == 1
    assert not _stored(settings).keys() - {cid for cid, _ in chunks.values()}
    _assert_all_valid(settings)


def test_a_killed_batch_run_is_collected_by_the_next(settings, chunks):
    """kill -9 while the jobs run: the next run finds them in the store, submits nothing again, stores the
    replies; a job recorded but never created gives its chunks back."""
    truth = TruthResponder({sha: segs for sha, (_, segs) in chunks.items()})
    with FakeGemini(keys={k: "ok" for k in KEYS}, batch_seconds=3.0, responder=truth) as fake:
        env = {**os.environ, "GEMINI_API_KEYS": ",".join(KEYS), "VECS_GEMINI_BASE_URL": fake.url}
        cmd = [sys.executable, "-m", "dataset_builder.cli", "prelabel", "--mode", "batch", "--wait", "--poll", "0.2",
               "--no-progress", "--no-refine"]
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert wait_for(lambda: len(fake.batches) >= 1, timeout=60)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        submitted = len(fake.batches)
        with session_scope(settings) as s:  # a job the killed run recorded but never sent
            s.add(PrelabelBatch(model=FLASH, key_hash=s.scalars(select(PrelabelBatch.key_hash)).first(),
                                claim_token="lost", chunk_ids=[], state="submitting"))
        again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
        assert again.returncode == 0, again.stderr
        sent = [int(o["metadata"]["chunk"]) for job in fake.batches.values() for o in job["outputs"]]
    assert sorted(sent) == sorted(cid for cid, _ in chunks.values())  # every chunk sent once, none twice
    assert _statuses(settings) == {ChunkStatus.PRELABELED: 5}
    stored = _stored(settings)
    for cid, segs in chunks.values():
        assert len(stored[cid]) == len(segs)
    with session_scope(settings) as s:
        states = [b.state for b in s.scalars(select(PrelabelBatch)).all()]
    assert states.count("succeeded") == len(fake.batches) and states.count("never_submitted") >= 1
    assert submitted >= 1
    assert "(batch, half price)" in again.stderr and "KEY" not in again.stderr.upper().replace("KEYS", "")


def test_online_requests_count_thinking_tokens_and_send_the_budget(settings, chunks):
    from dataset_builder.foundation.config import token_cost
    from dataset_builder.prelabel.gemini import GeminiEngine
    from dataset_builder.prelabel.runner import run_engine

    truth = TruthResponder({sha: segs for sha, (_, segs) in chunks.items()})
    with FakeGemini(keys={k: "ok" for k in KEYS}, responder=lambda r: Response(truth(r), thoughts_tokens=40)) as fake:
        pool = KeyPool(list(KEYS), [FLASH, PRO], settings=settings, seed=0)
        engine = GeminiEngine(pool, GeminiCaller(base_url=fake.url, timeout_s=10.0, thinking_budget=0), settings)
        run = asyncio.run(run_engine(engine, settings, progress=False))
        config = fake.requests[-1].generation_config["thinkingConfig"]
    assert run.done == 5 and config.get("thinkingBudget", config.get("thinking_budget")) == 0
    tin, tout, thinking = run.tokens[FLASH]
    assert thinking == 40 * run.requests  # billed as output: the estimate counts them
    assert token_cost(FLASH, (tin, tout, thinking)) > token_cost(FLASH, (tin, tout, 0))


def test_pro_gets_its_minimum_thinking_budget_not_a_refused_zero():
    caller = GeminiCaller(thinking_budget=0)
    assert caller.config(FLASH).thinking_config.thinking_budget == 0
    assert caller.config(PRO).thinking_config.thinking_budget == 128  # Pro refuses 0: every request would fail
    assert GeminiCaller(thinking_budget=2048).config(PRO).thinking_config.thinking_budget == 2048
    assert GeminiCaller().config(PRO).thinking_config is None  # no budget: the model's default
