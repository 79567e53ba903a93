"""A distributed worker process's leases: a thread renews the leases the process holds,
and re-queues the posters whose lease expired (their worker died) or whose pool process
was recorded dead (:mod:`posterlab.workers.deaths`).

One daemon thread per worker process that claims posters (each Celery pool child),
started after the fork with the process's engine. Every third of the lease it extends
the leases its process holds (:func:`~posterlab.storage.claims.renew_leases`) and takes
back the expired leases of any worker (:func:`~posterlab.storage.claims.
expire_leases`, conditional, so of all the living workers exactly one re-queues each
poster) and hands them to ``requeue``, then calls ``lost`` (the posters whose message
was lost, re-queued when the broker is idle, see :func:`~posterlab.workers.celery_app.
requeue_lost`). With the default 10 s lease, the posters of a
worker killed with -9 are back in a queue within about 14 s, whatever
``POSTERLAB_STUCK_AFTER`` says.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from datetime import timedelta

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from posterlab.storage import claims
from posterlab.storage.engine import transaction
from posterlab.storage.models import utcnow
from posterlab.workers.deaths import Death

log = logging.getLogger(__name__)

Requeue = Callable[[list[tuple[int, str]]], None]


class LeaseKeeper:
    """Renew ``worker``'s leases and sweep expired ones, on a thread, until :meth:`stop`."""

    def __init__(self, factory: sessionmaker[Session], worker: str, lease_seconds: float,
                 requeue: Requeue, lost: Callable[[], object] | None = None,
                 dead: Callable[[], Mapping[str, Death]] | None = None) -> None:
        self.factory, self.worker, self.requeue, self.lost = factory, worker, requeue, lost
        self.dead = dead
        self.lease = timedelta(seconds=lease_seconds)
        self.every = lease_seconds / 3
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="posterlab-leases",
                                        daemon=True)

    def start(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def beat(self) -> int:
        """Renew this worker's leases now; how many."""
        with transaction(self.factory) as session:
            return claims.renew_leases(session, self.worker, utcnow() + self.lease)

    def sweep(self) -> list[tuple[int, str]]:
        """Take back the claims of pool processes recorded dead (delivery counted) and the
        expired leases of any worker (uncounted), and re-queue their posters."""
        dead = self.dead() if self.dead is not None else {}
        with transaction(self.factory) as session:
            died = claims.release_dead(
                session, {name: d.at for name, d in dead.items()},
                computing={name: d.computing for name, d in dead.items()})
            expired = claims.expire_leases(session)
        if died:
            log.warning("re-queued %d posters whose pool process died on them", len(died))
            self.requeue(died)
        if expired:
            log.warning("re-queued %d posters whose worker stopped renewing its lease",
                        len(expired))
            self.requeue(expired)
        if self.lost is not None:
            self.lost()
        return died + expired

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.beat()
                self.sweep()  # an index range of the few claimed rows: cheap at any size
            except (SQLAlchemyError, OSError) as exc:  # an outage: the next beat retries
                log.warning("heartbeat failed: %s: %s", type(exc).__name__, exc)
            except Exception:  # a broker error while re-queueing, a bug: keep beating
                log.exception("heartbeat failed")
