"""Downloading a batch of posters at once, with retries that wait without holding a slot.

A poster is ~30 KB; far from its host, most of a download is waiting for the answer.
:class:`Downloader` keeps up to ``policy.concurrency`` downloads in flight (at most
``policy.per_host`` to one host), reuses keep-alive connections, and retries transient
failures (5xx, 408/425/429, resets, timeouts) with exponential backoff and jitter,
honouring Retry-After. A retry that waits is an entry in a heap of due times, not a
sleeping thread: the slot goes to the next poster meanwhile. Permanent failures (404,
refused address, too large, ...) are final at once. Every download goes through
:func:`~posterlab.fetch.http.fetch_url`, so each one is pinned, has every redirect
re-checked, is capped in size and is cut at its deadline, headers included.

Why requests on a thread pool, not httpx or aiohttp: the guard (address pinning with TLS
checks on the name, :class:`~posterlab.fetch.http.PinnedAdapter`) is built on requests'
transport, already a dependency; urllib3's pools are thread-safe and, with
``pool_block``, cap the connections per address by themselves; and 32 threads mostly
asleep in ``recv`` cost a few MB and no measurable CPU next to decoding images. asyncio
(aiohttp, httpx's async client) would make the callers, Celery tasks and the embedded
runner, async for no gain at these numbers, and httpx's sync client pools no better than
urllib3. A thread per slot is the simplest design that meets the caps.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from types import TracebackType
from typing import cast
from urllib.parse import urlsplit

from posterlab.errors import PosterlabError
from posterlab.fetch.deadline import Watchdog
from posterlab.fetch.http import PinnedAdapter, TransientHttpError, fetch_url, make_session
from posterlab.fetch.local import is_local, read_local
from posterlab.fetch.policy import FetchPolicy

log = logging.getLogger(__name__)

Outcome = bytes | PosterlabError
OnDone = Callable[[int, Outcome], None]
BACKOFF_BASE = 0.5  # seconds before the first retry (0.25-0.5 s with jitter), doubling
RETRY_AFTER_CAP = 60.0  # a server asking for longer is left to the pipeline's later retry
_HOST_POOLS = 64  # hosts whose idle connections are kept; posters come from a few CDNs


class Downloader:
    """Concurrent poster downloads under one policy; build one per process, reuse it.

    It holds threads and sockets: build it after a fork (in a worker's process init),
    never at import, and :meth:`close` it when the process ends. Several threads may call
    :meth:`fetch_many` at once: the global cap (one thread pool) and the per-address
    connection cap (one connection pool) are shared by their batches.

    Parameters
    ----------
    policy : FetchPolicy
        The guard's limits, and ``concurrency``, ``per_host``, ``attempts``,
        ``retry_budget`` for batches.
    rng : random.Random, optional
        The jitter's source (seed it in tests).

    Examples
    --------
    >>> with Downloader(FetchPolicy()) as downloader:  # doctest: +SKIP
    ...     downloader.fetch_many(["https://example.org/1.jpg", "posters/2.jpg"])
    [b'\\xff\\xd8...', b'\\xff\\xd8...']
    """

    def __init__(self, policy: FetchPolicy, *, rng: random.Random | None = None) -> None:
        self.policy = policy
        # one pool of connections for every thread: block=True caps the connections to one
        # address at per_host (idle ones included) and keeps them alive between posters
        self._adapter = PinnedAdapter(pool_connections=_HOST_POOLS,
                                      pool_maxsize=policy.per_host, pool_block=True)
        self._watchdog = Watchdog()
        self._threads = ThreadPoolExecutor(policy.concurrency, "posterlab-fetch")
        self._local = threading.local()  # a session per thread (cookies, state), one adapter
        self._rng = rng or random.Random()

    def fetch_many(
        self, sources: Sequence[str], *, base_dir: str | None = None,
        on_done: OnDone | None = None,
    ) -> list[Outcome]:
        """The bytes of every source, or the error that ended its tries, in order.

        Parameters
        ----------
        sources : sequence of str
            Local paths (read at once, in the calling thread) and http(s) URLs.
        base_dir : str, optional
            Folder local sources must be inside.
        on_done : callable, optional
            ``on_done(index, outcome)``, called in the calling thread as each source ends,
            so the caller can store or compute while the rest download.

        Returns
        -------
        list of bytes or PosterlabError
            An error keeps its ``code``; a transient one still failing after
            ``policy.attempts`` tries, or whose next try would start after
            ``policy.retry_budget`` seconds, stays ``retryable``.
        """
        batch = _Batch(len(sources), on_done, time.monotonic() + self.policy.retry_budget)
        for index, source in enumerate(sources):
            if is_local(source):
                batch.finish(index, _read(source, self.policy, base_dir))
            else:
                batch.queue(index, _host_of(source))
        try:
            while batch.left:
                self._start_ready(batch, sources)
                self._settle(batch, _wait_some(batch))
        finally:
            for future in batch.running:
                future.cancel()  # only one not started yet: a caller's error stops the batch
        return cast(list[Outcome], batch.results)  # every index was finished: no None left

    def close(self) -> None:
        """Wait for running downloads, then close the threads, the watchdog and the pools."""
        self._threads.shutdown(wait=True, cancel_futures=True)
        self._watchdog.close()
        self._adapter.close()

    def __enter__(self) -> Downloader:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _start_ready(self, batch: _Batch, sources: Sequence[str]) -> None:
        batch.wake_due(time.monotonic())
        for host, waiting in batch.hosts.items():
            while waiting and len(batch.running) < self.policy.concurrency \
                    and batch.busy.get(host, 0) < self.policy.per_host:
                index = waiting.popleft()
                future = self._threads.submit(self._download, sources[index])
                batch.started(future, index, host)

    def _settle(self, batch: _Batch, done: set[Future[Outcome]]) -> None:
        now = time.monotonic()
        for future in done:
            index, host = batch.stopped(future)
            outcome = future.result()  # _download returns errors, never raises them
            delay = self._retry_delay(outcome, batch.attempts[index])
            if delay is not None and now + delay <= batch.give_up_at:
                batch.later(index, host, now + delay)
            else:
                batch.finish(index, outcome)

    def _retry_delay(self, outcome: Outcome, attempts: int) -> float | None:
        """Seconds until the next try of a failed download, or ``None``: no more tries."""
        if not isinstance(outcome, PosterlabError) or not outcome.retryable \
                or attempts >= self.policy.attempts:
            return None
        asked = outcome.retry_after if isinstance(outcome, TransientHttpError) else None
        if asked is not None:
            if asked > RETRY_AFTER_CAP:
                return None
            return asked + self._rng.uniform(0.0, 0.1 + asked / 10)  # never before asked
        return BACKOFF_BASE * 2 ** (attempts - 1) * self._rng.uniform(0.5, 1.0)

    def _download(self, url: str) -> Outcome:
        """One try of ``url``, in a pool thread; errors are returned, not raised."""
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = make_session(self._adapter)
        try:
            return fetch_url(url, self.policy, session, self._watchdog)
        except PosterlabError as exc:
            return exc
        except Exception as exc:  # a bug must fail one poster, not the batch
            log.exception("unexpected error while downloading a poster")
            return PosterlabError(f"unexpected {type(exc).__name__} while downloading",
                                  code="internal")


def fetch_many(
    sources: Sequence[str], *, policy: FetchPolicy, base_dir: str | None = None,
    on_done: OnDone | None = None,
) -> list[Outcome]:
    """:meth:`Downloader.fetch_many` with a downloader made for this batch and closed after.

    A process fetching many batches should keep one :class:`Downloader` instead, so
    connections stay alive from one batch to the next.
    """
    with Downloader(policy) as downloader:
        return downloader.fetch_many(sources, base_dir=base_dir, on_done=on_done)


@dataclass
class _Batch:
    """The state of one :meth:`Downloader.fetch_many`: what waits, runs and is done."""

    size: int
    on_done: OnDone | None
    give_up_at: float  # no retry starts after this (time.monotonic)
    results: list[Outcome | None] = field(init=False)
    attempts: list[int] = field(init=False)
    left: int = field(init=False)
    hosts: dict[str, deque[int]] = field(default_factory=dict)  # ready to start, per host
    busy: dict[str, int] = field(default_factory=dict)  # running, per host
    running: dict[Future[Outcome], tuple[int, str]] = field(default_factory=dict)
    due: list[tuple[float, int, int, str]] = field(default_factory=list)  # waiting retries
    _order: itertools.count[int] = field(default_factory=itertools.count)

    def __post_init__(self) -> None:
        self.results = [None] * self.size
        self.attempts = [0] * self.size
        self.left = self.size

    def queue(self, index: int, host: str) -> None:
        self.hosts.setdefault(host, deque()).append(index)

    def later(self, index: int, host: str, when: float) -> None:
        heapq.heappush(self.due, (when, next(self._order), index, host))

    def wake_due(self, now: float) -> None:
        """Queue the retries whose time has come, ahead of first tries (they are older)."""
        while self.due and self.due[0][0] <= now:
            _, _, index, host = heapq.heappop(self.due)
            self.hosts.setdefault(host, deque()).appendleft(index)

    def started(self, future: Future[Outcome], index: int, host: str) -> None:
        self.running[future] = (index, host)
        self.busy[host] = self.busy.get(host, 0) + 1
        self.attempts[index] += 1

    def stopped(self, future: Future[Outcome]) -> tuple[int, str]:
        index, host = self.running.pop(future)
        self.busy[host] -= 1
        return index, host

    def finish(self, index: int, outcome: Outcome) -> None:
        self.results[index] = outcome
        self.left -= 1
        if self.on_done is not None:
            self.on_done(index, outcome)


def _wait_some(batch: _Batch) -> set[Future[Outcome]]:
    """Wait until a download ends or the next retry is due; the downloads that ended."""
    timeout = max(0.0, batch.due[0][0] - time.monotonic()) if batch.due else None
    if not batch.running:
        time.sleep(timeout or 0.0)  # only waiting retries: nothing else can happen sooner
        return set()
    done, _ = wait(batch.running, timeout=timeout, return_when=FIRST_COMPLETED)
    return done


def _read(source: str, policy: FetchPolicy, base_dir: str | None) -> Outcome:
    try:
        return read_local(source, max_bytes=policy.max_bytes, base_dir=base_dir)
    except PosterlabError as exc:
        return exc


def _host_of(url: str) -> str:
    """The host a per-host slot is counted for (a bad URL fails in the download)."""
    try:
        return urlsplit(url).netloc.rpartition("@")[2].lower()
    except ValueError:
        return ""
