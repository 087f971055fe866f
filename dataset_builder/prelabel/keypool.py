"""A pool of Gemini API keys across model tiers that survives quota exhaustion: the key manager of the Data Factory
paper (*End-to-End Speech Translation for Low-Resource Code-Switching*), made better.

- A 429 cools down only that (model, key), for the server's RetryInfo delay when it gives one, else an
  exponential backoff with jitter. The same 429 teaches the pool that slot's per-window limit (the
  requests it had sent in the trailing window), so afterwards it paces itself instead of hitting the wall.
- The cheapest tier's free keys take requests first; a dearer tier serves only while every key of the
  cheaper tiers is cooling or paced.
- With nothing free, ``acquire`` sleeps exactly until the earliest slot frees — no fixed global sleep.
- A key the API calls invalid is retired for every model; a 403 on one model retires that (model, key) only.
  A later run tries a retired slot once more (a key can be fixed: billing restored, access granted) and
  puts it back to work when it answers; a slot retired while a run goes stays retired for that run.
- Cooldowns, learned limits, per-day counts and retirements live in the state store: a restart does not
  hammer exhausted keys, and processes sharing a store see each other's cooldowns and add up their daily
  counts (each request is counted in the store as it is sent).
- Keys are identified by a short hash everywhere outside this object; the secret never leaves it.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import random
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from ..foundation.config import Settings
from ..store import KeyState, session_scope
from .runner import StopRun

#: Gemini's daily quotas reset at midnight Pacific time.
QUOTA_TZ = ZoneInfo("America/Los_Angeles")


def key_hash(key: str) -> str:
    return "k-" + hashlib.sha256(key.encode()).hexdigest()[:10]


class NoKeysError(StopRun):
    """No usable key is left (none configured, or all retired): the run stops, its chunks stay queued."""


@dataclass
class Lease:
    model: str
    key_hash: str
    tier: int
    _key: str = field(repr=False)

    @property
    def key(self) -> str:
        return self._key


@dataclass
class _Slot:
    model: str
    key_hash: str
    cooldown_until: float = 0.0
    backoff_level: int = 0
    learned_limit: int | None = None
    day: str = ""
    day_count: int = 0
    sends: deque = field(default_factory=deque)  # send times in the trailing window (this process)
    rate_limited: int = 0
    ok: int = 0
    retired: str | None = None  # why this (model, key) takes no more requests
    suspect: str | None = None  # retired by an earlier run: tried again, and back to work if it answers


class KeyPool:
    def __init__(
        self,
        keys: list[str],
        tiers: list[str],
        *,
        settings: Settings | None = None,
        window: float = 60.0,
        rpm: dict[str, int] | None = None,
        rpd: dict[str, int] | None = None,
        base_backoff: float = 2.0,
        max_backoff: float = 300.0,
        clock: Callable[[], float] = time.time,
        seed: int | None = None,
        sync_interval: float = 2.0,
    ) -> None:
        keys = list(dict.fromkeys(k.strip() for k in keys if k and k.strip()))
        if not keys:
            raise NoKeysError("no Gemini API keys: set GEMINI_API_KEYS (comma-separated) or GEMINI_API_KEY")
        if not tiers:
            raise ValueError("no model tiers given")
        self._keys = {key_hash(k): k for k in keys}
        self.tiers = list(tiers)
        self.window = window
        self.rpm = dict(rpm or {})
        self.rpd = dict(rpd or {})
        self.base_backoff = base_backoff
        self.max_backoff = max_backoff
        self.clock = clock
        self.settings = settings
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._changed: asyncio.Event | None = None
        self._slots = {(m, h): _Slot(m, h) for m in self.tiers for h in self._keys}
        self.sync_interval = sync_interval
        self._last_sync = 0.0
        self._started = clock()
        self._load()

    @property
    def retired(self) -> dict[str, str]:
        """Keys retired on every model, with the reason."""
        out: dict[str, str] = {}
        for h in self._keys:
            reasons = [self._slots[(m, h)].retired for m in self.tiers]
            if all(reasons):
                out[h] = reasons[0]
        return out

    # -- persistence ----------------------------------------------------------------------------------

    def _load(self) -> None:
        """Merge the store's view (other processes' 429s, retirements, counts) into this pool's."""
        if self.settings is None:
            return
        self._last_sync = self.clock()
        with session_scope(self.settings) as s:
            rows = s.scalars(select(KeyState).where(KeyState.key_hash.in_(list(self._keys)))).all()
            for row in rows:
                slot = self._slots.get((row.model, row.key_hash))
                if slot is None:
                    continue
                if row.retired and not slot.retired and not slot.suspect:
                    reason = row.reason or "retired"
                    if (row.retired_at or 0.0) < self._started:
                        slot.suspect = reason  # an earlier run's verdict: try once more
                    else:
                        slot.retired = reason
                slot.cooldown_until = max(slot.cooldown_until, row.cooldown_until or 0.0)
                slot.backoff_level = max(slot.backoff_level, row.backoff_level or 0)
                if row.learned_limit is not None:
                    slot.learned_limit = min(slot.learned_limit or row.learned_limit, row.learned_limit)
                if (row.day or "") == slot.day or not slot.day:
                    slot.day, slot.day_count = row.day or "", max(slot.day_count, row.day_count or 0)

    def _save(self, slot: _Slot, retired_reason: str | None = None) -> None:
        if self.settings is None:
            return
        with session_scope(self.settings) as s:
            row = s.get(KeyState, (slot.model, slot.key_hash))
            if row is None:
                row = KeyState(model=slot.model, key_hash=slot.key_hash)
                s.add(row)
            row.cooldown_until = max(row.cooldown_until or 0.0, slot.cooldown_until)
            row.backoff_level = slot.backoff_level
            row.learned_limit = slot.learned_limit
            if retired_reason is not None:
                row.retired, row.reason, row.retired_at = True, retired_reason, self.clock()
            elif row.retired and not slot.retired and not slot.suspect:
                row.retired, row.reason, row.retired_at = False, None, None  # re-validated

    def _count_day(self, slot: _Slot, today: str, delta: int) -> None:
        """Add ``delta`` to today's count of the slot in the store (atomically: several processes add up) and
        take the store's total, which includes the other processes' requests."""
        if self.settings is None:
            return
        for _ in range(3):
            try:
                with session_scope(self.settings) as s:
                    key = (KeyState.model == slot.model) & (KeyState.key_hash == slot.key_hash)
                    done = s.execute(update(KeyState).where(key, KeyState.day == today).values(
                        day_count=KeyState.day_count + delta).execution_options(synchronize_session=False))
                    if not done.rowcount:
                        done = s.execute(update(KeyState).where(key).values(day=today, day_count=max(0, delta))
                                         .execution_options(synchronize_session=False))
                    if not done.rowcount:
                        s.add(KeyState(model=slot.model, key_hash=slot.key_hash, day=today, day_count=max(0, delta)))
                        s.flush()
                    total = s.scalar(select(KeyState.day_count).where(key))
                slot.day, slot.day_count = today, max(0, int(total or 0))
                return
            except IntegrityError:  # another process inserted the row first: update it instead
                continue

    # -- state ----------------------------------------------------------------------------------------

    def _today(self, now: float) -> str:
        return dt.datetime.fromtimestamp(now, QUOTA_TZ).strftime("%Y-%m-%d")

    def _next_day_start(self, now: float) -> float:
        local = dt.datetime.fromtimestamp(now, QUOTA_TZ)
        tomorrow = (local + dt.timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
        return tomorrow.timestamp()

    def _limit(self, slot: _Slot) -> int | None:
        configured = self.rpm.get(slot.model)
        if configured and slot.learned_limit:
            return min(configured, slot.learned_limit)
        return configured or slot.learned_limit

    def _wait_for(self, slot: _Slot, now: float) -> float:
        """Seconds until ``slot`` may take a request (0 = now)."""
        if slot.retired:
            return float("inf")
        while slot.sends and slot.sends[0] <= now - self.window:
            slot.sends.popleft()
        wait = max(0.0, slot.cooldown_until - now)
        limit = self._limit(slot)
        if limit is not None and len(slot.sends) >= limit:
            # The server counts a request when it arrives, a little after we stamp it: pace with a margin.
            margin = max(0.05, 0.005 * self.window)
            wait = max(wait, slot.sends[len(slot.sends) - limit] + self.window + margin - now)
        daily = self.rpd.get(slot.model)
        if daily is not None and slot.day == self._today(now) and slot.day_count >= daily:
            wait = max(wait, self._next_day_start(now) - now)
        return wait

    def _pick(self, now: float, avoid: set[str] | frozenset = frozenset()) -> tuple[Lease | None, float]:
        if all(slot.retired for slot in self._slots.values()):
            reasons = {f"{s.key_hash} on {s.model}": s.retired for s in self._slots.values()}
            if self.retired:
                reasons = dict(self.retired)
            raise NoKeysError("every Gemini key is retired: " + "; ".join(f"{h}: {r}" for h, r in reasons.items()))
        earliest = float("inf")
        tiers = [(t, m) for t, m in enumerate(self.tiers) if m not in avoid] or list(enumerate(self.tiers))
        for tier, model in tiers:
            free = []
            for h in self._keys:
                slot = self._slots[(model, h)]
                wait = self._wait_for(slot, now)
                if wait <= 0:
                    free.append(slot)
                earliest = min(earliest, wait)
            if free:
                # Least recently used first spreads load evenly over the keys.
                slot = min(free, key=lambda s: (s.sends[-1] if s.sends else 0.0, self._rng.random()))
                slot.sends.append(now)
                today = self._today(now)
                if slot.day != today:
                    slot.day, slot.day_count = today, 0
                slot.day_count += 1
                self._count_day(slot, today, 1)
                return Lease(model, slot.key_hash, tier, self._keys[slot.key_hash]), 0.0
        return None, earliest

    async def acquire(self, avoid: set[str] | frozenset = frozenset()) -> Lease:
        """The next (model, key) to use, waiting exactly as long as the pool must.

        ``avoid`` names models to skip when another tier exists (a retry "on another tier").
        """
        if self._changed is None:
            self._changed = asyncio.Event()
        while True:
            with self._lock:
                if self.settings is not None and self.clock() - self._last_sync >= self.sync_interval:
                    self._load()
                lease, wait = self._pick(self.clock(), avoid)
            if lease is not None:
                return lease
            if wait == float("inf"):
                raise NoKeysError("no key can serve any tier")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), timeout=wait)
            except asyncio.TimeoutError:
                pass

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()

    # -- outcomes -------------------------------------------------------------------------------------

    def report_ok(self, lease: Lease) -> None:
        with self._lock:
            slot = self._slots[(lease.model, lease.key_hash)]
            slot.ok += 1
            if slot.backoff_level or slot.suspect:
                slot.backoff_level = 0
                slot.suspect = None  # an earlier run retired it; it answered: back to work
                self._save(slot)

    def report_rate_limited(self, lease: Lease, retry_delay: float | None = None, per_day: bool = False) -> float:
        """Cool the slot down; returns the cooldown in seconds."""
        with self._lock:
            now = self.clock()
            slot = self._slots[(lease.model, lease.key_hash)]
            slot.rate_limited += 1
            if slot.sends:  # the refused request did not count toward the quota
                slot.sends.pop()
                if slot.day == self._today(now) and slot.day_count > 0:
                    slot.day_count -= 1
                    self._count_day(slot, slot.day, -1)
            if per_day:
                cooldown = self._next_day_start(now) - now
            elif retry_delay is not None and retry_delay >= 0:
                cooldown = retry_delay + 0.05
            else:
                cooldown = min(self.max_backoff, self.base_backoff * 2**slot.backoff_level)
                cooldown *= self._rng.uniform(0.5, 1.5)
                slot.backoff_level += 1
            if not per_day:
                in_window = len([t for t in slot.sends if t > now - self.window])
                if in_window >= 1 and (slot.learned_limit is None or in_window < slot.learned_limit):
                    slot.learned_limit = in_window
            slot.cooldown_until = max(slot.cooldown_until, now + cooldown)
            self._save(slot)
        return cooldown

    def retire(self, key_hash_: str, reason: str, model: str | None = None) -> None:
        """Retire the key on ``model``, or on every model (``None``: the key itself is invalid)."""
        with self._lock:
            for m in ([model] if model is not None else self.tiers):
                slot = self._slots[(m, key_hash_)]
                slot.retired, slot.suspect = reason, None
                self._save(slot, retired_reason=reason)
        self._notify()

    def retired_on(self, key_hash_: str, model: str) -> bool:
        with self._lock:
            return bool(self._slots[(model, key_hash_)].retired)

    def key(self, key_hash_: str) -> str | None:
        """The key behind a hash, if this pool was given it (a batch job is polled with the key that made it)."""
        return self._keys.get(key_hash_)

    def release(self) -> None:
        """Something changed (a request finished): waiters re-check."""
        self._notify()

    # -- reporting ------------------------------------------------------------------------------------

    def snapshot(self) -> dict:
        now = self.clock()
        with self._lock:
            return {
                "retired": dict(self.retired),
                "retired_slots": {f"{s.model}/{s.key_hash}": s.retired for s in self._slots.values() if s.retired},
                "slots": [
                    {
                        "model": s.model, "key": s.key_hash, "ok": s.ok, "rate_limited": s.rate_limited,
                        "cooling_s": round(max(0.0, s.cooldown_until - now), 3), "learned_limit": s.learned_limit,
                        "day_count": s.day_count,
                    }
                    for s in self._slots.values()
                ],
            }

    def key_hashes(self) -> list[str]:
        return list(self._keys)
