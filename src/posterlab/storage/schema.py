"""Schema management: Alembic owns the schema; the app refuses an out-of-date one."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect

from posterlab.errors import SchemaOutOfDate

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(engine: Engine | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if engine is not None:
        cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False)
                            .replace("%", "%%"))
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "the migrations folder has no revision"
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database to ``revision`` (``posterlab db upgrade``)."""
    cfg = alembic_config(engine)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def ensure_schema(engine: Engine, *, create: bool = True) -> None:
    """Check the schema is at head; on an empty database, create it when ``create``.

    Raises :class:`SchemaOutOfDate` with the command to run when the database was made
    by another version of posterlab.
    """
    current = current_revision(engine)
    head = head_revision()
    if current == head:
        return
    if current is None and not inspect(engine).get_table_names():
        if create:
            upgrade(engine)
            return
        raise SchemaOutOfDate(
            f"the database {engine.url.render_as_string(hide_password=True)} is empty; "
            "create its tables with `posterlab db upgrade`"
        )
    raise SchemaOutOfDate(
        f"the database schema is at revision {current or 'none'} but this posterlab needs "
        f"{head}; run `posterlab db upgrade --db URL` (back up first), then retry"
    )
