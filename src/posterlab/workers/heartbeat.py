"""A worker node's heartbeat: a thread of ``posterlab worker`` that writes who it is.

Every :data:`INTERVAL` seconds it records the node's name, host, queues and the names of
its processes (``host:pid``, as they sign the posters they work on) in the ``workers``
table; ``posterlab status`` lists the nodes seen lately with their recent posters.

Each beat opens and closes its own engine while holding a lock that every ``fork()`` of
the process takes first (``os.register_at_fork``): a pool child is
never forked while a beat holds a connection. (A SQLite connection open at fork time
leaves the child believing its own process holds the file's lock: the child's every
write then waits for a lock nobody will release.) A beat that fails (database down a
moment) is logged and tried again next time.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING

from sqlalchemy.exc import SQLAlchemyError

from posterlab.config import Settings
from posterlab.errors import PosterlabError
from posterlab.pipeline.analysis import lost_after
from posterlab.storage import runs, workers
from posterlab.storage.engine import make_engine, session_factory, transaction
from posterlab.storage.models import utcnow

if TYPE_CHECKING:
    from celery import Celery

log = logging.getLogger(__name__)

INTERVAL = 10.0  # seconds between beats: a node is listed as seen within a few of them
FIRST_BEAT = 3.0  # seconds after start for the beat that lists the pool's processes


def process_names() -> list[str]:
    """``host:pid`` of this process and of its pool children (Celery's prefork pool)."""
    import billiard.process

    host = socket.gethostname()
    pids = [os.getpid(), *(p.pid for p in billiard.process.active_children() if p.pid)]
    return [f"{host}:{pid}" for pid in pids]


class Heartbeat:
    """Use as ``with Heartbeat(settings, node, queues): app.worker_main(...)``."""

    def __init__(self, settings: Settings, node: str, queues: Sequence[str],
                 interval: float = INTERVAL, app: Celery | None = None) -> None:
        self.settings, self.node, self.queues = settings, node, ",".join(queues)
        self.app = app  # to publish again an analysis whose worker died whole
        self.interval = interval
        self.started_at = utcnow()
        self._stop = threading.Event()
        self._no_fork = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="posterlab-heartbeat",
                                        daemon=True)

    def beat(self) -> None:
        """Write one heartbeat now (no fork of this process meanwhile)."""
        from posterlab.workers.queues import publish_analysis

        processes, app = process_names(), self.app
        with self._no_fork:
            engine = make_engine(self.settings.database_url, pool_size=1)
            try:
                with transaction(session_factory(engine)) as session:
                    workers.beat(session, name=self.node, hostname=socket.gethostname(),
                                 queues=self.queues, pid=os.getpid(), processes=processes,
                                 now=utcnow(), started_at=self.started_at)
                    lost = [] if app is None else runs.take_lost_analyses(
                        session, lost_after(self.settings.lease_seconds))
            finally:
                engine.dispose()
            for run_id in lost if app is not None else ():  # nobody else would run it
                log.warning("re-queued the analysis of run %s: its worker stopped renewing "
                            "it", run_id)
                publish_analysis(app, run_id)

    def _loop(self) -> None:
        wait = min(FIRST_BEAT, self.interval)  # soon after start: the pool has forked
        while not self._stop.wait(wait):
            wait = self.interval
            try:
                self.beat()
            except (SQLAlchemyError, PosterlabError, OSError) as exc:
                log.warning("heartbeat of %s not written: %s", self.node, type(exc).__name__)
            except Exception:  # a broker error while publishing, a bug: keep beating
                log.exception("heartbeat of %s failed", self.node)

    def __enter__(self) -> Heartbeat:
        os.register_at_fork(before=self._no_fork.acquire,
                            after_in_parent=self._no_fork.release,
                            after_in_child=self._no_fork.release)
        try:
            self.beat()
        except (SQLAlchemyError, PosterlabError, OSError) as exc:
            log.warning("heartbeat of %s not written: %s", self.node, type(exc).__name__)
        self._thread.start()
        return self

    def __exit__(self, *exc: object | TracebackType | None) -> None:
        self._stop.set()
        self._thread.join(self.interval)
