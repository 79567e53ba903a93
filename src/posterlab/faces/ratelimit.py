"""A face-API quota shared by every process on every host: GCRA over a store.

Celery's ``rate_limit`` is per worker, so N workers would spend N times the quota. Here
every call reserves a slot in one shared schedule instead. The algorithm is GCRA (the
generic cell rate algorithm): the store keeps one number per quota, the *theoretical
arrival time* (TAT) of the next call. A call at ``now`` may go after
``max(TAT, now) - tolerance``; reserving moves TAT one interval further. Reservations are
made atomically, so callers that must wait simply sleep until their own slot: nobody
polls, and the achieved rate is the quota, not less.

The atomic step lives in the store: :class:`RedisGcraStore` runs it as a Lua script on
Redis server time (one clock for every host, no skew), :class:`MemoryGcraStore` runs the
same step under a lock with an injectable clock (one process; and fast unit tests).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Protocol

import redis

from posterlab.config import Rate
from posterlab.errors import FaceApiUnavailable, RateLimited

DEFAULT_KEY = "posterlab:ratelimit:faceapi"


def gcra_reserve(
    tat: float | None, now: float, *, interval: float, tolerance: float, max_wait: float
) -> tuple[float | None, float]:
    """One GCRA step: the new TAT (``None`` if refused) and the wait before the call may go.

    The call is refused, and TAT left alone, when the wait would exceed ``max_wait``.
    :data:`_RESERVE_LUA` is the same function in Lua; keep the two in step.

    >>> gcra_reserve(None, 100.0, interval=0.5, tolerance=0.0, max_wait=1.0)
    (100.5, 0.0)
    >>> gcra_reserve(100.5, 100.0, interval=0.5, tolerance=0.0, max_wait=1.0)
    (101.0, 0.5)
    >>> gcra_reserve(102.0, 100.0, interval=0.5, tolerance=0.0, max_wait=1.0)
    (None, 2.0)
    """
    start = now if tat is None else max(tat, now)
    wait = max(0.0, start - tolerance - now)
    if wait > max_wait:
        return None, wait
    return start + interval, wait


class GcraStore(Protocol):
    """Where the TAT of each quota lives; both methods are atomic per key."""

    def reserve(
        self, key: str, *, interval: float, tolerance: float, max_wait: float
    ) -> tuple[bool, float]:
        """Apply :func:`gcra_reserve` to ``key``: ``(reserved, wait in seconds)``."""
        ...

    def defer(self, key: str, *, until_in: float, tolerance: float) -> None:
        """Make sure no new reservation on ``key`` may go within ``until_in`` seconds."""
        ...


class MemoryGcraStore:
    """The in-process twin of :class:`RedisGcraStore`: a dict under a lock.

    ``clock`` must be monotonic; tests pass a fake one. Shared by threads, not processes.
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._tats: dict[str, float] = {}
        self._lock = threading.Lock()

    def reserve(
        self, key: str, *, interval: float, tolerance: float, max_wait: float
    ) -> tuple[bool, float]:
        with self._lock:
            new_tat, wait = gcra_reserve(
                self._tats.get(key), self._clock(),
                interval=interval, tolerance=tolerance, max_wait=max_wait,
            )
            if new_tat is not None:
                self._tats[key] = new_tat
            return new_tat is not None, wait

    def defer(self, key: str, *, until_in: float, tolerance: float) -> None:
        with self._lock:
            floor = self._clock() + (until_in + tolerance)  # as the Lua script adds
            self._tats[key] = max(self._tats.get(key, floor), floor)


# KEYS[1] = quota key; ARGV = interval, tolerance, max_wait, [now]. Numbers go back as
# strings because Redis truncates Lua numbers to integers.
_RESERVE_LUA = """
local now
if ARGV[4] then
  now = tonumber(ARGV[4])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local interval, tolerance, max_wait = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local wait = tat - tolerance - now
if wait < 0 then wait = 0 end
if wait > max_wait then return {0, tostring(wait)} end
local new_tat = tat + interval
-- once TAT is past, an absent key means the same thing: let idle quotas vanish
redis.call('SET', KEYS[1], string.format('%.17g', new_tat),
           'PX', math.ceil((new_tat - now) * 1000) + 1)
return {1, tostring(wait)}
"""

# KEYS[1] = quota key; ARGV = until_in + tolerance, [now]
_DEFER_LUA = """
local now
if ARGV[2] then
  now = tonumber(ARGV[2])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local floor = now + tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[1])) or floor
if tat < floor then tat = floor end
redis.call('SET', KEYS[1], string.format('%.17g', tat), 'PX', math.ceil((tat - now) * 1000) + 1)
return 1
"""


