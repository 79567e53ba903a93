"""The sweeper (``posterlab status``) re-queues work stuck in a non-terminal state past
POSTERLAB_STUCK_AFTER, and leaves alone work that is merely waiting its turn."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from posterlab.storage.engine import make_engine
from posterlab.testing import env_for, run_cli, sample_manifest

pytestmark = [pytest.mark.slow, pytest.mark.redis]


def _sql(db_url: str, sql: str, **params) -> None:
    engine = make_engine(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(sql), params)
    finally:
        engine.dispose()


def queued_ids(client, queue: str) -> list[list[int]]:
    """The poster ids of each message waiting in ``queue`` (kombu's Redis layout: a list
    of JSON envelopes whose base64 body is Celery's [args, kwargs, embed])."""
    out = []
    for raw in client.lrange(queue, 0, -1):
        body = json.loads(base64.b64decode(json.loads(raw)["body"]))
        out.append(sorted(body[0][0]))
    return out


def _age_everything(db_url: str, claimed_ids: list[int]) -> None:
    """An hour ago: every poster last touched; some claimed by a worker that then died."""
    _sql(db_url, "update posters set updated_at = datetime('now', '-1 hour')")
    for pid in claimed_ids:
        _sql(db_url, "update posters set claimed_at = datetime('now', '-1 hour'), "
                     "attempts = 1, worker = 'dead:1' where id = :id", id=pid)


def test_stuck_posters_are_requeued_and_waiting_ones_are_not(
        data_dir: Path, tmp_path: Path, own_redis, start_worker, watch, status_sweep,
        received_in) -> None:
    redis_server = own_redis()
    db_url = f"sqlite:///{tmp_path / 'p.db'}"
    env = env_for(db_url, tmp_path / "blobs", redis_server.url(), POSTERLAB_STUCK_AFTER="60")
    manifest = sample_manifest(data_dir, tmp_path / "m", 20)
    run_cli("db", "upgrade", env=env)
    run_cli("enqueue", str(manifest), "--run", "stuck", env=env)  # no worker yet
    _age_everything(db_url, claimed_ids=[1, 2, 3])

    # the fetch message still waits in the queue: only the 3 abandoned claims are re-queued
    first = status_sweep(env, "--run", "stuck")
    assert first["swept"] == 3, first
    client = redis_server.client()
    # the enqueued message with all 20, and one more with exactly the 3 abandoned ones
    assert sorted(queued_ids(client, "fetch"), key=len) == [[1, 2, 3], list(range(1, 21))]
    # nothing is stuck any more (the claims were released just now): a second look sweeps 0
    assert status_sweep(env, "--run", "stuck")["swept"] == 0

    # now every message is lost (a broker that lost its data); the posters are old
    client.delete("fetch")
    _age_everything(db_url, claimed_ids=[4])
    second = status_sweep(env, "--run", "stuck")
    assert second["swept"] == 20, second

    worker = start_worker("-c", "1", "-n", "sweeper@test", env=env, name="sweeper")
    worker.wait_ready()
    run = watch(db_url, "stuck")
    run.wait(run.finished, 90)
    assert run.counts() == {"done": 20}
    posters = run.posters()
    assert len({p["movie_key"] for p in posters}) == 20
    assert run.run()["analysis_state"] == "done"
    assert len(received_in([worker.log], "posterlab.analysis")) == 1


def test_posters_behind_a_message_held_by_a_vanished_consumer_are_requeued(
        data_dir: Path, tmp_path: Path, own_redis, start_worker, watch, status_sweep) -> None:
    """A consumer that lost its broker connection (or died) leaves its delivered message in
    Redis's ``unacked`` hash until the visibility timeout (2 h by default). The poster
    behind it was never claimed. Seen for real when Redis restarts mid-run."""
    redis_server = own_redis()
    db_url = f"sqlite:///{tmp_path / 'p.db'}"
    env = env_for(db_url, tmp_path / "blobs", redis_server.url(), POSTERLAB_STUCK_AFTER="60")
    manifest = sample_manifest(data_dir, tmp_path / "m", 10)
    run_cli("db", "upgrade", env=env)
    run_cli("enqueue", str(manifest), "--run", "held", env=env)
    client = redis_server.client()
    # deliver the one fetch message the way kombu does, to a consumer that then vanishes
    payload = client.rpop("fetch")
    assert payload is not None
    import json

    message = json.loads(payload)
    tag = message["properties"]["delivery_tag"]
    client.hset("unacked", tag, json.dumps([message, "fetch", "fetch"]))
    client.zadd("unacked_index", {tag: time.time() - 3600})
    _age_everything(db_url, claimed_ids=[])

    swept = status_sweep(env, "--run", "held")["swept"]
    assert swept == 10, (f"swept {swept}: posters unclaimed for an hour behind a message "
                         "unacknowledged for an hour were not re-queued")
    worker = start_worker("-c", "1", "-n", "held@test", env=env, name="held")
    worker.wait_ready()
    run = watch(db_url, "held")
    run.wait(run.finished, 60)
    assert run.counts() == {"done": 10}


def test_a_lost_analysis_message_is_requeued(
        data_dir: Path, tmp_path: Path, own_redis, start_worker, watch, status_sweep) -> None:
    """The last poster ended (pending 0, analysis 'queued') but the worker died, or the
    broker was down, before the analysis message was published."""
    redis_server = own_redis()
    db_url = f"sqlite:///{tmp_path / 'p.db'}"
    env = env_for(db_url, tmp_path / "blobs", redis_server.url(), POSTERLAB_STUCK_AFTER="2")
    manifest = sample_manifest(data_dir, tmp_path / "m", 10)
    run_cli("db", "upgrade", env=env)
    worker = start_worker("-c", "1", "-n", "analysis@test", env=env, name="analysis",)
    worker.wait_ready()
    run_cli("enqueue", str(manifest), "--run", "lost", env=env)
    run = watch(db_url, "lost")
    run.wait(run.finished, 60)
    # as if the analysis message had never been published
    _sql(db_url, "update runs set analysis_state = 'queued', analysis = null, "
                 "analysis_at = null, finished_at = datetime('now', '-1 hour')")
    time.sleep(2.5)
    status = status_sweep(env, "--run", "lost")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and run.run()["analysis_state"] != "done":
        time.sleep(0.5)
    assert run.run()["analysis_state"] == "done", (
        f"analysis still {run.run()['analysis_state']!r} 10 s after `posterlab status` "
        f"(swept {status['swept']}); nothing re-queues a run's lost analysis")
