"""Shared fixtures: real Redis, real PostgreSQL and SQLite, real worker processes.

Services that are missing make their tests skip on a laptop, but fail under CI
(``CI`` set), so a broken CI machine can never pass by skipping.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from support import WorkerProcess, pg_schema_url

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
REDIS_URL = os.environ.get("POSTERLAB_TEST_REDIS", "redis://127.0.0.1:6379")
PG_URL = os.environ.get("POSTERLAB_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _unavailable(what: str, why: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{what} is required in CI but unavailable: {why}")
    pytest.skip(f"{what} unavailable: {why}")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not (DATA / "posters" / "index.csv").is_file():
        pytest.skip(f"real poster data not found at {DATA} (../shared/data next to the repo)")
    return DATA


@pytest.fixture(scope="session")
def redis_server() -> str:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except Exception as exc:
        _unavailable(f"Redis at {REDIS_URL}", repr(exc))
    return REDIS_URL


@pytest.fixture
def broker_url(redis_server: str) -> Iterator[str]:
    """A Redis database of its own for one test, flushed before and after."""
    import redis

    db = 9 + (os.getpid() % 6)
    url = f"{redis_server}/{db}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()
    client.close()


@pytest.fixture(scope="session")
def pg_server() -> str:
    import sqlalchemy as sa

    try:
        engine = sa.create_engine(PG_URL)
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
        engine.dispose()
    except Exception as exc:
        _unavailable(f"PostgreSQL at {PG_URL}", repr(exc).splitlines()[0])
    return PG_URL


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Every database test runs on SQLite and on a real PostgreSQL (own schema)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'posterlab.db'}"
        return
    base = request.getfixturevalue("pg_server")
    yield from pg_schema_url(base)


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    yield from pg_schema_url(pg_server)


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator:
    workers: list[WorkerProcess] = []

    def start(*args: str, env: dict[str, str], name: str = "w") -> WorkerProcess:
        w = WorkerProcess(list(args), env, tmp_path / f"worker-{name}-{len(workers)}.log")
        workers.append(w)
        return w

    yield start
    for w in workers:
        w.stop()
