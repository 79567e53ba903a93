"""Commands that inspect and operate runs: status, failures, retry, runs, db, report,
export (``analyze`` is in :mod:`posterlab.cli.analysis`)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click
from rich.live import Live

from posterlab.cli.common import (
    broker_option,
    cli,
    console,
    db_option,
    json_option,
    open_store,
    preflight,
    run_option,
    settings_from,
    skip_checks_option,
    strict_option,
    wrap_errors,
)
from posterlab.cli.render import (
    failures_table,
    runs_table,
    safe,
    status_view,
    watch_view,
)


@cli.command()
@run_option
@db_option
@broker_option
@click.option("--watch", is_flag=True,
              help="Refresh until every poster has ended and the analysis is done.")
@click.option("--interval", type=float, default=2.0, show_default=True,
              help="Seconds between refreshes with --watch.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--sweep/--no-sweep", default=True, show_default=True,
              help="Re-queue posters stuck in a stage past POSTERLAB_STUCK_AFTER seconds.")
@wrap_errors
def status(run_name: str | None, db: str | None, broker: str | None, watch: bool,
           interval: float, as_json: bool, sweep: bool) -> None:
    """Counts per stage and state, speed, ETA, face-API figures and workers of a run.

    With --watch it refreshes until every poster has ended and the analysis is done.

    \b
    Examples:
      posterlab status
      posterlab status --run posters-index --watch
      posterlab status --json | jq .counts
    """
    from posterlab.service.inspect import status as run_status

    with open_store(settings_from(db=db, broker=broker), existing=True) as store:
        current = run_status(store, run_name, sweep_first=sweep)
        if not watch and as_json:
            click.echo(json.dumps(current))
            return
        if not watch:
            console().print(status_view(current))
            return
        with Live(watch_view(current), console=console(), refresh_per_second=4) as live:
            while not current["settled"]:  # the posters, then the analysis
                time.sleep(interval)
                current = run_status(store, current["run"], sweep_first=sweep)
                live.update(watch_view(current))
    if as_json:
        click.echo(json.dumps(current))


@cli.command()
@run_option
@db_option
@click.option("--examples", type=click.IntRange(min=0), default=3, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@wrap_errors
def failures(run_name: str | None, db: str | None, examples: int, as_json: bool) -> None:
    """Failed posters grouped by reason, with examples.

    \b
    Examples:
      posterlab failures
      posterlab failures --run posters-index --examples 10
    """
    from posterlab.service.inspect import failures as run_failures

    with open_store(settings_from(db=db), existing=True) as store:
        found = run_failures(store, run_name, examples=examples)
    if as_json:
        click.echo(json.dumps(found))
    elif not found["groups"]:
        console().print(f"run {safe(found['run'])}: no failed posters")
    else:
        console().print(failures_table(found))


@cli.command()
@run_option
@db_option
@broker_option
@click.option("--reason", metavar="TEXT", help="Only failures whose error contains TEXT.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Embedded runs: processes [default: all cores].")
@strict_option
@skip_checks_option
@json_option
@wrap_errors
def retry(run_name: str | None, db: str | None, broker: str | None, reason: str | None,
          workers: int | None, strict: bool, skip_checks: bool, as_json: bool) -> None:
    """Send failed posters back through the pipeline (all, or by reason).

    Embedded runs are processed right away; distributed runs are re-queued for workers.
    Posters keep their count of attempts. The run's analysis runs again when it is
    complete again.

    \b
    Examples:
      posterlab retry
      posterlab retry --reason fetch-timeout --json
    """
    from posterlab.cli.processing import conclude
    from posterlab.service.runs import retry as retry_run

    settings = settings_from(db=db, broker=broker)
    preflight(settings, skip_checks, faces=True)
    with open_store(settings, existing=True) as store:
        mode = store.find_run(run_name).mode
        preflight(settings, skip_checks or mode != "distributed", database=False, broker=True)
        done = retry_run(store, run_name, reason=reason, workers=workers)
    name = safe(done.name)
    out = console(stderr=True, quiet=as_json)
    if not done.posters:
        out.print(f"run {name}: nothing to retry")
    elif done.processed is None:
        out.print(f"run {name}: {done.posters} posters re-queued")
    else:
        out.print(f"run {name}: retried {done.posters}: {done.processed.done} done, "
                  f"{done.processed.failed} failed")
    processed = done.processed
    conclude(settings, done.name, strict=strict and processed is not None, as_json=as_json,
             retried=done.posters, processed=None if processed is None else
             {"done": processed.done, "failed": processed.failed})


@cli.command()
@db_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@wrap_errors
def runs(db: str | None, as_json: bool) -> None:
    """List runs with their counts and dates.

    \b
    Example:
      posterlab runs --db postgresql://postgres@127.0.0.1/test
    """
    from posterlab.service.inspect import list_runs

    with open_store(settings_from(db=db), existing=True) as store:
        found = list_runs(store)
    if as_json:
        click.echo(json.dumps([{k: v for k, v in r.items() if k != "pending"} for r in found]))
    else:
        console().print(runs_table(found))


@cli.group()
def db() -> None:
    """Database schema commands."""


@db.command("upgrade")
@db_option
@wrap_errors
def db_upgrade(db: str | None) -> None:
    """Create or migrate the schema to this version (Alembic).

    \b
    Example:
      posterlab db upgrade --db postgresql://postgres@127.0.0.1/test
    """
    from posterlab.service.store import upgrade_schema

    before, after = upgrade_schema(settings_from(db=db))
    console(stderr=True).print(f"schema: {before or 'empty'} -> {after}")


@cli.command()
@run_option
@db_option
@click.option("--out", "out_dir", type=click.Path(path_type=Path, file_okay=False),
              required=True, help="Folder for report.html, report.md and the plots.")
@json_option
@wrap_errors
def report(run_name: str | None, db: str | None, out_dir: Path, as_json: bool) -> None:
    """Write report.html (self-contained) and report.md with the run's counts and failures,
    correlations, grouped means, model metrics against baselines, and plots.

    \b
    Examples:
      posterlab report --run posters-index --out report/ && open report/report.html
      posterlab report --out report/ --json | jq .files
    """
    from posterlab.service.inspect import summary
    from posterlab.service.results import report as write_report

    with open_store(settings_from(db=db), existing=True) as store:
        index = write_report(store, run_name, out_dir)
        result = summary(store, run_name)
    if as_json:
        files = sorted(str(p) for p in index.parent.iterdir() if p.is_file())
        click.echo(json.dumps({**result, "report": str(index), "files": files}))
    else:
        console(stderr=True).print(f"report written: {safe(index)}")


@cli.command()
@run_option
@db_option
@click.option("--format", "fmt", type=click.Choice(["csv", "parquet", "json"]), default="csv",
              show_default=True)
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="Output file [default: stdout; required for parquet].")
@click.option("--columns", default=None,
              help="Comma-separated columns [default: all scalar columns].")
@click.option("--vectors", is_flag=True,
              help="Add histogram/HOG columns (lists; default on for parquet and json).")
@click.option("--raw", is_flag=True,
              help="CSV: keep text exactly (by default a cell starting with = + - @, tab or "
                   "CR gets a leading ' so a spreadsheet does not run it as a formula).")
@wrap_errors
def export(run_name: str | None, db: str | None, fmt: str, out: str | None,
           columns: str | None, vectors: bool, raw: bool) -> None:
    """Write one row per movie of a run (streamed: constant memory on any size).

    Columns: imdb_id, title, score, genres, status, error, face_count, prominent_faces,
    mean_r, mean_g, mean_b, mean_h, mean_s, mean_v, brightness, contrast, colorfulness,
    year (from the title's "(YYYY)"), the other scalar features, sha256, manifest_row;
    vectors as lists in parquet/json.

    \b
    Examples:
      posterlab export --format csv --out results.csv
      posterlab export --format parquet --out results.parquet
      posterlab export --format json | head
      posterlab export --format csv --raw > exact.csv   # for programs, not spreadsheets
    """
    from posterlab.service.results import export as export_run

    cols = [c.strip() for c in columns.split(",") if c.strip()] if columns else None
    with open_store(settings_from(db=db), readonly=True, existing=True) as store:
        n = export_run(store, run_name, fmt, out, columns=cols, vectors=vectors, raw=raw)
    if out:
        console(stderr=True).print(f"{n} rows written to {safe(out)}")
