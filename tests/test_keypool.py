"""The key pool: cheapest tier first, per-slot cooldowns, learned pacing, exact waits, retirement, persistence."""
from __future__ import annotations

import asyncio
import time

import pytest

from dataset_builder.prelabel.keypool import KeyPool, NoKeysError, key_hash

KEYS = ["AIza-key-one-SECRET", "AIza-key-two-SECRET", "AIza-key-three-SECRET"]
TIERS = ["gemini-2.5-flash", "gemini-2.5-pro"]


class Clock:
    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def take(pool: KeyPool):
    return asyncio.run(pool.acquire())


def test_cheapest_tier_first_and_keys_rotate():
    pool = KeyPool(KEYS, TIERS, clock=Clock(), seed=0)
    leases = []
    clock = pool.clock
    for _ in range(6):
        leases.append(take(pool))
        clock.t += 1
    assert {lease.model for lease in leases} == {"gemini-2.5-flash"}
    assert [lease.key_hash for lease in leases[:3]] != [leases[0].key_hash] * 3
    assert {lease.key_hash for lease in leases[:3]} == {key_hash(k) for k in KEYS}


def test_429_cools_only_that_slot_then_escalates_then_returns():
    clock = Clock()
    pool = KeyPool(KEYS, TIERS, clock=clock, seed=0)
    for _ in range(3):
        lease = take(pool)
        assert lease.model == "gemini-2.5-flash"
        assert pool.report_rate_limited(lease, retry_delay=10.0) == pytest.approx(10.05)
    cooled = {s["key"] for s in pool.snapshot()["slots"] if s["cooling_s"] > 0}
    assert cooled == {key_hash(k) for k in KEYS}
    lease = take(pool)  # every flash key cooling: pro serves
    assert lease.model == "gemini-2.5-pro"
    clock.t += 10.1
    assert take(pool).model == "gemini-2.5-flash"


def test_learns_the_limit_from_a_429_and_paces():
    clock = Clock()
    pool = KeyPool(KEYS[:1], TIERS[:1], clock=clock, window=60.0, seed=0)
    leases = []
    for _ in range(6):
        leases.append(take(pool))
        clock.t += 1
    pool.report_rate_limited(leases[-1], retry_delay=0.5)  # the 6th was refused: 5 fit in a window
    snap = pool.snapshot()["slots"][0]
    assert snap["learned_limit"] == 5
    clock.t += 1  # the cooldown is over, but 5 requests are still in the window
    lease, wait = pool._pick(clock())
    assert lease is None and wait == pytest.approx(60 - 7 + 0.3, abs=0.01)  # until the first send (t=0) leaves the window (now t=7), plus the arrival margin


def test_configured_rpm_paces_without_any_429():
    clock = Clock()
    pool = KeyPool(KEYS[:2], TIERS, clock=clock, rpm={"gemini-2.5-flash": 2, "gemini-2.5-pro": 1}, seed=0)
    models = [take(pool).model for _ in range(5)]
    assert models == ["gemini-2.5-flash"] * 4 + ["gemini-2.5-pro"]


def test_waits_exactly_until_the_earliest_cooldown():
    pool = KeyPool(KEYS[:2], TIERS[:1], seed=0)
    a, b = take(pool), take(pool)
    pool.report_rate_limited(a, retry_delay=0.6)
    pool.report_rate_limited(b, retry_delay=0.3)
    t0 = time.monotonic()
    lease = take(pool)
    waited = time.monotonic() - t0
    assert lease.key_hash == b.key_hash
    assert 0.3 <= waited < 0.55, waited


def test_backoff_without_retry_info_grows():
    clock = Clock()
    pool = KeyPool(KEYS[:1], TIERS[:1], clock=clock, base_backoff=1.0, seed=1)
    delays = []
    for _ in range(4):
        lease = take(pool) if not delays else None
        if lease is None:
            clock.t += delays[-1] + 0.1
            lease = take(pool)
        delays.append(pool.report_rate_limited(lease))
    assert delays[3] > delays[0] * 2
    assert all(0.5 * 2**i <= d <= 1.5 * 2**i for i, d in enumerate(delays))


def test_retired_keys_never_return_and_all_retired_is_an_error():
    pool = KeyPool(KEYS[:2], TIERS, clock=Clock(), seed=0)
    pool.retire(key_hash(KEYS[0]), "API key not valid")
    for _ in range(4):
        assert take(pool).key_hash == key_hash(KEYS[1])
    pool.retire(key_hash(KEYS[1]), "permission denied")
    with pytest.raises(NoKeysError, match="every Gemini key is retired"):
        take(pool)


def test_no_keys_is_a_clear_error():
    with pytest.raises(NoKeysError, match="GEMINI_API_KEYS"):
        KeyPool(["", " "], TIERS)


def test_per_day_quota_waits_for_pacific_midnight():
    clock = Clock(1_700_000_000.0)
    pool = KeyPool(KEYS[:1], TIERS[:1], clock=clock)
    cooldown = pool.report_rate_limited(take(pool), per_day=True)
    assert 0 < cooldown <= 86400
    clock.t += cooldown + 1
    assert take(pool).model == TIERS[0]


def test_state_survives_a_restart_and_never_stores_the_key(settings):
    clock = Clock(time.time())
    pool = KeyPool(KEYS, TIERS, settings=settings, clock=clock, seed=0)
    lease = take(pool)
    pool.report_rate_limited(lease, retry_delay=120.0)
    pool.retire(key_hash(KEYS[2]), "API key not valid (400 API_KEY_INVALID)")
    again = KeyPool(KEYS, TIERS, settings=settings, clock=clock, seed=0)
    snap = {(s["model"], s["key"]): s for s in again.snapshot()["slots"]}
    assert snap[(lease.model, lease.key_hash)]["cooling_s"] > 100
    assert key_hash(KEYS[2]) in again.retired
    from dataset_builder.store import dispose_engines

    dispose_engines()
    blob = b"".join(p.read_bytes() for p in settings.home.glob("factory.db*"))
    assert b"SECRET" not in blob and lease.key_hash.encode() in blob


