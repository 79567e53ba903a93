"""The run's final analysis: read its results, analyze them, store the outcome."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from posterlab.stages import AnalysisState, End
from posterlab.storage import runs
from posterlab.storage.engine import transaction

log = logging.getLogger(__name__)


def analyze_run(factory: sessionmaker[Session], run_id: int) -> dict[str, Any]:
    """Train the model and compute the correlations of a run; store and return the result.

    Whatever goes wrong, the run's analysis ends ``done`` or ``failed`` (with the error),
    never stuck in ``running``; ``posterlab analyze`` re-runs it by hand.
    """
    with transaction(factory) as session:  # first: the sweeper leaves a running one alone
        previous = runs.get_run(session, run_id).analysis
        runs.save_analysis(session, run_id, state=AnalysisState.RUNNING, result=previous)
    try:
        from posterlab.analysis import analyze
        from posterlab.storage.export import results_frame

        with factory() as session:
            frame = results_frame(session, runs.get_run(session, run_id), vectors=True)
        done = frame[frame["status"] == End.DONE].reset_index(drop=True)
        result = analyze(done, seed=0).to_dict()
    except Exception as exc:
        log.exception("analysis of run %s failed", run_id)
        with transaction(factory) as session:
            runs.save_analysis(session, run_id, state=AnalysisState.FAILED,
                               result={"error": f"{type(exc).__name__}: {exc}"})
        raise
    with transaction(factory) as session:
        runs.save_analysis(session, run_id, state=AnalysisState.DONE, result=result)
    return result
