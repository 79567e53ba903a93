"""Services of a run: a private ``redis-server``, a PostgreSQL schema of its own, free ports.

SQLAlchemy and redis are imported inside the functions that use them, so importing this
module costs nothing beyond the standard library.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from posterlab.testing._base import REDIS_START_TIMEOUT, HarnessError

SHARED_REDIS = "redis://127.0.0.1:6379"
"""The machine's shared Redis: used only where ``redis-server`` is not installed."""
START_ATTEMPTS = 3  # a free port can be taken by another process before redis binds it


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on at the moment of the call.

    Returns
    -------
    int
        The port the kernel chose for a socket bound to port 0, closed again.
    """
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def redis_server_installed() -> bool:
    """Whether a ``redis-server`` binary is on the PATH."""
    return shutil.which("redis-server") is not None


class RedisServer:
    """A ``redis-server`` of its own on a free port of 127.0.0.1, data in ``folder``.

    Parameters
    ----------
    folder : Path
        Its working directory (log, append-only file); created if missing.
    password : str, optional
        Started with ``--requirepass`` when given.
    durable : bool
        ``True``: append-only with fsync on every write, so a SIGKILL loses nothing
        (the outage tests restart it). ``False``: ``--save "" --appendonly no``, a pure
        in-memory broker for one test session.

    Examples
    --------
    >>> server = RedisServer(tmp_path / "redis", durable=False)  # doctest: +SKIP
    >>> server.url(1)  # doctest: +SKIP
    'redis://127.0.0.1:41234/1'
    >>> server.stop()  # doctest: +SKIP
    """

    def __init__(self, folder: Path, password: str | None = None, *,
                 durable: bool = True) -> None:
        self.folder = folder
        self.password = password
        self.durable = durable
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        folder.mkdir(parents=True, exist_ok=True)
        self.port = 0
        for attempt in range(START_ATTEMPTS):
            self.port = free_port()
            try:
                self.start()
                return
            except HarnessError:
                if attempt == START_ATTEMPTS - 1:
                    raise

    def url(self, db: int = 0) -> str:
        """The ``redis://`` URL of database ``db``, with the password when there is one."""
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/{db}"

    def _args(self) -> list[str]:
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--dir", str(self.folder), "--daemonize", "no"]
        if self.durable:
            args += ["--appendonly", "yes", "--appendfsync", "always"]
        else:
            args += ["--appendonly", "no"]
        if self.password:
            args += ["--requirepass", self.password]
        return args

    def start(self) -> None:
        """Start (or restart, on the same port) and wait until it answers PING.

        Raises
        ------
        HarnessError
            When it exits or does not answer within ``REDIS_START_TIMEOUT`` seconds.
        """
        log_path = self.folder / "redis.log"
        self._log = open(log_path, "ab")  # noqa: SIM115  (open while the server runs)
        self.proc = subprocess.Popen(self._args(), stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + REDIS_START_TIMEOUT
        while time.monotonic() < deadline and self.proc.poll() is None:
            if self.ping():
                return
            time.sleep(0.05)
        self.stop()
        raise HarnessError(f"redis-server did not start on port {self.port}:\n"
                           + log_path.read_text(errors="replace")[-2000:])

    def ping(self) -> bool:
        """Whether it answers PING now."""
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
        """A ``redis.Redis`` client on database ``db`` (the caller closes it)."""
        import redis

        return redis.Redis.from_url(self.url(db), socket_connect_timeout=2)

    def kill(self) -> None:
        """SIGKILL: what survives is what the append-only file holds."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._close_log()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 10 seconds."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> RedisServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def flush_redis(url: str) -> None:
    """FLUSHDB the Redis database of ``url``."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()


@contextmanager
def pg_schema(base: str, prefix: str = "t") -> Iterator[str]:
    """A PostgreSQL URL whose ``search_path`` is a fresh schema, dropped afterwards.

    Parameters
    ----------
    base : str
        URL of the database the schema is created in.
    prefix : str
        Start of the schema's name (a random suffix follows), to tell tests from
        benchmarks in ``\\dn``.

    Yields
    ------
    str
        ``base`` with ``options=-csearch_path=<schema>``: every connection made from it,
        by this process or by a ``posterlab`` subprocess, works in that schema only.
    """
    import sqlalchemy as sa

    schema = f"{prefix}_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(base)
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    try:
        yield f"{base}?options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        engine.dispose()
