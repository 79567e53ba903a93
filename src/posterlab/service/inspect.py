"""Looking at runs: the ``status --json`` object, failures by reason, the list of runs."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from posterlab.service.store import Store
from posterlab.stages import PENDING, End
from posterlab.storage import repository as repo
from posterlab.storage.models import Run, utcnow

RATE_WINDOW = 60  # seconds of recent completions used for the speed and the ETA
WORKERS_WINDOW = timedelta(minutes=5)  # a worker that touched a poster this recently


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
        run = repo.find_run(session, run.name)
        counts = repo.status_counts(session, run.id)
        recent, first, last = repo.recent_finished(
            session, run.id, utcnow() - timedelta(seconds=RATE_WINDOW))
        workers = repo.workers_seen(session, run.id, utcnow() - WORKERS_WINDOW)
        figures = repo.face_figures(session, run.id)
    pending = sum(counts[s] for s in PENDING)
    rate = _rate(recent, first, last, ended=pending == 0)
    return {
        "run": run.name, "mode": run.mode, "total": run.total, "counts": counts,
        "pending": pending, "complete": pending == 0, **figures,
        "posters_per_second": round(rate, 3),
        "eta_seconds": round(pending / rate, 1) if rate > 0 and pending else None,
        "workers_seen": workers, "analysis": run.analysis_state,
        "created_at": _iso(run.created_at), "finished_at": _iso(run.finished_at),
        "swept": swept,
    }


def _rate(recent: int, first: datetime | None, last: datetime | None, *, ended: bool
          ) -> float:
    """Completions per second over the recent window (ending now, or at the run's end)."""
    if not recent or first is None or last is None:
        return 0.0
    end = last if ended else utcnow()
    return recent / max(1.0, (end - first).total_seconds())


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def failures(store: Store, run_name: str | None = None, *, examples: int = 3
             ) -> dict[str, Any]:
    """Failed posters grouped by reason, largest group first, with a few examples."""
    with store.factory() as session:
        run = repo.find_run(session, run_name)
        return {"run": run.name,
                "groups": repo.failure_groups(session, run.id, examples=examples)}


def list_runs(store: Store) -> list[dict[str, Any]]:
    """Every run with its mode, counts, creation date and analysis state."""
    with store.factory() as session:
        runs = [(r, repo.status_counts(session, r.id)) for r in repo.list_runs(session)]
    return [{"run": r.name, "mode": r.mode, "total": r.total, "counts": c,
             "pending": sum(v for k, v in c.items() if k not in (End.DONE, End.FAILED)),
             "created_at": r.created_at.isoformat(), "analysis": r.analysis_state}
            for r, c in runs]
