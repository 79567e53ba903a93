"""Starting and resuming work: a run here (embedded), an enqueue for workers, a retry."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from posterlab.errors import PosterlabError
from posterlab.ingest import Ingested, ingest
from posterlab.pipeline import StageContext, analyze_run
from posterlab.service.store import Store
from posterlab.stages import AnalysisState, Stage
from posterlab.storage import posters, runs
from posterlab.storage.engine import transaction

if TYPE_CHECKING:
    from posterlab.analysis.analyze import AnalysisOptions

Progress = Callable[[str], None] | None  # called with "done" or "failed" per poster


@dataclass(frozen=True)
class Started:
    """A run about to be processed here (what ``posterlab run`` prints first)."""

    name: str
    created: bool
    total: int
    pending: int
    refused: int
    duplicates: int = 0  # of the refused: ids already on an earlier row
    warnings: tuple[str, ...] = ()  # about the manifest (rows in another encoding)


@dataclass(frozen=True)
class Processed:
    """What a ``run`` or an embedded ``retry`` did."""

    name: str
    run_id: int
    done: int
    failed: int
    interrupted: bool
    analyzed: bool


@dataclass(frozen=True)
class Enqueued:
    """What ``enqueue`` did: rows read, posters queued in messages, posters re-published."""

    name: str
    run_id: int
    rows: int
    queued: int
    messages: int
    refused: int
    existing: int
    republished: int
    duplicates: int = 0
    warnings: tuple[str, ...] = ()


def default_run_name(manifest: Path) -> str:
    """``<folder>-<stem>`` of the manifest, e.g. ``posters-index`` for posters/index.csv."""
    folder = manifest.resolve().parent.name
    name = f"{folder}-{manifest.stem}" if folder else manifest.stem
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-")[:120] or "run"


def run_manifest(store: Store, manifest: Path, *, run_name: str | None = None,
                 poster_dir: Path | None = None, workers: int | None = None,
                 limit: int | None = None, analysis: bool = True,
                 on_start: Callable[[Started], None] | None = None,
                 on_progress: Progress = None) -> Processed:
    """Read ``manifest`` into a run (or resume it) and process it here, then analyze it."""
    name = run_name or default_run_name(manifest)
    ingested = ingest(store.factory, StageContext(store.settings), manifest, run_name=name,
                      mode="embedded", poster_dir=poster_dir, limit=limit)
    run = store.find_run(name)
    if on_start is not None:
        on_start(Started(name, ingested.created, run.total, run.pending, ingested.failed,
                         ingested.duplicates, tuple(ingested.warnings)))
    return process(store, ingested.run_id, name, workers=workers, analysis=analysis,
                   on_progress=on_progress)


def process(store: Store, run_id: int, name: str, *, workers: int | None = None,
            analysis: bool = True, on_progress: Progress = None) -> Processed:
    """Process the pending posters of an embedded run; analyze it when it is complete."""
    from posterlab.workers.local import run_embedded

    summary = run_embedded(store.factory, store.settings, run_id, workers=workers,
                           on_progress=on_progress)
    analyzed = False
    run = store.find_run(name)
    due = run.pending == 0 and run.analysis_state in (AnalysisState.NONE,
                                                      AnalysisState.QUEUED)
    if not summary.interrupted and due and analysis:
        analyze_now(store, run_id)
        analyzed = True
    elif not summary.interrupted and run.analysis_state == AnalysisState.QUEUED:
        # claimed by the run's last poster but not wanted now: unclaimed, not "queued"
        # for nobody, so a later `posterlab run` of the same run analyses it
        with transaction(store.factory) as session:
            runs.skip_analysis(session, run_id, state=AnalysisState.NONE)
    return Processed(name, run_id, summary.done, summary.failed, summary.interrupted,
                     analyzed)


def analyze_now(store: Store, run_id: int, options: AnalysisOptions | None = None
                ) -> dict[str, Any]:
    """Claim the run's analysis whatever its state, and run it in this process."""
    with transaction(store.factory) as session:
        runs.claim_analysis(session, run_id, force=True)
    return analyze_run(store.factory, run_id, options,
                       lease_seconds=store.settings.lease_seconds)


