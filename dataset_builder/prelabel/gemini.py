"""One Gemini request through the real google-genai client, and the classification of what came back.

The client is pointed at a gateway or a local server with ``HttpOptions(base_url=...)``; retries are ours
(the key pool decides where the next attempt goes), so the client's own retry options stay off.
"""
from __future__ import annotations

import asyncio
import io
import random
import time
from collections import Counter
from dataclasses import dataclass

try:  # google-genai 3.x talks through httpx2; older releases through httpx
    import httpx2 as httpx
except ImportError:  # pragma: no cover
    import httpx
import soundfile as sf
from google import genai
from google.genai import errors, types

from ..foundation.audio import load_audio
from ..foundation.config import MAX_SEGMENT_SECONDS, SAMPLE_RATE, Settings
from .keypool import KeyPool, Lease
from .parsing import Parsed, Segment, parse_response
from .prompts import RESPONSE_SCHEMA, SYSTEM_PROMPT, user_prompt
from .runner import ChunkFailed, ChunkJob, Labeled, Run, record_attempt


@dataclass
class Reply:
    text: str
    finish_reason: str | None
    prompt_tokens: int | None
    output_tokens: int | None
    latency: float
    thoughts_tokens: int | None = None  # billed as output


def reply_from(response, latency: float) -> Reply:
    """A google-genai ``GenerateContentResponse`` (a request's, or one item of a batch job's) as a :class:`Reply`."""
    candidate = (response.candidates or [None])[0]
    finish = getattr(getattr(candidate, "finish_reason", None), "name", None) or (
        str(candidate.finish_reason) if candidate is not None and candidate.finish_reason else None
    )
    usage = response.usage_metadata
    text = ""
    if candidate is not None and candidate.content is not None:
        text = "".join(p.text or "" for p in candidate.content.parts or [] if getattr(p, "text", None))
    return Reply(text=text, finish_reason=finish, prompt_tokens=getattr(usage, "prompt_token_count", None),
                 output_tokens=getattr(usage, "candidates_token_count", None), latency=latency,
                 thoughts_tokens=getattr(usage, "thoughts_token_count", None))


class RequestFailed(Exception):
    """A request that produced no usable reply; ``kind`` says what the caller should do about it."""

    def __init__(self, kind: str, detail: str, *, http_code: int | None = None, retry_delay: float | None = None,
                 per_day: bool = False, latency: float = 0.0, whole_key: bool = False) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind  # "rate_limited" | "invalid_key" | "transient" | "fatal"
        self.detail = detail
        self.http_code = http_code
        self.retry_delay = retry_delay
        self.per_day = per_day
        self.latency = latency
        self.whole_key = whole_key  # an invalid key is invalid for every model; a 403 may be one model's


def parse_duration(value) -> float | None:
    """Google's protobuf Duration JSON ("1.5s", "30s") → seconds."""
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and value.endswith("s"):
        try:
            return float(value[:-1])
        except ValueError:
            return None
    return None


def _error_details(exc: errors.APIError) -> list[dict]:
    body = exc.details if isinstance(exc.details, dict) else {}
    inner = body.get("error", body) if isinstance(body, dict) else {}
    details = inner.get("details") if isinstance(inner, dict) else None
    return [d for d in details or [] if isinstance(d, dict)]


def classify(exc: BaseException, latency: float, redact) -> RequestFailed:
    """Map any exception from the client to what the pool and the runner should do."""
    if isinstance(exc, errors.APIError):
        details = _error_details(exc)
        message = redact(str(exc.message or exc.status or exc))
        reasons = {d.get("reason") for d in details}
        if exc.code == 429:
            delay = next((parse_duration(d.get("retryDelay")) for d in details if "retryDelay" in d), None)
            quota_ids = " ".join(str(v.get("quotaId", "")) for d in details for v in d.get("violations", []) or [])
            per_day = "PerDay" in quota_ids or "per day" in message.lower()
            return RequestFailed("rate_limited", message, http_code=429, retry_delay=delay, per_day=per_day, latency=latency)
        if "API_KEY_INVALID" in reasons or (exc.code in (400, 401) and "api key" in message.lower()):
            return RequestFailed("invalid_key", f"{exc.code} {exc.status}: {message}", http_code=exc.code,
                                 latency=latency, whole_key=True)
        if exc.code == 403:
            return RequestFailed("invalid_key", f"{exc.code} {exc.status}: {message}", http_code=exc.code, latency=latency)
        if isinstance(exc, errors.ServerError) or (exc.code or 0) >= 500 or exc.code == 408:
            return RequestFailed("transient", f"{exc.code} {exc.status}: {message}", http_code=exc.code, latency=latency)
        return RequestFailed("fatal", f"{exc.code} {exc.status}: {message}", http_code=exc.code, latency=latency)
    if isinstance(exc, (httpx.TimeoutException, httpx.TransportError, TimeoutError, ConnectionError)):
        return RequestFailed("transient", f"{type(exc).__name__}: {redact(str(exc)) or 'timed out'}", latency=latency)
    return RequestFailed("fatal", f"{type(exc).__name__}: {redact(str(exc))}", latency=latency)


