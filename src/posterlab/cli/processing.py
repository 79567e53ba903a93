"""Commands that process posters: demo, run, enqueue, worker."""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from posterlab.cli.common import (
    EXIT_FAILURE,
    broker_option,
    cli,
    console,
    db_option,
    json_option,
    open_store,
    preflight,
    profile_option,
    settings_from,
    skip_checks_option,
    strict_option,
    wrap_errors,
)
from posterlab.cli.render import print_summary, print_warnings, refused_text, safe
from posterlab.config import Settings
from posterlab.stages import PENDING, QUEUES, Stage

if TYPE_CHECKING:
    from posterlab.service.runs import Started



def _progress(quiet: bool = False) -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[detail]}"), TimeRemainingColumn(),
                    console=console(stderr=True), transient=False, disable=quiet,
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
@profile_option
@click.option("--no-analysis", is_flag=True, help="Skip the final analysis.")
@strict_option
@skip_checks_option
@json_option
@wrap_errors
def run(manifest: Path, poster_dir: Path | None, run_name: str | None, db: str | None,
        workers: int | None, limit: int | None, face_provider: str | None,
        blob_dir: Path | None, profile: str | None, no_analysis: bool, strict: bool,
        skip_checks: bool, as_json: bool) -> None:
    """Process a manifest here, in a local process pool, with no server.

    Resumable: interrupt it (Ctrl-C) and run the same command again; only the posters
    that did not finish are processed. Exits 1 when every poster failed (with --strict:
    when any did).

    \b
    Examples:
      posterlab run ../shared/data/posters/index.csv --limit 200
      posterlab run movies.csv --poster-dir posters/ --workers 4 --db sqlite:///movies.db
      posterlab run movies.csv --json --strict > run.json
      posterlab run MovieGenre.csv --profile course --run case-study
    """
    from posterlab.workers.process import pool_context, pool_size

    settings = settings_from(db=db, face_provider=face_provider, blob_dir=blob_dir,
                             profile=profile)
    pool_context(pool_size(workers))  # its imports overlap ours
    preflight(settings, skip_checks, create=True, faces=True, manifest=manifest,
              poster_dir=poster_dir)
    name, processed = run_embedded_cli(settings, manifest, poster_dir=poster_dir,
                                       run_name=run_name, workers=workers, limit=limit,
                                       analysis=not no_analysis, quiet=as_json)
    conclude(settings, name, strict=strict, as_json=as_json, processed=processed)


def conclude(settings: Settings, name: str, *, strict: bool, as_json: bool,
             **extra: Any) -> None:
    """The end of a command that processed posters: its JSON, a pointer to the failures,
    and its exit code (1 when every poster failed, or any with ``strict``)."""
    from posterlab.service.inspect import summary

    with open_store(settings, existing=True) as store:
        result = {**summary(store, name), **extra}
    if as_json:
        click.echo(json.dumps(result))
    counts = result["counts"]
    failed = counts["failed"]
    if failed:
        console(stderr=True).print(
            f"{failed} of {result['total']} posters failed: see "
            f"`posterlab failures --run {safe(shlex.quote(name))}`")
    waiting = sum(counts.get(stage, 0) for stage in PENDING)
    if failed and not waiting and (strict or not counts["done"]):
        raise SystemExit(EXIT_FAILURE)


