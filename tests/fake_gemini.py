"""A Gemini-compatible HTTP server for tests and benchmarks: the real ``google-genai`` client talks to it.

There is no internet here, so the pre-labeler's real client code path (``google-genai`` 3.4.0, httpx2
transport) is exercised against this stdlib-only test double on ``127.0.0.1``::

    from google import genai
    from google.genai import types
    with FakeGemini(keys={"K1": "ok"}, rate={"gemini-2.5-flash": 5}, window=1.0) as fake:
        client = genai.Client(api_key="K1", http_options=types.HttpOptions(base_url=fake.url))
        client.models.generate_content(model="gemini-2.5-flash", contents=[...])

Tests import it as ``fake_gemini`` (pytest puts ``tests/`` on ``sys.path``); benchmarks, run from the repository
root as ``python -m benchmarks.NAME``, as ``tests.fake_gemini``. Importing it needs only the standard library.

What google-genai 3.4.0 sends and raises (verified by ``tests/test_fake_gemini.py``)
-----------------------------------------------------------------------------------
* **Path.** ``POST /v1/models/{model}:generateContent`` — the default ``api_version`` of the Gemini
  Developer API client is ``v1`` (``_api_client.GOOGLE_AI_API_DEFAULT_VERSION``), also with
  ``HttpOptions(base_url=...)``; ``HttpOptions(api_version="v1beta")`` or ``GOOGLE_GENAI_API_VERSION``
  change it. ``generate_content_stream`` posts to ``:streamGenerateContent?alt=sse``. All three versions
  (``v1``, ``v1beta``, ``v1alpha``) are served.
* **Key.** Header ``x-goog-api-key`` (stripped of whitespace by the client); ``?key=`` is accepted too.
  With ``HttpOptions(timeout=ms)`` the client also sends ``X-Server-Timeout: ceil(seconds)``.
* **Body.** ``contents[].parts[]`` with ``{"text": ...}`` and ``{"inlineData": {"data": base64,
  "mime_type": "audio/flac"}}`` — note the client writes ``mime_type`` in snake case inside
  ``inlineData`` (both spellings are accepted here); ``systemInstruction`` = ``{"parts": [{"text"}],
  "role": "user"}``; ``generationConfig`` with ``responseMimeType`` and ``responseSchema`` (the client adds
  ``property_ordering`` to OBJECT schemas), ``temperature``, ``maxOutputTokens``, ...
* **No retries by default.** Without ``HttpOptions(retry_options=HttpRetryOptions(...))`` the client makes
  exactly one attempt. With retry options it retries 408/429/500/502/503/504 with its own exponential
  backoff and *ignores* RetryInfo — a key pool that honours ``retryDelay`` should leave them unset.
* **Errors.** Any non-200 raises ``google.genai.errors.ClientError`` (4xx) or ``ServerError`` (5xx), both
  ``APIError`` subclasses with ``.code`` (HTTP status, int), ``.status`` (``"RESOURCE_EXHAUSTED"``,
  ``"INVALID_ARGUMENT"``, ...), ``.message`` (the error message) and ``.details`` = **the whole parsed JSON
  body**, i.e. ``{"error": {"code", "message", "status", "details": [...]}}``. So the google.rpc detail
  list is ``exc.details["error"]["details"]`` (not ``exc.details`` itself), and:

  - 429 RetryInfo: the entry of ``exc.details["error"]["details"]`` whose ``"@type"`` is
    ``"type.googleapis.com/google.rpc.RetryInfo"`` has ``"retryDelay"``: a protobuf Duration string,
    seconds with 0, 3, 6 or 9 decimals and an ``s`` (``"1.234s"``, ``"13s"``) — parse with
    ``float(s[:-1])``. Search by ``@type``: it is not at a fixed index (here, as at Google, a
    ``google.rpc.Help`` entry sits between QuotaFailure and RetryInfo). It may be absent
    (``retry_info=False``, per-day quota): the caller must back off on its own then.
  - Per-minute vs per-day 429: the ``google.rpc.QuotaFailure`` entry's ``violations[].quotaId`` contains
    ``PerMinute`` or ``PerDay`` (``GenerateRequestsPerDayPerProjectPerModel-FreeTier``); a per-day 429
    carries no RetryInfo (unless ``daily_retry_info=True``) and its message mentions the daily quota.
  - Invalid key: ``.code == 400``, ``.status == "INVALID_ARGUMENT"``, ``.message == "API key not valid.
    Please pass a valid API key."``, and an entry ``{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
    "reason": "API_KEY_INVALID", ...}`` in ``exc.details["error"]["details"]``. Match the reason, not
    the 400 (other 400s are request errors, not key errors).
  - Forbidden key: ``.code == 403``, ``.status == "PERMISSION_DENIED"`` (ErrorInfo reason
    ``CONSUMER_SUSPENDED``).
* **Timeouts.** ``HttpOptions(timeout=ms)`` (milliseconds) that elapses raises ``httpx2.ReadTimeout``
  (sync and ``client.aio``) — *not* an ``APIError`` and not ``httpx.ReadTimeout``: google-genai 3.x
  defaults to the ``httpx2`` package (plain ``httpx`` is not even installed in this venv). Catch
  ``httpx2.TimeoutException`` (base of Read/Connect/Write/PoolTimeout); a server that is down raises
  ``httpx2.ConnectError``. Both are ``httpx2.TransportError``. No timeout is set by default (waits forever).
* **Success.** ``response.text`` joins the text parts (``None`` when the candidate has no parts — a
  scripted ``Response(text=None)``), ``response.candidates[0].finish_reason`` is a
  ``types.FinishReason`` (``FinishReason.MAX_TOKENS``), ``response.usage_metadata.prompt_token_count`` /
  ``candidates_token_count`` / ``total_token_count``.

Server behaviour
----------------
Each request goes through: path/JSON checks (404 / 400) → key check (``invalid`` or unknown → 400
API_KEY_INVALID, ``forbidden`` → 403) → per-day quota → per-minute sliding window (429; over-quota
requests are not counted) → admitted: optional hang → optional injected 5xx (``error_rate``) →
``latency`` → the next scripted entry for this model, else ``responder(request)`` → 200.
Every request is appended to ``fake.log`` *before* its response is written, so ``fake.count(...)`` right
after a client call already includes it. Per-call overhead is ~1 ms (TCP_NODELAY; a ``genai.Client``
costs ~40 ms to construct, so reuse one per key). A 5-minute FLAC chunk takes ~0.15 s to decode.
Keys never appear in the log (``LogRecord.key`` is a fingerprint, see :func:`mask_key`) nor in error
messages; the in-memory ``Request.key`` holds the real key for responders.
"""
from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import itertools
import json
import math
import random
import re
import socket
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterable, Mapping, Sequence
from urllib.parse import parse_qs, urlsplit

