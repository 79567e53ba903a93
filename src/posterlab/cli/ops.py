"""Commands that inspect and operate runs: status, failures, retry, runs, db, analyze,
report, export."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click
from rich.live import Live
from rich.table import Table

from posterlab.cli.common import (
    Store,
    broker_option,
    cli,
    console,
    db_option,
    open_store,
    run_option,
    settings_from,
    wrap_errors,
)
from posterlab.cli.render import run_status, status_table, watch_view
from posterlab.config import Settings
from posterlab.storage import repository as repo
from posterlab.storage.engine import transaction


def _sweep(store: Store, run_name: str | None) -> int:
    """Re-queue abandoned work of a distributed run (posterlab.workers.sweeper)."""
    from posterlab.workers.app import create_app
    from posterlab.workers.sweeper import sweep

    with store.factory() as session:
        run = repo.find_run(session, run_name)
        if run.mode != "distributed":
            return 0
        run_id = run.id
    swept = sweep(create_app(store.settings), store.factory, store.settings, run_id)
    return swept.posters + int(swept.analysis)


@cli.command()
@run_option
@db_option
@broker_option
@click.option("--watch", is_flag=True, help="Refresh until the run is complete.")
@click.option("--interval", type=float, default=2.0, show_default=True,
              help="Seconds between refreshes with --watch.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--sweep/--no-sweep", default=True, show_default=True,
              help="Re-queue posters stuck in a stage past POSTERLAB_STUCK_AFTER seconds.")
@wrap_errors
def status(run_name: str | None, db: str | None, broker: str | None, watch: bool,
           interval: float, as_json: bool, sweep: bool) -> None:
    """Counts per stage and state, speed, ETA and face-API figures of a run.

    \b
    Examples:
      posterlab status
      posterlab status --run posters-index --watch
      posterlab status --json | jq .counts
    """
    settings = settings_from(db=db, broker=broker)
    store = open_store(settings)
    swept = _sweep(store, run_name) if sweep else 0
    with store.factory() as session:
        current = run_status(session, repo.find_run(session, run_name))
    current["swept"] = swept
    if as_json and not watch:
        click.echo(json.dumps(current))
        return
    if not watch:
        console().print(status_table(current))
        return
    with Live(watch_view(current), console=console(), refresh_per_second=4) as live:
        while not current["complete"]:
            time.sleep(interval)
            if sweep:
                _sweep(store, current["run"])
            with store.factory() as session:
                current = run_status(session, repo.find_run(session, current["run"]))
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
    store = open_store(settings_from(db=db))
    with store.factory() as session:
        run = repo.find_run(session, run_name)
        groups = repo.failure_groups(session, run.id, examples=examples)
    if as_json:
        click.echo(json.dumps({"run": run.name, "groups": groups}))
        return
    if not groups:
        console().print(f"run {run.name}: no failed posters")
        return
    table = Table(title=f"failures of run {run.name}", title_justify="left")
    table.add_column("reason")
    table.add_column("posters", justify="right")
    table.add_column("examples (movie, row: error)")
    for g in groups:
        ex = "\n".join(f"{e['movie']}, row {e['row']}: {e['error']}" for e in g["examples"])
        table.add_row(g["code"] or "?", str(g["count"]), ex)
    console().print(table)


@cli.command()
@run_option
@db_option
@broker_option
@click.option("--reason", metavar="TEXT", help="Only failures whose error contains TEXT.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Embedded runs: processes [default: all cores].")
@wrap_errors
def retry(run_name: str | None, db: str | None, broker: str | None, reason: str | None,
          workers: int | None) -> None:
    """Send failed posters back through the pipeline (all, or by reason).

    Embedded runs are processed right away; distributed runs are re-queued for workers.
    Posters keep their count of attempts.

    \b
    Examples:
      posterlab retry
      posterlab retry --reason fetch-timeout
    """
    settings = settings_from(db=db, broker=broker)
    store = open_store(settings)
    with transaction(store.factory) as session:
        run = repo.find_run(session, run_name)
        ids = repo.requeue_failed(session, run.id, reason=reason)
        mode, run_id, name = run.mode, run.id, run.name
    out = console(stderr=True)
    if not ids:
        out.print(f"run {name}: nothing to retry")
        return
    if mode == "distributed":
        from posterlab.workers.app import create_app, publish_fetch

        app = create_app(settings)
        with app.producer_or_acquire() as producer:
            publish_fetch(app, ids, producer=producer)
        out.print(f"run {name}: {len(ids)} posters re-queued")
        return
    from posterlab.workers.local import run_embedded

    summary = run_embedded(store.factory, settings, run_id, workers=workers)
    out.print(f"run {name}: retried {len(ids)}: {summary.done} done, {summary.failed} failed")


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
    store = open_store(settings_from(db=db))
    with store.factory() as session:
        rows = [(r, repo.status_counts(session, r.id)) for r in repo.list_runs(session)]
    if as_json:
        click.echo(json.dumps([{"run": r.name, "mode": r.mode, "total": r.total, "counts": c,
                                "created_at": r.created_at.isoformat(),
                                "analysis": r.analysis_state} for r, c in rows]))
        return
    table = Table(title="runs", title_justify="left")
    for col in ("run", "mode", "total", "done", "failed", "pending", "created", "analysis"):
        table.add_column(col)
    for r, c in rows:
        pending = sum(v for k, v in c.items() if k not in ("done", "failed"))
        table.add_row(r.name, r.mode, str(r.total), str(c["done"]), str(c["failed"]),
                      str(pending), r.created_at.strftime("%Y-%m-%d %H:%M"), r.analysis_state)
    console().print(table)


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
    from posterlab.storage.engine import make_engine
    from posterlab.storage.schema import current_revision, upgrade

    settings = settings_from(db=db)
    engine = make_engine(settings.database_url)
    before = current_revision(engine)
    upgrade(engine)
    console(stderr=True).print(f"schema: {before or 'empty'} -> {current_revision(engine)}")


@cli.command()
@run_option
@db_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--stored", is_flag=True,
              help="Print the stored result instead of analysing the run again.")
@wrap_errors
def analyze(run_name: str | None, db: str | None, as_json: bool, stored: bool) -> None:
    """Analyse a run again: correlations with the rating, the MLP against baselines.

    The result is stored with the run (it replaces the one made when the run ended).

    \b
    Examples:
      posterlab analyze
      posterlab analyze --run posters-index --json > analysis.json
      posterlab analyze --stored --json      # what the run's final task stored
    """
    from posterlab.pipeline import analyse_run

    store = open_store(settings_from(db=db))
    with transaction(store.factory) as session:
        run = repo.find_run(session, run_name)
        result = run.analysis if stored and run.analysis_state == "done" else None
        if result is None:
            repo.claim_analysis(session, run.id, force=True)
        run_id = run.id
    if result is None:
        result = analyse_run(store.factory, run_id)
    if as_json:
        click.echo(json.dumps(result))
        return
    table = Table(title="correlations with the rating", title_justify="left")
    for col in ("feature", "n", "pearson_r", "ci", "spearman_rho", "p_adjusted"):
        table.add_column(col)
    for c in result.get("correlations", []):
        table.add_row(c["feature"], str(c["n"]), _f(c.get("pearson_r")),
                      f"[{_f(c.get('ci_low'))}, {_f(c.get('ci_high'))}]",
                      _f(c.get("spearman_rho")), _f(c.get("p_adjusted")))
    console().print(table)
    console().print_json(json.dumps(result.get("model", {})))


def _f(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def write_report_for(settings: Settings, run_name: str | None, out_dir: Path) -> Path:
    from posterlab.analysis import analyze as analyze_frame
    from posterlab.analysis import write_report
    from posterlab.storage.export import results_frame

    store = open_store(settings)
    with store.factory() as session:
        run = repo.find_run(session, run_name)
        frame = results_frame(session, run, vectors=True)
        title = f"posterlab report: run {run.name}"
        summary = {"run": run.name, "total": run.total,
                   "counts": repo.status_counts(session, run.id),
                   "failures": [{"code": g["code"], "count": g["count"]}
                                for g in repo.failure_groups(session, run.id, examples=0)]}
    done = frame[frame["status"] == "done"].reset_index(drop=True)
    result = analyze_frame(done, seed=0)
    out_dir.mkdir(parents=True, exist_ok=True)
    return write_report(result, done, out_dir, title=title, run_summary=summary)


@cli.command()
@run_option
@db_option
@click.option("--out", "out_dir", type=click.Path(path_type=Path, file_okay=False),
              required=True, help="Folder for report.html, report.md and the plots.")
@wrap_errors
def report(run_name: str | None, db: str | None, out_dir: Path) -> None:
    """Write report.html (self-contained) and report.md with the run's counts and failures,
    correlations, grouped means, model metrics against baselines, and plots.

    \b
    Example:
      posterlab report --run posters-index --out report/ && open report/report.html
    """
    index = write_report_for(settings_from(db=db), run_name, out_dir)
    console(stderr=True).print(f"report written: {index}")


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
@wrap_errors
def export(run_name: str | None, db: str | None, fmt: str, out: str | None,
           columns: str | None, vectors: bool) -> None:
    """Write one row per movie of a run (streamed: constant memory on any size).

    Columns: imdb_id, title, score, genres, status, error, face_count, mean_r, mean_g,
    mean_b, mean_h, mean_s, mean_v, brightness, contrast, colorfulness, the other scalar
    features, sha256, manifest_row; vectors as lists in parquet/json.

    \b
    Examples:
      posterlab export --format csv --out results.csv
      posterlab export --format parquet --out results.parquet
      posterlab export --format json | head
    """
    from posterlab.storage.export import iter_results, write_export

    store = open_store(settings_from(db=db), readonly=True)
    cols = [c.strip() for c in columns.split(",") if c.strip()] if columns else None
    with_vectors = vectors or fmt in ("parquet", "json")
    with store.factory() as session:
        run = repo.find_run(session, run_name)
        n = write_export(iter_results(session, run, vectors=with_vectors, columns=cols),
                         fmt, out)
    if out:
        console(stderr=True).print(f"{n} rows written to {out}")
