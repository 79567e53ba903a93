"""The posters aggregate: rows of a run, their claims and their moves between stages.

Every state change of a poster is a conditional UPDATE (``WHERE status = <expected>``),
so a redelivered task, a second worker or a retry can never move a poster twice, and the
run counter is decremented exactly once per poster. Functions receive the session and
never commit by themselves.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple, cast

from sqlalchemy import CursorResult, Table, bindparam, func, select, update
from sqlalchemy.orm import Session

from posterlab.manifest import PosterRef
from posterlab.stages import FIRST, PENDING, TERMINAL, End
from posterlab.storage._sql import dialect_insert, plain_update
from posterlab.storage.models import Poster, Run, utcnow


def movie_key(ref: PosterRef) -> str:
    """The poster's key within its run: the imdb id, or ``row:<n>`` for a row without one."""
    return ref.imdb_id if ref.imdb_id else f"row:{ref.row}"


def poster_values(run_id: int, ref: PosterRef, now: datetime) -> dict[str, Any]:
    """The column values of a new poster row for manifest row ``ref``."""
    failed = ref.error is not None
    return {
        "run_id": run_id, "movie_key": movie_key(ref), "imdb_id": ref.imdb_id, "row": ref.row,
        "title": ref.title, "score": ref.rating, "genres": "|".join(ref.genres),
        "source": ref.source, "status": End.FAILED if failed else FIRST,
        "error": ref.error, "error_code": ref.error.split(":", 1)[0] if ref.error else None,
        "attempts": 0, "api_calls": 0, "cache_hits": 0, "rate_limited": 0, "retries": 0,
        "created_at": now, "updated_at": now,
    }


@dataclass(frozen=True)
class Added:
    """What :func:`add_posters` did with a batch."""

    queued: list[int]   # ids of new posters to process
    failed: int         # new posters refused at reading (bad rows)
    existing: int       # rows already in the run (duplicates or a second enqueue)


def add_posters(session: Session, run_id: int, refs: Sequence[PosterRef]) -> Added:
    """Insert a batch of manifest rows; existing (run, movie) pairs are left as they are.

    Returns
    -------
    Added
        The ids of the new posters to process and how many rows were refused or known.
    """
    if not refs:
        return Added([], 0, 0)
    now = utcnow()
    seen: dict[str, dict[str, Any]] = {}
    for ref in refs:  # duplicates inside one batch: the first row wins, as across batches
        values = poster_values(run_id, ref, now)
        seen.setdefault(values["movie_key"], values)
    # A plain executemany (the drivers' fast path: no RETURNING, no giant VALUES list to
    # parse), then the batch's new rows read back by the timestamp they all carry.
    table = Poster.__table__
    stmt = dialect_insert(session, table).on_conflict_do_nothing(
        index_elements=["run_id", "movie_key"])
    session.execute(stmt, list(seen.values()))
    rows = session.execute(
        select(Poster.id, Poster.status).where(Poster.run_id == run_id, Poster.created_at == now)
        .order_by(Poster.id)).all()
    queued = [r.id for r in rows if r.status != "failed"]
    failed = len(rows) - len(queued)
    session.execute(plain_update(Run).where(Run.id == run_id).values(
        total=Run.total + len(rows), pending=Run.pending + len(queued),
        finished_at=None if queued else Run.finished_at))
    return Added(queued, failed, len(refs) - len(rows))


def pending_poster_ids(session: Session, run_id: int, *, limit: int | None = None) -> list[int]:
    """Ids of the run's posters still at a pending stage, in id order."""
    stmt = (select(Poster.id).where(Poster.run_id == run_id, Poster.status.in_(PENDING))
            .order_by(Poster.id))
    if limit:
        stmt = stmt.limit(limit)
    return list(session.scalars(stmt))


def pending_posters(session: Session, run_id: int) -> list[tuple[int, str]]:
    """(id, stage) of the run's posters that are not done or failed, in id order."""
    rows = session.execute(select(Poster.id, Poster.status).where(
        Poster.run_id == run_id, Poster.status.in_(PENDING)).order_by(Poster.id))
    return [(r.id, r.status) for r in rows]


def current_stage(session: Session, poster_id: int) -> str | None:
    """The poster's status (its next stage, or ``done``/``failed``); None if unknown."""
    return session.scalar(select(Poster.status).where(Poster.id == poster_id))


