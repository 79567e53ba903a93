"""Recording results: one stage per result, idempotent rows, retries and their budgets."""

from __future__ import annotations

import random

import pytest

from posterlab.faces.base import ApiUsage
from posterlab.pipeline import (
    Counted,
    Extracted,
    Failed,
    Fetched,
    Result,
    Transition,
    claim_and_plan,
    compute,
)
from posterlab.pipeline.record import (
    BACKOFF_BASE,
    BACKOFF_CAP,
    MAX_RATE_LIMITED_ATTEMPTS,
    backoff,
    record,
)
from posterlab.stages import End, Stage
from posterlab.storage.engine import transaction
from posterlab.storage.models import FaceRow, FeatureRow


def computed(env, key: str, stage: Stage) -> Result:
    """Claim the poster ``key`` at ``stage`` and compute its job, for real."""
    ids = env.ids(key)
    with transaction(env.factory) as session:
        (job,) = claim_and_plan(session, env.ctx, stage, ids).jobs
    return compute(job, env.ctx)


def recorded(env, result: Result) -> Transition | None:
    with transaction(env.factory) as session:
        return record(session, result, env.ctx, env.run.run_id)


def at_stage(env, key: str, stage: Stage) -> int:
    """Take the poster ``key`` to wait at ``stage``, for real; its id."""
    if stage is not Stage.FETCH:
        env.step(Stage.FETCH, key)
    if stage is Stage.FACES:
        env.step(Stage.EXTRACT, key)
    assert env.statuses()[key] == stage
    (pid,) = env.ids(key)
    return pid


def test_record_of_each_result_type_moves_the_poster_exactly_one_stage(env) -> None:
    fetched = computed(env, env.PNG, Stage.FETCH)
    assert isinstance(fetched, Fetched)
    assert recorded(env, fetched) == Transition(fetched.poster_id, env.run.run_id, Stage.EXTRACT)
    poster = env.poster(env.PNG)
    assert (poster.status, poster.sha256, poster.size) == (
        Stage.EXTRACT, fetched.sha256, fetched.size)

    extracted = computed(env, env.PNG, Stage.EXTRACT)
    assert isinstance(extracted, Extracted)
    assert recorded(env, extracted) == Transition(extracted.poster_id, env.run.run_id,
                                                  Stage.FACES)
    assert env.statuses()[env.PNG] == Stage.FACES
    assert env.rows(FeatureRow) == 1

    counted = computed(env, env.PNG, Stage.FACES)
    assert isinstance(counted, Counted)
    assert recorded(env, counted) == Transition(counted.poster_id, env.run.run_id,
                                                terminal=End.DONE)
    poster = env.poster(env.PNG)
    assert (poster.status, poster.face_count, poster.error) == (End.DONE, counted.face_count,
                                                                None)
    assert env.run_row().pending == len(env.ALL) - 1


@pytest.mark.parametrize(("row", "stage", "code"), [
    ("MISSING", Stage.FETCH, "fetch-not-found"),
    ("TEXT", Stage.EXTRACT, "image-not-an-image"),
])
def test_a_non_retryable_failure_ends_the_poster_failed_at_once(
        env, row: str, stage: Stage, code: str) -> None:
    key = getattr(env, row)
    at_stage(env, key, stage)
    failed = computed(env, key, stage)
    assert isinstance(failed, Failed) and not failed.retryable
    transition = recorded(env, failed)
    assert transition is not None and transition.terminal == End.FAILED
    assert transition.stage is None and transition.delay is None
    poster = env.poster(key)
    assert (poster.status, poster.error_code) == (End.FAILED, failed.code)
    assert failed.code == code
    assert (poster.error or "").startswith(f"{failed.code}: ")
    assert "gave up" not in (poster.error or "")
    assert env.run_row().pending == len(env.ALL) - 1


def test_recording_the_same_results_twice_leaves_one_row_each_and_counts_down_once(
        env) -> None:
    fetched = computed(env, env.PNG, Stage.FETCH)
    assert recorded(env, fetched) is not None
    assert recorded(env, fetched) is None
    assert env.statuses()[env.PNG] == Stage.EXTRACT

    extracted = computed(env, env.PNG, Stage.EXTRACT)
    assert recorded(env, extracted) is not None
    assert recorded(env, extracted) is None
    assert env.statuses()[env.PNG] == Stage.FACES
    assert env.rows(FeatureRow) == 1

    counted = computed(env, env.PNG, Stage.FACES)
    assert recorded(env, counted) is not None
    assert recorded(env, counted) is None
    assert env.rows(FaceRow) == 1
    assert env.run_row().pending == len(env.ALL) - 1
    assert env.poster(env.PNG).status == End.DONE


