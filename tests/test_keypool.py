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
