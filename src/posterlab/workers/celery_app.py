"""Celery, all in one place: the app factory, the tasks, publishing, per-process state.

Nothing is created at import: :func:`create_app` builds an app and registers the tasks
on it. The tasks are thin: they take a message's poster ids, run them through
:func:`posterlab.pipeline.run_batch`, and publish where each poster goes next. Messages
carry ids, never images; a redelivered message finds its posters past their stage and
does nothing. Each worker process builds its engine and stage context on first use
after fork (engines and Redis connections must not cross a fork).
"""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from celery import Celery, Task
from kombu import Exchange, Queue
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from posterlab.config import Settings
from posterlab.pipeline import StageContext, Transition, analyze_run, backoff, run_batch
from posterlab.stages import ANALYSIS_TASK, QUEUES, Stage
from posterlab.storage import posters
from posterlab.workers.process import POSTERS_PER_CHILD, single_threaded_blas, worker_name

log = logging.getLogger(__name__)

# a broker restart takes seconds: keep trying to publish for about half a minute
PUBLISH_RETRY = {"max_retries": 30, "interval_start": 0.2, "interval_step": 0.5,
                 "interval_max": 1.0}
DB_RETRY_COUNTDOWN = 5.0  # database down or locked for long: the batch comes back later
# posters of a fetch message claimed, downloaded at once and recorded together: two
# transactions per group, and short (one download's deadline) so a claim never looks
# abandoned
FETCH_GROUP = 32
MAX_ID = 2**63 - 1  # a poster id beyond BIGINT is a forged message, not an outage


@dataclass
class ProcessState:
    """This process's engine, session factory and stage context, rebuilt after a fork."""

    settings: Settings
    pid: int = -1
    factory: sessionmaker[Session] | None = None
    ctx: StageContext | None = None

    def ensure(self) -> tuple[sessionmaker[Session], StageContext]:
        if self.pid != os.getpid() or self.factory is None or self.ctx is None:
            self.factory, self.ctx = _open_process(self.settings)
            self.pid = os.getpid()
        return self.factory, self.ctx


def _open_process(settings: Settings) -> tuple[sessionmaker[Session], StageContext]:
    import redis

    from posterlab.storage.engine import make_engine, session_factory
    from posterlab.storage.schema import ensure_schema

    single_threaded_blas()
    engine = make_engine(settings.database_url, pool_size=2)
    ensure_schema(engine, create=False)
    client = redis.Redis.from_url(settings.broker_url, socket_timeout=10,
                                  socket_connect_timeout=5, health_check_interval=30)
    return session_factory(engine), StageContext(settings, redis_client=client,
                                                 worker=worker_name())


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
        worker_max_tasks_per_child=POSTERS_PER_CHILD // Stage.EXTRACT.ids_per_message,
        # one direct exchange per queue: a message goes to exactly one queue
        task_queues=[Queue(name, Exchange(name, type="direct"), routing_key=name)
                     for name in QUEUES],
        task_default_queue=Stage.FETCH.queue,
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
    for stage, task in STAGE_TASKS.items():
        app.task(name=stage.task_name, bind=True)(task)
    app.task(name=ANALYSIS_TASK, bind=True)(analysis)
    return app


def state_of(app: Celery) -> tuple[sessionmaker[Session], StageContext]:
    """The calling process's (session factory, stage context) for ``app``."""
    state: ProcessState = app.posterlab_state  # type: ignore[attr-defined]
    return state.ensure()


# ---------------------------------------------------------------- publishing


def publish(app: Celery, stage: Stage, poster_ids: Sequence[int], *, attempt: int = 1,
            countdown: float | None = None, producer: Any = None) -> int:
    """Queue ``stage`` for these posters, ``stage.ids_per_message`` ids a message.

    The one way work enters a queue (tasks, the sweeper, enqueue, retry). Returns the
    number of messages sent.
    """
    task = app.tasks[stage.task_name]
    size = stage.ids_per_message
    sent = 0
    for start in range(0, len(poster_ids), size):
        args, kwargs = stage.message(list(poster_ids[start:start + size]), attempt)
        task.apply_async(args=args, kwargs=kwargs, countdown=countdown, producer=producer,
                         retry=True, retry_policy=PUBLISH_RETRY)
        sent += 1
    return sent


