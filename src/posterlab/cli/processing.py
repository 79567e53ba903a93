"""Commands that process posters: demo, run, enqueue, worker."""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path

import click
from kombu.exceptions import OperationalError as KombuOperationalError
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from posterlab.cli.common import (
    broker_option,
    cli,
    console,
    db_option,
    default_run_name,
    open_store,
    settings_from,
    wrap_errors,
)
from posterlab.cli.render import print_summary
from posterlab.config import redact_url

QUEUE_NAMES = ("fetch", "extract", "faces", "analysis")


def _progress() -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[detail]}"), TimeRemainingColumn(),
                    console=console(stderr=True), transient=False,
                    refresh_per_second=2)  # the refresh thread costs CPU the workers need


def interrupt_on_signals() -> None:
    """Ctrl-C and SIGTERM stop a run cleanly (finished work is kept, the rest resumes).

    Installed explicitly: a shell starts background jobs with SIGINT ignored, and Python
    then never raises KeyboardInterrupt.
    """

    def stop(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)


@cli.command()
@click.argument("manifest", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--poster-dir", type=click.Path(path_type=Path, file_okay=False),
              help="Find posters as DIR/<id>.(jpg|png|...) instead of the manifest's paths.")
@click.option("--run", "run_name", metavar="NAME",
              help="Run name [default: <folder>-<manifest stem>]; the same name resumes.")
@db_option
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Processes [default: all cores].")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Only the first N rows of the manifest.")
@click.option("--face-provider", type=click.Choice(["local", "http", "azure"]), default=None,
              help="Face counter [env POSTERLAB_FACE_PROVIDER, default local].")
@click.option("--blob-dir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Where poster bytes are kept [env POSTERLAB_BLOB_DIR].")
@click.option("--no-analysis", is_flag=True, help="Skip the final analysis.")
@wrap_errors
def run(manifest: Path, poster_dir: Path | None, run_name: str | None, db: str | None,
        workers: int | None, limit: int | None, face_provider: str | None,
        blob_dir: Path | None, no_analysis: bool) -> None:
    """Process a manifest here, in a local process pool, with no server.

    Resumable: interrupt it (Ctrl-C) and run the same command again; only the posters
    that did not finish are processed.

    \b
    Examples:
      posterlab run ../shared/data/posters/index.csv --limit 200
      posterlab run movies.csv --poster-dir posters/ --workers 4 --db sqlite:///movies.db
    """
    settings = settings_from(db=db, face_provider=face_provider, blob_dir=blob_dir)
    run_embedded_cli(settings, manifest, poster_dir=poster_dir, run_name=run_name,
                     workers=workers, limit=limit, analysis=not no_analysis)


def run_embedded_cli(settings, manifest: Path, *, poster_dir: Path | None, run_name: str | None,
                     workers: int | None, limit: int | None, analysis: bool = True) -> int:
    from posterlab.ingest import ingest
    from posterlab.pipeline import StageContext, analyse_run
    from posterlab.storage import repository as repo
    from posterlab.workers.local import run_embedded

    store = open_store(settings, create=True)
    ctx = StageContext(settings)
    name = run_name or default_run_name(manifest)
    out = console(stderr=True)
    ingested = ingest(store.factory, ctx, manifest, run_name=name, mode="embedded",
                      poster_dir=poster_dir, limit=limit)
    with store.factory() as session:
        run_row = repo.find_run(session, name)
        pending, total = run_row.pending, run_row.total
    verb = "created" if ingested.created else "resumed"
    out.print(f"run [bold]{name}[/] {verb}: {total} posters, {pending} to process, "
              f"{ingested.failed} refused at reading")
    n_workers = workers or os.cpu_count() or 1
    interrupt_on_signals()
    with _progress() as progress:
        task = progress.add_task("posters", total=pending, detail="")
        counts = {"done": 0, "failed": 0}

        def tick(state: str) -> None:
            counts[state] += 1
            progress.update(task, advance=1,
                            detail=f"done {counts['done']} failed {counts['failed']}")

        summary = run_embedded(store.factory, settings, ingested.run_id, workers=n_workers,
                               on_progress=tick)
    if summary.interrupted:
        out.print(f"[yellow]interrupted[/]: {summary.processed} posters finished; run the same "
                  "command again to process the rest")
        raise SystemExit(130)
    with store.factory() as session:
        run_row = repo.find_run(session, name)
        need_analysis = run_row.pending == 0 and run_row.analysis_state in ("none", "queued")
    if analysis and need_analysis:
        out.print("analysing the run (model and correlations)...")
        with store.factory() as session, session.begin():
            repo.claim_analysis(session, ingested.run_id, force=True)
        analyse_run(store.factory, ingested.run_id)
    print_summary(store, name, settings)
    return ingested.run_id


