"""GCRA: the algorithm on the in-memory twin with a fake clock, the Lua script on Redis."""

from __future__ import annotations

import random
import socket
import threading

import pytest
import redis

from posterlab.config import Rate
from posterlab.errors import FaceApiUnavailable, RateLimited
from posterlab.faces.ratelimit import (
    GcraLimiter,
    MemoryGcraLimiter,
    MemoryGcraStore,
    RedisGcraLimiter,
    RedisGcraStore,
    gcra_reserve,
)


def limiter(clock, rate: Rate, **kwargs) -> GcraLimiter:
    return MemoryGcraLimiter(rate, clock=clock, sleep=clock.sleep, **kwargs)


def test_calls_are_spaced_one_interval_apart_at_the_steady_rate(clock) -> None:
    lim = limiter(clock, Rate(10, 1.0))
    waits = [lim.acquire(max_wait=5.0) for _ in range(5)]
    assert waits == pytest.approx([0.0, 0.1, 0.1, 0.1, 0.1])
    assert clock.now - 1000.0 == pytest.approx(0.4)


def test_a_burst_goes_at_once_after_a_quiet_spell_then_the_rate_applies(clock) -> None:
    lim = limiter(clock, Rate(2, 1.0, burst=3))
    assert [lim.acquire(max_wait=0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    with pytest.raises(RateLimited):
        lim.acquire(max_wait=0.0)
    clock.now += 10.0  # quiet: the burst is back, not more
    assert [lim.acquire(max_wait=0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert lim.acquire(max_wait=1.0) == pytest.approx(0.5)


def test_a_wait_beyond_max_wait_raises_with_retry_after_and_reserves_nothing(clock) -> None:
    lim = limiter(clock, Rate(20, 60.0))  # one call every 3 s
    lim.acquire(max_wait=0.0)
    with pytest.raises(RateLimited) as caught:
        lim.acquire(max_wait=2.0)
    assert caught.value.retry_after == pytest.approx(3.0)
    assert caught.value.retryable
    # the refusal did not push the schedule: the next slot is still 3 s away
    assert lim.acquire(max_wait=3.0) == pytest.approx(3.0)


def test_jitter_forgives_early_arrivals_without_raising_the_long_run_rate(clock) -> None:
    lim = limiter(clock, Rate(20, 1.0), jitter=0.02)
    lim.acquire(max_wait=0.0)
    clock.now += 0.035  # 15 ms early for the 50 ms interval: forgiven
    assert lim.acquire(max_wait=0.0) == 0.0
    granted = 2
    for _ in range(1000):  # hammer for 10 s: no more than 20/s + what jitter allows
        clock.now += 0.01
        try:
            lim.acquire(max_wait=0.0)
            granted += 1
        except RateLimited:
            pass
    assert granted <= 20 * (10.035 + 0.02) + 1


def test_defer_holds_every_caller_back(clock) -> None:
    lim = limiter(clock, Rate(100, 1.0))
    lim.defer(2.5)
    assert lim.acquire(max_wait=5.0) == pytest.approx(2.5)
    lim.defer(0.0)  # never moves the schedule backwards
    assert lim.acquire(max_wait=5.0) == pytest.approx(0.01)


def test_threads_sharing_a_memory_limiter_get_distinct_slots(clock) -> None:
    store = MemoryGcraStore(clock=clock)
    waits: list[float] = []
    lim = GcraLimiter(store, Rate(10, 1.0), sleep=lambda s: waits.append(s))
    threads = [threading.Thread(target=lim.acquire, kwargs={"max_wait": 100.0})
               for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(waits) == pytest.approx([0.1 * i for i in range(1, 20)])


@pytest.mark.parametrize("bad", [{"max_wait": -1.0}, {"max_wait": float("nan")}])
def test_acquire_names_an_invalid_max_wait(clock, bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="max_wait"):
        limiter(clock, Rate(1, 1.0)).acquire(**bad)


def test_a_limiter_refuses_a_burst_below_one_or_negative_jitter(clock) -> None:
    with pytest.raises(ValueError, match="burst"):
        limiter(clock, Rate(1, 1.0, burst=0))
    with pytest.raises(ValueError, match="jitter"):
        limiter(clock, Rate(1, 1.0), jitter=-0.1)


@pytest.mark.redis
def test_the_lua_script_takes_the_same_decisions_as_the_python_step(
        redis_client: redis.Redis, clock) -> None:
    rng = random.Random(4)
    store = RedisGcraStore(redis_client, clock=clock)
    key = redis_client.test_prefix + "twin"  # type: ignore[attr-defined]
    tat: float | None = None
    for _ in range(300):
        clock.now += rng.choice([0.0, 0.001, 0.05, 0.3, 2.0])
        interval, tolerance = rng.choice([(0.05, 0.0), (0.1, 0.2), (3.0, 0.05)])
        max_wait = rng.choice([0.0, 0.1, 1.0, 10.0])
        if rng.random() < 0.05:
            store.defer(key, until_in=1.0, tolerance=tolerance)
            tat = max(tat if tat is not None else 0.0, clock.now + (1.0 + tolerance))
            continue
        new_tat, wait = gcra_reserve(tat, clock.now, interval=interval, tolerance=tolerance,
                                     max_wait=max_wait)
        ok, redis_wait = store.reserve(key, interval=interval, tolerance=tolerance,
                                       max_wait=max_wait)
        assert (ok, redis_wait) == (new_tat is not None, pytest.approx(wait, abs=1e-9))
        tat = new_tat if new_tat is not None else tat


@pytest.mark.redis
def test_a_redis_limiter_on_server_time_spaces_real_calls(redis_client: redis.Redis) -> None:
    slept: list[float] = []
    key = redis_client.test_prefix + "real"  # type: ignore[attr-defined]
    lim = RedisGcraLimiter(redis_client, Rate(5, 1.0), key=key, sleep=slept.append)
    waits = [lim.acquire(max_wait=5.0) for _ in range(4)]
    # reservations back to back: each waits one more interval (minus the ms between calls)
    assert waits[0] == 0.0
    assert waits[1:] == pytest.approx([0.2, 0.4, 0.6], abs=0.05)
    assert 0 < redis_client.pttl(key) <= 1000
    with pytest.raises(RateLimited) as caught:
        lim.acquire(max_wait=0.1)
    assert caught.value.retry_after == pytest.approx(0.8, abs=0.05)


def test_an_unreachable_redis_is_a_retryable_face_api_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))  # bound, not listening: connection refused
        client = redis.Redis(port=sock.getsockname()[1], socket_connect_timeout=1,
                             retry_on_error=[], retry=None)
        with pytest.raises(FaceApiUnavailable, match="quota in Redis") as caught:
            RedisGcraLimiter(client, Rate(1, 1.0)).acquire(max_wait=1.0)
    assert caught.value.retryable
