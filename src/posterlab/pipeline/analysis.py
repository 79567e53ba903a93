"""The run's final analysis: read its results, analyze them, store the outcome."""

from __future__ import annotations

import dataclasses
import importlib.metadata
import logging
import multiprocessing
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from posterlab.stages import AnalysisState, End
from posterlab.storage import runs
from posterlab.storage.engine import transaction

if TYPE_CHECKING:
    import pandas as pd

    from posterlab.analysis.analyze import AnalysisOptions
    from posterlab.storage.models import Run

log = logging.getLogger(__name__)


def lost_after(lease_seconds: float) -> timedelta:
    """How long a running analysis may go unrenewed before it counts as lost with its
    worker: one and a half leases (it renews every third of one, so four or five
    renewals missed in a row), after which any living worker queues it again."""
    return timedelta(seconds=1.5 * lease_seconds)


def analysis_workers() -> int:
    """Processes the analysis may use: both cores, unless this is a daemonic pool child
    (a Celery prefork worker), which may not start processes of its own."""
    if multiprocessing.current_process().daemon:
        return 1
    return max(1, min(2, os.cpu_count() or 1))


@contextmanager
def _renewing(factory: sessionmaker[Session], run_id: int, every: float) -> Iterator[None]:
    """Renew the run's analysis lease on a thread while the body runs."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(every):
            try:
                with transaction(factory) as session:
                    runs.renew_analysis(session, run_id)
            except SQLAlchemyError as exc:  # a database outage: the next beat tries again
                log.warning("could not renew the analysis lease of run %s: %s", run_id, exc)

    thread = threading.Thread(target=beat, name="posterlab-analysis-lease", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)


def analysis_frame(session: Session, run: Run, *, histograms: bool = False) -> pd.DataFrame:
    """The run's done posters as the analysis reads them: the export's columns, and
    ``face_scores`` (every detection's score per poster, None where unknown) when the
    run's detector kept them, so the face-count effect is checked at other thresholds."""
    import pandas as pd

    from posterlab.storage import queries
    from posterlab.storage.export import results_frame

    frame = results_frame(session, run, vectors=histograms)
    done = frame[frame["status"] == End.DONE].reset_index(drop=True)
    scores = queries.face_scores(session, run)
    if any(v is not None for v in scores.values()):
        done["face_scores"] = pd.Series([scores.get(s) for s in done["sha256"]],
                                        index=done.index, dtype=object)
    return done


def run_provenance(run: Run) -> dict[str, Any]:
    """The provenance of an analysis of ``run`` now (``n`` is filled in by the analysis)."""
    from posterlab.analysis.provenance import provenance

    settings = dict(run.settings or {})
    try:
        version = importlib.metadata.version("posterlab")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    detector = {"provider": settings.get("face_provider"), "key": run.face_key}
    return provenance(posterlab_version=version, run=run.name,
                      created_at=datetime.now(UTC).isoformat(timespec="seconds"),
                      feature_version=run.feature_version, face_detector=detector,
                      settings=settings, synthetic=bool(settings.get("synthetic")))  # fmt: skip


def analyze_run(factory: sessionmaker[Session], run_id: int,
                options: AnalysisOptions | None = None, *,
                max_crashes: int | None = None, lease_seconds: float = 10.0) -> dict[str, Any]:
    """Analyze a run (out-of-fold models, correlations, controls); store and return it.

    Whatever goes wrong, the run's analysis ends ``done`` or ``failed`` (with the error),
    never stuck in ``running``; ``posterlab analyze`` re-runs it by hand. A process that
    dies in it leaves it ``running``: after ``max_crashes`` such deliveries it is
    ``failed`` (``worker-crashed``) and that failure is returned, so a redelivered message
    that kills every worker it reaches stops. While it runs, ``analysis_at`` is renewed
    every third of ``lease_seconds``: an analysis silent for longer than
    :func:`lost_after` lost its worker, and the workers' sweeps queue it again.
    """
    with transaction(factory) as session:  # first: the sweeper leaves a running one alone
        crashes = runs.begin_analysis(session, run_id, max_crashes=max_crashes)
        given_up = dict(runs.get_run(session, run_id).analysis or {})
    if crashes is None:
        log.error("analysis of run %s: its worker died in it %s times; given up", run_id,
                  max_crashes)
        return given_up
    try:
        from posterlab.analysis.analyze import AnalysisOptions, analyze

        with factory() as session:
            run = runs.get_run(session, run_id)
            done = analysis_frame(session, run, histograms=bool(options and options.histograms))
            prov = run_provenance(run)
        options = options or AnalysisOptions()
        if options.workers == 1:
            options = dataclasses.replace(options, workers=analysis_workers())
        with _renewing(factory, run_id, lease_seconds / 3):
            result = analyze(done, options, provenance=prov).to_dict()
    except Exception as exc:
        log.exception("analysis of run %s failed", run_id)
        with transaction(factory) as session:
            runs.save_analysis(session, run_id, state=AnalysisState.FAILED,
                               result={"error": f"{type(exc).__name__}: {exc}"})
        raise
    with transaction(factory) as session:
        runs.save_analysis(session, run_id, state=AnalysisState.DONE, result=result)
    return result
