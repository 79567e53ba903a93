"""Fixtures of the fault tests: Redis servers of the test's own, runs followed in the database,
pool children found in /proc, worker logs read back."""

from __future__ import annotations

import json
import os
import re
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from posterlab.testing import (
    RedisServer,
    children_of,
    free_port,
    pool_children,
    redis_server_installed,
    rows,
    run_cli,
)

from support import unavailable


@pytest.fixture
def any_port() -> Callable[[], int]:
    return free_port


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[Callable[..., RedisServer]]:
    """Start Redis servers of this test's own (``own_redis(password=...)``)."""
    if not redis_server_installed():
        unavailable("redis-server", "not installed")
    servers: list[RedisServer] = []

    def start(password: str | None = None) -> RedisServer:
        server = RedisServer(tmp_path / f"redis-{len(servers)}", password)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def private_broker(own_redis) -> str:
    """A broker URL on a Redis of this test's own.

    Not the shared server's numbered databases: concurrent test sessions on one machine
    pick those by pid and flush them, and their workers would consume this test's messages.
    """
    return own_redis().url()


class RunWatch:
    """Reads a run's state straight from the database."""

    def __init__(self, db_url: str, name: str) -> None:
        self.db_url = db_url
        self.name = name

    def run(self) -> dict[str, Any]:
        found = rows(self.db_url, "select * from runs where name = :n", n=self.name)
        return found[0] if found else {}

    def counts(self) -> dict[str, int]:
        got = rows(self.db_url, "select p.status, count(*) as n from posters p join runs r "
                                "on r.id = p.run_id where r.name = :n group by p.status",
                   n=self.name)
        return {r["status"]: int(r["n"]) for r in got}

    def posters(self) -> list[dict[str, Any]]:
        return rows(self.db_url, "select p.* from posters p join runs r on r.id = p.run_id "
                                 "where r.name = :n order by p.id", n=self.name)

    def wait(self, until: Callable[[RunWatch], bool], timeout: float,
             tick: Callable[[], None] | None = None, every: float = 0.5) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if tick is not None:
                tick()
            if until(self):
                return
            time.sleep(every)
        raise AssertionError(f"run {self.name} did not get there in {timeout}s: "
                             f"counts {self.counts()}, run {_short(self.run())}")

    def done_at_least(self, n: int) -> Callable[[RunWatch], bool]:
        return lambda w: w.counts().get("done", 0) >= n

    @staticmethod
    def finished(w: RunWatch) -> bool:
        run = w.run()
        return bool(run) and run["pending"] == 0 and run["analysis_state"] in ("done", "failed")


def _short(run: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in run.items() if k not in ("analysis", "settings")}


@pytest.fixture
def watch() -> Callable[[str, str], RunWatch]:
    return RunWatch


@pytest.fixture
def status_sweep() -> Callable[..., dict[str, Any]]:
    """``posterlab status --json`` (which sweeps), as an operator runs it; returns its JSON."""

    def status(env: dict[str, str], *extra: str) -> dict[str, Any]:
        out = run_cli("status", "--json", *extra, env=env, timeout=60)
        return dict(json.loads(out.stdout))

    return status


@pytest.fixture(name="children_of")
def children_of_fixture() -> Callable[[int], list[int]]:
    """Child pids of a pid (Celery's prefork pool processes of a worker)."""
    return children_of


RECEIVED = re.compile(r"Task (posterlab\.\w+)\[([0-9a-f-]+)\] received")


def received(logs: list[Path], task: str | None = None) -> list[tuple[str, str]]:
    """(task name, task id) of every 'received' line in these worker logs."""
    out = []
    for log in logs:
        if log.exists():
            for m in RECEIVED.finditer(log.read_text(errors="replace")):
                if task is None or m.group(1) == task:
                    out.append((m.group(1), m.group(2)))
    return out


@pytest.fixture
def received_in() -> Callable[..., list[tuple[str, str]]]:
    """``received_in(logs, task=None)``: the 'Task ... received' lines of worker logs."""
    return received


@pytest.fixture
def kill_child() -> Callable[[int], int]:
    """SIGKILL one pool child of a worker's main process; returns its pid."""

    def kill(main_pid: int) -> int:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            children = pool_children(main_pid)
            if children:
                os.kill(children[0], signal.SIGKILL)
                return children[0]
            time.sleep(0.05)
        raise AssertionError(f"worker {main_pid} has no pool child")

    return kill
