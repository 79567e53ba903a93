"""Celery glue only: thin, named, idempotent tasks that call :mod:`posterlab.pipeline`.

Messages carry ids, never images. A task re-reads the poster, runs its stage, and
publishes the next stage; a redelivered message finds the poster already past its
stage and does nothing. Database outages are retried with a countdown.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery, Task
from sqlalchemy.exc import DBAPIError

from posterlab.pipeline import Step, backoff, run_stage, run_stage_many
from posterlab.workers.app import state_of

log = logging.getLogger(__name__)

DB_RETRY_COUNTDOWN = 5.0
# posters claimed and recorded together by a fetch task: two transactions instead of 32,
# and short enough (16 downloads at most) that a claim never looks abandoned
FETCH_GROUP = 16


def register(app: Celery) -> None:
    """Define the tasks on ``app`` (no module-level app exists)."""

    def advance(stage: str, poster_id: int, attempt: int) -> None:
        state = state_of(app)
        assert state.factory is not None
        # extract goes on with faces in the same task when faces need no paid API call
        through = "faces" if stage == "extract" else stage
        try:
            step = run_stage(state.factory, state.ctx, poster_id, stage, attempt=attempt,
                             through=through)
        except DBAPIError as exc:  # database down or locked for long: try again later
            log.warning("database error in %s of poster %s, retrying: %s",
                        stage, poster_id, type(exc).__name__)
            app.tasks[f"posterlab.{stage}"].apply_async(
                args=[poster_id] if stage != "fetch" else [[poster_id]],
                kwargs={"attempt": attempt}, countdown=backoff(1) + DB_RETRY_COUNTDOWN)
            return
        follow(step, stage, poster_id, attempt)

    def follow(step: Step, stage: str, poster_id: int, attempt: int) -> None:
        if step.retry_in is not None:
            args: list[Any] = [[poster_id]] if stage == "fetch" else [poster_id]
            app.tasks[f"posterlab.{stage}"].apply_async(
                args=args, kwargs={"attempt": attempt + 1}, countdown=step.retry_in)
        elif step.next_stage is not None:
            app.tasks[f"posterlab.{step.next_stage}"].apply_async(args=[poster_id])
        if step.analysis_due:
            state = state_of(app)
            with state.factory() as session:  # type: ignore[misc]
                from posterlab.storage.models import Poster

                run_id = session.get_one(Poster, poster_id).run_id
            app.tasks["posterlab.analysis"].apply_async(args=[run_id])

    @app.task(name="posterlab.fetch", bind=True)
    def fetch(self: Task, poster_ids: list[int], attempt: int = 1) -> None:
        state = state_of(app)
        assert state.factory is not None
        ids = [int(i) for i in poster_ids]
        for start in range(0, len(ids), FETCH_GROUP):
            group = ids[start:start + FETCH_GROUP]
            try:
                steps = run_stage_many(state.factory, state.ctx, group, "fetch",
                                       attempt=attempt)
            except DBAPIError as exc:  # database down or locked for long: later
                log.warning("database error fetching %d posters, retrying: %s",
                            len(group), type(exc).__name__)
                fetch.apply_async(args=[group], kwargs={"attempt": attempt},
                                  countdown=backoff(1) + DB_RETRY_COUNTDOWN)
                continue
            for poster_id, step in steps:
                follow(step, "fetch", poster_id, attempt)

    @app.task(name="posterlab.extract", bind=True)
    def extract(self: Task, poster_id: int, attempt: int = 1) -> None:
        advance("extract", int(poster_id), attempt)

    @app.task(name="posterlab.faces", bind=True)
    def faces(self: Task, poster_id: int, attempt: int = 1) -> None:
        advance("faces", int(poster_id), attempt)

    @app.task(name="posterlab.analysis", bind=True)
    def analysis(self: Task, run_id: int) -> None:
        from posterlab.pipeline import analyse_run

        state = state_of(app)
        assert state.factory is not None
        analyse_run(state.factory, int(run_id))