@cli.command()
@click.option("--posters", "n_posters", type=click.IntRange(min=8, max=5000), default=60,
              show_default=True, help="How many synthetic posters to make.")
@click.option("--out", "out_dir", type=click.Path(path_type=Path, file_okay=False),
              default=Path("posterlab-demo"), show_default=True,
              help="Folder for the posters, the database and the report.")
@db_option
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Processes [default: all cores].")
@wrap_errors
def demo(n_posters: int, out_dir: Path, db: str | None, workers: int | None) -> None:
    """Make a small SYNTHETIC poster set, run every stage embedded, write the report.

    The posters are generated from images that ship with scikit-image (faces from
    ``skimage.data.astronaut()`` on coloured backgrounds) with made-up ratings, so the
    whole system can be seen working with no data and no server.

    \b
    Examples:
      posterlab demo
      posterlab demo --posters 200 --out /tmp/demo
    """
    from posterlab.demo import make_demo_set

    out = console(stderr=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = make_demo_set(out_dir, n_posters, seed=0)
    out.print(f"[bold yellow]SYNTHETIC DATA[/]: {n_posters} posters generated from "
              f"scikit-image's sample images with made-up ratings in {out_dir}/")
    db_url = db or f"sqlite:///{(out_dir / 'posterlab.db').resolve()}"
    settings = settings_from(db=db_url, blob_dir=out_dir / "blobs")
    run_embedded_cli(settings, manifest, poster_dir=None, run_name="demo", workers=workers,
                     limit=None)
    from posterlab.cli.ops import write_report_for

    index = write_report_for(settings, "demo", out_dir / "report")
    out.print(f"report: {index}")
    out.print("[bold yellow]Remember: these posters and ratings are synthetic.[/]")


@cli.command()
@click.argument("manifest", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--poster-dir", type=click.Path(path_type=Path, file_okay=False),
              help="Find posters as DIR/<id>.(jpg|png|...) instead of the manifest's paths.")
@click.option("--run", "run_name", metavar="NAME",
              help="Run name [default: <folder>-<manifest stem>]; the same name adds to it.")
@db_option
@broker_option
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Only the first N rows of the manifest.")
@wrap_errors
def enqueue(manifest: Path, poster_dir: Path | None, run_name: str | None, db: str | None,
            broker: str | None, limit: int | None) -> None:
    """Queue a manifest's posters for `posterlab worker` processes.

    Streams the manifest in batches (constant memory) and publishes the posters in
    chunks; enqueuing the same manifest twice adds nothing.

    \b
    Examples:
      posterlab enqueue ../shared/data/posters/index.csv
      posterlab enqueue movies.csv --db postgresql://postgres@db/posterlab --broker redis://q:6379/0
    """
    from posterlab.ingest import ingest
    from posterlab.pipeline import StageContext
    from posterlab.workers.app import create_app, publish_fetch

    settings = settings_from(db=db, broker=broker)
    store = open_store(settings, create=True)
    app = create_app(settings)
    ctx = StageContext(settings)
    name = run_name or default_run_name(manifest)
    from posterlab.manifest import count_rows

    total = count_rows(manifest)
    if limit:
        total = min(total, limit)
    sent = 0
    try:
        with _progress() as progress, app.producer_or_acquire() as producer:
            task = progress.add_task("enqueue", total=total, detail="")

            def on_batch(ids: list[int], rows: int) -> None:
                nonlocal sent
                sent += publish_fetch(app, ids, producer=producer)
                progress.update(task, advance=rows, detail=f"{sent} messages")

            ingested = ingest(store.factory, ctx, manifest, run_name=name,
                              mode="distributed", poster_dir=poster_dir, limit=limit,
                              on_batch=on_batch)
        # posters of this run whose messages were lost earlier (a broker outage during a
        # previous enqueue) are published again when the broker has nothing for them
        from posterlab.workers.sweeper import sweep

        resent = sweep(app, store.factory, settings, ingested.run_id, unclaimed_after=0).posters
    except KombuOperationalError as exc:
        raise click.ClickException(
            f"cannot reach the broker at {redact_url(settings.broker_url)} "
            f"({type(exc).__name__}: {str(exc).splitlines()[0][:200]}); the rows read so far "
            "are saved: run the same `posterlab enqueue` again when the broker is back"
        ) from None
    extra = f", {resent} waiting posters re-published" if resent else ""
    console(stderr=True).print(
        f"run [bold]{name}[/]: {ingested.rows} rows read, {ingested.queued} posters queued "
        f"in {sent} messages, {ingested.failed} refused at reading, "
        f"{ingested.existing} already in the run{extra}. "
        "Follow it with `posterlab status --watch`.")


@cli.command()
@click.option("--queues", "-Q", default=",".join(QUEUE_NAMES), show_default=True,
              help="Comma-separated queues to consume.")
@click.option("--concurrency", "-c", type=click.IntRange(min=1), default=None,
              help="Worker processes [default: all cores].")
@db_option
@broker_option
@click.option("--hostname", "-n", default=None,
              help="Node name [default: posterlab-<queues>@<host>].")
@click.option("--loglevel", "-l", default="INFO", show_default=True)
@click.option("--pool", type=click.Choice(["prefork", "solo", "threads"]), default="prefork",
              show_default=True)
@wrap_errors
def worker(queues: str, concurrency: int | None, db: str | None, broker: str | None,
           hostname: str | None, loglevel: str, pool: str) -> None:
    """Run a Celery worker for posterlab's queues (start as many as you like, anywhere).

    Every worker host needs the same database, broker and blob folder (a shared volume).

    \b
    Examples:
      posterlab worker                                  # every queue, all cores
      posterlab worker -Q extract -c 8                  # scale feature extraction alone
      posterlab worker -Q faces -c 2 --db postgresql://postgres@db/posterlab
    """
    from posterlab.workers.app import create_app

    chosen = [q.strip() for q in queues.split(",") if q.strip()]
    unknown = sorted(set(chosen) - set(QUEUE_NAMES))
    if unknown:
        raise click.BadParameter(f"unknown queue(s) {unknown}; choose from {QUEUE_NAMES}",
                                 param_hint="--queues")
    settings = settings_from(db=db, broker=broker)
    open_store(settings, create=False).engine.dispose()  # refuse an out-of-date schema now
    app = create_app(settings)
    # imported before the pool forks: children (recycled every few hundred tasks) start
    # with scikit-image and the detector already loaded
    import posterlab.faces.local
    import posterlab.pipeline  # noqa: F401
    node = hostname or f"posterlab-{'-'.join(chosen)}@{socket.gethostname()}"
    argv = ["worker", "-Q", ",".join(chosen), "-n", node, "-l", loglevel, "-P", pool,
            "--without-gossip", "--without-mingle"]
    if concurrency:
        argv += ["-c", str(concurrency)]
    app.worker_main(argv=argv)