__all__ = [
    "FakeGemini", "Request", "Response", "Fault", "LogRecord", "TruthResponder",
    "make_segments_response", "fmt_mmss", "mask_key", "audio_seconds", "SCHEMA",
    "fence_json", "wrap_prose", "truncate_json", "RETRY_INFO", "QUOTA_FAILURE", "ERROR_INFO",
]

#: The paper's response schema (what the pre-labeler passes as ``response_schema``).
SCHEMA: dict = {
    "type": "ARRAY",
    "items": {
        "type": "OBJECT",
        "properties": {
            "start": {"type": "STRING"},
            "end": {"type": "STRING"},
            "text": {"type": "STRING"},
            "translation": {"type": "STRING"},
        },
        "required": ["start", "end", "text", "translation"],
    },
}

RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"
QUOTA_FAILURE = "type.googleapis.com/google.rpc.QuotaFailure"
ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"
HELP = "type.googleapis.com/google.rpc.Help"
LOCALIZED = "type.googleapis.com/google.rpc.LocalizedMessage"

INVALID_KEY_MESSAGE = "API key not valid. Please pass a valid API key."
QUOTA_MESSAGE = "Resource has been exhausted (e.g. check quota)."
DAILY_QUOTA_MESSAGE = (
    "You exceeded your current quota, please check your plan and billing details. Quota exceeded for "
    "metric: generativelanguage.googleapis.com/generate_content_free_tier_requests, limit: {limit} "
    "requests per day (GenerateRequestsPerDayPerProjectPerModel-FreeTier). Please retry tomorrow."
)
FORBIDDEN_MESSAGE = "Permission denied: Consumer has been suspended."
SERVER_ERRORS = (
    (500, "INTERNAL", "An internal error has occurred. Please retry or report in "
                      "https://developers.generativeai.google/guide/troubleshooting"),
    (503, "UNAVAILABLE", "The model is overloaded. Please try again later."),
)
API_VERSIONS = ("v1", "v1beta", "v1alpha")
_MODEL_NAME = re.compile(r"^(models/)?gemini[\w.-]*$")
_PATH = re.compile(r"^/(?P<ver>v1|v1beta|v1alpha)/models/(?P<model>[^/:]+):(?P<method>generateContent|streamGenerateContent)$")
_BATCH_CREATE = re.compile(r"^/(?P<ver>v1|v1beta|v1alpha)/models/(?P<model>[^/:]+):batchGenerateContent$")
_BATCH_GET = re.compile(r"^/(?P<ver>v1|v1beta|v1alpha)/batches(?:/(?P<id>[^/:]+))?$")
BATCH_FATES = ("succeeded", "failed", "expired", "cancelled")


# --------------------------------------------------------------------------------------------------------
# Data types


@dataclass
class Request:
    """What the responder sees: one admitted ``generateContent`` request, decoded."""

    model: str
    key: str  # the real key (in memory only; never logged)
    audio: bytes  # the first inlineData part's bytes (b"" when none)
    mime_type: str | None  # its MIME type
    prompt: str  # the text parts of ``contents``, joined with "\n"
    system_instruction: str  # the text parts of ``systemInstruction``, joined with "\n"
    response_schema: dict | None  # generationConfig.responseSchema (or responseJsonSchema)
    response_mime_type: str | None
    generation_config: dict
    body: dict  # the raw JSON body (in ``fake.requests``: base64 strings elided)
    api_version: str = "v1"
    inline: list[tuple[str, bytes]] = field(default_factory=list)  # every inlineData part (mime, bytes)
    headers: dict[str, str] = field(default_factory=dict)  # request headers, API key redacted
    stream: bool = False

    @property
    def audio_sha256(self) -> str:
        return hashlib.sha256(self.audio).hexdigest()

    @property
    def audio_seconds(self) -> float:
        return audio_seconds(self.audio, self.mime_type)


@dataclass
class Response:
    """Model output for one request. ``text=None`` sends a candidate without parts (``response.text`` is
    ``None``); ``delay`` sleeps that long before answering (a deterministic slow or hung request)."""

    text: str | None
    finish_reason: str = "STOP"  # STOP | MAX_TOKENS | SAFETY | RECITATION | OTHER ...
    prompt_tokens: int | None = None
    output_tokens: int | None = None
    thoughts_tokens: int | None = None
    delay: float = 0.0


@dataclass
class Fault:
    """A scripted HTTP error for one admitted request (counts toward the quota, like any admitted one).
    ``retry_delay`` (seconds) adds a RetryInfo detail."""

    http_status: int = 503
    status: str = "UNAVAILABLE"
    message: str = "The model is overloaded. Please try again later."
    details: list | None = None
    retry_delay: float | None = None


