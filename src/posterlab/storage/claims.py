"""Leases on the posters' claims: who holds a poster's stage, until when, and how often a
process died holding it.

A distributed worker claims posters with a lease (:func:`posters.claim_many
<posterlab.storage.posters.claim_many>` with ``lease_until``), renews every lease it holds
while it lives (:func:`renew_leases`, its heartbeat), and ends it by recording a result.
A lease that expired belongs to a dead worker: :func:`expire_leases` takes it back, once,
for the sweep to re-queue. Functions receive the session and never commit.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple, cast

from sqlalchemy import CursorResult, case, select
from sqlalchemy.orm import Session

from posterlab.stages import PENDING
from posterlab.storage._sql import plain_update
from posterlab.storage.models import Poster, Run, utcnow


class Unclaimed(NamedTuple):
    """A poster :func:`claim_many` left, still at its stage: who holds it, and how often
    a process died on it."""

    id: int
    run_id: int
    worker: str | None
    leased: bool  # another worker's lease has not expired
    deliveries: int


def unclaimed(session: Session, poster_ids: Sequence[int], stage: str) -> list[Unclaimed]:
    """The posters of ``poster_ids`` still at ``stage``, with their holders."""
    if not poster_ids:
        return []
    now = utcnow()
    rows = session.execute(select(Poster.id, Poster.run_id, Poster.worker,
                                  Poster.lease_expires_at, Poster.deliveries)
                           .where(Poster.id.in_(list(poster_ids)), Poster.status == stage))
    return [Unclaimed(r.id, r.run_id, r.worker, r.lease_expires_at is not None
                      and r.lease_expires_at >= now, r.deliveries) for r in rows]


def renew_leases(session: Session, worker: str, until: datetime) -> int:
    """Extend every lease ``worker`` holds to ``until`` (its heartbeat); how many."""
    result = session.execute(
        plain_update(Poster).where(Poster.lease_expires_at.is_not(None),
                                   Poster.worker == worker, Poster.status.in_(PENDING))
        .values(lease_expires_at=until))
    return int(cast(CursorResult[Any], result).rowcount or 0)


def expire_leases(session: Session, *, run_id: int | None = None, limit: int = 10_000
                  ) -> list[tuple[int, str]]:
    """Take back the claims whose lease expired (their worker died): (id, stage) pairs.

    Conditional on the lease still being expired, so of several sweepers exactly one
    gets each poster and re-queues it. The delivery is uncounted: a lease expires when a
    whole worker (or host) died, nobody redelivering its message; a pool child killed by
    its poster has its message redelivered at once, and that delivery stays counted.
    """
    now = utcnow()
    where = [Poster.lease_expires_at < now, Poster.status.in_(PENDING)]
    if run_id is not None:
        where.append(Poster.run_id == run_id)
    ids = list(session.scalars(select(Poster.id).where(*where).order_by(Poster.id)
                               .limit(limit)))
    if not ids:
        return []
    rows = session.execute(
        plain_update(Poster).where(Poster.id.in_(ids), *where)
        .values(lease_expires_at=None, claimed_at=None, updated_at=now,
                deliveries=case((Poster.deliveries > 0, Poster.deliveries - 1), else_=0))
        .returning(Poster.id, Poster.status)).all()
    return sorted((r.id, r.status) for r in rows)


def release_dead(session: Session, dead: Mapping[str, datetime], *,
                 computing: Mapping[str, int | None] | None = None, limit: int = 10_000
                 ) -> list[tuple[int, str]]:
    """Take back the claims of processes known to have died (worker name -> when):
    (id, stage) pairs.

    ``computing``: the poster each was computing when it died, when known. That poster
    keeps its delivery counted (unlike :func:`expire_leases`); the others it held are
    uncounted, as no fault of theirs. With no poster known, every claim stays counted.
    Only claims made before the death are taken: a later process that got the same pid
    keeps its own. Conditional, as :func:`expire_leases` is: of several sweepers, one
    gets each poster.
    """
    if not dead:
        return []
    culprits = computing or {}
    where = [Poster.lease_expires_at.is_not(None), Poster.worker.in_(list(dead)),
             Poster.status.in_(PENDING)]
    held = session.execute(select(Poster.id, Poster.worker, Poster.claimed_at).where(*where)
                           .order_by(Poster.id).limit(limit)).all()
    taken = [r for r in held if r.claimed_at is not None and r.worker in dead
             and r.claimed_at <= dead[r.worker]]  # both aware (UTCDateTime)
    if not taken:
        return []
    spared = [r.id for r in taken if culprits.get(r.worker) not in (None, r.id)]
    rows = session.execute(
        plain_update(Poster).where(Poster.id.in_([r.id for r in taken]), *where)
        .values(lease_expires_at=None, claimed_at=None, updated_at=utcnow(),
                deliveries=case((Poster.id.in_(spared) & (Poster.deliveries > 0),
                                 Poster.deliveries - 1), else_=Poster.deliveries))
        .returning(Poster.id, Poster.status)).all()
    return sorted((r.id, r.status) for r in rows)


def settle(session: Session, poster_id: int, *, until: datetime | None = None) -> None:
    """A result was recorded and the poster waits for a retry: its claim ends.

    ``until``: a lease nobody holds, covering the retry's delay (its message waits in a
    worker's memory meanwhile); should the message be lost with that worker, the lease
    expires and the poster is re-queued.
    """
    session.execute(plain_update(Poster).where(Poster.id == poster_id).values(
        claimed_at=None, lease_expires_at=until, worker=None, deliveries=0))


def lost_posters(session: Session, older_than: timedelta, *, limit: int = 10_000
                 ) -> list[tuple[int, str]]:
    """Posters of distributed runs waiting at a stage, unclaimed, unleased and untouched
    for ``older_than``: (id, stage) pairs, touched so that one sweeper takes each.

    Only a sweeper that knows the broker holds no message for them (its queues empty,
    nothing delivered lately) may re-queue these: their message was lost (a worker
    killed between recording a poster and publishing its next stage).
    """
    now = utcnow()
    # a deferred poster is not lost: it waits for room in its queue (backlog.py)
    where = [Poster.status.in_(PENDING), Poster.claimed_at.is_(None), Poster.deferred.is_(False),
             Poster.lease_expires_at.is_(None), Poster.updated_at < now - older_than,
             Poster.run_id.in_(select(Run.id).where(Run.mode == "distributed"))]
    ids = list(session.scalars(select(Poster.id).where(*where).order_by(Poster.id)
                               .limit(limit)))
    if not ids:
        return []
    rows = session.execute(plain_update(Poster).where(Poster.id.in_(ids), *where)
                           .values(updated_at=now).returning(Poster.id, Poster.status)).all()
    return sorted((r.id, r.status) for r in rows)


def undeliver(session: Session, poster_ids: Sequence[int]) -> None:
    """Uncount the current delivery of these posters: their process was stopped on
    purpose (Ctrl-C), it did not die of them."""
    if poster_ids:
        session.execute(plain_update(Poster).where(Poster.id.in_(list(poster_ids)),
                                                   Poster.deliveries > 0)
                        .values(deliveries=Poster.deliveries - 1, claimed_at=None,
                                lease_expires_at=None))


def stuck_posters(session: Session, run_id: int, older_than: timedelta, *,
                  include_unclaimed: bool = False, unclaimed_for: timedelta | None = None,
                  limit: int = 100_000) -> list[tuple[int, str]]:
    """Posters of a pending stage that nobody is working on: (id, stage) pairs.

    Claimed more than ``older_than`` ago and never advanced: the worker died mid-stage.
    With ``include_unclaimed`` (only safe when the broker's queues are empty), also the
    posters waiting in a stage untouched that long: their message was lost.
    """
    now = utcnow()
    stale = (Poster.claimed_at < now - older_than) & Poster.lease_expires_at.is_(None)
    if include_unclaimed:
        waited = now - (older_than if unclaimed_for is None else unclaimed_for)
        # a deferred poster is not lost: it waits for room in its queue (backlog.py)
        stale = stale | (Poster.claimed_at.is_(None) & Poster.deferred.is_(False)
                         & (Poster.updated_at <= waited))
    rows = session.execute(
        select(Poster.id, Poster.status).where(
            Poster.run_id == run_id, Poster.status.in_(PENDING), stale)
        .order_by(Poster.id).limit(limit)
    ).all()
    return [(r.id, r.status) for r in rows]


def release(session: Session, poster_ids: Iterable[int]) -> None:
    """Forget the claims on these posters (re-queued by the sweeper)."""
    ids = list(poster_ids)
    if ids:
        session.execute(plain_update(Poster).where(Poster.id.in_(ids))
                        .values(claimed_at=None, lease_expires_at=None, updated_at=utcnow()))

