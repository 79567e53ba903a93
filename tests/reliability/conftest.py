"""Fixtures of the fault tests: a Redis of the test's own, runs followed in the database,
pool children found in /proc, worker logs read back."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from support import rows, run_cli


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def any_port() -> Callable[[], int]:
    return free_port


class RedisServer:
    """A ``redis-server`` on its own port, append-only, fsync on every write."""

    def __init__(self, folder: Path, password: str | None = None) -> None:
        self.folder = folder
        self.password = password
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        folder.mkdir(parents=True, exist_ok=True)
        self.start()

    def url(self, db: int = 0) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                "--appendonly", "yes", "--appendfsync", "always", "--save", "",
                "--dir", str(self.folder), "--daemonize", "no"]
        if self.password:
            args += ["--requirepass", self.password]
        self._log = open(self.folder / "redis.log", "ab")
        self.proc = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.ping():
                return
            time.sleep(0.05)
        raise AssertionError("redis-server did not start:\n"
                             + (self.folder / "redis.log").read_text()[-2000:])

    def ping(self) -> bool:
        import redis

        try:
            client = redis.Redis.from_url(self.url(), socket_connect_timeout=0.5)
            try:
                return bool(client.ping())
            finally:
                client.close()
        except redis.RedisError:
            return False

    def client(self, db: int = 0) -> Any:
        import redis

        return redis.Redis.from_url(self.url(db), socket_connect_timeout=2)

    def kill(self) -> None:
        """SIGKILL: what survives is what the append-only file holds."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self._log.close()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[Callable[..., RedisServer]]:
    """Start Redis servers of this test's own (``own_redis(password=...)``)."""
    if shutil.which("redis-server") is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is required in CI")
        pytest.skip("redis-server not installed")
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


def pool_children(pid: int) -> list[int]:
    """Celery's prefork pool processes of a worker: the children of ``pid`` forked from it
    (same command line), not the fetch worker it starts beside its pool."""
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        children += [int(c) for c in text]
    own = _cmdline(pid)
    return [c for c in children if _cmdline(c) == own]


def _cmdline(pid: int) -> bytes | None:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:  # gone meanwhile
        return None


@pytest.fixture
def children_of() -> Callable[[int], list[int]]:
    return pool_children


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