def publish_analysis(app: Celery, run_id: int, producer: Any = None) -> None:
    app.tasks[ANALYSIS_TASK].apply_async(args=[run_id], producer=producer, retry=True,
                                         retry_policy=PUBLISH_RETRY)


def follow(app: Celery, transitions: Iterable[Transition]) -> None:
    """Publish where each poster goes next: its next stage now (grouped), a retry later,
    the run's analysis when it was the run's last poster."""
    now: dict[Stage, list[int]] = defaultdict(list)
    with app.producer_or_acquire() as producer:
        for t in transitions:
            if t.stage is not None and t.delay is not None:
                publish(app, t.stage, [t.poster_id], attempt=t.attempt, countdown=t.delay,
                        producer=producer)
            elif t.stage is not None:
                now[t.stage].append(t.poster_id)
            if t.analysis_due:
                publish_analysis(app, t.run_id, producer=producer)
        for stage, ids in now.items():
            publish(app, stage, ids, producer=producer)


# ---------------------------------------------------------------- tasks


def handle(app: Celery, stage: Stage, poster_ids: Any, attempt: Any) -> None:
    """Work a message of ``stage``: its posters in groups, then publish what follows."""
    ids, attempt = valid_ids(poster_ids), max(1, int(attempt))
    factory, ctx = state_of(app)
    group = FETCH_GROUP if stage is Stage.FETCH else len(ids) or 1
    for start in range(0, len(ids), group):
        chunk = ids[start:start + group]
        try:  # extract goes on with faces in the same task when faces need no paid call
            moved = run_batch(factory, ctx, stage, chunk, attempt=attempt,
                              through=Stage.FACES if stage is Stage.EXTRACT else stage)
        except DBAPIError as exc:  # database down or locked for long: try again later
            log.warning("database error in %s of %d posters, retrying: %s",
                        stage, len(chunk), type(exc).__name__)
            publish(app, stage, chunk, attempt=attempt,
                    countdown=backoff(1) + DB_RETRY_COUNTDOWN)
            continue
        log_moves(factory, stage, moved)
        follow(app, moved)


def log_moves(factory: sessionmaker[Session], stage: Stage, moved: Sequence[Transition]
              ) -> None:
    """One log line per poster that ended or waits for a retry, naming its run and movie
    (the others at DEBUG): what an operator greps a worker's log for."""
    loud = [t for t in moved if t.terminal or t.delay is not None]
    if not moved or not (loud or log.isEnabledFor(logging.DEBUG)):
        return
    with factory() as session:
        names = posters.describe(session, [t.poster_id for t in moved])
    for t in moved:
        run, movie, code = names.get(t.poster_id, ("?", "?", ""))
        if t.terminal:
            log.info("run %s movie %s: %s%s", run, movie, t.terminal, f" ({code})" if code else "")
        elif t.delay is not None:
            log.info("run %s movie %s: %s again in %.0fs (attempt %d)", run, movie,
                     t.stage, t.delay, t.attempt)
        else:
            log.debug("run %s movie %s: %s -> %s", run, movie, stage, t.stage)


def valid_ids(value: Any) -> list[int]:
    """The poster ids of a message; a forged or malformed message carries none."""
    items = value if isinstance(value, list) else [value]
    ids = [int(i) for i in items if isinstance(i, int) and not isinstance(i, bool)]
    dropped = len(items) - len(ids := [i for i in ids if 0 < i <= MAX_ID])
    if dropped:
        log.warning("ignored %d malformed poster ids in a message", dropped)
    return ids


def fetch(task: Task, poster_ids: list[int], attempt: int = 1) -> None:
    handle(task.app, Stage.FETCH, poster_ids, attempt)


def extract(task: Task, poster_ids: list[int], attempt: int = 1) -> None:
    handle(task.app, Stage.EXTRACT, poster_ids, attempt)


def faces(task: Task, poster_ids: list[int], attempt: int = 1) -> None:
    handle(task.app, Stage.FACES, poster_ids, attempt)


def analysis(task: Task, run_id: int) -> None:
    factory, _ = state_of(task.app)
    analyze_run(factory, int(run_id))


STAGE_TASKS = {Stage.FETCH: fetch, Stage.EXTRACT: extract, Stage.FACES: faces}
