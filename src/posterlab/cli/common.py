"""Shared CLI plumbing: the group, option decorators, the context object, error mapping."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
from rich.console import Console

from posterlab import __version__
from posterlab.config import Settings, load_settings
from posterlab.errors import CheckFailed, PosterlabError

if TYPE_CHECKING:
    from posterlab.service.store import Store

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
F = TypeVar("F", bound=Callable[..., Any])


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="posterlab")
def cli() -> None:
    """posterlab: what in a movie poster goes with how well the movie is rated.

    \b
    Embedded (no servers, SQLite, all cores):
      posterlab demo                                   # synthetic posters, end to end
      posterlab run movies.csv --poster-dir posters/   # your manifest
    Distributed (Redis broker, PostgreSQL or SQLite store):
      posterlab worker --concurrency 4                 # on as many hosts as you like
      posterlab enqueue movies.csv --db postgresql://db/posterlab
      posterlab status --watch
    Results:
      posterlab export --format parquet --out results.parquet
      posterlab analyze --json ; posterlab report --out report/

    Settings come from POSTERLAB_* environment variables; flags override them.
    """


def db_option(f: F) -> F:
    return click.option("--db", "db", metavar="URL", envvar=None, default=None,
                        help="Database URL [env POSTERLAB_DATABASE_URL, default "
                             "sqlite:///posterlab.db].")(f)


def broker_option(f: F) -> F:
    return click.option("--broker", "broker", metavar="URL", default=None,
                        help="Celery broker URL [env POSTERLAB_BROKER_URL, default "
                             "redis://localhost:6379/0].")(f)


def run_option(f: F) -> F:
    return click.option("--run", "run_name", metavar="NAME", default=None,
                        help="Run name [default: the most recent run].")(f)


def skip_checks_option(f: F) -> F:
    return click.option("--skip-checks", is_flag=True,
                        help="Start without checking the database, broker, face API and "
                             "manifest first.")(f)


def strict_option(f: F) -> F:
    return click.option("--strict", is_flag=True,
                        help="Exit 1 when any poster failed (default: only when all did).")(f)


def json_option(f: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")(f)


def preflight(settings: Settings, skip: bool, **needs: Any) -> None:
    """:func:`posterlab.service.checks.preflight` unless ``skip``; exit 2 on a problem."""
    if skip:
        return
    from posterlab.service.checks import Needs
    from posterlab.service.checks import preflight as check

    with errors_as_click():
        check(settings, Needs(**needs))


def settings_from(**overrides: Any) -> Settings:
    """Settings from env, then flags; a bad setting becomes a clean CLI error."""
    mapping = {"db": "database_url", "broker": "broker_url", "face_provider": "face_provider",
               "blob_dir": "blob_dir"}
    values = {mapping.get(k, k): v for k, v in overrides.items()}
    if values.get("blob_dir") is not None:
        values["blob_dir"] = Path(values["blob_dir"])
    with errors_as_click():
        return load_settings(**values)


def open_store(settings: Settings, *, create: bool = False, readonly: bool = False,
               existing: bool = False) -> Store:
    """:func:`posterlab.service.open_store`, its errors as clean CLI errors."""
    from posterlab.service.store import open_store as open_

    with errors_as_click():
        return open_(settings, create=create, readonly=readonly, existing=existing)


class NotReady(click.ClickException):
    """A check before work starts failed: a usage error (exit code 2), nothing started."""

    exit_code = EXIT_USAGE


@contextmanager
def errors_as_click() -> Iterator[None]:
    """Turn posterlab errors into ``click.ClickException`` (exit code 1, clean message;
    2 for a failed check before work starts)."""
    try:
        yield
    except CheckFailed as exc:
        raise NotReady(str(exc)) from None
    except PosterlabError as exc:
        raise click.ClickException(str(exc)) from None


def wrap_errors(f: F) -> F:
    @functools.wraps(f)
    def inner(*args: Any, **kwargs: Any) -> Any:
        with errors_as_click():
            return f(*args, **kwargs)

    return inner  # type: ignore[return-value]


PIPE_WIDTH = 200  # columns of tables written to a pipe or a file: no run name is cut


def console(stderr: bool = False, quiet: bool = False) -> Console:
    """A console for tables (stdout) or messages (``stderr``); wide when not a terminal."""
    out = Console(stderr=stderr, highlight=False, quiet=quiet)
    if not out.is_terminal and "COLUMNS" not in os.environ:
        out.width = PIPE_WIDTH
    return out
