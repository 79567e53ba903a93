"""Bounded queues, in process: :class:`~posterlab.workers.queues.Backlog` against a real
Redis of the test's own and real SQLite and PostgreSQL (no worker consumes the queues:
the test drains them itself)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from celery import Celery
from kombu import Exchange, Queue

from posterlab.ingest import ingest
from posterlab.pipeline import StageContext
from posterlab.stages import Stage
from posterlab.storage import backlog
from posterlab.storage.engine import transaction
from posterlab.workers.celery_app import create_app
from posterlab.workers.queues import Backlog, queue_depth

pytestmark = pytest.mark.redis

POSTERS = 600


@pytest.fixture
def big_run(env, tmp_path: Path) -> list[int]:
    """The poster ids of a distributed run of 600 URL rows (never fetched here)."""
    manifest = tmp_path / "urls.csv"
    lines = ["imdbId,Title,IMDB Score,Genre,Poster"]
    lines += [f"{1000 + i},Movie {i},6.0,Drama,http://example.invalid/{i}.jpg"
              for i in range(POSTERS)]
    manifest.write_text("\n".join(lines) + "\n")
    ingest(env.factory, StageContext(env.settings), manifest, run_name="big",
           mode="distributed")
    with env.factory() as session:
        from posterlab.storage.posters import pending_poster_ids

        ids = pending_poster_ids(session, _run_id(env, "big"))
    assert len(ids) == POSTERS
    return ids


def _run_id(env: Any, name: str) -> int:
    from posterlab.storage.runs import find_run

    with env.factory() as session:
        return find_run(session, name).id


@pytest.fixture
def app(env, broker_url: str) -> Iterator[tuple[Celery, redis.Redis]]:
    app = create_app(env.settings.with_(broker_url=broker_url))
    client = redis.Redis.from_url(broker_url)
    with app.connection_for_write() as conn:  # bindings anew: the database was flushed
        for queue in app.amqp.queues.values():
            queue(conn.default_channel).declare()
    yield app, client
    client.close()


def drain(app: Celery, stage: Stage) -> list[int]:
    """The poster ids of every message waiting in ``stage``'s queue, removed."""
    out: list[int] = []
    with app.connection_for_read() as conn:
        bound = Queue(stage.queue, Exchange(stage.queue, type="direct"),
                      routing_key=stage.queue)(conn.default_channel)
        while (message := bound.get(no_ack=True)) is not None:
            (ids,), _, _ = message.decode()
            out.extend(ids)
    return out


def test_send_publishes_what_fits_and_defers_the_rest_until_the_queue_drains(
        env, app: tuple[Celery, redis.Redis], big_run: list[int]) -> None:
    celery, client = app
    queues = Backlog(celery, env.factory, client, max_queued=1)
    size = Stage.FETCH.ids_per_message

    assert queues.send(Stage.FETCH, big_run) == 1
    assert queue_depth(client, Stage.FETCH) == 1
    with env.factory() as session:
        assert backlog.deferred_count(session) == POSTERS - size
    assert queues.top_up(Stage.FETCH) == 0  # still full: nothing more goes in

    published = drain(celery, Stage.FETCH)
    assert published == big_run[:size]
    while queues.top_up(Stage.FETCH):
        assert queue_depth(client, Stage.FETCH) == 1
        published += drain(celery, Stage.FETCH)
    assert published == big_run  # every poster once, in id order, none lost
    with env.factory() as session:
        assert backlog.deferred_count(session) == 0


def test_concurrent_top_ups_never_overfill_a_queue_nor_publish_a_poster_twice(
        env, app: tuple[Celery, redis.Redis], big_run: list[int]) -> None:
    celery, client = app
    with transaction(env.factory) as session:
        backlog.defer(session, big_run)
    bound = 2
    errors: list[BaseException] = []
    depths: list[int] = []

    def top_up() -> None:
        own = redis.Redis(connection_pool=client.connection_pool)
        try:
            Backlog(celery, env.factory, own, max_queued=bound).top_up(Stage.FETCH)
            depths.append(queue_depth(client, Stage.FETCH))
        except BaseException as exc:
            errors.append(exc)

    published: list[int] = []
    for _ in range(3):  # rounds of four publishers racing for the same room
        threads = [threading.Thread(target=top_up) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        assert max(depths) <= bound
        published += drain(celery, Stage.FETCH)
    assert sorted(published) == published == big_run[:len(published)]
    assert len(set(published)) == len(published) == min(POSTERS, 3 * bound * 256)


def test_deferred_posters_are_not_taken_for_lost_messages(
        env, big_run: list[int]) -> None:
    from datetime import timedelta

    from posterlab.storage.claims import stuck_posters

    run_id = _run_id(env, "big")
    with transaction(env.factory) as session:
        backlog.defer(session, big_run[:10])
    with env.factory() as session:
        lost = stuck_posters(session, run_id, timedelta(seconds=0), include_unclaimed=True,
                             unclaimed_for=timedelta(seconds=-60))
    assert {pid for pid, _ in lost} == set(big_run[10:])


def test_a_poster_a_process_died_on_goes_ahead_of_the_waiting_messages_alone(
        env, app: tuple[Celery, redis.Redis], big_run: list[int]) -> None:
    """Suspects are decided while the run goes on, not in a tail behind the backlog."""
    from posterlab.pipeline import Transition

    celery, client = app
    queues = Backlog(celery, env.factory, client, max_queued=1000)
    size = Stage.FETCH.ids_per_message
    waiting = big_run[:3 * size]
    assert queues.send(Stage.FETCH, waiting) == 3
    suspects = big_run[-3:]
    queues.follow([Transition(pid, 1, Stage.FETCH, 2, alone=True) for pid in suspects])
    assert queue_depth(client, Stage.FETCH) == 6

    with celery.connection_for_read() as conn:
        bound = Queue(Stage.FETCH.queue, Exchange(Stage.FETCH.queue, type="direct"),
                      routing_key=Stage.FETCH.queue)(conn.default_channel)
        messages = []
        while (message := bound.get(no_ack=True)) is not None:
            (ids,), kwargs, _ = message.decode()
            messages.append((ids, kwargs["attempt"]))
    # first the suspects, each alone, in the order they were sent; then the backlog
    assert messages[:3] == [([pid], 2) for pid in suspects]
    assert [pid for ids, _ in messages[3:] for pid in ids] == waiting
