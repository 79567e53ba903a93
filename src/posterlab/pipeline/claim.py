"""Claim and plan: take a batch of posters at a stage and decide what each needs.

The one path by which both modes start work: a Celery task claims the ids of its
message, the embedded runner the posters it is about to hand to its pool. A poster
whose answer is already cached (features of the same bytes and preprocessing, faces of
the same bytes and detector) is moved on here, with no job; the rest become
:class:`~posterlab.pipeline.results.Job` records to compute anywhere.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from posterlab.pipeline.context import StageContext
from posterlab.pipeline.record import end
from posterlab.pipeline.results import Job, Transition
from posterlab.stages import End, Stage
from posterlab.storage import caches, claims, posters

WORKER_CRASHED = "worker-crashed"


@dataclass
class Planned:
    """A claimed batch: jobs to compute, posters a cache (or a refusal) moved on, and
    posters to send again each in a message of its own (a process died on them before:
    alone, the next death is theirs and no other poster's)."""

    jobs: list[Job] = field(default_factory=list)
    moved: list[Transition] = field(default_factory=list)  # the isolated ones ``alone``

    @property
    def run_of(self) -> dict[int, int]:
        """Poster id -> run id of the jobs (what recording their results needs)."""
        return {job.poster_id: job.run_id for job in self.jobs}


def claim_and_plan(session: Session, ctx: StageContext, stage: Stage,
                   poster_ids: Sequence[int], *, attempt: int = 1) -> Planned:
    """Claim the posters still at ``stage`` (others moved on, or held by a living
    worker: skipped) and plan them.

    Each claim counts a delivery; a poster delivered ``max_crashes`` times already with
    no result recorded killed its process each time, and fails ``worker-crashed``.
    """
    rows, isolated = _claim(session, ctx, stage, poster_ids)
    planned = Planned(moved=[Transition(u.id, u.run_id, stage, attempt, alone=True)
                             for u in isolated])
    cached = _cached(session, ctx, stage, rows)
    for row in rows:
        run = ctx.run(session, row.run_id)
        overrides: dict[str, Any] = dict(run.settings.get("preprocess") or {})
        refused = stage is Stage.EXTRACT and _version_refused(ctx, overrides,
                                                              run.feature_version)
        if row.deliveries > ctx.settings.max_crashes:
            moved = end(session, row.id, row.run_id, stage, End.FAILED,
                        error=_crashed(row.deliveries - 1, stage), error_code=WORKER_CRASHED)
        elif refused:
            moved = end(session, row.id, row.run_id, stage, End.FAILED,
                        error=refused, error_code="config-mismatch")
        elif (answer := cached.get(_key(stage, row.sha256, run.feature_version))) is not None:
            moved = _from_cache(session, ctx, stage, row, answer)
        else:
            planned.jobs.append(Job(row.id, row.run_id, stage, row.source, row.sha256,
                                    attempt, overrides))
            continue
        if moved is not None:
            planned.moved.append(moved)
    return planned


def _claim(session: Session, ctx: StageContext, stage: Stage, poster_ids: Sequence[int]
           ) -> tuple[list[posters.Claimed], list[claims.Unclaimed]]:
    """Claim what is free; the posters of a batch that a process died on are left out,
    to be sent alone; a lease whose holder is a dead process of this host is taken over."""
    several = len(poster_ids) > 1
    until = ctx.lease_until()
    rows = posters.claim_many(session, poster_ids, stage, worker=ctx.worker,
                              lease_until=until, fresh_only=several)
    if len(rows) == len(poster_ids) or (until is None and not several):
        return rows, []
    taken = {row.id for row in rows}
    left = claims.unclaimed(session, [i for i in poster_ids if i not in taken], stage)
    gone = sorted({u.worker for u in left if u.leased and u.worker and holder_is_gone(u.worker)})
    free = [u for u in left if not u.leased or u.worker in gone]
    if not several:  # alone already: take over a dead process's lease
        if gone:
            rows += posters.claim_many(session, [u.id for u in free], stage, worker=ctx.worker,
                                       lease_until=until, takeover=gone)
        return rows, []
    return rows, [u for u in free if u.deliveries > 0]


def holder_is_gone(worker: str) -> bool:
    """Is ``worker`` (``host:pid``, as workers sign their claims) a process of this host
    that no longer exists? A lease it holds cannot be renewed any more."""
    host, _, pid = worker.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # exists, owned by another user
        return False
    return False


def _crashed(times: int, stage: Stage) -> str:
    return (f"{WORKER_CRASHED}: the process working on this poster at stage {stage} died "
            f"{times} times (killed, out of memory or a native crash) before recording a "
            "result; raise POSTERLAB_MAX_CRASHES to try more often, or `posterlab retry`")


def _key(stage: Stage, sha256: str | None, version: str) -> tuple[str | None, str]:
    """Features are cached per preprocessing version, faces per detector (one per process)."""
    return sha256, version if stage is Stage.EXTRACT else ""


def _cached(session: Session, ctx: StageContext, stage: Stage, rows: Sequence[Any]
            ) -> dict[tuple[str | None, str], Any]:
    """The cached answers for the claimed posters whose answer is known, by :func:`_key`."""
    shas = [row.sha256 for row in rows if row.sha256]
    if not shas:
        return {}
    if stage is Stage.FACES:
        found = caches.cached_faces_many(session, shas, ctx.face_key)
        return {_key(stage, sha, ""): row for sha, row in found.items()}
    if stage is not Stage.EXTRACT:
        return {}
    versions = {ctx.run(session, row.run_id).feature_version for row in rows}
    return {_key(stage, sha, version): True for version in versions  # nearly always one
            for sha in caches.features_present(session, shas, version)}


def _from_cache(session: Session, ctx: StageContext, stage: Stage, row: Any, answer: Any
                ) -> Transition | None:
    if stage is Stage.EXTRACT:
        if not posters.advance(session, row.id, stage, Stage.FACES):
            return None
        return Transition(row.id, row.run_id, Stage.FACES)
    posters.add_counters(session, row.id, cache_hits=1)
    return end(session, row.id, row.run_id, stage, End.DONE, face_count=answer.face_count,
               prominent_faces=answer.prominent_faces)


def _version_refused(ctx: StageContext, overrides: dict[str, Any], expected: str) -> str | None:
    """Why this process may not extract for the run, or None when it may."""
    _, version = ctx.preprocess_for(overrides)
    if version == expected:
        return None
    return (f"config-mismatch: this worker computes feature version {version} but the run "
            f"was created with {expected}; run workers of the same posterlab version, "
            "then `posterlab retry`")
