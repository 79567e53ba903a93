"""Looking at runs: the ``status --json`` object, failures by reason, the list of runs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from posterlab.service.store import Store
from posterlab.stages import AnalysisState
from posterlab.storage import counts, queries, runs, workers
from posterlab.storage.engine import transaction
from posterlab.storage.models import Run


def sweep(store: Store, run: Run) -> int:
    """Re-queue abandoned work of a distributed run; how many posters (and analyses)."""
    if run.mode != "distributed":
        return 0
    from posterlab.workers.celery_app import create_app
    from posterlab.workers.sweeper import sweep as sweep_run

    swept = sweep_run(create_app(store.settings), store.factory, store.settings, run.id)
    return swept.posters + int(swept.analysis)


def status(store: Store, run_name: str | None = None, *, sweep_first: bool = True
           ) -> dict[str, Any]:
    """The ``status --json`` object of a run (contract: run, total, counts, face-API
    figures), with speed, ETA, workers seen, the analysis state and what was re-queued."""
    run = store.find_run(run_name)
    swept = sweep(store, run) if sweep_first else 0
    with store.factory() as session:
        run = runs.find_run(session, run.name)
        progress = queries.run_progress(session, run)
        nodes = workers.seen_since(session, progress.as_of - queries.WORKER_WINDOW,
                                   run_id=run.id, recent=progress.as_of - queries.RATE_WINDOW)
    if progress.needs_compaction:
        fold_counts(store, run.id)
    eta = progress.eta_seconds
    return {
        "run": run.name, "mode": run.mode, "total": run.total, "counts": dict(progress.counts),
        "pending": progress.pending, "complete": progress.complete, **progress.faces,
        "posters_per_second": round(progress.posters_per_second, 3),
        "eta_seconds": round(eta, 1) if eta is not None else None,
        "workers_seen": progress.workers_seen, "analysis": run.analysis_state,
        "settled": progress.complete and AnalysisState(run.analysis_state).settled,
        "workers": [{"name": n.name, "hostname": n.hostname, "queues": n.queues.split(","),
                     "posters_last_minute": n.posters_last_minute,
                     "last_seen": n.last_seen.isoformat()} for n in nodes],
        "created_at": _iso(run.created_at), "finished_at": _iso(run.finished_at),
        "swept": swept,
    }


def fold_counts(store: Store, run_id: int) -> None:
    """Fold the run's count deltas (PostgreSQL) so the next read sums a few rows."""
    with transaction(store.factory) as session:
        counts.compact(session, run_id)


def summary(store: Store, run: int | str | None) -> dict[str, Any]:
    """The short account of a run that every ``--json`` of a command that changes runs
    starts with: ``run``, ``mode``, ``total``, ``counts``, ``failures`` (reason -> posters),
    ``analysis`` (its state) and ``database`` (where the rows went, no password)."""
    with store.factory() as session:
        found = runs.get_run(session, run) if isinstance(run, int) else runs.find_run(
            session, run)
        by_status = queries.status_counts(session, found.id)
        groups = queries.failure_groups(session, found.id, examples=0)
    return {"run": found.name, "mode": found.mode, "total": found.total, "counts": by_status,
            "failures": {g["code"] or "unknown": g["count"] for g in groups},
            "analysis": found.analysis_state,
            "database": store.settings.redacted()["database_url"]}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def failures(store: Store, run_name: str | None = None, *, examples: int = 3
             ) -> dict[str, Any]:
    """Failed posters grouped by reason, largest group first, with a few examples."""
    with store.factory() as session:
        run = runs.find_run(session, run_name)
        return {"run": run.name,
                "groups": queries.failure_groups(session, run.id, examples=examples)}


def list_runs(store: Store) -> list[dict[str, Any]]:
    """Every run with its mode, counts, progress, speed, ETA, dates and analysis state."""
    with store.factory() as session:
        found = [(r, queries.run_progress(session, r)) for r in runs.list_runs(session)]
    return [_run_entry(r, p) for r, p in found]


def _run_entry(run: Run, progress: queries.RunProgress) -> dict[str, Any]:
    eta = progress.eta_seconds
    return {"run": run.name, "mode": run.mode, "total": run.total,
            "counts": dict(progress.counts), "pending": progress.pending,
            "posters_per_second": round(progress.posters_per_second, 3),
            "eta_seconds": round(eta, 1) if eta is not None else None,
            "created_at": run.created_at.isoformat(), "finished_at": _iso(run.finished_at),
            "analysis": run.analysis_state}
