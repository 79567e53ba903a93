"""Shared fixtures: real Redis, real PostgreSQL and SQLite, real worker processes.

Services that are missing make their tests skip on a laptop, but fail under CI
(``CI`` set), so a broken CI machine can never pass by skipping.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from posterlab.testing import (
    SHARED_REDIS,
    HarnessError,
    RedisServer,
    WorkerProcess,
    flush_redis,
    pg_schema,
    redis_server_installed,
)

from support import room, unavailable

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
# a Redis to use instead of a private redis-server (none: start one per test process)
REDIS_URL = os.environ.get("POSTERLAB_TEST_REDIS")
PG_URL = os.environ.get("POSTERLAB_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not (DATA / "posters" / "index.csv").is_file():
        pytest.skip(f"real poster data not found at {DATA} (../shared/data next to the repo)")
    return DATA


@pytest.fixture(autouse=True)
def _test_room(request: pytest.FixtureRequest,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Under xdist, a test marked ``exclusive`` runs while no other test of the run does."""
    if "PYTEST_XDIST_WORKER" not in os.environ:
        yield
        return
    exclusive = request.node.get_closest_marker("exclusive") is not None
    # the parent of a worker's basetemp is the run's own folder, shared by its workers
    with room(tmp_path_factory.getbasetemp().parent, exclusive=exclusive):
        yield


@pytest.fixture(scope="session")
def _redis_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, bool]]:
    """This pytest process's own ``redis-server`` (URL, True), or the shared one (URL, False).

    Each process (each xdist worker too) gets a private server on a free port, so two test
    sessions on one machine never flush or consume each other's queues. Only where
    ``redis-server`` is not installed does it fall back to the shared server.
    """
    if REDIS_URL or not redis_server_installed():
        yield REDIS_URL or SHARED_REDIS, False
        return
    folder = tmp_path_factory.mktemp("redis-session")
    try:
        server = RedisServer(folder, durable=False)
    except HarnessError as exc:
        unavailable("a private redis-server", str(exc))
    with server:
        yield f"redis://127.0.0.1:{server.port}", True


@pytest.fixture(scope="session")
def redis_server(_redis_service: tuple[str, bool]) -> str:
    """The base URL (no database number) of the Redis the tests use; skips or fails without."""
    import redis

    url, _private = _redis_service
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except Exception as exc:
        unavailable(f"Redis at {url}", repr(exc))
    return url


@pytest.fixture
def broker_url(redis_server: str, _redis_service: tuple[str, bool]) -> Iterator[str]:
    """A Redis database of its own for one test, flushed before and after."""
    # on the shared server, numbered databases keep concurrent sessions apart (mostly)
    db = 1 if _redis_service[1] else 9 + (os.getpid() % 6)
    url = f"{redis_server}/{db}"
    flush_redis(url)
    yield url
    flush_redis(url)


@pytest.fixture(scope="session")
def pg_server() -> str:
    import sqlalchemy as sa

    try:
        engine = sa.create_engine(PG_URL)
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
        engine.dispose()
    except Exception as exc:
        unavailable(f"PostgreSQL at {PG_URL}", repr(exc).splitlines()[0])
    return PG_URL


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Every database test runs on SQLite and on a real PostgreSQL (own schema)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'posterlab.db'}"
        return
    with pg_schema(request.getfixturevalue("pg_server")) as url:
        yield url


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    """A PostgreSQL URL on a schema of this test's own, dropped afterwards."""
    with pg_schema(pg_server) as url:
        yield url


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """``start_worker(*args, env=..., name=...)``: real workers, all stopped after the test."""
    workers: list[WorkerProcess] = []

    def start(*args: str, env: dict[str, str], name: str = "w") -> WorkerProcess:
        w = WorkerProcess(args, env, tmp_path / f"worker-{name}-{len(workers)}.log")
        workers.append(w)
        return w

    yield start
    for w in workers:
        w.stop()
