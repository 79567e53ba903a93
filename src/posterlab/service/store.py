"""The store a command works on: settings, engine and session factory, opened once."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from posterlab.config import Settings, redact_url
from posterlab.errors import PosterlabError
from posterlab.storage import runs
from posterlab.storage.engine import make_engine, session_factory
from posterlab.storage.models import Run
from posterlab.storage.schema import current_revision, ensure_schema, upgrade


@dataclass
class Store:
    """An open database: use as a context manager, or call :meth:`close`."""

    settings: Settings
    engine: Engine
    factory: sessionmaker[Session]

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object | TracebackType | None) -> None:
        self.close()

    def find_run(self, name: str | None) -> Run:
        """The run called ``name`` (the most recent one when None), detached."""
        with self.factory() as session:
            return runs.find_run(session, name)


def open_store(settings: Settings, *, create: bool = False, readonly: bool = False,
               existing: bool = False) -> Store:
    """Open the database of ``settings``; check its schema (create it if ``create``).

    With ``existing``, a SQLite file that is not there is an error naming the databases
    nearby, and nothing is created (no file, no folder): what commands that only look
    at runs use.

    Raises :class:`~posterlab.errors.PosterlabError` with what to do when the database
    cannot be reached or its schema is not this version's.
    """
    if existing:
        require_database(settings.database_url)
    engine = make_engine(settings.database_url, readonly=readonly)
    try:
        ensure_schema(engine, create=create)
    except (SQLAlchemyError, OSError) as exc:  # server down, bad credentials, no file
        engine.dispose()
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise PosterlabError(f"cannot open the database {redact_url(settings.database_url)}: "
                             f"{type(exc).__name__}: {first}", code="storage") from None
    except PosterlabError:
        engine.dispose()
        raise
    return Store(settings, engine, session_factory(engine))


def upgrade_schema(settings: Settings) -> tuple[str | None, str | None]:
    """Create or migrate the schema to this version; (revision before, revision after)."""
    engine = make_engine(settings.database_url)
    try:
        before = current_revision(engine)
        upgrade(engine)
        return before, current_revision(engine)
    finally:
        engine.dispose()


NEARBY = ("*.db", "*.sqlite", "*/*.db", "*/*.sqlite")  # where a lost database usually is


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL; None for other databases and in-memory SQLite."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return None
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database).expanduser()


def require_database(url: str, here: Path | None = None) -> None:
    """Raise :class:`PosterlabError` when ``url`` is a SQLite file that does not exist,
    saying where it looked and which databases are near ``here`` (the working folder)."""
    path = sqlite_path(url)
    if path is None or path.is_file():
        return
    base = Path.cwd() if here is None else here
    near = sorted({str(p.relative_to(base)) for pattern in NEARBY for p in base.glob(pattern)
                   if p.is_file()})[:5]
    hint = (f"databases nearby: {', '.join(near)} (pass one as --db sqlite:///PATH)" if near
            else "start a run with `posterlab run MANIFEST` or `posterlab demo`")
    raise PosterlabError(f"no database at {path.resolve()} (POSTERLAB_DATABASE_URL or --db); "
                         f"{hint}", code="storage")
