"""Posters waiting in the database for room in their stage's queue.

A broker queue holds at most ``max_queued`` messages. The posters whose message would not
fit are marked ``deferred``: they wait here, at their stage, until the queue drains and
:func:`take_deferred` hands them back for publishing. The database is the backlog, so the
broker's memory stays flat from ten thousand posters to a million.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from posterlab.stages import PENDING
from posterlab.storage._sql import plain_update
from posterlab.storage.models import Poster


def defer(session: Session, poster_ids: Sequence[int]) -> int:
    """Mark these posters as waiting for room in their queue; how many were marked."""
    if not poster_ids:
        return 0
    result = session.execute(
        plain_update(Poster)
        .where(Poster.id.in_(list(poster_ids)), Poster.status.in_(PENDING))
        .values(deferred=True))
    return int(getattr(result, "rowcount", 0) or 0)


def take_deferred(session: Session, stage: str, limit: int) -> list[int]:
    """Up to ``limit`` deferred posters at ``stage``, oldest first, no longer deferred.

    One conditional UPDATE ... RETURNING: two publishers never take the same poster
    (PostgreSQL skips rows another transaction holds; SQLite serialises writers).
    """
    if limit <= 0:
        return []
    pick = (select(Poster.id)
            .where(Poster.deferred.is_(True), Poster.status == stage)
            .order_by(Poster.id).limit(limit))
    if session.get_bind().dialect.name == "postgresql":
        pick = pick.with_for_update(skip_locked=True)
    taken = session.execute(
        plain_update(Poster)
        .where(Poster.id.in_(pick.scalar_subquery()), Poster.deferred.is_(True))
        .values(deferred=False)
        .returning(Poster.id))
    return sorted(int(pid) for pid in taken.scalars())


def deferred_count(session: Session, run_id: int | None = None) -> int:
    """Posters waiting for room in a queue (of one run, or of every run)."""
    stmt = select(func.count()).select_from(Poster).where(Poster.deferred.is_(True))
    if run_id is not None:
        stmt = stmt.where(Poster.run_id == run_id)
    return int(session.scalar(stmt) or 0)
