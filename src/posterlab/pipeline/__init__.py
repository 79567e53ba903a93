"""The stages of a poster as plain functions over ids, used by both modes.

A poster moves ``fetch -> extract -> faces -> done`` (or ``failed`` at any stage; see
:mod:`posterlab.stages`). The rooms:

- :mod:`~posterlab.pipeline.claim`: claim a batch at a stage and plan it; cached
  answers move posters on at once, the rest become small picklable jobs;
- :mod:`~posterlab.pipeline.compute`: a job's work in any process, no database;
  errors become data (one result type per stage, or ``Failed``);
- :mod:`~posterlab.pipeline.record`: store results with conditional updates, so a
  stage done twice leaves one row, the same row, and counts its run down exactly once;
- :mod:`~posterlab.pipeline.drive`: claim, compute, record in one process (a Celery task);
- :mod:`~posterlab.pipeline.analysis`: the run's final analysis.
"""

from typing import TYPE_CHECKING

import lazy_loader

if TYPE_CHECKING:  # the names below, for type checkers; loaded on first use
    from posterlab.pipeline.analysis import analyze_run
    from posterlab.pipeline.claim import Planned, claim_and_plan
    from posterlab.pipeline.compute import chainable, compute, compute_chain
    from posterlab.pipeline.context import StageContext
    from posterlab.pipeline.drive import run_batch
    from posterlab.pipeline.record import backoff, record_batch, record_chain
    from posterlab.pipeline.results import (
        Chain,
        Counted,
        Extracted,
        Failed,
        Fetched,
        Job,
        Result,
        Transition,
    )

__all__ = [
    "Chain", "Counted", "Extracted", "Failed", "Fetched", "Job", "Planned", "Result",
    "StageContext", "Transition", "analyze_run", "backoff", "chainable", "claim_and_plan",
    "compute", "compute_chain", "record_batch", "record_chain", "run_batch",
]

# submodules load on first use: a command that needs none of the heavy ones
# (scikit-image, pandas, the analysis) starts without importing them
__getattr__, __dir__, _ = lazy_loader.attach(__name__, submod_attrs={
    "analysis": ["analyze_run"],
    "claim": ["Planned", "claim_and_plan"],
    "compute": ["chainable", "compute", "compute_chain"],
    "context": ["StageContext"],
    "drive": ["run_batch"],
    "record": ["backoff", "record_batch", "record_chain"],
    "results": ["Chain", "Counted", "Extracted", "Failed", "Fetched", "Job", "Result",
               "Transition"],
})
