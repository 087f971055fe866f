"""``vecs prelabel --mode batch``: a backlog through Gemini's Batch API, at half the list price, answered within
hours instead of seconds.

The chunks are claimed into a ``batched`` state (no online worker takes them), grouped into jobs of inlined requests
under the API's request size limit, and each job is recorded in the store before it is submitted. A run collects
the jobs that finished — its own and earlier runs' — and stores their replies through the same parser, audit trail
and key pool as single requests; a run killed at any moment (``kill -9``) is picked up by the next: a job recorded
but not yet named is found again by its display name in the key's job list. A reply that is unusable, cut short or
looping, an item's error, and a job that fails or expires send their chunks back to the queue (the online engine,
or a later batch, takes them); nothing is ever marked done with utterances missing.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass

from sqlalchemy import select, update

from ..foundation.config import SAMPLE_RATE, Settings
from ..store import Chunk, ChunkStatus, PrelabelBatch, claim_chunks, session_scope, utcnow
from .gemini import GeminiCaller, _parse, reply_from
from .keypool import KeyPool
from .runner import ChunkJob, Labeled, Run, reason_key, record_attempt, store_labels

#: Inlined requests of one job stay under this many bytes (the API refuses a request over 20 MB).
JOB_BYTES = 18 * 1024 * 1024
OPEN = ("submitting", "pending", "running")
DONE = {"JOB_STATE_SUCCEEDED": "succeeded", "JOB_STATE_FAILED": "failed", "JOB_STATE_EXPIRED": "expired",
        "JOB_STATE_CANCELLED": "cancelled"}
ENGINE = "gemini-batch"


@dataclass
class BatchReport:
    submitted_jobs: int = 0
    submitted_chunks: int = 0
    collected_jobs: int = 0
    open_jobs: int = 0
    requeued: int = 0  # chunks back in the queue (an item's error, an unusable reply, a failed or expired job)


def _display(row_id: int) -> str:
    return f"vecs-batch-{row_id}"


def _jobs_for(settings: Settings, chunk_ids: list[int], token: str) -> list[ChunkJob]:
    with session_scope(settings) as s:
        chunks = s.scalars(select(Chunk).where(Chunk.id.in_(chunk_ids)).order_by(Chunk.id)).all()
        return [ChunkJob(chunk_id=c.id, video_id=c.video.video_id, index=c.index,
                         audio_path=settings.home / c.audio_path, start=c.start, duration=c.duration,
                         is_last=c.is_last, captions={}, claim_token=token, held_status=ChunkStatus.BATCHED)
                for c in chunks]


def _requeue(settings: Settings, chunk_ids: list[int], token: str) -> int:
    """Chunks still held by this job back to the queue (one that meanwhile moved on is left alone)."""
    with session_scope(settings) as s:
        result = s.execute(update(Chunk).where(Chunk.id.in_(chunk_ids), Chunk.status == ChunkStatus.BATCHED,
                                               Chunk.claim_token == token)
                           .values(status=ChunkStatus.PENDING, claimed_by=None, claim_token=None)
                           .execution_options(synchronize_session=False))
        return result.rowcount or 0


def _update(settings: Settings, row_id: int, **values) -> None:
    with session_scope(settings) as s:
        s.execute(update(PrelabelBatch).where(PrelabelBatch.id == row_id).values(updated_at=utcnow(), **values))


class BatchRunner:
    def __init__(self, pool: KeyPool, caller: GeminiCaller, settings: Settings, *, refiner=None,
                 job_bytes: int = JOB_BYTES) -> None:
        self.pool, self.caller, self.settings, self.refiner = pool, caller, settings, refiner
        self.job_bytes = job_bytes
        self.model = pool.tiers[0]  # the cheapest tier: a batch waits anyway

    # -- submit ------------------------------------------------------------------------------------------
    def submit(self, limit: int | None, report: BatchReport) -> None:
        """Claim pending chunks and send them as jobs (each recorded first, then created, then named)."""
        from google.genai import types

        key_hash, key = self._lease()
        # The claim and every job's record in one transaction: a run killed after it leaves no chunk held by
        # a job nobody recorded (the next run looks each record up, and gives back what was never sent).
        with session_scope(self.settings) as s:
            claimed = claim_chunks(s, limit=limit or 10**9, to_status=ChunkStatus.BATCHED, stale_after=None,
                                   worker="batch")
            token = claimed[0].claim_token if claimed else None
            groups, size = [[]], 0
            for c in claimed:
                path = self.settings.home / c.audio_path
                n = path.stat().st_size * 4 // 3 + 4096  # base64 and the request around it
                if groups[-1] and size + n > self.job_bytes:
                    groups.append([])
                    size = 0
                groups[-1].append((c.id, path))
                size += n
            rows = [PrelabelBatch(model=self.model, key_hash=key_hash, claim_token=token,
                                  chunk_ids=[cid for cid, _ in g], state="submitting") for g in groups if g]
            s.add_all(rows)
            s.flush()
            jobs = [(row.id, g) for row, g in zip(rows, (g for g in groups if g))]
        client = self._client(key)
        for row_id, group in jobs:
            requests = [types.InlinedRequest(contents=self.caller.contents(path.read_bytes()),
                                             config=self.caller.config(self.model), metadata={"chunk": str(cid)})
                        for cid, path in group]
            try:
                job = client.batches.create(model=self.model, src=requests,
                                            config=types.CreateBatchJobConfig(display_name=_display(row_id)))
            except Exception as exc:  # noqa: BLE001 - refused: the chunks go back, the reason is kept
                detail = self.caller.redact(f"{type(exc).__name__}: {exc}")[:500]
                _update(self.settings, row_id, state="refused", detail=detail)
                report.requeued += _requeue(self.settings, [cid for cid, _ in group], token)
                continue
            _update(self.settings, row_id, name=job.name, state="pending")
            report.submitted_jobs += 1
            report.submitted_chunks += len(group)

    def _lease(self) -> tuple[str, str]:
        """The key a job is submitted (and later polled) with: the pool's first usable one on the batch tier."""
        usable = [h for h in self.pool.key_hashes() if not self.pool.retired_on(h, self.model)]
        if not usable:
            raise RuntimeError(f"no usable key for {self.model}")
        return usable[0], self.pool.key(usable[0])

    def _client(self, key: str):
        from google import genai
        from google.genai import types

        opts = types.HttpOptions(base_url=self.caller.base_url) if self.caller.base_url else None
        return genai.Client(api_key=key, http_options=opts)

    # -- collect -----------------------------------------------------------------------------------------
    def collect(self, run: Run, report: BatchReport) -> None:
        """Every open job of the store: named ones polled, unnamed ones looked up, finished ones stored."""
        with session_scope(self.settings) as s:
            rows = [(r.id, r.name, r.key_hash, r.claim_token, list(r.chunk_ids), r.model)
                    for r in s.scalars(select(PrelabelBatch).where(PrelabelBatch.state.in_(OPEN))).all()]
        for row_id, name, key_hash, token, chunk_ids, model in rows:
            key = self.pool.key(key_hash)
            if key is None:  # polled only with the key that made it
                report.open_jobs += 1
                run.stopped = run.stopped or (f"batch job {name or _display(row_id)} was submitted with key "
                                              f"{key_hash}, which this run was not given (GEMINI_API_KEYS)")
                continue
            client = self._client(key)
            if name is None:
                found = [j for j in client.batches.list() if j.display_name == _display(row_id)]
                if not found:  # killed before the service had it: the chunks go back
                    _update(self.settings, row_id, state="never_submitted")
                    report.requeued += _requeue(self.settings, chunk_ids, token)
                    continue
                name = found[0].name
                _update(self.settings, row_id, name=name, state="pending")
            job = client.batches.get(name=name)
            state = getattr(job.state, "name", str(job.state))
            if state not in DONE:
                _update(self.settings, row_id, state="running" if "RUNNING" in state else "pending")
                report.open_jobs += 1
                continue
            if DONE[state] != "succeeded":
                _update(self.settings, row_id, state=DONE[state])
                report.requeued += _requeue(self.settings, chunk_ids, token)
                run.failure_reasons[f"batch job {DONE[state]}"] += len(chunk_ids)
                report.collected_jobs += 1
                continue
            self._store(job, model, key_hash, token, chunk_ids, run, report)
            _update(self.settings, row_id, state="succeeded")
            report.collected_jobs += 1

    def _store(self, job, model: str, key_hash: str, token: str, chunk_ids: list[int], run: Run,
               report: BatchReport) -> None:
        from ..foundation.audio import load_audio

        jobs = {j.chunk_id: j for j in _jobs_for(self.settings, chunk_ids, token)}
        answered = set()
        for item in job.dest.inlined_responses or []:
            cid = int((item.metadata or {}).get("chunk", -1))
            chunk = jobs.get(cid)
            if chunk is None:
                continue
            answered.add(cid)
            if item.error is not None or item.response is None:
                detail = self.caller.redact(f"{getattr(item.error, 'code', '')} {getattr(item.error, 'message', '')}")
                record_attempt(self.settings, chunk_id=cid, engine=ENGINE, model=model, key_hash=key_hash,
                               latency_s=None, offset_s=0.0, outcome="batch_error", detail=detail[:1000])
                report.requeued += _requeue(self.settings, [cid], token)
                run.failure_reasons["batch item error"] += 1
                continue
            reply = reply_from(item.response, latency=0.0)
            run.count_tokens(model, reply, batch=True)
            parsed = _parse(reply, chunk.duration, 0.0)
            problem = parsed.unusable or (f"{parsed.lossy} segments lost" if parsed.lossy else None) or (
                "truncated" if parsed.truncated else None) or parsed.loop
            record_attempt(self.settings, chunk_id=cid, engine=ENGINE, model=model, key_hash=key_hash,
                           latency_s=None, offset_s=0.0, prompt_tokens=reply.prompt_tokens,
                           output_tokens=reply.output_tokens, outcome="batch_ok" if not problem else "batch_requeued",
                           finish_reason=reply.finish_reason, detail=(problem or "")[:1000] or None,
                           raw_response=reply.text)
            if problem:  # the online engine asks again, continues a cut reply, retries a loop on another tier
                report.requeued += _requeue(self.settings, [cid], token)
                run.failure_reasons[f"batch reply {reason_key(problem)}"] += 1
                continue
            segments = sorted(parsed.segments, key=lambda s: (s.start, s.end))
            raw = [(s.start, s.end) for s in segments]
            if self.refiner is not None and segments:
                segments = self.refiner.refine(load_audio(chunk.audio_path), SAMPLE_RATE, segments)
            labeled = Labeled(segments, raw, parsed.repairs, parsed.drops, agent=model)
            outcome = store_labels(self.settings, chunk, labeled, ENGINE)
            if outcome == "stored":
                run.done += 1
                run.audio_s += chunk.duration
                run.repairs.update(parsed.repairs)
                run.drops.update(parsed.drops)
            elif outcome == "kept_answers":
                run.kept_answers += 1
            else:
                run.claims_lost += 1
        missing = [cid for cid in jobs if cid not in answered]
        if missing:  # a job that answered fewer requests than it was given
            report.requeued += _requeue(self.settings, missing, token)
            run.failure_reasons["batch item missing"] += len(missing)


async def run_batch(runner: BatchRunner, *, limit: int | None, wait: bool, poll_s: float = 30.0,
                    console=None) -> tuple[Run, BatchReport]:
    """Collect what finished, submit the backlog, and with ``wait`` poll until every job is collected."""
    run, report = Run(), BatchReport()
    await asyncio.to_thread(runner.collect, run, report)
    await asyncio.to_thread(runner.submit, limit, report)
    while wait and not run.stopped:
        report.open_jobs = 0
        await asyncio.to_thread(runner.collect, run, report)
        if not report.open_jobs:
            break
        if console is not None:
            console.print(f"  {report.open_jobs} batch jobs still running; next look in {poll_s:.0f} s")
        await asyncio.sleep(poll_s)
    if not wait:  # what was just submitted is open: count it
        report.open_jobs = 0
        await asyncio.to_thread(runner.collect, run, report)
    return run, report
