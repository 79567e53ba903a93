"""Celery, all in one place: the app factory, the tasks, per-process state.

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
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import redis
from celery import Celery, Task
from kombu import Exchange, Queue
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from posterlab.config import Settings
from posterlab.pipeline import StageContext, Transition, analyze_run, backoff, run_batch
from posterlab.pipeline.analysis import lost_after
from posterlab.pipeline.drive import fail_posters
from posterlab.pipeline.record import MAX_RATE_LIMITED_ATTEMPTS
from posterlab.stages import ANALYSIS_TASK, QUEUES, Stage
from posterlab.storage import claims, posters, runs
from posterlab.storage.engine import transaction
from posterlab.workers.broker import broker_idle
from posterlab.workers.deaths import Death, DeathRecordingRequest, mark_working, recently_died
from posterlab.workers.leases import LeaseKeeper
from posterlab.workers.process import POSTERS_PER_CHILD, set_up_compute_process, worker_name
from posterlab.workers.queues import (
    PUBLISH_RETRY,
    Backlog,
    broker_client,
    publish,
    publish_analysis,
)

log = logging.getLogger(__name__)

DB_RETRY_COUNTDOWN = 5.0  # database down or locked for long: the batch comes back later
# posters of a fetch message claimed, downloaded at once and recorded together: two
# transactions per group, and short (one download's deadline) so a claim never looks
# abandoned
FETCH_GROUP = 32
MAX_ID = 2**31 - 1  # posters.id is an INTEGER: a larger id is a forged message
MAX_IDS = 1024  # ids in one message (4x the largest a stage sends)
MAX_ATTEMPT = MAX_RATE_LIMITED_ATTEMPTS  # the largest attempt any budget allows


@dataclass
class ProcessState:
    """This process's engine, session factory and stage context, rebuilt after a fork."""

    settings: Settings
    pid: int = -1
    factory: sessionmaker[Session] | None = None
    ctx: StageContext | None = None
    backlog: Backlog | None = None
    leases: LeaseKeeper | None = None

    def ensure(self, app: Celery) -> tuple[sessionmaker[Session], StageContext]:
        if self.pid != os.getpid() or self.factory is None or self.ctx is None:
            self.factory, self.ctx = _open_process(self.settings)
            self.backlog = None
            self.pid = os.getpid()
            factory, client = self.factory, self.ctx.redis_client
            self.leases = LeaseKeeper(
                factory, self.ctx.worker or worker_name(), self.settings.lease_seconds,
                lambda expired: backlog_of(app).requeue(expired),
                lambda: requeue_lost(app, factory, self.settings),
                lambda: _recorded_dead(client) if client is not None else {}).start()
        return self.factory, self.ctx

    def backlog_for(self, app: Celery) -> Backlog:
        """This process's bounded publisher (built on first use, after a fork)."""
        factory, ctx = self.ensure(app)
        if self.backlog is None:
            if ctx.redis_client is None:
                raise RuntimeError("a worker process's stage context has no Redis client")
            self.backlog = Backlog(app, factory, ctx.redis_client, self.settings.max_queued)
        return self.backlog


def _recorded_dead(client: redis.Redis) -> dict[str, Death]:
    try:
        return recently_died(client)
    except redis.RedisError as exc:  # Redis away a moment: expired leases still come back
        log.warning("could not read the pool processes recorded dead: %s", exc)
        return {}


def _open_process(settings: Settings) -> tuple[sessionmaker[Session], StageContext]:
    from posterlab.storage.engine import make_engine, session_factory
    from posterlab.storage.schema import ensure_schema

    set_up_compute_process()
    engine = make_engine(settings.database_url, pool_size=2)
    ensure_schema(engine, create=False)
    client = broker_client(settings.broker_url, health_check_interval=30)
    # the marks of the poster computed now fail fast: a Redis outage must not hold them
    marks = redis.Redis.from_url(settings.broker_url, socket_timeout=1,
                                 socket_connect_timeout=1)
    me = worker_name()
    return session_factory(engine), StageContext(
        settings, redis_client=client, worker=me, leased=True,
        working_on=lambda poster_id: mark_working(marks, me, poster_id))


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
    for stage, task in STAGE_TASKS.items():  # a pool child dying in one is recorded
        app.task(name=stage.task_name, bind=True, Request=DeathRecordingRequest)(task)
    app.task(name=ANALYSIS_TASK, bind=True)(analysis)
    return app


def state_of(app: Celery) -> tuple[sessionmaker[Session], StageContext]:
    """The calling process's (session factory, stage context) for ``app``."""
    return _process_state(app).ensure(app)


def backlog_of(app: Celery) -> Backlog:
    """The calling process's bounded publisher for ``app``."""
    return _process_state(app).backlog_for(app)


def _process_state(app: Celery) -> ProcessState:
    state: ProcessState = app.posterlab_state  # type: ignore[attr-defined]
    return state


def requeue_lost(app: Celery, factory: sessionmaker[Session], settings: Settings) -> int:
    """Re-queue what a dead worker left: a run's analysis not renewed for a lease and a
    half (its worker died whole while it ran), and posters whose message was lost (a worker
    killed between recording a poster and publishing its next stage), those waiting
    unclaimed longer than a lease while the broker holds nothing (no waiting message,
    none delivered for a lease)."""
    with transaction(factory) as session:
        analyses = runs.take_lost_analyses(session, lost_after(settings.lease_seconds))
    for run_id in analyses:
        log.warning("re-queued the analysis of run %s: its worker stopped renewing it", run_id)
        publish_analysis(app, run_id)
    if not broker_idle(settings, younger_than=settings.lease_seconds):
        return len(analyses)
    with transaction(factory) as session:
        lost = claims.lost_posters(session, timedelta(seconds=settings.lease_seconds))
    if lost:
        log.warning("re-queued %d posters whose message was lost", len(lost))
        backlog_of(app).requeue(lost)
    return len(analyses) + len(lost)


