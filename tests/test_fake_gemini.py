"""The Gemini test double, driven by the real google-genai client (sync, async, streaming)."""
from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import time
import urllib.error
import urllib.request

import httpx2
import numpy as np
import pytest
import soundfile as sf
from google.genai import errors, types

from fake_gemini import (
    ERROR_INFO, QUOTA_FAILURE, RETRY_INFO, SCHEMA, FakeGemini, Fault, Response, TruthResponder, audio_seconds,
    fence_json, fmt_mmss, make_segments_response, mask_key, truncate_json, wrap_prose,
)

MODEL = "gemini-2.5-flash"
K1, K2 = "AIzaFAKE-key-one-0000000000000000000", "AIzaFAKE-key-two-1111111111111111111"
SYSTEM = "You are a meticulous Vietnamese-English transcriber."
PROMPT = "Transcribe this audio chunk verbatim and translate it into Vietnamese."


def flac_bytes(seconds: float = 1.5, sr: int = 16000, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    sf.write(buf, rng.integers(-8000, 8000, int(seconds * sr), dtype=np.int16), sr, format="FLAC", subtype="PCM_16")
    return buf.getvalue()


def call(client, audio: bytes = b"\x00\x01fLaC-ish\xff", model: str = MODEL, schema: dict = SCHEMA):
    return client.models.generate_content(
        model=model,
        contents=[types.Part.from_bytes(data=audio, mime_type="audio/flac"), PROMPT],
        config=types.GenerateContentConfig(system_instruction=SYSTEM, response_mime_type="application/json",
                                           response_schema=schema),
    )


def rpc_details(exc: errors.APIError) -> list[dict]:
    """The google.rpc detail list: APIError.details is the whole JSON body."""
    return exc.details["error"].get("details", [])


def retry_delay(exc: errors.APIError) -> float | None:
    for d in rpc_details(exc):
        if d.get("@type") == RETRY_INFO:
            return float(d["retryDelay"].rstrip("s"))
    return None


def reason(exc: errors.APIError) -> str | None:
    return next((d.get("reason") for d in rpc_details(exc) if d.get("@type") == ERROR_INFO), None)


@pytest.fixture
def fake():
    with FakeGemini(keys={K1: "ok", K2: "ok"}) as f:
        yield f


def test_round_trip_sends_audio_schema_and_system_instruction(fake):
    audio = flac_bytes(2.0)
    fake.responder = lambda req: make_segments_response([{"start": 0.25, "end": 1.5, "text": "hello anh",
                                                          "translation": "xin chào anh"}])
    r = call(fake.client(K1), audio)
    assert json.loads(r.text) == [{"start": "00:00.250", "end": "00:01.500", "text": "hello anh",
                                   "translation": "xin chào anh"}]
    assert r.candidates[0].finish_reason == types.FinishReason.STOP
    u = r.usage_metadata
    assert u.prompt_token_count == 64 + (len(PROMPT) + len(SYSTEM) + 3) // 4  # 2 s of audio at 32 tokens/s
    assert u.candidates_token_count == -(-len(r.text) // 4)
    assert u.total_token_count == u.prompt_token_count + u.candidates_token_count
    assert r.model_version == MODEL

    req = fake.last_request
    assert req.audio == audio and req.audio_sha256 == hashlib.sha256(audio).hexdigest()
    assert req.mime_type == "audio/flac" and req.audio_seconds == pytest.approx(2.0)
    assert req.prompt == PROMPT and req.system_instruction == SYSTEM
    assert req.response_mime_type == "application/json"
    schema = req.response_schema
    assert schema["type"] == "ARRAY" and schema["items"]["required"] == ["start", "end", "text", "translation"]
    assert set(schema["items"]["properties"]) == {"start", "end", "text", "translation"}
    assert req.api_version == "v1" and req.key == K1  # google-genai 3.4 defaults to /v1/
    assert req.headers["x-goog-api-key"] == "<redacted>"
    assert fake.count("ok") == 1 and fake.count("ok", key=K1, model=MODEL) == 1 and fake.count(key=K2) == 0


def test_api_versions_and_query_key(fake):
    call(fake.client(K1, api_version="v1beta"))
    assert fake.last_request.api_version == "v1beta"
    body = json.dumps({"contents": [{"parts": [{"text": "hi"}]}]}).encode()
    url = f"{fake.url}/v1alpha/models/{MODEL}:generateContent?key={K2}"
    with urllib.request.urlopen(urllib.request.Request(url, data=body, method="POST")) as resp:
        out = json.load(resp)
    assert out["candidates"][0]["content"]["parts"][0]["text"] == "[]"
    assert fake.last_request.key == K2 and fake.last_request.api_version == "v1alpha"
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(urllib.request.Request(f"{fake.url}/v1/models/x:embed", data=body, method="POST"))
    assert e.value.code == 404


def test_script_fifo_per_model_and_malformed_outputs(fake):
    good = make_segments_response([{"start": 1, "end": 2, "text": "a", "translation": "b"}])
    fake.script("gemini-2.5-pro", "pro only")  # only for that model: flash requests skip it
    fake.script(None, fence_json(good), wrap_prose(good))  # the brief's positional form
    fake.script(Response(truncate_json(good), finish_reason="MAX_TOKENS"))  # no model given: any model
    fake.script(Response(None, finish_reason="MAX_TOKENS", thoughts_tokens=100), lambda req: f"len={len(req.audio)}")
    client = fake.client(K1)
    assert call(client).text == fence_json(good)
    assert call(client, model="gemini-2.5-pro").text == "pro only"
    assert call(client).text == wrap_prose(good)
    r = call(client)
    assert r.text == truncate_json(good) and r.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS
    r = call(client)
    assert r.text is None and r.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS
    assert r.usage_metadata.thoughts_token_count == 100
    assert call(client, audio=b"12345").text == "len=5"
    assert fake.pending_script == 0
    assert call(client).text == "[]"  # back to the responder
    assert fake.count("ok") == 7
    assert sum(r.detail == "scripted" for r in fake.log) == 6


def test_429_retry_info_per_key_and_model_and_refill():
    with FakeGemini(keys={K1: "ok", K2: "ok"}, rate={MODEL: 2}, window=1.0) as fake:
        c1, c2 = fake.client(K1), fake.client(K2)
        t0 = time.monotonic()
        call(c1)
        call(c1)
        with pytest.raises(errors.ClientError) as ei:
            call(c1)
        e = ei.value
        assert e.code == 429 and e.status == "RESOURCE_EXHAUSTED"
        assert e.message == "Resource has been exhausted (e.g. check quota)."
        delay = retry_delay(e)
        assert delay is not None and 0 < delay <= 1.0
        assert delay == pytest.approx(1.0 - (time.monotonic() - t0), abs=0.15)
        types_ = [d["@type"] for d in rpc_details(e)]
        assert types_[0] == QUOTA_FAILURE and types_[-1] == RETRY_INFO
        assert "PerMinute" in rpc_details(e)[0]["violations"][0]["quotaId"]
        raw = next(d["retryDelay"] for d in rpc_details(e) if d["@type"] == RETRY_INFO)
        assert raw.endswith("s") and (("." not in raw) or len(raw.split(".")[1]) == 4)  # "0.873s" / "1s"

        # Other key, other model: own windows.
        call(c2)
        call(c1, model="gemini-2.5-pro")
        # Refused requests do not count: hammer it, then wait exactly the advertised delay.
        for _ in range(5):
            with pytest.raises(errors.ClientError):
                call(c1)
        with pytest.raises(errors.ClientError) as ei:
            call(c1)
        time.sleep(retry_delay(ei.value))
        call(c1)  # one slot freed (the first request expired)
        assert fake.count("429", key=K1) == 7 and fake.count("ok", key=K1) == 4
        assert fake.usage(K1, MODEL) >= 1
        assert all(r.detail == "minute" for r in fake.records("429"))


def test_429_without_retry_info():
    with FakeGemini(rate={MODEL: 1}, window=5, retry_info=False) as fake:  # keys=None: any key is ok
        c = fake.client("whatever")
        call(c)
        with pytest.raises(errors.ClientError) as ei:
            call(c)
        assert ei.value.code == 429 and retry_delay(ei.value) is None
        assert [d["@type"] for d in rpc_details(ei.value)][0] == QUOTA_FAILURE


def test_daily_limit():
    with FakeGemini(keys={K1: "ok"}, daily_limit={MODEL: 2}, day=1.5) as fake:
        c = fake.client(K1)
        call(c)
        call(c)
        with pytest.raises(errors.ClientError) as ei:
            call(c)
        e = ei.value
        assert e.code == 429 and e.status == "RESOURCE_EXHAUSTED" and "per day" in e.message
        assert retry_delay(e) is None
        assert "PerDay" in rpc_details(e)[0]["violations"][0]["quotaId"]
        call(c, model="gemini-2.5-pro")  # per model
        assert fake.records("429")[0].detail == "day"
        time.sleep(max(0.0, 1.55 - (time.monotonic() - fake._t0)))
        call(c)  # a new "day"


def test_invalid_unknown_and_forbidden_keys():
    with FakeGemini(keys={K1: "ok", "bad-key": "invalid", "banned-key": "forbidden"}) as fake:
        for key in ("bad-key", "never-issued"):
            with pytest.raises(errors.ClientError) as ei:
                call(fake.client(key))
            e = ei.value
            assert e.code == 400 and e.status == "INVALID_ARGUMENT"
            assert e.message == "API key not valid. Please pass a valid API key."
            assert reason(e) == "API_KEY_INVALID"
        with pytest.raises(errors.ClientError) as ei:
            call(fake.client("banned-key"))
        assert ei.value.code == 403 and ei.value.status == "PERMISSION_DENIED"
        assert "banned-key" not in str(ei.value)
        fake.set_key(K1, "forbidden")  # revoked mid-run
        with pytest.raises(errors.ClientError) as ei:
            call(fake.client(K1))
        assert ei.value.code == 403
        assert fake.count("invalid") == 2 and fake.count("forbidden") == 2 and fake.count("ok") == 0
        # Keys never reach the log.
        dump = repr(fake.log)
        for key in (K1, "bad-key", "never-issued", "banned-key"):
            assert key not in dump
        assert fake.records(key="bad-key")[0].key == mask_key("bad-key")


def test_server_errors():
    with FakeGemini(error_rate=1.0, seed=3) as fake:
        codes = set()
        for _ in range(8):
            with pytest.raises(errors.ServerError) as ei:
                call(fake.client(K1))
            assert ei.value.status in ("INTERNAL", "UNAVAILABLE")
            codes.add(ei.value.code)
        assert codes == {500, 503} and fake.count("5xx") == 8
    with FakeGemini(error_rate=0.3, seed=1) as fake:
        c = fake.client(K1)
        n_err = 0
        for _ in range(40):
            try:
                call(c)
            except errors.ServerError:
                n_err += 1
        assert 4 <= n_err <= 20 and fake.count("5xx") == n_err
    with FakeGemini() as fake:
        fake.script(Fault(503), Fault(429, "RESOURCE_EXHAUSTED", "quota", retry_delay=2.5))
        with pytest.raises(errors.ServerError) as ei:
            call(fake.client(K1))
        assert ei.value.code == 503
        with pytest.raises(errors.ClientError) as ei:
            call(fake.client(K1))
        assert ei.value.code == 429 and retry_delay(ei.value) == 2.5
        fake.responder = lambda req: 1 / 0  # a broken responder surfaces as a 500 and is kept
        with pytest.raises(errors.ServerError):
            call(fake.client(K1))
        assert isinstance(fake.errors[0], ZeroDivisionError)


def test_async_client_16_concurrent():
    with FakeGemini(latency=0.4, responder=lambda req: f"{len(req.audio)}") as fake:
        client = fake.client(K1)

        async def one(i: int):
            return await client.aio.models.generate_content(
                model=MODEL, contents=[types.Part.from_bytes(data=bytes(i + 1), mime_type="audio/flac"), PROMPT],
                config=types.GenerateContentConfig(response_mime_type="application/json", response_schema=SCHEMA))

        async def main():
            return await asyncio.gather(*(one(i) for i in range(16)))

        t = time.monotonic()
        out = asyncio.run(main())
        elapsed = time.monotonic() - t
        assert [r.text for r in out] == [str(i + 1) for i in range(16)]
        assert elapsed < 2.0, elapsed  # serial would take 6.4 s
        assert fake.max_inflight == 16


def test_timeouts_raise_httpx2_read_timeout():
    with FakeGemini(hang=1.5) as fake:
        fake.script("never consumed by a hung request")
        client = fake.client(K1, timeout=300)  # milliseconds
        t = time.monotonic()
        with pytest.raises(httpx2.ReadTimeout):
            call(client)
        assert time.monotonic() - t < 1.2

        async def go():
            await client.aio.models.generate_content(model=MODEL, contents="hi")

        with pytest.raises(httpx2.TimeoutException):
            asyncio.run(go())
        assert fake.last_request.headers.get("X-Server-Timeout") == "1"
        fake.hang = 0
        assert call(client).text == "never consumed by a hung request"
        fake.script(Response("slow", delay=1.0))  # a deterministic slow answer
        with pytest.raises(httpx2.ReadTimeout):
            call(client)
        assert fake.pending_script == 0
    # A stopped server: ConnectError.
    with pytest.raises(httpx2.ConnectError):
        call(client)


def test_streaming(fake):
    text = make_segments_response([{"start": i, "end": i + 0.5, "text": f"câu số {i}", "translation": "x"}
                                   for i in range(20)])
    fake.responder = lambda req: Response(text, prompt_tokens=7)
    client = fake.client(K1)  # keep a reference: a collected Client closes its httpx2 pool mid-stream
    chunks = list(client.models.generate_content_stream(
        model=MODEL, contents="hi", config=types.GenerateContentConfig(response_mime_type="application/json")))
    assert len(chunks) > 1 and "".join(c.text for c in chunks) == text
    assert chunks[-1].usage_metadata.prompt_token_count == 7
    assert fake.last_request.stream


def test_truth_responder_and_helpers(fake):
    a, b = flac_bytes(1.0, seed=1), flac_bytes(1.0, seed=2)
    segs = [{"start": 0.0, "end": 0.75, "text": "ok em", "translation": "vâng em"},
            {"start": 61.5, "end": 65.0625, "text": "deadline", "translation": "hạn chót"}]
    truth = TruthResponder({hashlib.sha256(a).hexdigest(): segs})
    fake.responder = truth
    c = fake.client(K1)
    assert json.loads(call(c, a).text) == [
        {"start": "00:00.000", "end": "00:00.750", "text": "ok em", "translation": "vâng em"},
        {"start": "01:01.500", "end": "01:05.062", "text": "deadline", "translation": "hạn chót"},
    ]
    assert call(c, b).text == "[]" and (truth.hits, truth.misses) == (1, 1)
    jit = TruthResponder(jitter=0.2, seed=5)
    jit.add(a, segs)
    assert jit.segments_for(a) == jit.segments_for(a) != segs
    assert fmt_mmss(0) == "00:00.000" and fmt_mmss(305) == "05:05.000" and fmt_mmss(3725.5) == "62:05.500"
    assert fmt_mmss(59.9996) == "01:00.000"
    with pytest.raises(ValueError):
        fmt_mmss(-1)
    assert json.loads(make_segments_response([{"start": "1:02,5", "end": 3, "text": "t", "translation": "d"}])) == [
        {"start": "1:02,5", "end": "00:03.000", "text": "t", "translation": "d"}]
    assert audio_seconds(flac_bytes(2.5)) == pytest.approx(2.5)
    wav = io.BytesIO()
    sf.write(wav, np.zeros(8000, dtype=np.int16), 16000, format="WAV", subtype="PCM_16")
    assert audio_seconds(wav.getvalue()) == pytest.approx(0.5)


def test_bad_requests(fake):
    def post(body: bytes):
        req = urllib.request.Request(f"{fake.url}/v1/models/{MODEL}:generateContent", data=body, method="POST",
                                     headers={"x-goog-api-key": K1})
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req)
        return e.value.code, json.load(e.value)

    code, body = post(b"{not json")
    assert code == 400 and body["error"]["status"] == "INVALID_ARGUMENT"
    part = {"inlineData": {"mimeType": "audio/flac", "data": "@@not base64@@"}}
    code, body = post(json.dumps({"contents": [{"parts": [part]}]}).encode())
    assert code == 400 and "Base64" in body["error"]["message"]
    ok = {"inlineData": {"mimeType": "audio/flac", "data": base64.b64encode(b"abc").decode()}}
    with urllib.request.urlopen(urllib.request.Request(
            f"{fake.url}/v1/models/{MODEL}:generateContent", method="POST", headers={"x-goog-api-key": K1},
            data=json.dumps({"contents": [{"parts": [ok]}]}).encode())) as resp:
        assert resp.status == 200
    assert fake.last_request.audio == b"abc"
    assert fake.count("bad_request") == 2


def test_quota_is_exact_under_concurrency():
    with FakeGemini(rate={MODEL: 5}, window=30) as fake:
        client = fake.client(K1)

        async def one():
            try:
                await client.aio.models.generate_content(model=MODEL, contents="hi")
                return "ok"
            except errors.ClientError as e:
                assert e.code == 429 and 20 < retry_delay(e) <= 30.001  # rounded up to the ms; slack for a loaded CI
                return "429"

        async def main():
            return await asyncio.gather(*(one() for _ in range(16)))

        out = asyncio.run(main())
        assert out.count("ok") == 5 and out.count("429") == 11
        assert fake.count("ok") == 5 and fake.count("429") == 11 and fake.usage(K1, MODEL) == 5
        fake.script(Response("flash only"), model=MODEL)  # keyword form
        fake.reset(log=False, script=False)  # quota windows cleared
        assert call(client, model="gemini-2.0-flash").text == "[]"
        assert call(client).text == "flash only"
