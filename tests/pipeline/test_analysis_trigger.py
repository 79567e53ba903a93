"""The run's analysis is claimed exactly once, when its last poster ends, by any path."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from posterlab.pipeline import Transition, claim_and_plan, compute, compute_chain
from posterlab.pipeline.record import end, record, record_batch
from posterlab.stages import AnalysisState, End, Stage
from posterlab.storage import posters, runs
from posterlab.storage.engine import transaction


def claimed_now(env) -> bool:
    """Would a caller claim the run's analysis now? (Claims it if so.)"""
    with transaction(env.factory) as session:
        return runs.claim_analysis(session, env.run.run_id)


def end_others(env, last: str, done: tuple[str, ...] = ()) -> None:
    """Take ``done`` all the way, fail every other poster but ``last``; no analysis yet."""
    for key in done:
        env.finish(key)
    for key in set(env.ALL) - {last, *done}:
        (pid,) = env.ids(key)
        with transaction(env.factory) as session:
            moved = end(session, pid, env.run.run_id, Stage.FETCH, End.FAILED,
                        error="x-test: ended by the test", error_code="x-test")
        assert moved is not None and not moved.analysis_due
    run = env.run_row()
    assert (run.pending, run.analysis_state) == (1, AnalysisState.NONE)
    assert not claimed_now(env)  # a poster is still pending


def by_record(env) -> list[Transition]:
    env.to_faces(env.PNG)
    end_others(env, env.PNG)
    ids = env.ids(env.PNG)
    with transaction(env.factory) as session:
        (job,) = claim_and_plan(session, env.ctx, Stage.FACES, ids).jobs
    result = compute(job, env.ctx)
    with transaction(env.factory) as session:
        moved = record(session, result, env.ctx, env.run.run_id)
    assert moved is not None
    return [moved]


def by_record_batch(env) -> list[Transition]:
    end_others(env, env.JPEG)
    ids = env.ids(env.JPEG)
    with transaction(env.factory) as session:
        planned = claim_and_plan(session, env.ctx, Stage.FETCH, ids)
    chains = [compute_chain(job, env.ctx, through=Stage.FACES) for job in planned.jobs]
    with transaction(env.factory) as session:
        return record_batch(session, chains, env.ctx, planned.run_of)


def by_cache_hit(env) -> list[Transition]:
    env.to_faces(env.COPY)
    end_others(env, env.COPY, done=(env.PNG,))  # PNG's faces are COPY's: cached
    ids = env.ids(env.COPY)
    with transaction(env.factory) as session:
        planned = claim_and_plan(session, env.ctx, Stage.FACES, ids)
    assert planned.jobs == []
    assert env.poster(env.COPY).cache_hits == 1
    return planned.moved


def by_failure(env) -> list[Transition]:
    end_others(env, env.MISSING)
    return env.step(Stage.FETCH, env.MISSING)


PATHS: dict[str, Callable[..., list[Transition]]] = {
    "record": by_record, "record_batch": by_record_batch, "cache hit": by_cache_hit,
    "failure": by_failure}


@pytest.mark.parametrize("path", list(PATHS))
def test_the_analysis_is_claimed_exactly_once_when_the_last_poster_ends(
        env, path: str) -> None:
    moved = PATHS[path](env)
    assert [t.analysis_due for t in moved] == [True]
    assert moved[0].terminal in (End.DONE, End.FAILED)
    run = env.run_row()
    assert (run.pending, run.analysis_state) == (0, AnalysisState.QUEUED)
    assert run.finished_at is not None
    assert not claimed_now(env)  # exactly once
    assert env.step(Stage.FETCH, *env.ALL) == []  # a redelivery triggers nothing more


def test_a_forced_claim_takes_the_analysis_again_whatever_its_state(env) -> None:
    by_failure(env)
    with transaction(env.factory) as session:
        assert runs.claim_analysis(session, env.run.run_id, force=True)
        runs.save_analysis(session, env.run.run_id, state=AnalysisState.DONE, result={})
    assert not claimed_now(env)
    with transaction(env.factory) as session:
        assert runs.claim_analysis(session, env.run.run_id, force=True)
    assert env.run_row().analysis_state == AnalysisState.QUEUED


def test_a_retried_run_claims_its_analysis_again_when_it_ends_again(env) -> None:
    by_failure(env)
    with transaction(env.factory) as session:
        again = posters.requeue_failed(session, env.run.run_id, reason="fetch-not-found")
    assert again == env.ids(env.MISSING)
    assert env.run_row().analysis_state == AnalysisState.NONE
    assert not claimed_now(env)
    moved = env.step(Stage.FETCH, env.MISSING)
    assert [t.analysis_due for t in moved] == [True]