def run_embedded_cli(settings: Settings, manifest: Path, *, poster_dir: Path | None,
                     run_name: str | None, workers: int | None, limit: int | None,
                     analysis: bool = True, quiet: bool = False
                     ) -> tuple[str, dict[str, int]]:
    """``posterlab run``: a progress bar over :func:`posterlab.service.run_manifest`;
    the run's name and the posters done and failed now."""
    from posterlab.service.runs import run_manifest

    out = console(stderr=True, quiet=quiet)
    with open_store(settings, create=True) as store, _progress(quiet) as progress:
        bar = progress.add_task("posters", total=None, detail="")
        counts = {"done": 0, "failed": 0}

        def started(s: Started) -> None:
            verb = "created" if s.created else "resumed"
            out.print(f"run [bold]{safe(s.name)}[/] {verb}: {s.total} posters, {s.pending} "
                      f"to process, {refused_text(s.refused, s.duplicates)}")
            print_warnings(out, s.warnings)
            progress.update(bar, total=s.pending)
            interrupt_on_signals()

        def tick(state: str) -> None:
            counts[state] += 1
            progress.update(bar, advance=1,
                            detail=f"done {counts['done']} failed {counts['failed']}")

        done = run_manifest(store, manifest, run_name=run_name, poster_dir=poster_dir,
                            workers=workers, limit=limit, analysis=analysis,
                            on_start=started, on_progress=tick)
        progress.stop()
        if done.interrupted:
            out.print(f"[yellow]interrupted[/]: {done.done + done.failed} posters finished; "
                      "run the same command again to process the rest")
            raise SystemExit(130)
        if not quiet:
            print_summary(store, done.name)
    return done.name, {"done": done.done, "failed": done.failed}


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
              f"scikit-image's sample images with made-up ratings in {safe(out_dir)}/")
    db_url = db or f"sqlite:///{(out_dir / 'posterlab.db').resolve()}"
    settings = settings_from(db=db_url, blob_dir=out_dir / "blobs", synthetic=True)
    run_embedded_cli(settings, manifest, poster_dir=None, run_name="demo", workers=workers,
                     limit=None)
    from posterlab.service.results import report

    with open_store(settings) as store:
        index = report(store, "demo", out_dir / "report")
    out.print(f"report: {safe(index)}")
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
@profile_option
@skip_checks_option
@json_option
@wrap_errors
def enqueue(manifest: Path, poster_dir: Path | None, run_name: str | None, db: str | None,
            broker: str | None, limit: int | None, profile: str | None, skip_checks: bool,
            as_json: bool) -> None:
    """Queue a manifest's posters for `posterlab worker` processes.

    Streams the manifest in batches (constant memory) and publishes the posters in
    chunks; enqueuing the same manifest twice adds nothing. Exits 1 when the posters
    could not be published (the rows read are kept: run it again).

    \b
    Examples:
      posterlab enqueue ../shared/data/posters/index.csv
      posterlab enqueue movies.csv --db postgresql://postgres@db/posterlab --broker redis://q:6379/0
      posterlab enqueue movies.csv --json | jq .queued
      posterlab enqueue MovieGenre.csv --profile course
    """
    from posterlab.manifest import count_rows
    from posterlab.service.inspect import summary
    from posterlab.service.runs import enqueue_manifest

    settings = settings_from(db=db, broker=broker, profile=profile)
    preflight(settings, skip_checks, create=True, broker=True, faces=True, manifest=manifest,
              poster_dir=poster_dir)
    total = count_rows(manifest) if manifest.is_file() else None
    with open_store(settings, create=True) as store, _progress(as_json) as progress:
        bar = progress.add_task("enqueue", total=min(total, limit or total) if total else None,
                                detail="")
        done = enqueue_manifest(
            store, manifest, run_name=run_name, poster_dir=poster_dir, limit=limit,
            on_rows=lambda rows, sent: progress.update(bar, advance=rows,
                                                       detail=f"{sent} messages"))
        result = {**summary(store, done.run_id), **asdict(done)}
    if as_json:
        click.echo(json.dumps(result))
        return
    extra = f", {done.republished} waiting posters re-published" if done.republished else ""
    out = console(stderr=True)
    print_warnings(out, done.warnings)
    out.print(
        f"run [bold]{safe(done.name)}[/]: {done.rows} rows read, {done.queued} posters "
        f"queued in {done.messages} messages, {refused_text(done.refused, done.duplicates)}, "
        f"{done.existing} already in the run{extra}. "
        "Follow it with `posterlab status --watch`.")


