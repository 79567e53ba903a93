"""Engine and session factory.

SQLite runs in WAL mode with a busy timeout, and write transactions start with
``BEGIN IMMEDIATE`` so two writers queue on the lock instead of failing with
"database is locked" when a read transaction tries to upgrade. PostgreSQL is used as
given by its URL (``postgresql://`` is mapped to the psycopg 3 driver).

Engines are created by the caller (CLI, worker bootstrap after fork), never at import.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session, sessionmaker

from posterlab.config import redact_url
from posterlab.errors import StorageError

SQLITE_BUSY_TIMEOUT_MS = 60_000  # writers wait for each other up to a minute


def normalise_url(url: str) -> str:
    """Map ``postgres://``/``postgresql://`` to the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def make_engine(url: str, *, readonly: bool = False, pool_size: int = 5) -> Engine:
    """Create an engine for ``url``; ``readonly`` engines never take SQLite's write lock."""
    url = normalise_url(url)
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StorageError(f"database URL {redact_url(url)!r} is not a valid SQLAlchemy URL; "
                           "use e.g. sqlite:///posterlab.db or postgresql://user@host/db") from None
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url, parsed.database, readonly=readonly)
    kwargs: dict[str, Any] = {"pool_pre_ping": True, "pool_size": pool_size, "max_overflow": 5}
    try:
        return create_engine(url, **kwargs)
    except (ArgumentError, ImportError) as exc:  # bad options, or the driver is missing
        raise StorageError(f"cannot use database {redact_url(url)}: {exc}") from None


def _sqlite_engine(url: str, database: str | None, *, readonly: bool) -> Engine:
    if database and database != ":memory:":
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event emit BEGIN itself (pysqlite's own is deferred).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        if not readonly:
            cur.execute("PRAGMA journal_mode = WAL")
        cur.execute("PRAGMA synchronous = NORMAL")  # safe in WAL; durable at checkpoints
        cur.execute("PRAGMA foreign_keys = ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")

    return engine


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session in one transaction: commit on success, roll back on error."""
    with factory() as session, session.begin():
        yield session


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"