@dataclass
class LogRecord:
    t: float  # time.monotonic() when the request arrived (same clock as the quota windows)
    key: str  # mask_key(key) — never the key itself
    model: str
    http_status: int
    outcome: str  # ok | 429 | 5xx | invalid | forbidden | not_found | bad_request | error (scripted 4xx)
    latency: float  # seconds the server spent on it (including simulated latency / hangs)
    detail: str = ""  # 429: "minute" | "day"; ok: "scripted" | "hang" | ""; 5xx: "injected" | "scripted" | "responder"


Responder = Callable[[Request], "Response | str | None"]
ScriptEntry = "Response | Fault | str | Callable[[Request], Response | Fault | str]"


# --------------------------------------------------------------------------------------------------------
# Helpers


def mask_key(key: str | None) -> str:
    """A stable, non-reversible fingerprint of an API key for logs: ``key:1a2b3c4d``."""
    if not key:
        return "key:none"
    return "key:" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:8]


def fmt_mmss(seconds: float) -> str:
    """``MM:SS.mmm`` (minutes are not wrapped into hours: 3725.5 s → ``62:05.500``)."""
    if seconds < 0 or seconds != seconds:
        raise ValueError(f"negative or NaN time: {seconds!r}")
    ms = int(round(seconds * 1000))
    return f"{ms // 60000:02d}:{(ms % 60000) // 1000:02d}.{ms % 1000:03d}"


def make_segments_response(segments: Iterable[Mapping[str, Any]], indent: int | None = None) -> str:
    """JSON text in the paper's response schema: ``[{"start": "MM:SS.mmm", "end": ..., "text": ...,
    "translation": ...}, ...]``. Numeric ``start``/``end`` (seconds) are formatted with :func:`fmt_mmss`;
    strings are passed through untouched (to script odd timestamp variants)."""
    out = []
    for seg in segments:
        item = {}
        for k in ("start", "end"):
            v = seg[k]
            item[k] = fmt_mmss(float(v)) if isinstance(v, (int, float)) else v
        item["text"] = seg.get("text", "")
        item["translation"] = seg.get("translation", "")
        out.append(item)
    return json.dumps(out, ensure_ascii=False, indent=indent)


def fence_json(text: str, lang: str = "json") -> str:
    """Wrap output in a Markdown code fence, as models do despite JSON mode."""
    return f"```{lang}\n{text}\n```"


def wrap_prose(text: str) -> str:
    """Prose before and after the JSON."""
    return f"Here is the transcription of the audio:\n\n{text}\n\nLet me know if you need anything else."


def truncate_json(text: str, fraction: float = 0.6) -> str:
    """Cut the text mid-way (pair with ``finish_reason="MAX_TOKENS"``)."""
    return text[: max(1, int(len(text) * fraction))]


def _flac_seconds(data: bytes) -> float | None:
    # fLaC + metadata block header (4 bytes) + STREAMINFO: rate 20 bits, channels 3, bps 5, samples 36.
    if len(data) < 42 or data[:4] != b"fLaC":
        return None
    info = data[8:42]
    rate = (info[10] << 12) | (info[11] << 4) | (info[12] >> 4)
    total = ((info[13] & 0x0F) << 32) | struct.unpack(">I", info[14:18])[0]
    return total / rate if rate and total else None


def _wav_seconds(data: bytes) -> float | None:
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    pos, byte_rate = 12, None
    while pos + 8 <= len(data):
        cid, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        if cid == b"fmt " and size >= 16:
            byte_rate = struct.unpack("<I", data[pos + 16:pos + 20])[0]
        elif cid == b"data" and byte_rate:
            return min(size, len(data) - pos - 8) / byte_rate
        pos += 8 + size + (size & 1)
    return None


def audio_seconds(data: bytes, mime_type: str | None = None) -> float:
    """Duration from a FLAC STREAMINFO or WAV header; otherwise assume 16 kHz 16-bit mono bytes."""
    if not data:
        return 0.0
    return _flac_seconds(data) or _wav_seconds(data) or len(data) / 32000.0


def _fmt_duration(seconds: float) -> str:
    """A protobuf JSON Duration, as Google writes it: 0, 3, 6 or 9 decimals (here ms, rounded up)."""
    ms = max(0, math.ceil(seconds * 1000 - 1e-6))
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms // 1000}.{ms % 1000:03d}s"


def _error_body(code: int, status: str, message: str, details: list | None = None) -> dict:
    err: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        err["details"] = details
    return {"error": err}


def _strip_inline(body: dict) -> dict:
    """The body with every inlineData.data string replaced by ``"<N base64 chars>"`` (for keeping)."""
    def part(p: Any) -> Any:
        if not isinstance(p, dict):
            return p
        for k in ("inlineData", "inline_data"):
            d = p.get(k)
            if isinstance(d, dict) and isinstance(d.get("data"), str):
                p = {**p, k: {**d, "data": f"<{len(d['data'])} base64 chars>"}}
        return p

    contents = body.get("contents")
    if not isinstance(contents, list):
        return body
    return {**body, "contents": [{**c, "parts": [part(p) for p in c.get("parts") or []]} if isinstance(c, dict) else c
                                 for c in contents]}


def _texts(content: Any) -> list[str]:
    if isinstance(content, str):
        return [content]
    if not isinstance(content, dict):
        return []
    return [p["text"] for p in content.get("parts") or [] if isinstance(p, dict) and isinstance(p.get("text"), str)]


# --------------------------------------------------------------------------------------------------------
# Responders


