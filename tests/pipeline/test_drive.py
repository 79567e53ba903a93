"""The Celery task body, in process: run_batch, and handle over kombu's in-memory transport.

No Redis and no worker: ``handle`` is called directly with a Celery app whose broker is
``memory://`` (messages stay in this process), so what it publishes can be read back.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from celery import Celery
from kombu import Exchange, Queue
from sqlalchemy import select, update

from posterlab.ingest import ingest
from posterlab.pipeline import StageContext, run_batch
from posterlab.stages import ANALYSIS_QUEUE, End, Stage
from posterlab.storage.models import FaceRow, FeatureRow, Poster
from posterlab.workers.celery_app import (
    MAX_ATTEMPT,
    MAX_ID,
    MAX_IDS,
    create_app,
    handle,
    valid_attempt,
    valid_ids,
)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def unreachable(env, tmp_path: Path) -> tuple[StageContext, int]:
    """A stage context that may reach 127.0.0.1, and the id of a poster (in a run of its
    own) whose URL points at a closed local port: its fetch fails, retryably."""
    manifest = tmp_path / "unreachable.csv"
    manifest.write_text("imdbId,Title,IMDB Score,Genre,Poster\n"
                        f"201,Nowhere,6.0,Drama,http://127.0.0.1:{closed_port()}/201.jpg\n")
    ctx = StageContext(env.settings.with_(fetch_allow=("127.0.0.1",)), worker="test")
    run = ingest(env.factory, ctx, manifest, run_name="unreachable", mode="distributed")
    with env.factory() as session:
        pid = session.scalars(select(Poster.id).where(Poster.run_id == run.run_id)).one()
    return ctx, pid


def test_run_batch_takes_posters_from_fetch_through_extract_and_faces_to_done(env) -> None:
    fetched = env.step(Stage.FETCH, *env.IMAGES)
    assert {(t.stage, t.terminal) for t in fetched} == {(Stage.EXTRACT, None)}
    extracted = env.step(Stage.EXTRACT, *env.IMAGES)  # through its own stage only
    assert {(t.stage, t.terminal) for t in extracted} == {(Stage.FACES, None)}
    counted = env.step(Stage.FACES, *env.IMAGES)
    assert {(t.stage, t.terminal) for t in counted} == {(None, End.DONE)}
    for key in env.IMAGES:
        poster = env.poster(key)
        assert (poster.status, poster.face_count, poster.error) == (End.DONE, 0, None)
        assert poster.sha256 and poster.size
    assert env.rows(FeatureRow) == env.rows(FaceRow) == 3


def test_run_batch_through_faces_chains_extract_and_faces_in_one_call(env) -> None:
    env.step(Stage.FETCH, *env.ALL)
    moved = env.step(Stage.EXTRACT, *env.ALL, through=Stage.FACES)
    terminal = {t.poster_id: t.terminal for t in moved}
    assert terminal == dict(zip(env.ids(*env.IMAGES, env.TEXT),
                                [End.DONE] * 4 + [End.FAILED], strict=True))
    assert env.statuses()[env.MISSING] == End.FAILED  # ended at fetch already
    assert env.poster(env.TEXT).error_code == "image-not-an-image"


def test_run_batch_of_posters_past_the_stage_does_nothing(env) -> None:
    env.step(Stage.FETCH, env.PNG)
    assert env.step(Stage.FETCH, env.PNG) == []
    assert env.step(Stage.FACES, env.PNG) == []
    assert env.poster(env.PNG).status == Stage.EXTRACT


def test_run_batch_brings_a_retryable_failure_back_at_the_next_attempt(
        env, unreachable: tuple[StageContext, int]) -> None:
    ctx, pid = unreachable
    (moved,) = run_batch(env.factory, ctx, Stage.FETCH, [pid], attempt=3)
    assert (moved.stage, moved.attempt, moved.terminal) == (Stage.FETCH, 4, None)
    assert moved.delay is not None and moved.delay > 0
    (last,) = run_batch(env.factory, ctx, Stage.FETCH, [pid], attempt=Stage.FETCH.max_attempts)
    assert last.terminal == End.FAILED
    with env.factory() as session:
        poster = session.get_one(Poster, pid)
    assert poster.error_code == "fetch-connection"
    assert poster.error and poster.error.endswith(
        f"(gave up after {Stage.FETCH.max_attempts} attempts)")


def test_valid_ids_drops_strings_bools_negatives_and_ids_out_of_integer_range() -> None:
    message = [1, "2", True, False, -3, 0, MAX_ID + 1, 2**70, MAX_ID, 4.0, None, [5], 6]
    assert valid_ids(message) == [1, MAX_ID, 6]
    assert valid_ids(7) == [7]
    assert valid_ids("7") == valid_ids(None) == valid_ids({"id": 1}) == []


# ---------------------------------------------------------------- handle


def drain(app: Celery, queue: str) -> list[tuple[list[Any], dict[str, Any], bool]]:
    """The (args, kwargs, delayed) of every message waiting in ``queue``, removed."""
    out = []
    with app.connection_for_read() as conn:
        bound = Queue(queue, Exchange(queue, type="direct"), routing_key=queue)(
            conn.default_channel)
        while (message := bound.get(no_ack=True)) is not None:
            args, kwargs, _ = message.decode()
            out.append((args, kwargs, message.headers.get("eta") is not None))
    return out


@pytest.fixture
def app(env, unreachable: tuple[StageContext, int], broker_url: str) -> Iterator[Celery]:
    """An app over a real Redis of this test's own whose process state is this test's
    store (the tasks run in this process; nothing consumes the queues but the test)."""
    settings = env.settings.with_(broker_url=broker_url)
    app = create_app(settings)
    state = app.posterlab_state  # type: ignore[attr-defined]
    ctx = unreachable[0]
    ctx.redis_client = redis.Redis.from_url(broker_url)
    state.settings, state.pid, state.factory, state.ctx = settings, os.getpid(), env.factory, ctx
    with app.connection_for_write() as conn:  # bindings anew: the database was flushed
        for queue in app.amqp.queues.values():
            queue(conn.default_channel).declare()
    yield app
    ctx.redis_client.close()


def test_handle_treats_a_forged_attempt_as_the_first(
        app: Celery, unreachable: tuple[StageContext, int]) -> None:
    _, pid = unreachable
    handle(app, Stage.FETCH, [pid], -1_000_000)
    assert drain(app, Stage.FETCH.queue) == [([[pid]], {"attempt": 2}, True)]


def test_handle_works_only_the_well_formed_ids_of_a_message(env, app: Celery) -> None:
    png, jpeg = env.ids(env.PNG, env.JPEG)
    handle(app, Stage.FETCH, ["1", True, -png, MAX_ID + png, png], 1)
    assert drain(app, Stage.EXTRACT.queue) == [([[png]], {"attempt": 1}, False)]
    assert env.statuses()[env.PNG] == Stage.EXTRACT
    assert env.poster(env.JPEG).attempts == 0
    handle(app, Stage.FETCH, "not a list", 1)
    handle(app, Stage.FETCH, jpeg, 1)  # a bare id is a list of one
    assert drain(app, Stage.EXTRACT.queue) == [([[jpeg]], {"attempt": 1}, False)]


def test_handle_publishes_each_next_stage_and_the_run_analysis_once(env, app: Celery) -> None:
    handle(app, Stage.FETCH, env.ids(*env.ALL), 1)
    messages = drain(app, Stage.EXTRACT.queue)
    assert sorted(pid for (ids,), _, _ in messages for pid in ids) == sorted(
        env.ids(*env.IMAGES, env.TEXT))
    for (ids,), kwargs, _ in messages:
        handle(app, Stage.EXTRACT, ids, kwargs["attempt"])
    assert drain(app, Stage.FACES.queue) == []  # local faces run in the extract task
    assert drain(app, ANALYSIS_QUEUE) == [([env.run.run_id], {}, False)]
    assert set(env.statuses().values()) == {End.DONE, End.FAILED}
    handle(app, Stage.EXTRACT, env.ids(*env.ALL), 1)  # redelivered: nothing more
    assert drain(app, ANALYSIS_QUEUE) == []


def test_valid_attempt_clamps_to_the_budgets_and_refuses_what_is_not_a_number() -> None:
    assert [valid_attempt(v) for v in (-1_000_000, 0, 1, 7, MAX_ATTEMPT, 10**12)] == [
        1, 1, 1, 7, MAX_ATTEMPT, MAX_ATTEMPT]
    assert valid_attempt("3") == valid_attempt(True) == valid_attempt(None) == 1


def test_valid_ids_takes_at_most_max_ids_and_stays_in_the_integer_column_range() -> None:
    assert MAX_ID == 2**31 - 1
    assert valid_ids(list(range(1, MAX_IDS + 500))) == list(range(1, MAX_IDS + 1))


def test_handle_clamps_a_huge_attempt_to_the_last_one(
        app: Celery, unreachable: tuple[StageContext, int]) -> None:
    _, pid = unreachable
    handle(app, Stage.FETCH, [pid], 10**9)  # the last attempt: the transient error is final
    assert drain(app, Stage.FETCH.queue) == []
    with app.posterlab_state.factory() as s:  # type: ignore[attr-defined]
        poster = s.get_one(Poster, pid)
    assert poster.status == End.FAILED and "gave up after" in (poster.error or "")


# PostgreSQL only: SQLite integers do not overflow, PostgreSQL's DataError is the case
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_a_row_the_database_refuses_fails_its_poster_with_the_reason_not_an_outage(
        env, app: Celery, db_url: str) -> None:
    assert db_url.startswith("postgresql")
    png, jpeg = env.ids(env.PNG, env.JPEG)
    with env.factory() as session, session.begin():  # a corrupted counter: +1 overflows
        session.execute(update(Poster).where(Poster.id == png).values(attempts=MAX_ID))
    handle(app, Stage.FETCH, [png, jpeg], 1)
    statuses = env.statuses()
    assert statuses[env.JPEG] == Stage.EXTRACT  # the batch's other poster went on
    refused = env.poster(env.PNG)
    assert (refused.status, refused.error_code) == (End.FAILED, "database-refused")
    assert "out of range" in (refused.error or "")
    assert drain(app, Stage.FETCH.queue) == []  # not re-published as an outage
