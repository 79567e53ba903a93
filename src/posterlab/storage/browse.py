"""Queries behind the dashboard: workers by recent activity, pages of posters, one poster.

Like :mod:`posterlab.storage.queries`, every filter starts with ``run_id``; the live
ones read a time range of ``ix_posters_run_updated``, never the whole run.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from posterlab.stages import WORKED, End
from posterlab.storage.models import SCALAR_COLUMNS, FaceRow, FeatureRow, Poster, Run

# how a page of posters may be ordered: name -> ORDER BY
POSTER_ORDERS = {
    "id": (Poster.id,),
    "rating": (Poster.score.desc(), Poster.id),
    "face_count": (Poster.face_count.desc(), Poster.id),
}
POSTER_FIELDS = (Poster.id, Poster.movie_key, Poster.imdb_id, Poster.row, Poster.title,
                 Poster.score, Poster.genres, Poster.status, Poster.error, Poster.error_code,
                 Poster.sha256, Poster.face_count, Poster.attempts, Poster.worker,
                 Poster.updated_at)


def worker_activity(session: Session, run_id: int, *, since: datetime, minute_ago: datetime
                    ) -> list[dict[str, Any]]:
    """Workers that touched the run's posters since ``since``, most recent first.

    Each as ``{"worker", "last_seen", "touched", "finished_last_minute"}``: the posters it
    last touched in the window, and those it finished since ``minute_ago``.
    """
    finished = func.sum(((Poster.updated_at >= minute_ago)
                         & Poster.status.in_(WORKED)).cast(Poster.id.type))
    rows = session.execute(
        select(Poster.worker, func.max(Poster.updated_at), func.count(), finished)
        .where(Poster.run_id == run_id, Poster.updated_at >= since,
               Poster.worker.is_not(None))
        .group_by(Poster.worker).order_by(func.max(Poster.updated_at).desc())).all()
    return [{"worker": w, "last_seen": last, "touched": int(n), "finished_last_minute":
             int(f or 0)} for w, last, n, f in rows]


def ended_times(session: Session, run_id: int, *, since: datetime, until: datetime,
                limit: int) -> list[datetime]:
    """When the run's posters that ended between ``since`` and ``until`` ended (the
    latest ``limit`` of them): a range of ``ix_posters_run_updated``."""
    return list(session.scalars(
        select(Poster.updated_at)
        .where(Poster.run_id == run_id, Poster.updated_at >= since, Poster.updated_at <= until,
               Poster.status.in_(WORKED))
        .order_by(Poster.updated_at.desc()).limit(limit)))


def posters_page(session: Session, run_id: int, *, offset: int, limit: int,
                 order: str = "id", done_only: bool = False) -> list[dict[str, Any]]:
    """A page of the run's posters (their manifest fields and work state).

    ``order`` is a key of :data:`POSTER_ORDERS`; ``done_only`` keeps finished posters.
    """
    stmt = select(*POSTER_FIELDS).where(Poster.run_id == run_id)
    if done_only:
        stmt = stmt.where(Poster.status == End.DONE)
    rows = session.execute(stmt.order_by(*POSTER_ORDERS[order]).offset(offset).limit(limit))
    return [dict(r._mapping) for r in rows]


def poster(session: Session, run: Run, movie_key: str) -> dict[str, Any] | None:
    """One poster of ``run`` with its scalar features and stored face boxes, or None."""
    row = session.execute(select(*POSTER_FIELDS, Poster.size, Poster.api_calls,
                                 Poster.cache_hits, Poster.rate_limited, Poster.retries)
                          .where(Poster.run_id == run.id, Poster.movie_key == movie_key)
                          ).first()
    if row is None:
        return None
    found = dict(row._mapping)
    found["features"], found["boxes"] = {}, None
    if found["sha256"]:
        feats = session.get(FeatureRow, (found["sha256"], run.feature_version))
        if feats is not None:
            found["features"] = {name: getattr(feats, name) for name in SCALAR_COLUMNS}
        faces = session.get(FaceRow, (found["sha256"], run.face_key))
        found["boxes"] = list(faces.boxes) if faces is not None else None
    return found