class TruthResponder:
    """Answers with the ground truth of the audio it is sent.

    ``truth`` maps ``sha256(audio bytes).hexdigest()`` → segments, each a mapping with chunk-relative
    ``start``/``end`` seconds, ``text`` and ``translation``. Unknown audio → ``"[]"``. ``jitter`` (seconds)
    perturbs every timestamp by a uniform amount, deterministic per audio (seeded by ``seed`` and the hash),
    so that repeated requests for one chunk get the same answer."""

    def __init__(self, truth: Mapping[str, Sequence[Mapping[str, Any]]] | None = None, *, jitter: float = 0.0,
                 seed: int = 0):
        self.truth: dict[str, list[dict]] = {k: [dict(s) for s in v] for k, v in (truth or {}).items()}
        self.jitter = jitter
        self.seed = seed
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()

    def add(self, audio: bytes | str, segments: Sequence[Mapping[str, Any]]) -> None:
        """Register segments for audio bytes (or their sha256 hex)."""
        digest = audio if isinstance(audio, str) else hashlib.sha256(audio).hexdigest()
        self.truth[digest] = [dict(s) for s in segments]

    def segments_for(self, audio: bytes) -> list[dict] | None:
        digest = hashlib.sha256(audio).hexdigest()
        segs = self.truth.get(digest)
        if segs is None:
            return None
        if not self.jitter:
            return [dict(s) for s in segs]
        rng = random.Random(f"{self.seed}:{digest}")
        out = []
        for s in segs:
            a = max(0.0, float(s["start"]) + rng.uniform(-self.jitter, self.jitter))
            b = max(a, float(s["end"]) + rng.uniform(-self.jitter, self.jitter))
            out.append({**s, "start": a, "end": b})
        return out

    def __call__(self, request: Request) -> str:
        segs = self.segments_for(request.audio)
        with self._lock:
            if segs is None:
                self.misses += 1
            else:
                self.hits += 1
        return "[]" if segs is None else make_segments_response(segs)


def _default_responder(request: Request) -> str:
    return "[]"


# --------------------------------------------------------------------------------------------------------
# The server


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def handle_error(self, request, client_address) -> None:
        import sys

        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return  # a client that went away (killed, timed out) is not the server's error
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: avoid the 40 ms delayed-ACK stall
    server_version = "FakeGemini/1.0"
    sys_version = ""
    fake: "FakeGemini"  # set on the per-instance subclass
    timeout = 120  # idle keep-alive connections die eventually

    # Silence http.server's stderr logging: request lines may carry ?key=.
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def setup(self) -> None:
        super().setup()
        self.fake._track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.fake._track(self.connection, False)

    def _send_json(self, status: int, payload: Any) -> None:
        data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
        except OSError:  # the client gave up (timeout) or the server is stopping
            self.close_connection = True

    def _send_sse(self, events: list[dict]) -> None:
        data = b"".join(b"data: " + json.dumps(e, ensure_ascii=False).encode("utf-8") + b"\r\n\r\n" for e in events)
        try:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
        except OSError:
            self.close_connection = True

    def _read_body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def do_POST(self) -> None:  # noqa: N802
        if _BATCH_CREATE.match(urlsplit(self.path).path):
            self.fake._batch_create(self)
        else:
            self.fake._handle(self)

    def do_GET(self) -> None:  # noqa: N802
        self._read_body()
        if _BATCH_GET.match(urlsplit(self.path).path):
            self.fake._batch_get(self)
            return
        self._send_json(404, _error_body(404, "NOT_FOUND", f"Method not found: GET {urlsplit(self.path).path}"))


