"""Deliveries counted at each claim, the crash budget, and leases: in process, on the real
database (SQLite and PostgreSQL). The same rules under real killed processes are in
tests/reliability/test_poison.py."""

from __future__ import annotations

import socket
import subprocess
import sys
from dataclasses import replace
from datetime import timedelta

from sqlalchemy import update

from posterlab.pipeline import StageContext, claim_and_plan
from posterlab.pipeline.claim import WORKER_CRASHED, holder_is_gone
from posterlab.stages import End, Stage
from posterlab.storage import claims
from posterlab.storage.engine import transaction
from posterlab.storage.models import Poster, Run, utcnow


def _plan(env, ctx: StageContext, *keys: str):
    with transaction(env.factory) as session:
        return claim_and_plan(session, ctx, Stage.FETCH, env.ids(*keys))


def test_a_poster_delivered_max_crashes_times_without_a_result_fails_worker_crashed(env) -> None:
    assert env.settings.max_crashes == 2
    for delivery in (1, 2):  # two processes took it and died before recording anything
        assert len(_plan(env, env.ctx, env.PNG).jobs) == 1
        assert env.poster(env.PNG).deliveries == delivery
    (moved,) = _plan(env, env.ctx, env.PNG).moved
    assert moved.terminal == End.FAILED
    poster = env.poster(env.PNG)
    assert (poster.status, poster.error_code) == ("failed", WORKER_CRASHED)
    assert "died 2 times" in (poster.error or "") and "POSTERLAB_MAX_CRASHES" in poster.error


def test_a_recorded_result_resets_the_count(env) -> None:
    _plan(env, env.ctx, env.PNG)  # one delivery died
    env.step(Stage.FETCH, env.PNG)  # the next recorded its result
    poster = env.poster(env.PNG)
    assert (poster.status, poster.deliveries, poster.claimed_at) == ("extract", 0, None)


def test_in_a_batch_a_poster_a_process_died_on_is_sent_alone(env) -> None:
    _plan(env, env.ctx, env.PNG)  # died holding PNG
    planned = _plan(env, env.ctx, env.PNG, env.JPEG)
    assert [job.poster_id for job in planned.jobs] == env.ids(env.JPEG)
    (alone,) = planned.moved
    assert (alone.poster_id, alone.stage, alone.alone) == (env.ids(env.PNG)[0], Stage.FETCH, True)
    assert env.poster(env.PNG).deliveries == 1  # not counted: not delivered
    assert len(_plan(env, env.ctx, env.PNG).jobs) == 1  # alone, it is taken
    assert env.poster(env.PNG).deliveries == 2


def test_a_live_lease_is_kept_from_other_workers_until_it_expires_and_is_swept(env) -> None:
    (pid,) = env.ids(env.PNG)
    one = replace(env.ctx, worker="host-a:1", leased=True)
    two = replace(env.ctx, worker="host-b:2", leased=True)
    assert len(_plan(env, one, env.PNG).jobs) == 1
    lease = env.poster(env.PNG).lease_expires_at
    held = env.ctx.settings.lease_seconds  # the default lease
    assert lease is not None and lease > utcnow() + timedelta(seconds=held - 5)
    assert _plan(env, two, env.PNG).jobs == []  # held: no duplicate work
    with transaction(env.factory) as session:
        assert claims.renew_leases(session, "host-b:2", utcnow()) == 0  # not its lease
        assert claims.expire_leases(session) == []  # nothing expired yet
        session.execute(update(Poster).where(Poster.id == pid)
                        .values(lease_expires_at=utcnow() - timedelta(seconds=1)))
    with transaction(env.factory) as session:  # host-a stopped renewing: it died
        assert claims.expire_leases(session) == [(pid, "fetch")]
        assert claims.expire_leases(session) == []  # taken back once, by one sweeper
    assert env.poster(env.PNG).deliveries == 0  # a whole worker died: not charged
    assert len(_plan(env, two, env.PNG).jobs) == 1


def test_a_lease_held_by_a_dead_process_of_this_host_is_taken_over_at_once(env) -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # its pid now names no process
    dead = f"{socket.gethostname()}:{child.pid}"
    assert holder_is_gone(dead) and not holder_is_gone(f"elsewhere:{child.pid}")
    assert _plan(env, replace(env.ctx, worker=dead, leased=True), env.PNG).jobs
    mine = replace(env.ctx, worker=f"{socket.gethostname()}:1", leased=True)  # pid 1 lives
    assert len(_plan(env, mine, env.PNG).jobs) == 1
    assert env.poster(env.PNG).worker == mine.worker