class RedisGcraStore:
    """GCRA on Redis: one Lua script per step, on Redis server time.

    ``clock=None`` (the default, and what production wants) reads ``TIME`` on the
    server, so hosts with skewed clocks still share one schedule. Passing a clock sends
    its readings instead, which lets tests drive the script with a fake one.
    """

    def __init__(self, client: redis.Redis, *, clock: Callable[[], float] | None = None) -> None:
        self._client = client
        self._clock = clock
        # register_script only hashes the source; nothing is sent before the first call
        self._reserve = client.register_script(_RESERVE_LUA)
        self._defer = client.register_script(_DEFER_LUA)

    def _now_args(self) -> list[str]:
        return [] if self._clock is None else [repr(self._clock())]

    def reserve(
        self, key: str, *, interval: float, tolerance: float, max_wait: float
    ) -> tuple[bool, float]:
        args = [repr(interval), repr(tolerance), repr(max_wait), *self._now_args()]
        try:
            ok, wait = self._reserve(keys=[key], args=args)
        except redis.RedisError as exc:
            raise _unavailable(exc) from None
        return bool(int(ok)), float(wait)

    def defer(self, key: str, *, until_in: float, tolerance: float) -> None:
        try:
            self._defer(keys=[key], args=[repr(until_in + tolerance), *self._now_args()])
        except redis.RedisError as exc:
            raise _unavailable(exc) from None


def _unavailable(exc: redis.RedisError) -> FaceApiUnavailable:
    # redis-py's messages name host and port, never the password of the URL
    return FaceApiUnavailable(f"the face API quota in Redis is unreachable: "
                              f"{type(exc).__name__}: {exc}", code="face-api-quota")


class GcraLimiter:
    """A quota of ``rate`` calls, shared by everyone who uses the same store and key.

    ``rate.burst`` calls may go at once after a quiet spell; ``jitter`` (seconds) forgives
    calls that arrive that much early, like the delay-variation tolerance of ATM's GCRA:
    network and scheduling jitter of a client that paces itself exactly then passes. The
    long-run rate stays ``rate`` either way.

    >>> clock = iter([0.0, 0.0, 0.0]).__next__
    >>> limiter = GcraLimiter(MemoryGcraStore(clock=clock), Rate(2, 1.0), sleep=lambda s: None)
    >>> limiter.acquire(max_wait=1.0), limiter.acquire(max_wait=1.0)
    (0.0, 0.5)
    >>> limiter.acquire(max_wait=0.5)
    Traceback (most recent call last):
    ...
    posterlab.errors.RateLimited: face API quota 2/1s is used up; next call in 1.00 s
    """

    def __init__(
        self,
        store: GcraStore,
        rate: Rate,
        *,
        key: str = DEFAULT_KEY,
        sleep: Callable[[float], object] = time.sleep,
        jitter: float = 0.0,
    ) -> None:
        if rate.count <= 0 or rate.period <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        if rate.burst < 1:
            raise ValueError(f"rate.burst must be at least 1, got {rate.burst}")
        if jitter < 0 or not math.isfinite(jitter):
            raise ValueError(f"jitter must be a finite number of seconds >= 0, got {jitter!r}")
        self.rate = rate
        self.key = key
        self._store = store
        self._sleep = sleep
        self._tolerance = (rate.burst - 1) * rate.interval + jitter

    def __repr__(self) -> str:
        return f"{type(self).__name__}(rate={self.rate}, key={self.key!r})"

    def acquire(self, *, max_wait: float) -> float:
        """Reserve the next slot and sleep until it; return the seconds slept.

        Raise :class:`~posterlab.errors.RateLimited` with ``retry_after`` instead, without
        reserving anything, if the slot is more than ``max_wait`` seconds away: a Celery
        task should then re-schedule itself rather than hold a worker slot.
        """
        if max_wait < 0 or math.isnan(max_wait):
            raise ValueError(f"max_wait must be >= 0 seconds, got {max_wait!r}")
        ok, wait = self._store.reserve(
            self.key, interval=self.rate.interval, tolerance=self._tolerance, max_wait=max_wait
        )
        if not ok:
            raise RateLimited(
                f"face API quota {self.rate} is used up; next call in {wait:.2f} s",
                retry_after=wait,
            )
        if wait > 0:
            self._sleep(wait)
        return wait

    def defer(self, seconds: float) -> None:
        """Hold every user of this quota back for ``seconds`` (the API said ``Retry-After``)."""
        if seconds < 0 or not math.isfinite(seconds):
            raise ValueError(f"seconds must be a finite number >= 0, got {seconds!r}")
        self._store.defer(self.key, until_in=seconds, tolerance=self._tolerance)


class MemoryGcraLimiter(GcraLimiter):
    """A :class:`GcraLimiter` for one process (threads included)."""

    def __init__(
        self,
        rate: Rate,
        *,
        key: str = DEFAULT_KEY,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] = time.sleep,
        jitter: float = 0.0,
    ) -> None:
        super().__init__(MemoryGcraStore(clock=clock), rate, key=key, sleep=sleep, jitter=jitter)


class RedisGcraLimiter(GcraLimiter):
    """A :class:`GcraLimiter` shared by every process on every host that uses ``client``."""

    def __init__(
        self,
        client: redis.Redis,
        rate: Rate,
        *,
        key: str = DEFAULT_KEY,
        sleep: Callable[[float], object] = time.sleep,
        jitter: float = 0.0,
    ) -> None:
        super().__init__(RedisGcraStore(client), rate, key=key, sleep=sleep, jitter=jitter)
