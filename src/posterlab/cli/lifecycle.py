"""Commands of a run's lifecycle: cancel, delete, rename, purge."""

from __future__ import annotations

import json
from typing import Any

import click
from rich.markup import escape

from posterlab.cli.common import (
    broker_option,
    cli,
    console,
    db_option,
    json_option,
    open_store,
    settings_from,
    wrap_errors,
)


def _emit(result: dict[str, Any], as_json: bool, line: str) -> None:
    if as_json:
        click.echo(json.dumps(result))
    else:
        console(stderr=True).print(line)


@cli.command()
@click.option("--run", "run_name", metavar="NAME", required=True, help="The run to cancel.")
@db_option
@broker_option
@click.option("--no-analysis", is_flag=True,
              help="Do not analyse what is done (`posterlab analyze` still can).")
@json_option
@wrap_errors
def cancel(run_name: str, db: str | None, broker: str | None, no_analysis: bool,
           as_json: bool) -> None:
    """Cancel a run: its waiting posters end `cancelled` and the run is complete.

    Messages already queued for them do nothing; work in progress finishes. The
    analysis then runs on the posters that are done, unless --no-analysis.

    \b
    Examples:
      posterlab cancel --run posters-index
      posterlab cancel --run big-mistake --no-analysis --json
    """
    from posterlab.service.lifecycle import cancel as cancel_run

    with open_store(settings_from(db=db, broker=broker), existing=True) as store:
        done = cancel_run(store, run_name, analysis=not no_analysis)
    counts = done["counts"]
    _emit(done, as_json, f"run {escape(done['run'])}: {done['cancelled']} posters cancelled; "
          f"{counts['done']} done, {counts['failed']} failed; analysis {done['analysis']}")


@cli.command()
@click.option("--run", "run_name", metavar="NAME", required=True, help="The run to delete.")
@db_option
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@json_option
@wrap_errors
def delete(run_name: str, db: str | None, yes: bool, as_json: bool) -> None:
    """Delete a run and its posters' rows (features, faces and poster bytes are shared
    caches and stay).

    \b
    Examples:
      posterlab delete --run posters-index
      posterlab delete --run old-try --yes --json
    """
    from posterlab.service.lifecycle import delete as delete_run

    with open_store(settings_from(db=db), existing=True) as store:
        found = store.find_run(run_name)
        if not yes:
            click.confirm(f"Delete run {found.name!r} and its {found.total} posters?",
                          abort=True, err=True)
        done = delete_run(store, run_name)
    _emit(done, as_json, f"run {escape(done['run'])} deleted: "
          f"{done['deleted']['posters']} posters; caches kept")


@cli.command()
@click.option("--run", "old", metavar="OLD", required=True, help="The run's current name.")
@click.argument("new")
@db_option
@json_option
@wrap_errors
def rename(old: str, new: str, db: str | None, as_json: bool) -> None:
    """Rename a run.

    \b
    Example:
      posterlab rename --run posters-index posters-2024
    """
    from posterlab.service.lifecycle import rename as rename_run

    with open_store(settings_from(db=db), existing=True) as store:
        done = rename_run(store, old, new)
    _emit(done, as_json, f"run {escape(old)} is now {escape(new)}")


@cli.command()
@broker_option
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@json_option
@wrap_errors
def purge(broker: str | None, yes: bool, as_json: bool) -> None:
    """Empty posterlab's queues on the broker (every run's waiting messages).

    The posters stay waiting in the database: cancel or delete their run next, or
    `posterlab status` re-queues them once they count as lost (POSTERLAB_STUCK_AFTER).

    \b
    Examples:
      posterlab purge
      posterlab purge --broker redis://q:6379/0 --yes
    """
    from posterlab.config import redact_url
    from posterlab.service.lifecycle import purge as purge_queues

    settings = settings_from(broker=broker)
    if not yes:
        click.confirm(f"Empty every posterlab queue on {redact_url(settings.broker_url)}?",
                      abort=True, err=True)
    done = purge_queues(settings.broker_url)
    _emit(done, as_json, f"{done['messages']} messages purged from {done['broker']}")
