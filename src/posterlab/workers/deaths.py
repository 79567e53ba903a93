"""Pool children that died while their worker lived, told apart from whole workers.

When a pool child dies running a task (killed by the OOM killer, a native crash), the
worker's main process learns it at once: Celery hands the task's request a
``WorkerLostError``. :class:`DeathRecordingRequest` then writes the child's name
(``host:pid``, as it signed its claims) in a Redis sorted set. The lease sweeps read it
(:func:`recently_died`): the claims of a recorded child are taken back at the next
sweep, with their delivery still counted (a poster that kills every process it reaches
fails ``worker-crashed`` after ``POSTERLAB_MAX_CRASHES``, however long the queue ahead
of it). A lease that merely expired is a whole worker gone (nobody was left to record
anything): its delivery is uncounted, since no poster caused it.
"""

from __future__ import annotations

import logging
import socket
import time
from datetime import UTC, datetime
from typing import Any

import redis
from billiard.exceptions import WorkerLostError
from celery.worker.request import Request

log = logging.getLogger(__name__)

DIED_KEY = "posterlab:died"
REMEMBER_SECONDS = 3600.0  # a name is kept this long: pids are reused, slowly


def record_death(client: redis.Redis, worker: str, *, now: float | None = None) -> None:
    """Record that ``worker`` (``host:pid``) died while its worker's main process lived."""
    at = time.time() if now is None else now
    pipe = client.pipeline()
    pipe.zadd(DIED_KEY, {worker: at})
    pipe.zremrangebyscore(DIED_KEY, "-inf", at - REMEMBER_SECONDS)
    pipe.execute()


def recently_died(client: redis.Redis, *, now: float | None = None) -> dict[str, datetime]:
    """The pool children recorded dead in the last :data:`REMEMBER_SECONDS`, with when."""
    at = time.time() if now is None else now
    found: list[tuple[bytes | str, float]] = list(client.zrangebyscore(
        DIED_KEY, at - REMEMBER_SECONDS, "+inf", withscores=True))  # type: ignore[arg-type]
    return {(name.decode() if isinstance(name, bytes) else name):
            datetime.fromtimestamp(float(score), UTC) for name, score in found}


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
