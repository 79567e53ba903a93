"""Pool children that died while their worker lived, told apart from whole workers, and
the poster each was computing.

A pool child names the poster it computes before each one (:func:`mark_working`, a Redis
key per process). When the child dies running a task (killed by the OOM killer, a native
crash), the worker's main process learns it at once: Celery hands the task's request a
``WorkerLostError``. :class:`DeathRecordingRequest` then records the child (``host:pid``,
as it signed its claims) and the poster it was computing. The lease sweeps read that
(:func:`recently_died`): the claims of a recorded child are taken back at the next sweep;
the poster it was computing keeps its delivery counted (a poster that kills every process
it reaches fails ``worker-crashed`` after ``POSTERLAB_MAX_CRASHES``, however long the
queue ahead of it), the rest of its batch is not charged. A lease that merely expired is
a whole worker gone (nobody was left to record anything): uncounted, as no poster caused it.
"""

from __future__ import annotations

import logging
import socket
import time
from datetime import UTC, datetime
from typing import Any, NamedTuple, cast

import redis
from billiard.exceptions import WorkerLostError
from celery.worker.request import Request

log = logging.getLogger(__name__)

DIED_KEY = "posterlab:died"  # sorted set: process name -> when it died
CULPRIT_KEY = "posterlab:died:computing"  # hash: process name -> the poster it computed
WORKING_PREFIX = "posterlab:computing:"  # + process name: the poster it computes now
# a death is kept this long: the sweeps (every third of a lease) take its claims back
# well within it, and every sweep reads them all. A pid used again later is told apart by
# the time of its claims, not by forgetting
REMEMBER_SECONDS = 300.0


class Death(NamedTuple):
    """A pool process that died while its worker lived."""

    at: datetime
    computing: int | None  # the poster it was computing, when it said


def mark_working(client: redis.Redis, worker: str, poster_id: int | None) -> None:
    """Keep which poster ``worker`` computes now (None: none), for its main process.

    On the hot path: ``client`` should fail fast (short timeouts, no retries), since a
    mark that cannot be written only means the whole batch is charged on a death."""
    try:
        if poster_id is None:
            client.delete(WORKING_PREFIX + worker)
        else:
            client.set(WORKING_PREFIX + worker, poster_id, ex=int(REMEMBER_SECONDS))
    except redis.RedisError as exc:  # unknown culprit: its whole batch is charged
        log.debug("could not note the poster %s computes: %s", worker, exc)


def record_death(client: redis.Redis, worker: str, *, now: float | None = None) -> Death:
    """Record that ``worker`` (``host:pid``) died while its worker's main process lived,
    with the poster it was computing (taken from :func:`mark_working`)."""
    at = time.time() if now is None else now
    raw = client.get(WORKING_PREFIX + worker)
    computing = _poster_id(raw)
    pipe = client.pipeline()
    pipe.zadd(DIED_KEY, {worker: at})
    if computing is not None:
        pipe.hset(CULPRIT_KEY, worker, computing)
    else:
        pipe.hdel(CULPRIT_KEY, worker)
    pipe.delete(WORKING_PREFIX + worker)
    pipe.zremrangebyscore(DIED_KEY, "-inf", at - REMEMBER_SECONDS)
    pipe.expire(CULPRIT_KEY, int(REMEMBER_SECONDS))
    pipe.execute()
    return Death(datetime.fromtimestamp(at, UTC), computing)


def recently_died(client: redis.Redis, *, now: float | None = None) -> dict[str, Death]:
    """The pool children recorded dead in the last :data:`REMEMBER_SECONDS`."""
    at = time.time() if now is None else now
    found = cast(list[tuple[bytes | str, float]], client.zrangebyscore(
        DIED_KEY, at - REMEMBER_SECONDS, "+inf", withscores=True))
    if not found:
        return {}
    names = [_text(name) for name, _ in found]
    culprits = cast(list[bytes | str | None], client.hmget(CULPRIT_KEY, names))
    return {name: Death(datetime.fromtimestamp(float(score), UTC), _poster_id(c))
            for name, (_, score), c in zip(names, found, culprits, strict=True)}


def _poster_id(raw: Any) -> int | None:
    try:
        return int(raw) if raw is not None else None
    except (TypeError, ValueError):  # not written by mark_working
        return None


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class DeathRecordingRequest(Request):
    """Celery's task request, which also records the pool child that died running it."""

    def on_failure(self, exc_info: Any, send_failed_event: bool = True,
                   return_ok: bool = False) -> Any:
        exc = getattr(exc_info.exception, "exc", exc_info.exception)
        pid = self.worker_pid
        if isinstance(exc, WorkerLostError) and pid:
            self._record(f"{socket.gethostname()}:{pid}")
        return super().on_failure(exc_info, send_failed_event=send_failed_event,
                                  return_ok=return_ok)

    def _record(self, worker: str) -> None:
        try:  # short timeouts: this runs in the main process, between two messages
            client = redis.Redis.from_url(self.task.app.conf.broker_url, socket_timeout=2,
                                          socket_connect_timeout=2)
            try:
                record_death(client, worker)
            finally:
                client.close()
        except redis.RedisError as exc:  # its leases expire instead: uncounted, late
            log.warning("could not record that pool process %s died: %s", worker, exc)
