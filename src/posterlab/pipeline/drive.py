"""Drive: claim, compute and record a batch of posters at one stage, in this process.

What a Celery task does with the ids of its message. The database transaction is never
held while computing; the embedded runner uses the same claim and record steps around
its process pool instead.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session, sessionmaker

from posterlab.pipeline.claim import claim_and_plan
from posterlab.pipeline.compute import compute_chain, fetch_all
from posterlab.pipeline.context import StageContext
from posterlab.pipeline.record import end, record_batch
from posterlab.pipeline.results import Chain, Transition
from posterlab.stages import End, Stage
from posterlab.storage import posters
from posterlab.storage.engine import transaction


def run_batch(factory: sessionmaker[Session], ctx: StageContext, stage: Stage,
              poster_ids: Sequence[int], *, attempt: int = 1,
              through: Stage | None = None) -> list[Transition]:
    """Take ``poster_ids`` through ``stage`` (and the chainable stages after it up to
    ``through``); where each poster that was still at ``stage`` stands now."""
    with transaction(factory) as session:
        planned = claim_and_plan(session, ctx, stage, poster_ids, attempt=attempt)
    if stage is Stage.FETCH:  # downloads wait, not compute: all of the batch at once
        chains: list[Chain] = [[result] for result in fetch_all(planned.jobs, ctx)]
    else:  # one at a time, each named first: a death is charged to that poster alone
        chains = []
        for job in planned.jobs:
            ctx.computing(job.poster_id)
            chains.append(compute_chain(job, ctx, through=through or stage))
        ctx.computing(None)
    if not chains:
        return planned.moved
    with transaction(factory) as session:
        return planned.moved + record_batch(session, chains, ctx, planned.run_of)


def fail_posters(factory: sessionmaker[Session], stage: Stage, poster_ids: Sequence[int], *,
                 code: str, error: str) -> list[Transition]:
    """End these posters ``failed`` at ``stage`` with a reason (those still there)."""
    out: list[Transition] = []
    with transaction(factory) as session:
        for pid in poster_ids:
            run_id = posters.run_id_of(session, pid)
            if run_id is not None and (
                    moved := end(session, pid, run_id, stage, End.FAILED, error=error,
                                 error_code=code)) is not None:
                out.append(moved)
    return out
