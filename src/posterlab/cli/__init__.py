"""The ``posterlab`` command line: a thin skin over the library.

Exit codes: 0 success, 1 failure (a :class:`~posterlab.errors.PosterlabError`),
2 usage error (click's own).
"""

from __future__ import annotations

import sys

import click

from posterlab.cli.common import EXIT_FAILURE, cli
from posterlab.errors import PosterlabError


def _register() -> None:
    # importing the modules attaches their commands to cli
    from posterlab.cli import analysis, dashboard, faceapi, lifecycle, ops, processing  # noqa: F401


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    _register()
    try:
        cli.main(args=argv, prog_name="posterlab", standalone_mode=True)
    except PosterlabError as exc:  # pragma: no cover - click handles ClickException
        click.echo(f"Error: {exc}", err=True)
        sys.exit(EXIT_FAILURE)


__all__ = ["cli", "main"]
