"""posterlab: what in a movie poster goes with how well the movie is rated.

The Python API mirrors the command line; every function opens the database named by
``db`` (default ``POSTERLAB_DATABASE_URL``), does what the command does, and closes it.

>>> import posterlab
>>> summary = posterlab.run("movies.csv", db="sqlite:///movies.db")  # doctest: +SKIP
>>> posterlab.status(db="sqlite:///movies.db")["counts"]               # doctest: +SKIP
>>> df = posterlab.results(db="sqlite:///movies.db")                   # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from posterlab.service import Store

__version__ = "0.1.0"

__all__ = ["__version__", "analyze", "cancel", "delete", "enqueue", "face_detections", "purge",
           "rename", "report", "results", "run", "status"]


def _store(create: bool = False, readonly: bool = False, existing: bool = False,
           **settings: Any) -> Store:
    from posterlab.config import load_settings
    from posterlab.service import open_store

    chosen = {k: v for k, v in settings.items() if v is not None}
    return open_store(load_settings(**chosen), create=create, readonly=readonly,
                      existing=existing)


def run(manifest: str | Path, *, db: str | None = None, run: str | None = None,
        workers: int | None = None, limit: int | None = None,
        poster_dir: str | Path | None = None, blob_dir: str | Path | None = None,
        analysis: bool = True, profile: str | None = None) -> dict[str, Any]:
    """Process a manifest here, like ``posterlab run``; the run's ``status`` dict, with
    ``processed`` (posters done and failed now) and ``interrupted``. ``profile``:
    ``course``, ``standard`` or ``full`` (the features computed)."""
    from posterlab.service import run_manifest, status

    with _store(create=True, database_url=db, profile=profile,
                blob_dir=Path(blob_dir) if blob_dir else None) as store:
        done = run_manifest(store, Path(manifest), run_name=run, workers=workers, limit=limit,
                            poster_dir=Path(poster_dir) if poster_dir else None,
                            analysis=analysis)
        return {**status(store, done.name, sweep_first=False),
                "processed": {"done": done.done, "failed": done.failed},
                "interrupted": done.interrupted}


def enqueue(manifest: str | Path, *, db: str | None = None, broker: str | None = None,
            run: str | None = None, limit: int | None = None,
            poster_dir: str | Path | None = None, profile: str | None = None
            ) -> dict[str, Any]:
    """Queue a manifest for workers, like ``posterlab enqueue``; what was queued."""
    from dataclasses import asdict

    from posterlab.service import enqueue_manifest

    with _store(create=True, database_url=db, broker_url=broker, profile=profile) as store:
        done = enqueue_manifest(store, Path(manifest), run_name=run, limit=limit,
                                poster_dir=Path(poster_dir) if poster_dir else None)
        return asdict(done)


def status(run: str | None = None, *, db: str | None = None, broker: str | None = None
           ) -> dict[str, Any]:
    """The ``posterlab status --json`` object of a run (default: the most recent)."""
    from posterlab.service import status as run_status

    with _store(existing=True, database_url=db, broker_url=broker) as store:
        return run_status(store, run)


def results(run: str | None = None, db: str | None = None, *, vectors: bool = True
            ) -> pd.DataFrame:
    """The results of a run as a DataFrame, one row per movie (for notebooks).

    ``run`` defaults to the most recent run, ``db`` to ``POSTERLAB_DATABASE_URL``.
    Columns are those of ``posterlab export``; with ``vectors`` the histograms and HOG
    come as numpy arrays.

    >>> import posterlab
    >>> df = posterlab.results(db="sqlite:///posterlab.db")  # doctest: +SKIP
    """
    from posterlab.service import results as run_results

    with _store(readonly=True, existing=True, database_url=db) as store:
        return run_results(store, run, vectors=vectors)


def face_detections(run: str | None = None, db: str | None = None) -> pd.DataFrame:
    """Every face detection of a run, scored and boxed, one row each (for notebooks).

    Columns ``imdb_id, provider, score, x, y, w, h, image_height``; the local detector
    keeps its candidates below the counting threshold too, so counts at any threshold
    above its floor (``score >= t``) or of faces of any size need no new run.

    >>> import posterlab
    >>> d = posterlab.face_detections(db="sqlite:///posterlab.db")  # doctest: +SKIP
    >>> d[d.score >= 0.7].groupby("imdb_id").size()                 # doctest: +SKIP
    """
    from posterlab.service import face_detections as run_detections

    with _store(readonly=True, database_url=db) as store:
        return run_detections(store, run)


def analyze(run: str | None = None, *, db: str | None = None, stored: bool = False
            ) -> dict[str, Any]:
    """Analyze a run again, like ``posterlab analyze --json`` (``stored``: the stored one)."""
    from posterlab.service import analyze as run_analyze

    with _store(existing=True, database_url=db) as store:
        return run_analyze(store, run, stored=stored)


def report(out: str | Path, *, run: str | None = None, db: str | None = None) -> Path:
    """Write the run's report into the folder ``out``, like ``posterlab report``; the HTML."""
    from posterlab.service import report as run_report

    with _store(existing=True, database_url=db) as store:
        return run_report(store, run, Path(out))


def cancel(run: str, *, db: str | None = None, broker: str | None = None,
           analysis: bool = True) -> dict[str, Any]:
    """Cancel a run, like ``posterlab cancel --json``: its waiting posters end
    ``cancelled`` and the analysis runs on what is done unless ``analysis`` is False."""
    from posterlab.service.lifecycle import cancel as cancel_run

    with _store(existing=True, database_url=db, broker_url=broker) as store:
        return cancel_run(store, run, analysis=analysis)


def delete(run: str, *, db: str | None = None) -> dict[str, Any]:
    """Delete a run and its posters' rows, like ``posterlab delete --yes --json``."""
    from posterlab.service.lifecycle import delete as delete_run

    with _store(existing=True, database_url=db) as store:
        return delete_run(store, run)


def rename(old: str, new: str, *, db: str | None = None) -> dict[str, Any]:
    """Rename a run, like ``posterlab rename --run OLD NEW``."""
    from posterlab.service.lifecycle import rename as rename_run

    with _store(existing=True, database_url=db) as store:
        return rename_run(store, old, new)


def purge(*, broker: str | None = None) -> dict[str, Any]:
    """Empty posterlab's queues, like ``posterlab purge --yes --json``."""
    from posterlab.config import load_settings
    from posterlab.service.lifecycle import purge as purge_queues

    return purge_queues(broker or load_settings().broker_url)
