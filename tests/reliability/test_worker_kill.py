"""``kill -9`` in the middle of a distributed run: of a pool child, of a whole worker.

No poster is lost, none is stored twice, and the final analysis runs once.
"""

from __future__ import annotations

import contextlib
import re
import time
from pathlib import Path

import pytest

from posterlab.testing import env_for, rows, run_cli, sample_manifest

pytestmark = [pytest.mark.slow, pytest.mark.redis]

N = 60


def assert_complete_once(db_url: str, watch, name: str, n: int, logs: list[Path],
                         received_in) -> None:
    run = watch(db_url, name)
    posters = run.posters()
    assert len(posters) == n
    assert len({p["movie_key"] for p in posters}) == n  # one row per movie
    assert run.counts() == {"done": n}
    assert all(p["sha256"] and p["face_count"] is not None for p in posters)
    state = run.run()
    assert (state["total"], state["pending"]) == (n, 0)
    assert state["analysis_state"] == "done" and state["analysis_at"] is not None
    # one feature row per distinct image, one faces row per distinct image
    shas = {p["sha256"] for p in posters}
    assert rows(db_url, "select count(*) as n from features")[0]["n"] == len(shas)
    assert rows(db_url, "select count(*) as n from faces")[0]["n"] == len(shas)
    analyses = received_in(logs, "posterlab.analysis")
    assert len(analyses) == 1, analyses


def test_killed_pool_children_are_replaced_and_their_tasks_redelivered(
        data_dir: Path, pg_url: str, private_broker: str, tmp_path: Path, start_worker, watch,
        kill_child, received_in, status_sweep) -> None:
    manifest = sample_manifest(data_dir, tmp_path / "m", N)
    # each death is charged to the poster its child was computing, and that poster runs
    # again first: three kills seconds apart may land on it twice, which the default
    # budget of two rightly takes for poison. This test is about redelivery, so the budget
    # is more than the kills (the budget itself: tests/reliability/test_poison.py)
    env = env_for(pg_url, tmp_path / "blobs", private_broker, POSTERLAB_STUCK_AFTER="3",
                  POSTERLAB_MAX_CRASHES="4")
    run_cli("db", "upgrade", env=env)
    worker = start_worker("-c", "1", "-n", "children@test", env=env, name="children")
    worker.wait_ready()
    run_cli("enqueue", str(manifest), "--run", "children", env=env)
    run = watch(pg_url, "children")

    killed = []
    for target in (5, 20, 35):
        run.wait(run.done_at_least(target), 60, every=0.05)
        killed.append(kill_child(worker.proc.pid))
    swept = []
    last = [0.0]

    def operator() -> None:  # `posterlab status` now and then, as a person watching
        if time.monotonic() - last[0] > 3:
            swept.append(status_sweep(env)["swept"])
            last[0] = time.monotonic()

    run.wait(run.finished, 120, tick=operator)

    assert_complete_once(pg_url, watch, "children", N, [worker.log], received_in)
    log = worker.log.read_text(errors="replace")
    assert log.count("exited with 'signal 9 (SIGKILL)'") == len(killed), log[-3000:]
    # the task each dead child held came back (task_reject_on_worker_lost) and was run again
    ids = [task_id for _, task_id in received_in([worker.log])]
    redelivered = {task_id for task_id in ids if ids.count(task_id) > 1}
    assert len(redelivered) >= 1, log[-3000:]
    print(f"killed children {killed}; redelivered tasks {len(redelivered)}; swept {swept}")


def test_a_whole_worker_killed_mid_run_is_recovered_by_the_sweeper(
        data_dir: Path, tmp_path: Path, private_broker: str, start_worker, watch, received_in,
        status_sweep, children_of) -> None:
    db_url = f"sqlite:///{tmp_path / 'p.db'}"
    manifest = sample_manifest(data_dir, tmp_path / "m", N)
    env = env_for(db_url, tmp_path / "blobs", private_broker, POSTERLAB_STUCK_AFTER="2")
    run_cli("db", "upgrade", env=env)
    victim = start_worker("-c", "1", "-n", "victim@test", env=env, name="victim")
    other = start_worker("-c", "1", "-n", "other@test", env=env, name="other")
    victim.wait_ready()
    other.wait_ready()
    run_cli("enqueue", str(manifest), "--run", "whole", env=env)
    run = watch(db_url, "whole")

    run.wait(run.done_at_least(10), 60, every=0.05)
    pids = {str(pid) for pid in (victim.proc.pid, *children_of(victim.proc.pid))}

    def victim_holds_a_claim(w) -> bool:
        return any(p["claimed_at"] is not None and p["status"] not in ("done", "failed")
                   and (p["worker"] or "").rsplit(":", 1)[-1] in pids for p in w.posters())

    with contextlib.suppress(AssertionError):  # kill it mid-stage when we can catch it there
        run.wait(victim_holds_a_claim, 10, every=0.01)
    victim.kill()  # SIGKILL to the process group: main process and pool child at once
    held = [p["id"] for p in run.posters() if p["claimed_at"] is not None
            and (p["worker"] or "").rsplit(":", 1)[-1] in pids]
    restarted = start_worker("-c", "1", "-n", "restarted@test", env=env, name="restarted")
    restarted.wait_ready()

    swept: list[int] = []
    last = [0.0]

    def operator() -> None:
        if time.monotonic() - last[0] > 2.5:
            swept.append(status_sweep(env)["swept"])
            last[0] = time.monotonic()

    run.wait(run.finished, 120, tick=operator)
    logs = [victim.log, other.log, restarted.log]
    assert_complete_once(db_url, watch, "whole", N, logs, received_in)
    if held:  # the victim died holding leased claims: a sweep gave them back, by the
        # status runs here or by a living worker's heartbeat once the lease expired
        requeued = sum(int(n) for log in logs[1:] for n in re.findall(
            r"re-queued (\d+) posters whose worker", log.read_text(errors="replace")))
        assert sum(swept) + requeued >= len(held), (held, swept, requeued)
    print(f"victim held {len(held)} claimed posters; swept {swept}")