@cli.command(context_settings={"ignore_unknown_options": False})
@click.option("--queues", "-Q", default=",".join(QUEUES), show_default=True,
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
@skip_checks_option
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED, metavar="[-- CELERY_ARGS]")
@wrap_errors
def worker(queues: str, concurrency: int | None, db: str | None, broker: str | None,
           hostname: str | None, loglevel: str, pool: str, skip_checks: bool,
           celery_args: tuple[str, ...]) -> None:
    """Run a Celery worker for posterlab's queues (start as many as you like, anywhere).

    Every worker host needs the same database, broker and blob folder (a shared volume).
    Options after `--` go to `celery worker` as they are (-E for Flower's task events,
    --autoscale, --max-tasks-per-child, ...).

    \b
    Examples:
      posterlab worker                                  # every queue, all cores
      posterlab worker -Q extract -c 8                  # scale feature extraction alone
      posterlab worker -Q faces -c 2 --db postgresql://postgres@db/posterlab
      posterlab worker -Q extract -- -E --autoscale 8,2 # Celery's own options
    """
    from posterlab.workers.celery_app import create_app
    from posterlab.workers.heartbeat import Heartbeat
    from posterlab.workers.process import preload

    chosen = [q.strip() for q in queues.split(",") if q.strip()]
    unknown = sorted(set(chosen) - set(QUEUES))
    if unknown:
        raise click.BadParameter(f"unknown queue(s) {unknown}; choose from {list(QUEUES)}",
                                 param_hint="--queues")
    settings = settings_from(db=db, broker=broker)
    preflight(settings, skip_checks, broker=True, faces=Stage.FACES.queue in chosen)
    side = None
    if pool == "prefork" and Stage.FETCH.queue in chosen and len(chosen) > 1:
        # downloads wait on the network: a thread worker beside the pool takes them, so
        # no pool process (no core) ever waits on a download
        chosen.remove(Stage.FETCH.queue)
        side = _fetch_worker(settings, hostname, loglevel)
    app = create_app(settings)
    preload()  # before the pool forks: recycled children start with it all loaded
    node = hostname or f"posterlab-{'-'.join(chosen)}@{socket.gethostname()}"
    argv = ["worker", "-Q", ",".join(chosen), "-n", node, "-l", loglevel, "-P", pool,
            "--without-gossip", "--without-mingle"]
    if concurrency:
        argv += ["-c", str(concurrency)]
    try:
        with Heartbeat(settings, node, chosen, app=app):
            app.worker_main(argv=[*argv, *celery_args])
    finally:
        if side is not None:
            _stop(side)


FETCH_TASKS = 4  # fetch messages at once in the side worker; each downloads 32 posters at once


def _fetch_worker(settings: Settings, hostname: str | None, loglevel: str
                  ) -> subprocess.Popen[bytes]:
    """``posterlab worker -Q fetch --pool threads`` beside this one, with its settings
    (passed in the environment, never on a command line that `ps` shows)."""
    env = {**os.environ, "POSTERLAB_DATABASE_URL": settings.database_url,
           "POSTERLAB_BROKER_URL": settings.broker_url,
           "POSTERLAB_BLOB_DIR": str(settings.blob_dir)}
    host = hostname.split("@", 1)[-1] if hostname else socket.gethostname()
    return subprocess.Popen([sys.executable, "-m", "posterlab", "worker", "-Q",
                             Stage.FETCH.queue, "--pool", "threads", "-c", str(FETCH_TASKS),
                             "-n", f"posterlab-{Stage.FETCH.queue}@{host}", "-l", loglevel],
                            env=env)


def _stop(side: subprocess.Popen[bytes], timeout: float = 30) -> None:
    if side.poll() is None:
        side.terminate()
        try:
            side.wait(timeout)
        except subprocess.TimeoutExpired:
            side.kill()
            side.wait()
