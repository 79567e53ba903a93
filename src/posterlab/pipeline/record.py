"""Record: store results with conditional updates, so doing a stage twice leaves one row,
the same row, and a poster is counted off its run exactly once.

Every function receives the session and never commits; each returns where the poster
stands now (a :class:`Transition`), or None when it had already moved on (a redelivery).
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.orm import Session

from posterlab.pipeline.context import StageContext
from posterlab.pipeline.results import (
    Chain,
    Counted,
    Extracted,
    Failed,
    Fetched,
    Result,
    Transition,
    counters,
    usage_of,
)
from posterlab.stages import End, Stage
from posterlab.storage import caches, claims, posters, runs
from posterlab.storage.models import utcnow

# Waiting for quota is not a fault: a run on a 20/minute plan waits a lot, by design.
MAX_RATE_LIMITED_ATTEMPTS = 200
BACKOFF_BASE = 2.0  # seconds; doubles per attempt, with jitter, capped
BACKOFF_CAP = 300.0


def backoff(attempt: int, retry_after: float | None = None, *, rng: random.Random | None = None
            ) -> float:
    """Seconds before retrying: the server's word when given, else exponential with jitter."""
    if retry_after is not None and retry_after >= 0:
        return min(float(retry_after), BACKOFF_CAP)
    rng = rng or random.Random()
    delay = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (max(1, attempt) - 1))
    return delay * (0.5 + rng.random() / 2)


def end(session: Session, poster_id: int, run_id: int, stage: Stage, state: End,
        **fields: Any) -> Transition | None:
    """End a poster at ``stage`` as ``state``; due the run's analysis if it was the last."""
    remaining = posters.finish(session, poster_id, stage, status=state, **fields)
    if remaining is None:  # somebody else already ended it
        return None
    due = remaining == 0 and runs.claim_analysis(session, run_id)
    return Transition(poster_id, run_id, terminal=state, analysis_due=due)


def record(session: Session, result: Result, ctx: StageContext, run_id: int
           ) -> Transition | None:
    """Store one result of the poster's stage."""
    pid = result.poster_id
    usage = counters(usage_of(result))
    if any(usage.values()):
        posters.add_counters(session, pid, **usage)
    match result:
        case Failed():
            return _record_failure(session, result, run_id, ctx)
        case Fetched(sha256=sha, size=size):
            return _advance(session, result, run_id, sha256=sha, size=size)
        case Extracted():
            caches.save_features(session, sha256=result.sha256, version=result.feature_version,
                               scalars=result.scalars, vectors=result.vectors)
            return _advance(session, result, run_id)
        case Counted():
            caches.save_faces(session, sha256=result.sha256, face_key=ctx.face_key,
                              count=result.face_count, boxes=result.boxes,
                              prominent=result.prominent_faces,
                              image_height=result.image_height, detections=result.detections)
            return end(session, pid, run_id, Stage.FACES, End.DONE,
                       face_count=result.face_count, prominent_faces=result.prominent_faces)


def _advance(session: Session, result: Fetched | Extracted, run_id: int, **fields: Any
             ) -> Transition | None:
    nxt = result.stage.next
    assert nxt is not None, "only the last stage ends a poster"
    if not posters.advance(session, result.poster_id, result.stage, nxt, **fields):
        return None
    return Transition(result.poster_id, run_id, nxt)


def _record_failure(session: Session, failed: Failed, run_id: int,
                    ctx: StageContext | None = None) -> Transition | None:
    budget = (MAX_RATE_LIMITED_ATTEMPTS if failed.code == "rate-limited"
              else failed.stage.max_attempts)
    if failed.retryable and failed.attempt < budget:
        posters.add_counters(session, failed.poster_id, retries=1)
        delay = backoff(failed.attempt, failed.retry_after)
        claims.settle(session, failed.poster_id,  # a result: no process died on it
                      until=ctx.lease_until(delay) if ctx is not None else None)
        return Transition(failed.poster_id, run_id, failed.stage, failed.attempt + 1,
                          delay=delay)
    error = failed.error
    if failed.retryable:
        error = f"{error} (gave up after {failed.attempt} attempts)"
    return end(session, failed.poster_id, run_id, failed.stage, End.FAILED,
               error=error, error_code=failed.code)


def record_chain(session: Session, chain: Chain, ctx: StageContext, run_id: int
                 ) -> Transition | None:
    """Record a poster's chained results in order; where the last one left it."""
    transition: Transition | None = None
    for result in chain:
        transition = record(session, result, ctx, run_id)
        if transition is None or transition.stage is not result.stage.next \
                or transition.delay is not None:
            break  # failed, retrying, ended, or moved on by someone else
    return transition


def record_batch(session: Session, chains: Sequence[Chain], ctx: StageContext,
                 run_of: Mapping[int, int]) -> list[Transition]:
    """:func:`record_chain` for many posters (``run_of``: poster id -> run id).

    Chains that took a poster all the way to ``done`` are stored with one statement per
    table and run; the others one by one. Safe with concurrent writers: every update is
    conditional and the run counter moves by the rows that did move.
    """
    by_run: dict[int, list[Chain]] = defaultdict(list)
    out: list[Transition] = []
    for chain in chains:
        if _complete(chain):
            by_run[run_of[chain[0].poster_id]].append(chain)
        elif (t := record_chain(session, chain, ctx, run_of[chain[0].poster_id])) is not None:
            out.append(t)
    for run_id, complete in by_run.items():
        out += _finish_complete(session, complete, ctx, run_id)
    return out


def _complete(chain: Chain) -> bool:
    return isinstance(chain[-1], Counted) and not any(isinstance(r, Failed) for r in chain)


def _finish_complete(session: Session, chains: list[Chain], ctx: StageContext, run_id: int
                     ) -> list[Transition]:
    # a poster another writer already moved on is not reported (as record returns None)
    moving = posters.still_at(session, {c[0].poster_id: c[0].stage for c in chains})
    chains = [c for c in chains if c[0].poster_id in moving]
    if not chains:
        return []
    now = utcnow()
    caches.save_features_many(session, [
        {"sha256": r.sha256, "feature_version": r.feature_version, "vectors": r.vectors,
         "created_at": now, **r.scalars}
        for chain in chains for r in chain if isinstance(r, Extracted)])
    faces = [c[-1] for c in chains if isinstance(c[-1], Counted)]
    caches.save_faces_many(session, [
        {"sha256": r.sha256, "face_key": ctx.face_key, "face_count": r.face_count,
         "boxes": r.boxes, "prominent_faces": r.prominent_faces, "image_height": r.image_height,
         "detections": r.boxes if r.detections is None else r.detections, "created_at": now}
        for r in faces])
    remaining = posters.finish_many(session, run_id, [_finished(c) for c in chains])
    if remaining is None:  # rows moved cannot be counted here: one by one
        return [t for c in chains if (t := record_chain(session, c, ctx, run_id))]
    out = [Transition(c[0].poster_id, run_id, terminal=End.DONE) for c in chains]
    if remaining == 0 and runs.claim_analysis(session, run_id):  # the run's last poster
        out[-1] = out[-1].with_analysis()
    return out


def _finished(chain: Chain) -> posters.Finished:
    last = chain[-1]
    assert isinstance(last, Counted)
    size = next((r.size for r in chain if isinstance(r, Fetched)), None)
    return posters.Finished(chain[0].poster_id, chain[0].stage, last.sha256, size,
                            last.face_count, last.prominent_faces,
                            **counters(last.usage))  # only faces pay