#: The smallest thinking budget Gemini 2.5 Pro accepts (ai.google.dev/gemini-api/docs/thinking).
PRO_MIN_THINKING = 128


class GeminiCaller:
    """Holds one client per key (the key is bound at construction) and makes single requests."""

    def __init__(self, base_url: str | None = None, timeout_s: float = 600.0, max_output_tokens: int | None = None,
                 thinking_budget: int | None = None, max_segment_s: float = MAX_SEGMENT_SECONDS) -> None:
        self.base_url = base_url
        self.timeout_s = timeout_s
        self.max_output_tokens = max_output_tokens
        self.thinking_budget = thinking_budget  # None: the model's default; 0 turns thinking off where it can
        self._clients: dict[str, genai.Client] = {}
        self._secrets: list[str] = []
        self._prompt = user_prompt(max_segment_s)

    def _client(self, lease: Lease) -> genai.Client:
        client = self._clients.get(lease.key_hash)
        if client is None:
            opts = types.HttpOptions(timeout=int(self.timeout_s * 1000))
            if self.base_url:
                opts = types.HttpOptions(base_url=self.base_url, timeout=int(self.timeout_s * 1000))
            client = genai.Client(api_key=lease.key, http_options=opts)
            self._clients[lease.key_hash] = client
            self._secrets.append(lease.key)
        return client

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def budget_for(self, model: str) -> int | None:
        """The thinking budget sent to ``model``: Gemini 2.5 Pro cannot stop thinking (it refuses budgets under
        PRO_MIN_THINKING), so a smaller budget becomes its minimum instead of failing every request."""
        if self.thinking_budget is None or "pro" not in model:
            return self.thinking_budget
        return max(self.thinking_budget, PRO_MIN_THINKING)

    def config(self, model: str) -> types.GenerateContentConfig:
        """The request settings, the same for a single request and for each request of a batch job."""
        budget = self.budget_for(model)
        return types.GenerateContentConfig(
            system_instruction=SYSTEM_PROMPT,
            response_mime_type="application/json",
            response_schema=RESPONSE_SCHEMA,
            temperature=0.0,
            max_output_tokens=self.max_output_tokens,
            thinking_config=None if budget is None else types.ThinkingConfig(thinking_budget=budget),
        )

    def contents(self, audio: bytes, mime_type: str = "audio/flac") -> list:
        return [types.Part.from_bytes(data=audio, mime_type=mime_type), self._prompt]

    async def generate(self, lease: Lease, audio: bytes, mime_type: str = "audio/flac") -> Reply:
        client = self._client(lease)
        config = self.config(lease.model)
        t0 = time.perf_counter()
        try:
            response = await client.aio.models.generate_content(
                model=lease.model,
                contents=self.contents(audio, mime_type),
                config=config,
            )
        except Exception as exc:  # noqa: BLE001 - every failure is classified, none escapes raw
            raise classify(exc, time.perf_counter() - t0, self.redact) from None
        return reply_from(response, time.perf_counter() - t0)


# -- the engine: one chunk, as many requests as it takes ---------------------------------------------------




MAX_TRANSIENT = 6
MAX_CONTINUATIONS = 4
#: Replies that are unusable or lost segments, asked again (another tier first, then other keys) before the
#: chunk fails with the reason: a chunk is never stored with utterances missing.
MAX_BAD_REPLIES = 2
#: A truncated reply whose last segment ends this close to the chunk's end needs no continuation.
CONTINUE_MARGIN_S = 1.0


