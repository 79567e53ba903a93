"""The total deadline of a download, enforced on the socket itself.

Socket timeouts bound one ``recv``; a server that sends its headers one byte a second
never trips them. So every download runs under a :class:`Watch`, and the connection
classes below hand the watch the socket they read the answer from. When the deadline
passes, a :class:`Watchdog` thread shuts that socket down: the blocked read returns at
once, and the download fails with ``fetch-timeout`` however the server paces its bytes.

``shutdown``, not ``close``: closing a descriptor another thread is reading from may let
the number be reused under it; shutting down only wakes the reader.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import socket
import threading
import time
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

# The watch of the download running in this thread (a context, not a global: each
# thread of a pool has its own), read by the connection when it starts reading the answer.
_CURRENT: ContextVar[Watch | None] = ContextVar("posterlab_fetch_watch", default=None)


class Watch:
    """One download's deadline and the sockets it reads from."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.expired = False
        self._done = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def attach(self, sock: socket.socket | None) -> None:
        """Watch ``sock``; shut it down now if the deadline has already passed."""
        if sock is None:
            return
        with self._lock:
            if self._done:
                return
            self._sockets.append(sock)
            late = self.expired or time.monotonic() >= self.deadline
        if late:
            self.expire()

    def expire(self) -> None:
        """The deadline passed: mark it and wake every read on the download's sockets."""
        with self._lock:
            if self._done:
                return
            self.expired = True
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):  # already closed by its owner: fine
                sock.shutdown(socket.SHUT_RDWR)

    def finish(self) -> None:
        """The download is over: its sockets (back in the pool) are no longer watched."""
        with self._lock:
            self._done = True
            self._sockets = []


class Watchdog:
    """One thread that expires the :class:`Watch` es whose deadline has passed.

    Build one per process (a :class:`~posterlab.fetch.many.Downloader` holds one) and
    :meth:`close` it at the end; the thread starts with the first watch.
    """

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Watch]] = []
        self._order = itertools.count()  # ties in the heap never compare two watches
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    @contextlib.contextmanager
    def watch(self, deadline: float) -> Iterator[Watch]:
        """Run the body under a watch of ``deadline`` (a :func:`time.monotonic` time)."""
        watch = Watch(deadline)
        with self._wake:
            if self._closed:
                raise RuntimeError("the watchdog is closed")
            heapq.heappush(self._heap, (deadline, next(self._order), watch))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="posterlab-deadline",
                                                daemon=True)
                self._thread.start()
            self._wake.notify()
        token = _CURRENT.set(watch)
        try:
            yield watch
        finally:
            _CURRENT.reset(token)
            watch.finish()

    def close(self) -> None:
        """Stop the thread; downloads still running keep only their socket timeouts."""
        with self._wake:
            self._closed = True
            self._wake.notify()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        while True:
            with self._wake:
                due = self._due()
                while due is None:
                    if self._closed:
                        return
                    wait = self._heap[0][0] - time.monotonic() if self._heap else None
                    self._wake.wait(wait)
                    due = self._due()
            for watch in due:
                watch.expire()

    def _due(self) -> list[Watch] | None:
        """Pop the watches due now (finished ones are dropped too); ``None`` if there are none."""
        now, due = time.monotonic(), []
        while self._heap and self._heap[0][0] <= now:
            due.append(heapq.heappop(self._heap)[2])
        return due or None


class _Watched:
    """Hands the current watch the socket the answer is read from, headers included."""

    sock: socket.socket | None

    def getresponse(self, *args: Any, **kwargs: Any) -> Any:
        watch = _CURRENT.get()
        if watch is not None:
            watch.attach(self.sock)
        return super().getresponse(*args, **kwargs)  # type: ignore[misc]


class WatchedHTTPConnection(_Watched, HTTPConnection):
    """An http connection whose reads a :class:`Watch` can cut short."""


class WatchedHTTPSConnection(_Watched, HTTPSConnection):
    """An https connection whose reads a :class:`Watch` can cut short."""


class WatchedHTTPPool(HTTPConnectionPool):
    """A pool of :class:`WatchedHTTPConnection`."""

    ConnectionCls = WatchedHTTPConnection


class WatchedHTTPSPool(HTTPSConnectionPool):
    """A pool of :class:`WatchedHTTPSConnection`."""

    ConnectionCls = WatchedHTTPSConnection


POOL_CLASSES = {"http": WatchedHTTPPool, "https": WatchedHTTPSPool}