class FakeGemini:
    """A Gemini REST double on ``127.0.0.1``. All arguments are keyword-only; see the module docstring.

    keys         key → ``"ok" | "invalid" | "forbidden"``; unknown keys are invalid. ``None``: every
                 non-empty key is ok.
    rate         model → requests allowed per (key, model) per ``window`` seconds (sliding window).
                 ``"*"`` applies to models not listed; models without a rate are unlimited.
    window       the sliding window, seconds (Google: 60; tests use 1–2).
    retry_info   include RetryInfo (exact time until the window frees a slot) in per-minute 429s.
    daily_limit  model (or ``"*"``) → requests per (key, model) per ``day`` seconds (fixed windows from
                 start()); over it → 429 with QuotaFailure quotaId ``...PerDay...`` and no RetryInfo
                 unless ``daily_retry_info`` (then: time until the next day).
    error_rate   fraction of admitted requests answered 500 INTERNAL or 503 UNAVAILABLE (``seed``ed).
    latency      seconds, or (lo, hi) uniform, slept before every successful answer.
    hang, hang_rate  a ``hang_rate`` fraction (default all, when ``hang`` > 0) of admitted requests sleep
                 ``hang`` seconds first; a hung request answers from the responder, never from the script.
    responder    ``Request -> Response | str``; default answers ``"[]"``.
    models       if given, other model names → 404 NOT_FOUND.
    max_request_bytes  bigger bodies → 400 (Google's inline limit is 20 MB).
    keep_requests  how many admitted Requests ``fake.requests`` keeps (audio bytes included; the kept
                 ``body`` has its base64 strings replaced by ``"<N base64 chars>"``). 0 keeps none.
    batch_seconds  how long a Batch API job takes (pending for the first half, running for the second).
    batch_fate   job index (0, 1, …) → ``"succeeded" | "failed" | "expired" | "cancelled"``; a succeeded job's
                 requests are answered by the script and the responder, so a ``Fault`` there is one request's
                 error inside a succeeded job. Batch requests skip the per-minute quotas, as Google's do.
    """

    def __init__(
        self,
        *,
        keys: Mapping[str, str] | None = None,
        rate: Mapping[str, float] | None = None,
        window: float = 60.0,
        retry_info: bool = True,
        daily_limit: Mapping[str, int] | None = None,
        day: float = 86400.0,
        daily_retry_info: bool = False,
        error_rate: float = 0.0,
        latency: float | tuple[float, float] = 0.0,
        hang: float = 0.0,
        hang_rate: float = 1.0,
        responder: Responder | None = None,
        seed: int = 0,
        models: Iterable[str] | None = None,
        max_request_bytes: int = 20 * 1024 * 1024,
        keep_requests: int = 16,
        batch_seconds: float = 0.5,
        batch_fate: Callable[[int], str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ):
        for k, state in (keys or {}).items():
            if state not in ("ok", "invalid", "forbidden"):
                raise ValueError(f"key state must be ok, invalid or forbidden, not {state!r}")
        self.keys: dict[str, str] | None = dict(keys) if keys is not None else None
        self.rate = dict(rate or {})
        self.window = float(window)
        self.retry_info = retry_info
        self.daily_limit = dict(daily_limit or {})
        self.day = float(day)
        self.daily_retry_info = daily_retry_info
        self.error_rate = float(error_rate)
        self.latency = latency
        self.hang = float(hang)
        self.hang_rate = float(hang_rate)
        self.responder: Responder = responder or _default_responder
        self.models = set(models) if models is not None else None
        self.max_request_bytes = max_request_bytes
        self.host, self.port = host, port
        self.batch_seconds = float(batch_seconds)
        self.batch_fate = batch_fate or (lambda index: "succeeded")
        self.batches: dict[str, dict] = {}  # id → job (Batch API)

        self.log: list[LogRecord] = []
        self.requests: deque[Request] = deque(maxlen=keep_requests)
        self.errors: list[BaseException] = []  # exceptions raised by responders / scripted callables
        self.inflight = 0
        self.max_inflight = 0

        self._lock = threading.RLock()
        self._rng = random.Random(seed)
        self._windows: dict[tuple[str, str], deque[float]] = {}
        self._daily: dict[tuple[str, str, int], int] = {}
        self._script: deque[tuple[str | None, Any]] = deque()
        self._ids = itertools.count(1)
        self._conns: set[socket.socket] = set()
        self._stop = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._t0 = time.monotonic()

    # ---- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> "FakeGemini":
        if self._server is not None:
            return self
        handler = type("Handler", (_Handler,), {"fake": self})
        self._stop.clear()
        self._server = _Server((self.host, self.port), handler)
        self.port = self._server.server_address[1]
        self._t0 = time.monotonic()
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"fake-gemini:{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, wake sleeping (hung) handlers and close open connections."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stop.set()
        server.shutdown()
        server.server_close()
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> "FakeGemini":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeGemini is not started")
        return f"http://{self.host}:{self.port}"

    def client(self, api_key: str, **http_options: Any):
        """A real ``google.genai.Client`` pointed at this server (``http_options``: timeout=ms,
        api_version=..., retry_options=...)."""
        from google import genai
        from google.genai import types

        return genai.Client(api_key=api_key, http_options=types.HttpOptions(base_url=self.url, **http_options))

    # ---- configuration at run time ---------------------------------------------------------------------

    def set_key(self, key: str, state: str) -> None:
        """Add a key or change its state (revoke a key mid-run)."""
        if state not in ("ok", "invalid", "forbidden"):
            raise ValueError(state)
        with self._lock:
            if self.keys is None:
                self.keys = {}
            self.keys[key] = state

    def script(self, *entries: Any, model: str | None = None) -> None:
        """Queue outputs for the next admitted, non-hung requests (FIFO), before the responder is asked.

        Entries: ``Response``, ``Fault``, a ``str`` (= ``Response(text)``), or a callable
        ``Request -> Response | Fault | str``. ``model`` restricts the entries to requests for that model
        (requests for other models skip them); ``None`` matches any model.

        The positional form ``fake.script(model, *entries)`` also works: a leading ``None``, or a leading
        string that names a model (``gemini-...``, ``models/...`` or one of ``models=``) followed by more
        entries, is taken as the model. ``fake.script("some output")`` queues that text."""
        if entries and model is None:
            head = entries[0]
            if head is None:
                entries = entries[1:]
            elif isinstance(head, str) and len(entries) > 1 and (
                    _MODEL_NAME.match(head) or (self.models is not None and head in self.models)):
                model, entries = head, entries[1:]
        if model is not None and model.startswith("models/"):
            model = model[len("models/"):]
        for e in entries:
            if e is None:
                raise ValueError("script entries cannot be None")
        with self._lock:
            for e in entries:
                self._script.append((model, e))

    @property
    def pending_script(self) -> int:
        with self._lock:
            return len(self._script)

    def reset(self, *, log: bool = True, quota: bool = True, script: bool = True) -> None:
        with self._lock:
            if log:
                self.log.clear()
                self.requests.clear()
                self.errors.clear()
                self.max_inflight = self.inflight
            if quota:
                self._windows.clear()
                self._daily.clear()
            if script:
                self._script.clear()

    # ---- observability ---------------------------------------------------------------------------------

    def records(self, outcome: str | None = None, model: str | None = None, key: str | None = None) -> list[LogRecord]:
        """Log records filtered by outcome, model and key (the real key; compared by fingerprint)."""
        fp = mask_key(key) if key is not None else None
        with self._lock:
            return [r for r in self.log
                    if (outcome is None or r.outcome == outcome)
                    and (model is None or r.model == model)
                    and (fp is None or r.key == fp)]

    def count(self, outcome: str | None = None, model: str | None = None, key: str | None = None) -> int:
        return len(self.records(outcome, model, key))

    @property
    def last_request(self) -> Request | None:
        with self._lock:
            return self.requests[-1] if self.requests else None

    def usage(self, key: str, model: str) -> int:
        """Admitted requests of (key, model) in the current sliding window."""
        now = time.monotonic()
        with self._lock:
            q = self._windows.get((key, model), deque())
            return sum(1 for t in q if t > now - self.window)

    # ---- request handling ------------------------------------------------------------------------------

    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._lock:
            (self._conns.add if add else self._conns.discard)(conn)

    def _record(self, t0: float, key: str, model: str, status: int, outcome: str, detail: str = "") -> None:
        rec = LogRecord(t0, mask_key(key), model, status, outcome, time.monotonic() - t0, detail)
        with self._lock:
            self.log.append(rec)

    def _sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._stop.wait(seconds)

    def _limit(self, table: Mapping[str, Any], model: str) -> Any:
        return table.get(model, table.get("*"))

    def _admit(self, key: str, model: str) -> tuple[str, dict] | None:
        """Count the request against the quotas, or return (kind, 429 body) without counting it.

        Requests are admitted in lock order, so the time is read under the lock: a request that arrived
        first but got the lock second must not enter the window before the one already in it."""
        with self._lock:
            now = time.monotonic()
            daily = self._limit(self.daily_limit, model)
            day_idx = int((now - self._t0) // self.day)
            if daily is not None and self._daily.get((key, model, day_idx), 0) >= int(daily):
                details: list[dict] = [
                    {"@type": QUOTA_FAILURE, "violations": [{
                        "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                        "quotaId": "GenerateRequestsPerDayPerProjectPerModel-FreeTier",
                        "quotaDimensions": {"location": "global", "model": model},
                        "quotaValue": str(int(daily)),
                    }]},
                    {"@type": HELP, "links": [{"description": "Learn more about Gemini API quotas",
                                               "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}]},
                ]
                if self.daily_retry_info:
                    until = self._t0 + (day_idx + 1) * self.day - now
                    details.append({"@type": RETRY_INFO, "retryDelay": _fmt_duration(until)})
                msg = DAILY_QUOTA_MESSAGE.format(limit=int(daily))
                return "day", _error_body(429, "RESOURCE_EXHAUSTED", msg, details)
            rate = self._limit(self.rate, model)
            q = self._windows.setdefault((key, model), deque())
            while q and q[0] <= now - self.window:
                q.popleft()
            if rate is not None and len(q) >= int(rate):
                wait = (q[0] + self.window - now) if q else self.window
                details = [
                    {"@type": QUOTA_FAILURE, "violations": [{
                        "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                        "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                        "quotaDimensions": {"location": "global", "model": model},
                        "quotaValue": str(int(rate)),
                    }]},
                    {"@type": HELP, "links": [{"description": "Learn more about Gemini API quotas",
                                               "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}]},
                ]
                if self.retry_info:
                    details.append({"@type": RETRY_INFO, "retryDelay": _fmt_duration(wait)})
                return "minute", _error_body(429, "RESOURCE_EXHAUSTED", QUOTA_MESSAGE, details)
            q.append(now)
            if daily is not None:
                self._daily[(key, model, day_idx)] = self._daily.get((key, model, day_idx), 0) + 1
            return None

    def _parse(self, body: dict, model: str, key: str, version: str, headers: dict, stream: bool) -> Request:
        inline: list[tuple[str, bytes]] = []
        prompt: list[str] = []
        contents = body.get("contents") or []
        if isinstance(contents, dict):
            contents = [contents]
        for ci, content in enumerate(contents):
            if not isinstance(content, dict):
                raise ValueError(f"Invalid value at 'contents[{ci}]'")
            for pi, part in enumerate(content.get("parts") or []):
                if not isinstance(part, dict):
                    raise ValueError(f"Invalid value at 'contents[{ci}].parts[{pi}]'")
                data = part.get("inlineData", part.get("inline_data"))
                if data is not None:
                    mime = data.get("mimeType", data.get("mime_type"))
                    if not mime:
                        raise ValueError(f"contents[{ci}].parts[{pi}].inline_data: Missing mime_type")
                    try:
                        # google-genai sends URL-safe base64 (``-``/``_``); Google accepts both alphabets.
                        raw = base64.b64decode((data.get("data") or "").replace("-", "+").replace("_", "/"),
                                               validate=True)
                    except (binascii.Error, ValueError, TypeError):
                        raise ValueError(f"Invalid value at 'contents[{ci}].parts[{pi}].inline_data.data' "
                                         "(TYPE_BYTES), Base64 decoding failed") from None
                    inline.append((mime, raw))
                if isinstance(part.get("text"), str):
                    prompt.append(part["text"])
        if not contents:
            raise ValueError("* GenerateContentRequest.contents: contents is not specified")
        sys_inst = body.get("systemInstruction", body.get("system_instruction"))
        gen = body.get("generationConfig", body.get("generation_config")) or {}
        schema = gen.get("responseSchema", gen.get("response_schema",
                         gen.get("responseJsonSchema", gen.get("response_json_schema"))))
        audio = next(((m, b) for m, b in inline if m.startswith("audio/")), inline[0] if inline else (None, b""))
        return Request(
            model=model, key=key, audio=audio[1], mime_type=audio[0], prompt="\n".join(prompt),
            system_instruction="\n".join(_texts(sys_inst)), response_schema=schema,
            response_mime_type=gen.get("responseMimeType", gen.get("response_mime_type")),
            generation_config=gen, body=body, api_version=version, inline=inline, headers=headers,
            stream=stream,
        )

    def _answer(self, req: Request, out: Response, model: str) -> dict:
        text = out.text
        if out.prompt_tokens is not None:
            prompt_tokens = out.prompt_tokens
        else:
            secs = sum(audio_seconds(b, m) for m, b in req.inline)
            prompt_tokens = int(round(secs * 32)) + math.ceil((len(req.prompt) + len(req.system_instruction)) / 4)
            prompt_tokens = max(1, prompt_tokens)
        output_tokens = out.output_tokens if out.output_tokens is not None else math.ceil(len(text or "") / 4)
        content: dict[str, Any] = {"role": "model"}
        if text is not None:
            content["parts"] = [{"text": text}]
        usage: dict[str, Any] = {"promptTokenCount": prompt_tokens, "candidatesTokenCount": output_tokens,
                                 "totalTokenCount": prompt_tokens + output_tokens + (out.thoughts_tokens or 0)}
        if out.thoughts_tokens:
            usage["thoughtsTokenCount"] = out.thoughts_tokens
        return {
            "candidates": [{"content": content, "finishReason": out.finish_reason, "index": 0}],
            "usageMetadata": usage,
            "modelVersion": model,
            "responseId": f"fake-{next(self._ids):08d}",
        }

    def _stream_events(self, payload: dict, chunk: int = 256) -> list[dict]:
        cand = payload["candidates"][0]
        parts = cand["content"].get("parts")
        text = parts[0]["text"] if parts else None
        if not text or len(text) <= chunk:
            return [payload]
        pieces = [text[i:i + chunk] for i in range(0, len(text), chunk)]
        events = []
        for i, p in enumerate(pieces):
            ev = {"candidates": [{"content": {"role": "model", "parts": [{"text": p}]}, "index": 0}],
                  "modelVersion": payload["modelVersion"], "responseId": payload["responseId"]}
            if i == len(pieces) - 1:
                ev["candidates"][0]["finishReason"] = cand["finishReason"]
                ev["usageMetadata"] = payload["usageMetadata"]
            events.append(ev)
        return events

    # ---- the Batch API -----------------------------------------------------------------------------------

    def _key_state(self, key: str) -> str:
        with self._lock:
            return "ok" if (self.keys is None and key) else (self.keys or {}).get(key, "invalid")

    def _batch_create(self, h: _Handler) -> None:
        """``models/{model}:batchGenerateContent`` with inlined requests: the job is answered now, revealed when
        its time has passed (``batch_seconds``)."""
        t0 = time.monotonic()
        body_bytes = h._read_body()
        split = urlsplit(h.path)
        m = _BATCH_CREATE.match(split.path)
        model, version = m.group("model"), m.group("ver")
        key = (h.headers.get("x-goog-api-key") or (parse_qs(split.query).get("key") or [""])[0]).strip()
        if self._key_state(key) != "ok":
            self._record(t0, key, model, 400, "invalid", "batch")
            h._send_json(400, _error_body(400, "INVALID_ARGUMENT", INVALID_KEY_MESSAGE, [
                {"@type": ERROR_INFO, "reason": "API_KEY_INVALID", "domain": "googleapis.com"}]))
            return
        try:
            batch = json.loads(body_bytes.decode("utf-8"))["batch"]
            items = batch["inputConfig"]["requests"]["requests"]
            requests = [(self._parse(item["request"], model, key, version, {}, False), item.get("metadata") or {})
                        for item in items]
        except (ValueError, KeyError, TypeError) as e:
            self._record(t0, key, model, 400, "bad_request", "batch")
            h._send_json(400, _error_body(400, "INVALID_ARGUMENT", f"Invalid batch request: {e}"))
            return
        with self._lock:
            index = len(self.batches)
            job_id = f"fakebatch{index:04d}{self._rng.randrange(16**6):06x}"
            fate = self.batch_fate(index)
        outputs = []
        for req, meta in requests:
            with self._lock:
                if self.requests.maxlen:
                    self.requests.append(dataclasses.replace(req, body=_strip_inline(req.body)))
                entry = next((e for i, (m_, e) in enumerate(self._script) if m_ in (None, model)), None)
                if entry is not None:
                    self._script.remove(next(x for x in self._script if x[1] is entry))
            out = entry(req) if callable(entry) and not isinstance(entry, (Response, Fault)) else entry
            out = self.responder(req) if out is None else out
            if isinstance(out, Fault):
                outputs.append({"error": {"code": out.http_status, "message": out.message, "status": out.status},
                                "metadata": meta})
                continue
            if out is None or isinstance(out, str):
                out = Response(text="[]" if out is None else out)
            outputs.append({"response": self._answer(req, out, model), "metadata": meta})
        with self._lock:
            self.batches[job_id] = {"model": model, "key": key, "created": time.monotonic(), "fate": fate,
                                    "display_name": batch.get("displayName", ""), "outputs": outputs,
                                    "count": len(requests)}
        self._record(t0, key, model, 200, "batch_created", job_id)
        h._send_json(200, self._batch_view(job_id))

    def _batch_view(self, job_id: str) -> dict:
        with self._lock:
            job = self.batches[job_id]
            age = time.monotonic() - job["created"]
        if age < self.batch_seconds / 2:
            state = "BATCH_STATE_PENDING"
        elif age < self.batch_seconds:
            state = "BATCH_STATE_RUNNING"
        else:
            state = f"BATCH_STATE_{job['fate'].upper()}"
        meta: dict[str, Any] = {"@type": "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch",
                                "model": f"models/{job['model']}", "displayName": job["display_name"], "state": state,
                                "batchStats": {"requestCount": str(job["count"])}}
        view: dict[str, Any] = {"name": f"batches/{job_id}", "metadata": meta}
        if state == "BATCH_STATE_SUCCEEDED":
            meta["output"] = {"inlinedResponses": {"inlinedResponses": job["outputs"]}}
            view["done"] = True
        elif state != "BATCH_STATE_PENDING" and state != "BATCH_STATE_RUNNING":
            view["done"] = True
        return view

    def _batch_get(self, h: _Handler) -> None:
        t0 = time.monotonic()
        split = urlsplit(h.path)
        job_id = _BATCH_GET.match(split.path).group("id")
        key = (h.headers.get("x-goog-api-key") or (parse_qs(split.query).get("key") or [""])[0]).strip()
        with self._lock:
            mine = [j for j, job in self.batches.items() if job["key"] == key]
        if job_id is None:  # list: this key's jobs
            h._send_json(200, {"operations": [self._batch_view(j) for j in mine]})
            return
        if job_id not in mine:
            self._record(t0, key, "", 404, "not_found", "batch")
            h._send_json(404, _error_body(404, "NOT_FOUND", f"batches/{job_id} not found"))
            return
        h._send_json(200, self._batch_view(job_id))

    def _handle(self, h: _Handler) -> None:
        t0 = time.monotonic()
        with self._lock:
            self.inflight += 1
            self.max_inflight = max(self.max_inflight, self.inflight)
        try:
            self._handle_inner(h, t0)
        finally:
            with self._lock:
                self.inflight -= 1

    def _handle_inner(self, h: _Handler, t0: float) -> None:
        body_bytes = h._read_body()
        split = urlsplit(h.path)
        query = parse_qs(split.query)
        key = (h.headers.get("x-goog-api-key") or (query.get("key") or [""])[0] or "").strip()
        m = _PATH.match(split.path)
        if not m:
            self._record(t0, key, "", 404, "not_found")
            h._send_json(404, _error_body(404, "NOT_FOUND", f"Method not found: POST {split.path}"))
            return
        model, version = m.group("model"), m.group("ver")
        stream = m.group("method") == "streamGenerateContent"
        if len(body_bytes) > self.max_request_bytes:
            self._record(t0, key, model, 400, "bad_request", "too large")
            h._send_json(400, _error_body(400, "INVALID_ARGUMENT",
                                          f"Request payload size exceeds the limit: {self.max_request_bytes} bytes."))
            return
        try:
            body = json.loads(body_bytes.decode("utf-8") or "null")
            if not isinstance(body, dict):
                raise ValueError
        except ValueError:
            self._record(t0, key, model, 400, "bad_request", "json")
            h._send_json(400, _error_body(400, "INVALID_ARGUMENT", "Invalid JSON payload received."))
            return

        # Key check.
        if not key:
            self._record(t0, key, model, 403, "forbidden", "no key")
            h._send_json(403, _error_body(403, "PERMISSION_DENIED",
                                          "Method doesn't allow unregistered callers (callers without established "
                                          "identity). Please use API Key or other form of API consumer identity "
                                          "to call this API."))
            return
        with self._lock:
            state = "ok" if self.keys is None else self.keys.get(key, "invalid")
        if state == "invalid":
            self._record(t0, key, model, 400, "invalid")
            h._send_json(400, _error_body(400, "INVALID_ARGUMENT", INVALID_KEY_MESSAGE, [
                {"@type": ERROR_INFO, "reason": "API_KEY_INVALID", "domain": "googleapis.com",
                 "metadata": {"service": "generativelanguage.googleapis.com"}},
                {"@type": LOCALIZED, "locale": "en-US", "message": INVALID_KEY_MESSAGE},
            ]))
            return
        if state == "forbidden":
            self._record(t0, key, model, 403, "forbidden")
            h._send_json(403, _error_body(403, "PERMISSION_DENIED", FORBIDDEN_MESSAGE, [
                {"@type": ERROR_INFO, "reason": "CONSUMER_SUSPENDED", "domain": "googleapis.com",
                 "metadata": {"service": "generativelanguage.googleapis.com"}},
            ]))
            return
        if self.models is not None and model not in self.models:
            self._record(t0, key, model, 404, "not_found")
            h._send_json(404, _error_body(404, "NOT_FOUND", f"models/{model} is not found for API version "
                                          f"{version}, or is not supported for generateContent."))
            return

        headers = {k: ("<redacted>" if k.lower() == "x-goog-api-key" else v) for k, v in h.headers.items()}
        try:
            req = self._parse(body, model, key, version, headers, stream)
        except ValueError as e:
            self._record(t0, key, model, 400, "bad_request", "request")
            h._send_json(400, _error_body(400, "INVALID_ARGUMENT", str(e)))
            return

        # Quotas.
        refused = self._admit(key, model)
        if refused is not None:
            kind, payload = refused
            self._record(t0, key, model, 429, "429", kind)
            h._send_json(429, payload)
            return
        with self._lock:
            if self.requests.maxlen:
                self.requests.append(dataclasses.replace(req, body=_strip_inline(req.body)))
            hung = self.hang > 0 and self._rng.random() < self.hang_rate
            fail = self.error_rate > 0 and self._rng.random() < self.error_rate
            code_status = self._rng.choice(SERVER_ERRORS) if fail else None
            lat = self.latency
            delay = self._rng.uniform(*lat) if isinstance(lat, (tuple, list)) else float(lat or 0.0)
        if hung:
            self._sleep(self.hang)
        if code_status is not None:
            code, status, msg = code_status
            self._record(t0, key, model, code, "5xx", "injected")
            h._send_json(code, _error_body(code, status, msg))
            return

        # Output: the script first (unless hung), then the responder.
        detail = "hang" if hung else ""
        entry: Any = None
        if not hung:
            with self._lock:
                for i, (m_, e) in enumerate(self._script):
                    if m_ is None or m_ == model:
                        entry = e
                        del self._script[i]
                        break
        try:
            if entry is not None:
                detail = "scripted"
                out = entry(req) if callable(entry) and not isinstance(entry, (Response, Fault)) else entry
            else:
                out = self.responder(req)
        except Exception as e:  # a broken responder is a test bug: surface it as a 500 and keep it
            with self._lock:
                self.errors.append(e)
            self._record(t0, key, model, 500, "5xx", "responder")
            h._send_json(500, _error_body(500, "INTERNAL", f"responder raised {type(e).__name__}: {e}"))
            return
        if isinstance(out, Fault):
            details = list(out.details or [])
            if out.retry_delay is not None:
                details.append({"@type": RETRY_INFO, "retryDelay": _fmt_duration(out.retry_delay)})
            outcome = "5xx" if out.http_status >= 500 else ("429" if out.http_status == 429 else "error")
            self._record(t0, key, model, out.http_status, outcome, "scripted")
            h._send_json(out.http_status, _error_body(out.http_status, out.status, out.message, details))
            return
        if out is None or isinstance(out, str):
            out = Response(text="[]" if out is None else out)
        self._sleep(delay + out.delay)
        payload = self._answer(req, out, model)
        # Recorded before the bytes go out, so that a caller's count() right after its call sees it.
        self._record(t0, key, model, 200, "ok", detail)
        if stream:
            h._send_sse(self._stream_events(payload))
        else:
            h._send_json(200, payload)