class GeminiEngine:
    name = "gemini"

    def __init__(self, pool: KeyPool, caller: GeminiCaller, settings: Settings, *, refiner=None,
                 seed: int | None = None) -> None:
        self.pool = pool
        self.settings = settings  # where the audit trail of every request goes
        self.caller = caller
        self.refiner = refiner
        self._rng = random.Random(seed)

    async def _request(self, job: ChunkJob, run: Run, audio: bytes, offset: float, avoid: set[str]) -> tuple[Reply, Lease]:
        transient = 0
        while True:
            lease = await self.pool.acquire(avoid=avoid)
            run.tier = lease.model
            run.requests += 1
            try:
                reply = await self.caller.generate(lease, audio)
            except RequestFailed as fail:
                await asyncio.to_thread(
                    record_attempt, self.settings, chunk_id=job.chunk_id, engine=self.name, model=lease.model,
                    key_hash=lease.key_hash, latency_s=fail.latency, offset_s=offset, outcome=fail.kind,
                    http_code=fail.http_code, detail=fail.detail[:1000],
                )
                if fail.kind == "rate_limited":
                    run.rate_limited += 1
                    self.pool.report_rate_limited(lease, fail.retry_delay, fail.per_day)
                    continue
                if fail.kind == "invalid_key":
                    self.pool.retire(lease.key_hash, fail.detail, model=None if fail.whole_key else lease.model)
                    continue
                if fail.kind == "transient":
                    run.server_errors += 1
                    transient += 1
                    if transient > MAX_TRANSIENT:
                        raise ChunkFailed(f"gave up after {transient} transient errors; last: {fail.detail}") from None
                    await asyncio.sleep(min(30.0, 0.5 * 2 ** (transient - 1)) * self._rng.uniform(0.5, 1.5))
                    continue
                raise ChunkFailed(fail.detail) from None
            finally:
                self.pool.release()
            self.pool.report_ok(lease)
            run.count_tokens(lease.model, reply)
            return reply, lease

    async def label(self, job: ChunkJob, run: Run) -> Labeled:
        try:
            samples = await asyncio.to_thread(load_audio, job.audio_path, sample_rate=SAMPLE_RATE)
            file_bytes = await asyncio.to_thread(job.audio_path.read_bytes)
        except Exception as exc:  # missing or corrupt chunk audio fails this chunk only
            raise ChunkFailed(f"chunk audio unreadable: {exc}") from None
        if len(samples) == 0:
            raise ChunkFailed("chunk audio is empty")
        duration = len(samples) / SAMPLE_RATE
        segments: list[Segment] = []
        repairs: Counter = Counter()
        drops: Counter = Counter()
        offset = 0.0
        retried_loop = False
        bad_replies = 0
        continuations = 0
        avoid: set[str] = set()
        while True:
            # The chunk file as stored; only a continuation re-encodes the tail it asks about.
            audio = file_bytes if offset == 0 else _flac_bytes(samples[int(round(offset * SAMPLE_RATE)):], SAMPLE_RATE)
            reply, lease = await self._request(job, run, audio, offset, avoid)
            parsed = _parse(reply, duration, offset)
            problem = parsed.unusable or (f"{parsed.lossy} segments lost to bad times or wrong types"
                                          if parsed.lossy else None)
            if not problem and parsed.truncated and not (parsed.last_end > offset):
                problem = "truncated reply with nothing new"
            outcome = ("loop" if parsed.loop and not problem else "unusable" if parsed.unusable else
                       "lossy" if problem else "truncated" if parsed.truncated else "ok")
            await asyncio.to_thread(
                record_attempt, self.settings, chunk_id=job.chunk_id, engine=self.name, model=lease.model,
                key_hash=lease.key_hash, latency_s=reply.latency, offset_s=offset, prompt_tokens=reply.prompt_tokens,
                output_tokens=reply.output_tokens, outcome=outcome, finish_reason=reply.finish_reason,
                detail=(problem or parsed.loop or "")[:1000] or None, raw_response=reply.text,
            )
            if problem:
                bad_replies += 1
                repairs["retried_bad_reply"] += 1
                if bad_replies > MAX_BAD_REPLIES:
                    raise ChunkFailed(f"unusable replies: {problem} (model {lease.model}, {bad_replies} tries)")
                avoid = {lease.model}  # another tier where there is one; the pool also rotates keys
                continue
            if parsed.loop and not retried_loop:
                retried_loop = True  # one retry, on another tier where there is one
                avoid = {lease.model}
                repairs["retried_on_other_tier"] += 1
                continue
            avoid = set()
            new = _dedupe_loops(parsed.segments, repairs) if parsed.loop else parsed.segments
            repairs.update(parsed.repairs)
            drops.update(parsed.drops)
            segments.extend(s for s in new if s.start >= offset - 1e-6)
            if parsed.truncated and parsed.last_end < duration - CONTINUE_MARGIN_S:
                continuations += 1
                if continuations > MAX_CONTINUATIONS:
                    raise ChunkFailed(f"reply still truncated after {MAX_CONTINUATIONS} continuations "
                                      f"(covered {parsed.last_end:.1f} of {duration:.1f} s)")
                repairs["continued_after_truncation"] += 1
                offset = parsed.last_end
                continue
            break
        segments.sort(key=lambda s: (s.start, s.end))
        raw = [(s.start, s.end) for s in segments]
        if self.refiner is not None and segments:
            segments = await asyncio.to_thread(self.refiner.refine, samples, SAMPLE_RATE, segments)
        return Labeled(segments, raw, repairs, drops, agent=lease.model)


def _parse(reply: Reply, duration: float, offset: float) -> Parsed:
    """The parser must never raise; if it ever does, the reply counts as unusable (asked again), not a crash."""
    try:
        return parse_response(reply.text, duration, finish_reason=reply.finish_reason, offset=offset)
    except Exception as exc:  # noqa: BLE001
        return Parsed([], False, unusable=f"reply not parseable ({type(exc).__name__})")


def _dedupe_loops(segments: list[Segment], repairs: Counter) -> list[Segment]:
    """Keep one of each run of repeated text (a loop that survived its retry)."""
    from dataset_builder.foundation.text import loop_key

    out: list[Segment] = []
    for seg in segments:
        if out and loop_key(out[-1].text) == loop_key(seg.text):
            repairs["loop_repeat_removed"] += 1
            continue
        out.append(seg)
    return out


def _flac_bytes(samples, sample_rate: int) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, samples, sample_rate, format="FLAC", subtype="PCM_16")
    return buf.getvalue()