def queue_analysis(store: Store, run_name: str | None = None) -> bool:
    """Ask for the run's analysis again: queued for the workers of a distributed run
    (True), or, for an embedded run, left to the caller to run with :func:`analyze_now`
    (False: nothing was changed)."""
    run = store.find_run(run_name)
    if run.mode != "distributed":
        return False
    from kombu.exceptions import OperationalError

    from posterlab.workers.celery_app import create_app
    from posterlab.workers.queues import publish_analysis

    with transaction(store.factory) as session:
        runs.claim_analysis(session, run.id, force=True)
    try:
        publish_analysis(create_app(store.settings), run.id)
    except OperationalError as exc:
        raise broker_unreachable(store, exc, "ask again") from None
    return True


def enqueue_manifest(store: Store, manifest: Path, *, run_name: str | None = None,
                     poster_dir: Path | None = None, limit: int | None = None,
                     on_rows: Callable[[int, int], None] | None = None) -> Enqueued:
    """Read ``manifest`` into a distributed run and publish its new posters for workers.

    ``on_rows(rows_in_batch, messages_so_far)`` follows the progress. Posters whose
    messages were lost earlier (a broker outage during a previous enqueue) are published
    again when the broker has nothing for them.
    """
    from kombu.exceptions import OperationalError
    from redis import RedisError

    from posterlab.service.checks import check_broker
    from posterlab.workers.celery_app import create_app
    from posterlab.workers.queues import open_backlog
    from posterlab.workers.sweeper import sweep

    app = create_app(store.settings)
    name = run_name or default_run_name(manifest)
    sent = 0
    try:
        with open_backlog(app, store.factory, store.settings) as queues, \
                app.producer_or_acquire() as producer:
            def on_batch(ids: list[int], rows: int) -> None:
                nonlocal sent
                sent += queues.send(Stage.FETCH, ids, producer=producer)
                if on_rows is not None:
                    on_rows(rows, sent)

            ingested = ingest(store.factory, StageContext(store.settings), manifest,
                              run_name=name, mode="distributed", poster_dir=poster_dir,
                              limit=limit, on_batch=on_batch)
        swept = sweep(app, store.factory, store.settings, ingested.run_id, unclaimed_after=0)
        if (problem := check_broker(store.settings)) is not None:  # sweep stays quiet
            raise OperationalError(problem)
    except (OperationalError, RedisError) as exc:
        raise broker_unreachable(store, exc, "run the same `posterlab enqueue` again") from None
    return _enqueued(name, ingested, sent, swept.posters)


def _enqueued(name: str, ingested: Ingested, sent: int, republished: int) -> Enqueued:
    return Enqueued(name, ingested.run_id, ingested.rows, ingested.queued, sent,
                    ingested.failed, ingested.existing, republished, ingested.duplicates,
                    tuple(ingested.warnings))


def broker_unreachable(store: Store, exc: Exception, then: str) -> PosterlabError:
    from posterlab.config import redact_url

    first = str(exc).splitlines()[0][:200] if str(exc) else ""
    return PosterlabError(
        f"cannot reach the broker at {redact_url(store.settings.broker_url)} "
        f"({type(exc).__name__}: {first}); the rows read so far are saved: {then} "
        "when the broker is back", code="broker")


@dataclass(frozen=True)
class Retried:
    name: str
    mode: str
    posters: int
    processed: Processed | None  # embedded runs are processed right away


def retry(store: Store, run_name: str | None = None, *, reason: str | None = None,
          workers: int | None = None, on_progress: Progress = None,
          process_here: bool = True) -> Retried:
    """Send failed posters (all, or those whose error contains ``reason``) back through
    the pipeline: processed here for an embedded run (unless ``process_here`` is False:
    then the next ``posterlab run`` of it resumes them), re-queued for a distributed one."""
    with transaction(store.factory) as session:
        run = runs.find_run(session, run_name)
        ids = posters.requeue_failed(session, run.id, reason=reason)
        mode, run_id, name = run.mode, run.id, run.name
    if not ids:
        return Retried(name, mode, 0, None)
    if mode == "distributed":
        from kombu.exceptions import OperationalError
        from redis import RedisError

        from posterlab.workers.celery_app import create_app
        from posterlab.workers.queues import open_backlog

        app = create_app(store.settings)
        try:
            with open_backlog(app, store.factory, store.settings) as queues, \
                    app.producer_or_acquire() as producer:
                queues.send(Stage.FETCH, ids, producer=producer)
        except (OperationalError, RedisError) as exc:
            raise broker_unreachable(store, exc, "run `posterlab status`") from None
        return Retried(name, mode, len(ids), None)
    if not process_here:
        return Retried(name, mode, len(ids), None)
    done = process(store, run_id, name, workers=workers, on_progress=on_progress)
    return Retried(name, mode, len(ids), done)
