"""The broker or the database goes away for a few seconds in the middle of a distributed run:
workers and the producer reconnect, tasks retry, nothing is lost."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from posterlab.testing import env_for, posterlab_cmd, run_cli, sample_manifest

pytestmark = [pytest.mark.slow, pytest.mark.redis]

N = 40


def _operator(env, status_sweep, run: str, every: float = 2.5):
    """`posterlab status` now and then (it sweeps), as a person watching the run would."""
    last = [0.0]
    swept: list[int] = []

    def tick() -> None:
        if time.monotonic() - last[0] > every:
            try:
                swept.append(status_sweep(env, "--run", run)["swept"])
            except AssertionError:  # status itself may fail while a server is down
                swept.append(-1)
            last[0] = time.monotonic()

    return tick, swept


def _all_done_once(db_url: str, watch, name: str, n: int) -> None:
    run = watch(db_url, name)
    posters = run.posters()
    assert len(posters) == n and len({p["movie_key"] for p in posters}) == n
    assert run.counts() == {"done": n}, [(p["id"], p["status"], p["error"]) for p in posters
                                         if p["status"] != "done"]
    state = run.run()
    assert (state["pending"], state["analysis_state"]) == (0, "done")


@pytest.mark.exclusive  # posters stuck after 2 s are swept: a busy CPU looks like that
def test_redis_restarted_mid_run(data_dir: Path, tmp_path: Path, own_redis, start_worker, watch,
                                 status_sweep, received_in) -> None:
    redis_server = own_redis()
    db_url = f"sqlite:///{tmp_path / 'p.db'}"
    env = env_for(db_url, tmp_path / "blobs", redis_server.url(), POSTERLAB_STUCK_AFTER="2")
    manifest = sample_manifest(data_dir, tmp_path / "m", N)
    run_cli("db", "upgrade", env=env)
    worker = start_worker("-c", "1", "-n", "redis-restart@test", env=env, name="rr")
    worker.wait_ready()
    run_cli("enqueue", str(manifest), "--run", "first", env=env)
    run = watch(db_url, "first")
    run.wait(run.done_at_least(10), 60, every=0.05)

    redis_server.kill()  # SIGKILL: only what the append-only file holds survives
    time.sleep(2)
    redis_server.start()

    tick, swept = _operator(env, status_sweep, "first")
    try:
        run.wait(run.finished, 45, tick=tick)
    except AssertionError as exc:
        client = redis_server.client()
        held = {k.decode(): json.loads(v)[0]["headers"]["argsrepr"]
                for k, v in client.hgetall("unacked").items()}
        raise AssertionError(f"{exc}; swept {swept}; messages left unacknowledged in Redis "
                             f"(task args): {held}") from None
    _all_done_once(db_url, watch, "first", N)
    assert worker.proc.poll() is None  # the same worker process throughout
    log = worker.log.read_text(errors="replace")
    assert log.count("Connected to redis") >= 2, log[-3000:]
    assert len(received_in([worker.log], "posterlab.analysis")) == 1
    print(f"swept {swept}")


@pytest.mark.exclusive  # posters stuck after 2 s are swept: a busy CPU looks like that
def test_enqueue_started_while_redis_is_down_for_seconds(
        data_dir: Path, tmp_path: Path, own_redis, start_worker, watch, status_sweep) -> None:
    redis_server = own_redis()
    db_url = f"sqlite:///{tmp_path / 'p.db'}"
    env = env_for(db_url, tmp_path / "blobs", redis_server.url(), POSTERLAB_STUCK_AFTER="2")
    manifest = sample_manifest(data_dir, tmp_path / "m", 10)
    run_cli("db", "upgrade", env=env)
    redis_server.kill()
    producer_log = tmp_path / "producer.log"
    with open(producer_log, "wb") as out:
        # --skip-checks: the check of the broker would refuse to start while it is down
        producer = subprocess.Popen(posterlab_cmd("enqueue", str(manifest), "--run", "late",
                                                  "--skip-checks"),
                                    env=env, stdout=out, stderr=subprocess.STDOUT)
        time.sleep(3)
        redis_server.start()
        code = producer.wait(120)
    produced = producer_log.read_text(errors="replace")
    worker = start_worker("-c", "1", "-n", "late@test", env=env, name="late")
    worker.wait_ready()
    run = watch(db_url, "late")
    tick, swept = _operator(env, status_sweep, "late")
    run.wait(run.finished, 60, tick=tick)  # with the sweeper's help if need be
    _all_done_once(db_url, watch, "late", 10)
    # the producer itself rode out the outage: no traceback, success, nothing left to sweep
    assert "Traceback" not in produced, produced[-1500:]
    assert code == 0, produced[-1500:]
    assert sum(swept) == 0, swept


def test_sqlite_locked_by_another_writer_for_seconds(
        data_dir: Path, tmp_path: Path, private_broker: str, start_worker, watch) -> None:
    db_path = tmp_path / "p.db"
    db_url = f"sqlite:///{db_path}"
    env = env_for(db_url, tmp_path / "blobs", private_broker)
    manifest = sample_manifest(data_dir, tmp_path / "m", N)
    run_cli("db", "upgrade", env=env)
    worker = start_worker("-c", "1", "-n", "sqlite-lock@test", env=env, name="lock")
    worker.wait_ready()
    run_cli("enqueue", str(manifest), "--run", "locked", env=env)
    run = watch(db_url, "locked")
    run.wait(run.done_at_least(8), 60, every=0.05)

    conn = sqlite3.connect(db_path, isolation_level=None, timeout=30)
    conn.execute("BEGIN EXCLUSIVE")
    conn.execute("UPDATE runs SET name = name")
    held_at = len(_done(db_path))
    time.sleep(4)
    during = len(_done(db_path, conn))
    conn.execute("COMMIT")
    conn.close()
    assert during == held_at  # nobody wrote while the lock was held

    run.wait(run.finished, 120)
    _all_done_once(db_url, watch, "locked", N)


def _done(db_path: Path, conn: sqlite3.Connection | None = None) -> list[int]:
    own = conn is None
    conn = conn or sqlite3.connect(db_path, timeout=30)
    try:
        return [r[0] for r in conn.execute("select id from posters where status = 'done'")]
    finally:
        if own:
            conn.close()


@pytest.mark.postgres
@pytest.mark.exclusive  # posters stuck after 3 s are swept: a busy CPU looks like that
def test_postgres_table_locked_then_worker_connections_killed(
        data_dir: Path, tmp_path: Path, private_broker: str, pg_url: str, start_worker, watch,
        status_sweep) -> None:
    app_name = f"posterlab-rel-{uuid.uuid4().hex[:8]}"
    db_url = f"{pg_url}&application_name={app_name}"
    env = env_for(db_url, tmp_path / "blobs", private_broker, POSTERLAB_STUCK_AFTER="3")
    manifest = sample_manifest(data_dir, tmp_path / "m", N)
    run_cli("db", "upgrade", env=env)
    worker = start_worker("-c", "1", "-n", "pg-faults@test", env=env, name="pg")
    worker.wait_ready()
    run_cli("enqueue", str(manifest), "--run", "pg", env=env)
    run = watch(db_url, "pg")
    run.wait(run.done_at_least(8), 60, every=0.05)

    engine = sa.create_engine(pg_url)
    try:
        with engine.connect() as conn:  # 1) the table is locked for 4 seconds
            trans = conn.begin()
            conn.execute(sa.text("SET LOCAL lock_timeout = '10s'"))
            conn.execute(sa.text("LOCK TABLE posters IN ACCESS EXCLUSIVE MODE"))
            time.sleep(4)
            trans.rollback()
        run.wait(run.done_at_least(20), 60, every=0.05)
        with engine.connect() as conn:  # 2) every connection of the workers is cut
            killed = conn.execute(sa.text(
                "select pg_terminate_backend(pid) from pg_stat_activity "
                "where application_name = :a and pid <> pg_backend_pid()"),
                {"a": app_name}).all()
            conn.commit()
    finally:
        engine.dispose()
    assert len(killed) >= 1

    tick, swept = _operator(env, status_sweep, "pg")
    run.wait(run.finished, 120, tick=tick)
    _all_done_once(db_url, watch, "pg", N)
    assert worker.proc.poll() is None
    print(f"terminated {len(killed)} backends; swept {swept}; retries logged "
          f"{worker.log.read_text(errors='replace').count('retrying')}")

