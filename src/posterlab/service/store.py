"""The store a command works on: settings, engine and session factory, opened once."""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from posterlab.config import Settings, redact_text, redact_url
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


def open_store(settings: Settings, *, create: bool = False, readonly: bool = False) -> Store:
    """Open the database of ``settings``; check its schema (create it if ``create``).

    Raises :class:`~posterlab.errors.PosterlabError` with what to do when the database
    cannot be reached or its schema is not this version's.
    """
    engine = make_engine(settings.database_url, readonly=readonly)
    try:
        ensure_schema(engine, create=create)
    except (SQLAlchemyError, OSError) as exc:  # server down, bad credentials, no file
        engine.dispose()
        raise unreachable(settings, exc) from None
    except PosterlabError:
        engine.dispose()
        raise
    return Store(settings, engine, session_factory(engine))


def unreachable(settings: Settings, exc: Exception) -> PosterlabError:
    """The error for a database that cannot be opened: which one (redacted), and why."""
    first = str(exc).splitlines()[0] if str(exc) else ""
    return PosterlabError(f"cannot open the database {redact_url(settings.database_url)}: "
                          f"{type(exc).__name__}: {redact_text(first)}", code="storage")


def upgrade_schema(settings: Settings) -> tuple[str | None, str | None]:
    """Create or migrate the schema to this version; (revision before, revision after)."""
    engine = make_engine(settings.database_url)
    try:
        before = current_revision(engine)
        upgrade(engine)
        return before, current_revision(engine)
    except (SQLAlchemyError, OSError) as exc:
        raise unreachable(settings, exc) from None
    finally:
        engine.dispose()
