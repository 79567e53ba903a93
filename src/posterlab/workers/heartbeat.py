"""A worker node's heartbeat: a thread of ``posterlab worker`` that writes who it is.

Every :data:`INTERVAL` seconds it records the node's name, host, queues and the names of
its processes (``host:pid``, as they sign the posters they work on) in the ``workers``
table; ``posterlab status`` lists the nodes seen lately with their recent posters. Each
beat opens and closes its own engine, so no connection is ever held while the pool forks.
A beat that fails (database down a moment) is logged and tried again next time.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Sequence
from types import TracebackType

from sqlalchemy.exc import SQLAlchemyError

from posterlab.config import Settings
from posterlab.errors import PosterlabError
from posterlab.storage import workers
from posterlab.storage.engine import make_engine, session_factory, transaction
from posterlab.storage.models import utcnow

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
                 interval: float = INTERVAL) -> None:
        self.settings, self.node, self.queues = settings, node, ",".join(queues)
        self.interval = interval
        self.started_at = utcnow()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="posterlab-heartbeat",
                                        daemon=True)

    def beat(self) -> None:
        """Write one heartbeat now."""
        engine = make_engine(self.settings.database_url, pool_size=1)
        try:
            with transaction(session_factory(engine)) as session:
                workers.beat(session, name=self.node, hostname=socket.gethostname(),
                             queues=self.queues, pid=os.getpid(), processes=process_names(),
                             now=utcnow(), started_at=self.started_at)
        finally:
            engine.dispose()

    def _loop(self) -> None:
        wait = min(FIRST_BEAT, self.interval)  # soon after start: the pool has forked
        while not self._stop.wait(wait):
            wait = self.interval
            try:
                self.beat()
            except (SQLAlchemyError, PosterlabError, OSError) as exc:
                log.warning("heartbeat of %s not written: %s", self.node, type(exc).__name__)

    def __enter__(self) -> Heartbeat:
        try:
            self.beat()
        except (SQLAlchemyError, PosterlabError, OSError) as exc:
            log.warning("heartbeat of %s not written: %s", self.node, type(exc).__name__)
        self._thread.start()
        return self

    def __exit__(self, *exc: object | TracebackType | None) -> None:
        self._stop.set()
        self._thread.join(self.interval)