def test_a_retry_waits_under_a_lease_nobody_holds_and_is_claimable(env) -> None:
    ctx = replace(env.ctx, worker="host-a:1", leased=True)
    (pid,) = env.ids(env.PNG)
    with transaction(env.factory) as session:
        claims.settle(session, pid, until=ctx.lease_until(30.0))
    poster = env.poster(env.PNG)
    held = timedelta(seconds=30 + ctx.settings.lease_seconds - 5)  # the wait, then a lease
    assert poster.worker is None and poster.lease_expires_at > utcnow() + held
    assert len(_plan(env, ctx, env.PNG).jobs) == 1  # its message came: claimed at once


def test_posters_of_distributed_runs_waiting_unclaimed_too_long_are_found_lost_once(env) -> None:
    (pid,) = env.ids(env.PNG)
    with transaction(env.factory) as session:
        assert claims.lost_posters(session, timedelta(0)) == []  # an embedded run: never
        session.execute(update(Run).values(mode="distributed"))
        session.execute(update(Poster).where(Poster.id != pid).values(status="done"))
    with transaction(env.factory) as session:
        assert claims.lost_posters(session, timedelta(seconds=60)) == []  # not long enough
        assert claims.lost_posters(session, timedelta(0)) == [(pid, "fetch")]
        assert claims.lost_posters(session, timedelta(seconds=1)) == []  # touched: once


def test_the_claims_of_a_pool_process_recorded_dead_come_back_at_once_still_counted(
        env, broker_url: str) -> None:
    """A child that died while its worker lived: its poster is charged, whatever the lease."""
    import redis

    from posterlab.workers.deaths import mark_working, recently_died, record_death

    (png,) = env.ids(env.PNG)
    died = replace(env.ctx, worker="host-a:41", leased=True)
    assert len(_plan(env, died, env.PNG).jobs) == 1
    client = redis.Redis.from_url(broker_url)
    try:
        mark_working(client, "host-a:41", png)
        assert record_death(client, "host-a:41").computing == png
        record_death(client, "host-a:7", now=0.0)  # an hour and more ago: forgotten
        dead = recently_died(client)
    finally:
        client.close()
    assert set(dead) == {"host-a:41"} and dead["host-a:41"].at <= utcnow()
    assert dead["host-a:41"].computing == png
    # the same pid, a process started after the death: its claim is its own
    reused = replace(env.ctx, worker="host-a:41", leased=True)
    later = {"host-a:41": utcnow() - timedelta(seconds=60)}
    assert len(_plan(env, reused, env.JPEG).jobs) == 1
    with transaction(env.factory) as session:
        session.execute(update(Poster).where(Poster.id == png)
                        .values(claimed_at=utcnow() - timedelta(seconds=120)))
    with transaction(env.factory) as session:
        assert claims.release_dead(session, later) == [(png, "fetch")]  # the lease is live
        assert claims.release_dead(session, later) == []  # taken back once
        assert claims.expire_leases(session) == []
    assert env.poster(env.PNG).deliveries == 1  # charged: it died on this poster
    assert env.poster(env.JPEG).lease_expires_at is not None  # the living one keeps its own
    assert len(_plan(env, env.ctx, env.PNG).jobs) == 1  # alone, taken again at once
    assert env.poster(env.PNG).deliveries == 2


def test_of_a_dead_process_s_batch_only_the_poster_it_was_computing_is_charged(env) -> None:
    (png,), (jpeg,) = env.ids(env.PNG), env.ids(env.JPEG)
    died = replace(env.ctx, worker="host-a:42", leased=True)
    assert len(_plan(env, died, env.PNG, env.JPEG).jobs) == 2  # one batch, one process
    at = {"host-a:42": utcnow()}
    with transaction(env.factory) as session:
        taken = claims.release_dead(session, at, computing={"host-a:42": jpeg})
    assert taken == sorted([(png, "fetch"), (jpeg, "fetch")])
    assert (env.poster(env.PNG).deliveries, env.poster(env.JPEG).deliveries) == (0, 1)
    # with nothing known of what it computed, the whole batch stays charged
    assert len(_plan(env, died, env.PNG).jobs) == 1
    with transaction(env.factory) as session:
        assert claims.release_dead(session, {"host-a:42": utcnow()}) == [(png, "fetch")]
    assert env.poster(env.PNG).deliveries == 1


def test_a_batch_names_each_poster_before_computing_it(env) -> None:
    from posterlab.pipeline import run_batch

    said: list[int | None] = []
    ctx = replace(env.ctx, working_on=said.append)
    run_batch(env.factory, ctx, Stage.FETCH, env.ids(env.PNG, env.JPEG))
    run_batch(env.factory, ctx, Stage.EXTRACT, env.ids(env.PNG, env.JPEG))
    assert said == [*env.ids(env.PNG), *env.ids(env.JPEG), None]  # downloads name none