# ---------------------------------------------------------------- tasks


def handle(app: Celery, stage: Stage, poster_ids: Any, attempt: Any) -> None:
    """Work a message of ``stage``: its posters in groups, then publish what follows."""
    ids, attempt = valid_ids(poster_ids), valid_attempt(attempt)
    factory, ctx = state_of(app)
    queues = backlog_of(app)
    group = FETCH_GROUP if stage is Stage.FETCH else len(ids) or 1
    for start in range(0, len(ids), group):
        chunk = ids[start:start + group]
        try:  # extract goes on with faces in the same task when faces need no paid call
            moved = run_batch(factory, ctx, stage, chunk, attempt=attempt,
                              through=Stage.FACES if stage is Stage.EXTRACT else stage)
        except DBAPIError as exc:
            if is_outage(exc):  # database down or locked for long: try again later
                log.warning("database error in %s of %d posters, retrying: %s",
                            stage, len(chunk), type(exc).__name__)
                publish(app, stage, chunk, attempt=attempt,
                        countdown=backoff(1) + DB_RETRY_COUNTDOWN)
                continue
            moved = _one_by_one(factory, ctx, stage, chunk, attempt, exc)
        queues.follow(moved)
        log_moves(factory, stage, moved)
    # this message's room in the queue is free again: fill it from the deferred posters
    queues.top_up(stage)


def log_moves(factory: sessionmaker[Session], stage: Stage, moved: Sequence[Transition]
              ) -> None:
    """One log line per poster that ended or waits for a retry, naming its run and movie
    (the others at DEBUG): what an operator greps a worker's log for."""
    loud = [t for t in moved if t.terminal or t.delay is not None]
    if not moved or not (loud or log.isEnabledFor(logging.DEBUG)):
        return
    try:
        with factory() as session:
            names = posters.describe(session, [t.poster_id for t in moved])
    except DBAPIError:  # the names are for the log only: never fail the task for them
        names = {}
    for t in moved:
        run, movie, code = names.get(t.poster_id, ("?", "?", ""))
        if t.terminal:
            log.info("run %s movie %s: %s%s", run, movie, t.terminal, f" ({code})" if code else "")
        elif t.delay is not None:
            log.info("run %s movie %s: %s again in %.0fs (attempt %d)", run, movie,
                     t.stage, t.delay, t.attempt)
        else:
            log.debug("run %s movie %s: %s -> %s", run, movie, stage, t.stage)


def is_outage(exc: DBAPIError) -> bool:
    """A connection-level error (the database is down, locked, unreachable), that a later
    try may not meet; anything else (DataError, IntegrityError...) is this message's."""
    if isinstance(exc, DataError | IntegrityError):
        return False
    return exc.connection_invalidated or isinstance(exc, OperationalError | InterfaceError)


def _one_by_one(factory: sessionmaker[Session], ctx: StageContext, stage: Stage,
                ids: list[int], attempt: int, first: DBAPIError) -> list[Transition]:
    """A batch the database refused: each poster alone, those refused again failed."""
    log.warning("database refused a batch of %d posters at %s (%s): one by one",
                len(ids), stage, type(first).__name__)
    moved: list[Transition] = []
    for pid in ids:
        try:
            moved += run_batch(factory, ctx, stage, [pid], attempt=attempt)
        except DBAPIError as exc:
            if is_outage(exc):
                raise
            reason = str(exc.orig).splitlines()[0] if exc.orig else type(exc).__name__
            moved += fail_posters(factory, stage, [pid], code="database-refused",
                                  error=f"database-refused: the database refused this "
                                        f"poster's row at {stage}: {reason[:500]}")
    return moved


def valid_ids(value: Any) -> list[int]:
    """The poster ids of a message; a forged or malformed message carries none.

    Ids must be integers in ``1..MAX_ID`` (the range of the ``posters.id`` column); at
    most ``MAX_IDS`` are taken from one message.
    """
    items = value if isinstance(value, list) else [value]
    ids = [int(i) for i in items if isinstance(i, int) and not isinstance(i, bool)]
    ids = [i for i in ids if 0 < i <= MAX_ID]
    dropped = len(items) - len(ids)
    if len(ids) > MAX_IDS:
        dropped, ids = dropped + len(ids) - MAX_IDS, ids[:MAX_IDS]
    if dropped:
        log.warning("ignored %d malformed, out-of-range or excess poster ids in a message",
                    dropped)
    return ids


def valid_attempt(value: Any) -> int:
    """A message's attempt, clamped to ``1..MAX_ATTEMPT`` (anything else counts as 1)."""
    if isinstance(value, bool) or not isinstance(value, int):
        return 1
    return min(max(1, value), MAX_ATTEMPT)


def fetch(task: Task, poster_ids: list[int], attempt: int = 1) -> None:
    handle(task.app, Stage.FETCH, poster_ids, attempt)


def extract(task: Task, poster_ids: list[int], attempt: int = 1) -> None:
    handle(task.app, Stage.EXTRACT, poster_ids, attempt)


def faces(task: Task, poster_ids: list[int], attempt: int = 1) -> None:
    handle(task.app, Stage.FACES, poster_ids, attempt)


def analysis(task: Task, run_id: int) -> None:
    factory, context = state_of(task.app)
    analyze_run(factory, int(run_id), max_crashes=context.settings.max_crashes,
                lease_seconds=context.settings.lease_seconds)


STAGE_TASKS = {Stage.FETCH: fetch, Stage.EXTRACT: extract, Stage.FACES: faces}
