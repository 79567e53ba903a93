"""The sweeper: finds distributed work that nobody will do any more, and re-queues it.

Three ways work gets lost, and what finds them:

- a worker died mid-stage (killed, host lost): its claims' leases expire (living workers'
  heartbeats re-queue them, see :mod:`posterlab.workers.heartbeat`; a sweep here does the
  same when no worker lives); a claim without lease (an older worker) stays *claimed*
  with no progress past ``stuck_after`` -> re-published;
- a message vanished (Redis restarted without it, a producer died between its commit and
  its publish, a consumer vanished holding it): the poster waits *unclaimed* past
  ``stuck_after`` while the broker has nothing for it (no waiting message, no message
  delivered less than ``stuck_after`` ago) -> re-published;
- the run's analysis was claimed but its message never arrived -> re-published.

Re-published posters go through the queue bound like any other (what does not fit waits
deferred), and each sweep tops the queues up from the deferred posters.

Re-publishing is always safe: tasks are idempotent, a second message for a poster that
already moved on does nothing. Runs from ``posterlab status`` and ``posterlab enqueue``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

import redis
from celery import Celery
from sqlalchemy.orm import Session, sessionmaker

from posterlab.config import Settings
from posterlab.stages import AnalysisState, Stage
from posterlab.storage import claims, runs
from posterlab.storage.engine import transaction
from posterlab.storage.models import Run, utcnow
from posterlab.workers.broker import broker_idle
from posterlab.workers.queues import open_backlog, publish_analysis


@dataclass(frozen=True)
class Swept:
    posters: int = 0
    analysis: bool = False


def sweep(app: Celery, factory: sessionmaker[Session], settings: Settings, run_id: int, *,
          stuck_after: float | None = None, unclaimed_after: float | None = None) -> Swept:
    """Re-queue what nobody is working on in run ``run_id`` (see the module docstring).

    ``unclaimed_after`` (default: ``stuck_after``) is how long an unclaimed poster must
    have waited, with the broker idle, to count as lost; ``enqueue`` uses 0.
    """
    age = settings.stuck_after_seconds if stuck_after is None else stuck_after
    lost = age if unclaimed_after is None else unclaimed_after
    with factory() as session:
        run = runs.get_run(session, run_id)
    if run.mode != "distributed":
        return Swept()
    try:
        idle = broker_idle(settings, younger_than=age)
    except redis.RedisError:
        return Swept()  # no broker: nothing to publish into; status still answers
    if run.pending == 0:
        # a running analysis renews its lease (analysis_at): lost when silent for three
        running = run.analysis_state == AnalysisState.RUNNING
        wait = 3 * settings.lease_seconds if running else age
        return Swept(analysis=_sweep_analysis(app, factory, run, wait, idle))
    with transaction(factory) as session:
        expired = claims.expire_leases(session, run_id=run_id)
    with transaction(factory) as session:
        stuck = claims.stuck_posters(session, run_id, timedelta(seconds=age),
                                   include_unclaimed=idle,
                                   unclaimed_for=timedelta(seconds=lost))
        claims.release(session, (pid for pid, _ in stuck))
    by_stage: dict[Stage, list[int]] = defaultdict(list)
    for pid, stage in stuck:
        by_stage[Stage(stage)].append(pid)
    with open_backlog(app, factory, settings) as queues, \
            app.producer_or_acquire() as producer:
        queues.requeue(expired)
        for stage, ids in by_stage.items():
            queues.send(stage, ids, producer=producer)
        for stage in Stage:  # deferred posters whose queue drained with nobody to notice
            queues.top_up(stage, producer=producer)
    return Swept(posters=len(stuck) + len(expired))


def _sweep_analysis(app: Celery, factory: sessionmaker[Session], run: Run, age: float,
                    idle: bool) -> bool:
    """Claim and publish the run's analysis when it is due and nobody has it."""
    if run.analysis_state == AnalysisState.NONE:
        with transaction(factory) as session:
            due = runs.claim_analysis(session, run.id)
    elif run.analysis_state in (AnalysisState.QUEUED, AnalysisState.RUNNING) and idle:
        since = run.analysis_at or run.finished_at
        due = since is None or _older_than(since, age)
        if due:
            with transaction(factory) as session:
                due = runs.claim_analysis(session, run.id, force=True)
    else:
        due = False
    if due:
        publish_analysis(app, run.id)
    return due


def _older_than(when: datetime, seconds: float) -> bool:
    return (utcnow() - when).total_seconds() > seconds
