"""The Celery app factory, queues and routing, and the per-process bootstrap.

Nothing is created at import: ``create_app(settings)`` builds the app, registers the
tasks and returns it. Each worker process builds its own engine and stage context on
first use after fork (SQLAlchemy engines and Redis connections must not cross a fork).
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from typing import Any

from celery import Celery
from kombu import Exchange, Queue
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from posterlab.config import Settings

QUEUES: tuple[str, ...] = ("fetch", "extract", "faces", "analysis")
MAX_TASKS_PER_CHILD = 500  # a child costs ~1 s to replace: ~0.1% of 500 posters' compute
# a broker restart takes seconds: keep trying to publish for about half a minute
PUBLISH_RETRY = {"max_retries": 30, "interval_start": 0.2, "interval_step": 0.5,
                 "interval_max": 1.0}
FETCH_CHUNK = 256  # ids per fetch message: 1M posters -> ~4k messages (~0.6 ms each)


@dataclass
class ProcessState:
    """Per-process resources, rebuilt when the pid changes (after a fork)."""

    settings: Settings
    pid: int = -1
    engine: Engine | None = None
    factory: sessionmaker[Session] | None = None
    ctx: Any = None
    extra: dict[str, Any] = field(default_factory=dict)

    def ensure(self) -> ProcessState:
        if self.pid == os.getpid():
            return self
        import redis

        from posterlab.pipeline import StageContext
        from posterlab.storage.engine import make_engine, session_factory
        from posterlab.storage.schema import ensure_schema
        from posterlab.workers.local import single_threaded_blas

        single_threaded_blas()
        self.engine = make_engine(self.settings.database_url, pool_size=2)
        ensure_schema(self.engine, create=False)
        self.factory = session_factory(self.engine)
        client = redis.Redis.from_url(self.settings.broker_url, socket_timeout=10,
                                      socket_connect_timeout=5, health_check_interval=30)
        self.ctx = StageContext(self.settings, redis_client=client,
                                worker=f"{socket.gethostname()}:{os.getpid()}")
        self.pid = os.getpid()
        return self


def create_app(settings: Settings) -> Celery:
    """A configured Celery app with posterlab's tasks registered on it."""
    app = Celery("posterlab", broker=settings.broker_url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],  # a pickled message is rejected, never executed
        result_serializer="json",
        task_ignore_result=True,  # results live in the database, not in the broker
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        # the YuNet binding keeps ~36 KB per detection (measured): recycle pool children
        worker_max_tasks_per_child=MAX_TASKS_PER_CHILD,
        # one direct exchange per queue: a message goes to exactly one queue
        task_queues=[Queue(name, Exchange(name, type="direct"), routing_key=name)
                     for name in QUEUES],
        task_default_queue="fetch",
        task_routes={f"posterlab.{name}": {"queue": name, "exchange": name, "routing_key": name}
                     for name in QUEUES},
        broker_transport_options={"visibility_timeout": settings.visibility_timeout},
        task_publish_retry=True,
        task_publish_retry_policy=PUBLISH_RETRY,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        worker_send_task_events=False,
        worker_cancel_long_running_tasks_on_connection_loss=True,
    )
    app.posterlab_state = ProcessState(settings)  # type: ignore[attr-defined]
    from posterlab.tasks import register

    register(app)
    return app


def state_of(app: Celery) -> ProcessState:
    return app.posterlab_state.ensure()  # type: ignore[attr-defined,no-any-return]


def publish_fetch(app: Celery, poster_ids: list[int], producer: Any = None) -> int:
    """Queue ``fetch`` for these posters, FETCH_CHUNK ids a message. Returns messages sent."""
    task = app.tasks["posterlab.fetch"]
    sent = 0
    for start in range(0, len(poster_ids), FETCH_CHUNK):
        task.apply_async(args=[poster_ids[start:start + FETCH_CHUNK]], producer=producer,
                         retry=True, retry_policy=PUBLISH_RETRY)
        sent += 1
    return sent