def test_two_workers_computing_the_same_stage_leave_one_row_and_count_down_once(env) -> None:
    at_stage(env, env.PNG, Stage.FACES)
    first, second = computed(env, env.PNG, Stage.FACES), computed(env, env.PNG, Stage.FACES)
    assert recorded(env, first) is not None
    assert recorded(env, second) is None
    assert env.rows(FaceRow) == 1
    assert env.run_row().pending == len(env.ALL) - 1


def transient(pid: int, stage: Stage, attempt: int, retry_after: float | None = None
              ) -> Failed:
    return Failed(pid, stage, attempt, "x-transient: try again later", "x-transient",
                  retryable=True, retry_after=retry_after)


@pytest.mark.parametrize("stage", list(Stage))
def test_retryable_failures_come_back_later_at_the_next_attempt_until_the_budget(
        env, stage: Stage) -> None:
    pid = at_stage(env, env.PNG, stage)
    for attempt in range(1, stage.max_attempts):
        transition = recorded(env, transient(pid, stage, attempt))
        assert transition is not None
        assert (transition.stage, transition.attempt, transition.terminal) == (
            stage, attempt + 1, None)
        assert transition.delay is not None and 0 < transition.delay <= BACKOFF_CAP
        assert env.statuses()[env.PNG] == stage
    last = recorded(env, transient(pid, stage, stage.max_attempts))
    assert last is not None and (last.stage, last.terminal) == (None, End.FAILED)
    poster = env.poster(env.PNG)
    assert poster.status == End.FAILED
    assert poster.error == (f"x-transient: try again later "
                            f"(gave up after {stage.max_attempts} attempts)")
    assert poster.retries == stage.max_attempts - 1
    assert env.run_row().pending == len(env.ALL) - 1


def test_rate_limited_failures_get_the_large_budget(env) -> None:
    pid = at_stage(env, env.PNG, Stage.FACES)
    limited = Failed(pid, Stage.FACES, Stage.FACES.max_attempts, "rate-limited: slow down",
                     "rate-limited", retryable=True, usage=ApiUsage(api_calls=1, rate_limited=1))
    transition = recorded(env, limited)
    assert transition is not None
    assert (transition.stage, transition.attempt) == (Stage.FACES,
                                                      Stage.FACES.max_attempts + 1)
    assert Stage.FACES.max_attempts * 10 < MAX_RATE_LIMITED_ATTEMPTS
    poster = env.poster(env.PNG)
    assert (poster.api_calls, poster.rate_limited, poster.status) == (1, 1, Stage.FACES)
    last = recorded(env, Failed(pid, Stage.FACES, MAX_RATE_LIMITED_ATTEMPTS,
                                "rate-limited: slow down", "rate-limited", retryable=True))
    assert last is not None and last.terminal == End.FAILED
    assert env.poster(env.PNG).error == (
        f"rate-limited: slow down (gave up after {MAX_RATE_LIMITED_ATTEMPTS} attempts)")


def test_a_recorded_retry_waits_as_long_as_retry_after_says_within_the_cap(env) -> None:
    pid = at_stage(env, env.PNG, Stage.FACES)
    soon = recorded(env, transient(pid, Stage.FACES, 1, retry_after=12.5))
    assert soon is not None and soon.delay == 12.5
    late = recorded(env, transient(pid, Stage.FACES, 2, retry_after=86_400.0))
    assert late is not None and late.delay == BACKOFF_CAP


def test_backoff_honours_retry_after_and_caps_it() -> None:
    assert backoff(3, 7.5) == 7.5
    assert backoff(1, 0.0) == 0.0
    assert backoff(1, 10 * BACKOFF_CAP) == BACKOFF_CAP


@pytest.mark.parametrize("retry_after", [None, -1.0])
def test_backoff_without_a_usable_retry_after_doubles_with_jitter_up_to_the_cap(
        retry_after: float | None) -> None:
    rng = random.Random(0)
    for attempt in range(1, 20):
        ceiling = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (attempt - 1))
        assert ceiling / 2 <= backoff(attempt, retry_after, rng=rng) <= ceiling
    assert backoff(0, rng=rng) <= BACKOFF_BASE  # attempts below 1 count as the first
    assert backoff(-1_000_000, rng=rng) <= BACKOFF_BASE