def test_pools_sharing_a_store_see_each_others_cooldowns(settings):
    """Two workers (two pools on one store): a 429 one of them meets cools that slot for both."""
    clock = Clock(time.time())
    a = KeyPool(KEYS[:1], TIERS[:1], settings=settings, clock=clock, sync_interval=1.0)
    b = KeyPool(KEYS[:1], TIERS[:1], settings=settings, clock=clock, sync_interval=1.0)
    take(b)
    a.report_rate_limited(take(a), retry_delay=30.0)
    clock.t += 1.5  # b syncs at its next acquire
    lease, wait = None, None
    with b._lock:
        b._load()
        lease, wait = b._pick(clock())
    assert lease is None and wait == pytest.approx(30.05 - 1.5, abs=0.01)
    a.retire(key_hash(KEYS[0]), "revoked")
    clock.t += 40
    with pytest.raises(NoKeysError):
        take(b)


# -- retirement per (model, key), re-validation, day counts shared through the store --------------------------


def test_a_403_on_one_model_retires_only_that_model(settings):
    """Access to one model can be refused (403) while the key works for the others."""
    import asyncio as aio

    from fake_gemini import Fault, FakeGemini

    from dataset_builder.prelabel.gemini import GeminiCaller, GeminiEngine
    from dataset_builder.prelabel.runner import ChunkJob, Run

    from dataset_builder.store import Chunk, Video, get_or_create_channel, session_scope

    with session_scope(settings) as s:  # the audit trail of each request names a chunk
        video = Video(video_id="v", channel_id=get_or_create_channel(s, "c").id, source_url="file:///v", duration=1.0)
        s.add(video)
        s.flush()
        chunk = Chunk(video_id=video.id, index=0, start_sample=0, end_sample=16000, audio_path="x.flac")
        s.add(chunk)
        s.flush()
        chunk_id = chunk.id
    pool = KeyPool(KEYS[:1], TIERS, settings=settings, seed=0)
    with FakeGemini(keys={KEYS[0]: "ok"}) as fake:
        fake.script(Fault(403, "PERMISSION_DENIED", "Permission denied on resource project for model."),
                    model=TIERS[0])
        engine = GeminiEngine(pool, GeminiCaller(base_url=fake.url, timeout_s=5.0), settings, seed=0)
        job = ChunkJob(chunk_id, "v", 0, settings.home / "x.flac", 0.0, 1.0, True, {})
        reply, lease = aio.run(engine._request(job, Run(), b"fLaC", 0.0, set()))
    assert lease.model == TIERS[1]  # the same key answered on the other model
    from dataset_builder.store import KeyState

    with session_scope(settings) as s:
        retired = {(r.model, r.key_hash) for r in s.query(KeyState).filter(KeyState.retired)}
    assert retired == {(TIERS[0], key_hash(KEYS[0]))}
    assert take(pool).model == TIERS[1]


def test_an_invalid_key_is_retired_on_every_model_and_revalidated_by_a_later_run(settings):
    clock = Clock(time.time())
    first = KeyPool(KEYS[:1], TIERS, settings=settings, clock=clock, seed=0)
    first.retire(key_hash(KEYS[0]), "API key not valid (400 API_KEY_INVALID)")
    with pytest.raises(NoKeysError):
        take(first)
    clock.t += 3600  # a later run: the key may have been fixed (billing restored, a typo corrected)
    later = KeyPool(KEYS[:1], TIERS, settings=settings, clock=clock, seed=0)
    lease = take(later)
    later.report_ok(lease)
    from dataset_builder.store import KeyState, session_scope

    with session_scope(settings) as s:
        row = s.get(KeyState, (lease.model, lease.key_hash))
        assert not row.retired
    third = KeyPool(KEYS[:1], TIERS, settings=settings, clock=clock, seed=0)
    assert take(third).model == TIERS[0]


def test_a_key_retired_while_a_run_goes_stays_retired_for_it(settings):
    clock = Clock(time.time())
    a = KeyPool(KEYS[:1], TIERS[:1], settings=settings, clock=clock, sync_interval=0.0)
    b = KeyPool(KEYS[:1], TIERS[:1], settings=settings, clock=clock, sync_interval=0.0)
    clock.t += 1
    a.retire(key_hash(KEYS[0]), "revoked")
    with pytest.raises(NoKeysError):
        take(b)


def test_daily_counts_are_shared_across_processes(settings):
    """Requests made by earlier or concurrent processes count toward today's quota."""
    clock = Clock(time.time())
    a = KeyPool(KEYS[:1], TIERS[:1], settings=settings, clock=clock, rpd={TIERS[0]: 5}, sync_interval=0.0)
    for _ in range(3):
        a.report_ok(take(a))
    b = KeyPool(KEYS[:1], TIERS[:1], settings=settings, clock=clock, rpd={TIERS[0]: 5}, sync_interval=0.0)
    assert b.snapshot()["slots"][0]["day_count"] == 3
    b.report_ok(take(b))
    a.report_ok(take(a))  # a learns b's request from the store: this is the 5th today
    c = KeyPool(KEYS[:1], TIERS[:1], settings=settings, clock=clock, rpd={TIERS[0]: 5})
    assert c.snapshot()["slots"][0]["day_count"] == 5
    lease, wait = c._pick(clock())
    assert lease is None and wait > 0  # the daily quota is spent until Pacific midnight