def run_id_of(session: Session, poster_id: int) -> int | None:
    """The id of the poster's run; None when there is no such poster."""
    return session.scalar(select(Poster.run_id).where(Poster.id == poster_id))


def claim(session: Session, poster_id: int, stage: str, *, worker: str | None = None
          ) -> Poster | None:
    """Mark an attempt at ``stage``; None when the poster is no longer at that stage."""
    now = utcnow()
    return session.execute(
        plain_update(Poster).where(Poster.id == poster_id, Poster.status == stage)
        .values(attempts=Poster.attempts + 1, updated_at=now, claimed_at=now, worker=worker)
        .returning(Poster)
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()


class Claimed(NamedTuple):
    """A poster taken by :func:`claim_many`: what its stage needs to start."""

    id: int
    run_id: int
    source: str | None
    sha256: str | None
    status: str  # the stage that was claimed


def claim_many(session: Session, poster_ids: Sequence[int], stage: str | None, *,
               worker: str | None = None) -> list[Claimed]:
    """:func:`claim` for many posters in one statement.

    Parameters
    ----------
    poster_ids
        The posters to claim.
    stage
        Claim only those at this stage; None claims each at whatever pending stage it is.
    worker
        Recorded on the claimed rows.

    Returns
    -------
    list of Claimed
        The posters that were claimed; the others had left the stage (or finished).
    """
    if not poster_ids:
        return []
    table = cast(Table, Poster.__table__)
    c = table.c
    at_stage = c.status == stage if stage is not None else c.status.in_(PENDING)
    now = utcnow()
    rows = session.execute(
        update(table).where(c.id.in_(list(poster_ids)), at_stage)
        .values(attempts=c.attempts + 1, updated_at=now, claimed_at=now, worker=worker)
        .returning(c.id, c.run_id, c.source, c.sha256, c.status)).all()
    return [Claimed(*row) for row in rows]


def advance(session: Session, poster_id: int, stage: str, to: str, **fields: Any) -> bool:
    """Move a poster from ``stage`` to the next pending stage ``to``, setting ``fields``.

    Returns False when the poster had already left ``stage`` (nothing changed).
    """
    result = session.execute(
        plain_update(Poster).where(Poster.id == poster_id, Poster.status == stage)
        .values(status=to, updated_at=utcnow(), claimed_at=None, **fields)
        .returning(Poster.id)
    ).first()
    return result is not None


def finish(session: Session, poster_id: int, stage: str, *, status: str,
           error: str | None = None, error_code: str | None = None, **fields: Any
           ) -> int | None:
    """Move a poster to ``done``/``failed`` and decrement its run's counter, once.

    Returns the run's remaining pending count after this poster, or None when the poster
    had already left ``stage`` (a redelivery: nothing changed).
    """
    if status not in TERMINAL:
        raise ValueError(f"status must be one of {TERMINAL}, got {status!r}")
    result = session.execute(
        plain_update(Poster).where(Poster.id == poster_id, Poster.status == stage)
        .values(status=status, error=error, error_code=error_code, updated_at=utcnow(),
                claimed_at=None, **fields)
        .returning(Poster.run_id)
    ).first()
    if result is None:
        return None
    return _count_down(session, result.run_id, 1)


def _count_down(session: Session, run_id: int, finished: int) -> int:
    """Take ``finished`` posters off the run's counter; stamp the run when none is left."""
    remaining = session.execute(
        plain_update(Run).where(Run.id == run_id).values(pending=Run.pending - finished)
        .returning(Run.pending)
    ).scalar_one()
    if remaining == 0:
        session.execute(plain_update(Run).where(Run.id == run_id).values(finished_at=utcnow()))
    return int(remaining)


@dataclass(frozen=True)
class Finished:
    """A poster that went from ``stage`` to ``done`` in one go (see :func:`finish_many`)."""

    poster_id: int
    stage: str
    sha256: str
    size: int | None
    face_count: int
    prominent_faces: int | None = None
    api_calls: int = 0
    rate_limited: int = 0
    retries: int = 0


def still_at(session: Session, stages: Mapping[int, str]) -> set[int]:
    """Which posters are still at their stage (``stages``: poster id -> stage).

    The rows stay locked until the transaction ends (PostgreSQL ``FOR UPDATE``, in id
    order; SQLite's write transaction holds the whole file), so a following conditional
    update moves exactly these.
    """
    if not stages:
        return set()
    rows = session.execute(select(Poster.id, Poster.status).where(Poster.id.in_(list(stages)))
                           .order_by(Poster.id).with_for_update())
    return {r.id for r in rows if r.status == stages[r.id]}


def finish_many(session: Session, run_id: int, items: Sequence[Finished]) -> int | None:
    """Move many posters of one run to ``done`` with one statement per table.

    For a single writer (the embedded runner's parent): returns the run's remaining
    pending count, or None when the database cannot report how many rows moved (the
    caller then records the posters one by one).
    """
    if not items:
        return None
    if not session.get_bind().dialect.supports_sane_multi_rowcount:
        return None
    now = utcnow()
    moved = cast(CursorResult[Any], session.execute(_finish_done_stmt(), [
        {"pid": i.poster_id, "stage": i.stage, "now": now, "sha": i.sha256, "size": i.size,
         "nfaces": i.face_count, "prominent": i.prominent_faces, "calls": i.api_calls,
         "limited": i.rate_limited, "again": i.retries} for i in items])).rowcount
    return _count_down(session, run_id, moved)


def _finish_done_stmt() -> Any:
    """The executemany UPDATE of :func:`finish_many`, one parameter set per poster."""
    table = cast(Table, Poster.__table__)
    c = table.c
    return (update(table)
            .where(c.id == bindparam("pid"), c.status == bindparam("stage"))
            .values(status="done", error=None, error_code=None, claimed_at=None,
                    updated_at=bindparam("now", type_=c.updated_at.type),
                    sha256=bindparam("sha"), size=func.coalesce(bindparam("size"), c.size),
                    face_count=bindparam("nfaces"),
                    prominent_faces=bindparam("prominent", type_=c.prominent_faces.type),
                    api_calls=c.api_calls + bindparam("calls"),
                    rate_limited=c.rate_limited + bindparam("limited"),
                    retries=c.retries + bindparam("again")))


def add_counters(session: Session, poster_id: int, **counters: int) -> None:
    """Add to a poster's face-API counters (api_calls, cache_hits, rate_limited, retries)."""
    values = {k: getattr(Poster, k) + v for k, v in counters.items() if v}
    if values:
        session.execute(plain_update(Poster).where(Poster.id == poster_id).values(**values))


def requeue_failed(session: Session, run_id: int, *, reason: str | None = None) -> list[int]:
    """Send failed posters (all, or those whose error contains ``reason``) back to the start.

    Posters refused at manifest reading have no source and stay failed. Returns the ids
    sent back.
    """
    stmt = select(Poster.id).where(Poster.run_id == run_id, Poster.status == "failed",
                                   Poster.source.is_not(None))
    if reason:
        stmt = stmt.where(Poster.error.contains(reason))
    ids = list(session.scalars(stmt))
    if ids:
        session.execute(plain_update(Poster).where(Poster.id.in_(ids), Poster.status == "failed")
                        .values(status=FIRST, error=None, error_code=None,
                                updated_at=utcnow()))
        session.execute(plain_update(Run).where(Run.id == run_id).values(
            pending=Run.pending + len(ids), finished_at=None, analysis_state="none"))
    return ids


def stuck_posters(session: Session, run_id: int, older_than: timedelta, *,
                  include_unclaimed: bool = False, unclaimed_for: timedelta | None = None,
                  limit: int = 100_000) -> list[tuple[int, str]]:
    """Posters of a pending stage that nobody is working on: (id, stage) pairs.

    Claimed more than ``older_than`` ago and never advanced: the worker died mid-stage.
    With ``include_unclaimed`` (only safe when the broker's queues are empty), also the
    posters waiting in a stage untouched that long: their message was lost.
    """
    now = utcnow()
    stale = Poster.claimed_at < now - older_than
    if include_unclaimed:
        waited = now - (older_than if unclaimed_for is None else unclaimed_for)
        stale = stale | (Poster.claimed_at.is_(None) & (Poster.updated_at <= waited))
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
                        .values(claimed_at=None, updated_at=utcnow()))

