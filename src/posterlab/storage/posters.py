"""The posters aggregate: rows of a run, their claims and their moves between stages.

Every state change of a poster is a conditional UPDATE (``WHERE status = <expected>``),
so a redelivered task, a second worker or a retry can never move a poster twice, and the
run counter is decremented exactly once per poster. Functions receive the session and
never commit by themselves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, cast

from sqlalchemy import CursorResult, Table, bindparam, func, or_, select, update
from sqlalchemy.orm import Session

from posterlab.config import redact_text
from posterlab.manifest import PosterRef
from posterlab.stages import FIRST, PENDING, TERMINAL, End
from posterlab.storage._sql import dialect_insert, plain_update
from posterlab.storage.models import Poster, Run, utcnow
from posterlab.text import visible


def stored_error(error: str) -> str:
    """An error text fit to keep and show: control characters spelled out (no NUL for
    PostgreSQL, no escape for a terminal), credentials in quoted URLs hidden (a signed
    poster URL's ``token=``)."""
    return redact_text(visible(error))


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
        "error": stored_error(ref.error) if ref.error is not None else None,
        "error_code": ref.error.split(":", 1)[0] if ref.error else None,
        "attempts": 0, "api_calls": 0, "cache_hits": 0, "rate_limited": 0, "retries": 0,
        "created_at": now, "updated_at": now,
    }


DUPLICATE = "manifest-duplicate"


def duplicate_values(values: dict[str, Any], first_row: int) -> dict[str, Any]:
    """The failed poster row of a manifest row whose movie is already on ``first_row``.

    It is keyed by its row (``row:<n>``) and has no imdb id and no source, so the first
    occurrence keeps the movie, and ``retry`` never sends the duplicate through.
    """
    imdb_id, row = values["imdb_id"], values["row"]
    error = (f"{DUPLICATE}: id {imdb_id} is already on row {first_row} of the manifest; "
             f"only that row is processed (remove row {row} or fix its id)")
    return {**values, "movie_key": f"row:{row}", "imdb_id": None, "source": None,
            "status": End.FAILED, "error": error, "error_code": DUPLICATE}


@dataclass(frozen=True)
class Added:
    """What :func:`add_posters` did with a batch."""

    queued: list[int]   # ids of new posters to process
    failed: int         # new posters refused at reading (bad rows, duplicates included)
    existing: int       # rows already in the run (a second enqueue of the same manifest)
    duplicates: int = 0  # new rows whose movie is on an earlier row (failed, kept apart)


def add_posters(session: Session, run_id: int, refs: Sequence[PosterRef]) -> Added:
    """Insert a batch of manifest rows; existing (run, movie) pairs are left as they are.

    A row whose id is on an earlier row of the manifest (in this batch or in the run)
    becomes a failed poster ``manifest-duplicate`` of its own: counted and listed, the
    first row's poster untouched. A row already in the run (same movie, same row: the
    manifest enqueued again) is left alone.

    Returns
    -------
    Added
        The ids of the new posters to process and how many rows were refused or known.
    """
    if not refs:
        return Added([], 0, 0)
    now = utcnow()
    values = _distinct(session, run_id, [poster_values(run_id, ref, now) for ref in refs])
    # A plain executemany (the drivers' fast path: no RETURNING, no giant VALUES list to
    # parse), then the batch's new rows read back by the timestamp they all carry.
    stmt = dialect_insert(session, Poster.__table__).on_conflict_do_nothing(
        index_elements=["run_id", "movie_key"])
    session.execute(stmt, values)
    rows = session.execute(
        select(Poster.id, Poster.status, Poster.error_code)
        .where(Poster.run_id == run_id, Poster.created_at == now).order_by(Poster.id)).all()
    queued = [r.id for r in rows if r.status != End.FAILED]
    duplicates = sum(1 for r in rows if r.error_code == DUPLICATE)
    session.execute(plain_update(Run).where(Run.id == run_id).values(
        total=Run.total + len(rows), pending=Run.pending + len(queued),
        finished_at=None if queued else Run.finished_at,
        # new work makes the stored analysis out of date: it is due again at the end
        analysis_state="none" if queued else Run.analysis_state))
    return Added(queued, len(rows) - len(queued), len(refs) - len(rows), duplicates)


def _distinct(session: Session, run_id: int, values: list[dict[str, Any]]
              ) -> list[dict[str, Any]]:
    """``values`` with each later row of a movie turned into its :func:`duplicate_values`."""
    keys = [v["movie_key"] for v in values if v["imdb_id"] is not None]
    first: dict[str, int] = {r.movie_key: r.row for r in session.execute(
        select(Poster.movie_key, Poster.row).where(
            Poster.run_id == run_id, Poster.movie_key.in_(keys)))} if keys else {}
    out = []
    for v in values:
        if v["imdb_id"] is None:
            out.append(v)
            continue
        row = first.setdefault(v["movie_key"], v["row"])
        out.append(v if row == v["row"] else duplicate_values(v, row))
    return out


def pending_poster_ids(session: Session, run_id: int, *, limit: int | None = None) -> list[int]:
    """Ids of the run's posters still at a pending stage, in id order."""
    stmt = (select(Poster.id).where(Poster.run_id == run_id, Poster.status.in_(PENDING))
            .order_by(Poster.id))
    if limit:
        stmt = stmt.limit(limit)
    return list(session.scalars(stmt))


def pending_posters(session: Session, run_id: int, *, after: int = 0,
                    limit: int | None = None) -> list[tuple[int, str, str | None]]:
    """(id, stage, source) of the run's posters that are not done or failed, in id order:
    those with an id above ``after``, at most ``limit`` of them (a window of a big run)."""
    stmt = (select(Poster.id, Poster.status, Poster.source)
            .where(Poster.run_id == run_id, Poster.status.in_(PENDING), Poster.id > after)
            .order_by(Poster.id))
    if limit:
        stmt = stmt.limit(limit)
    return [(r.id, r.status, r.source) for r in session.execute(stmt)]


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
    deliveries: int = 1  # deliveries of this stage not ended by a result, this one counted


def claim_many(session: Session, poster_ids: Sequence[int], stage: str | None, *,
               worker: str | None = None, lease_until: datetime | None = None,
               fresh_only: bool = False, takeover: Sequence[str] = ()) -> list[Claimed]:
    """:func:`claim` for many posters in one statement, counting the delivery.

    Parameters
    ----------
    poster_ids
        The posters to claim.
    stage
        Claim only those at this stage; None claims each at whatever pending stage it is.
    worker
        Recorded on the claimed rows (the holder of their lease).
    lease_until
        The claim's lease (distributed workers); a poster whose lease another worker
        holds and has not let expire is not claimed. None: no lease (the embedded runner,
        the only writer of its run).
    fresh_only
        Claim only posters with no delivery pending a result (none died on them).
    takeover
        Workers whose leases may be taken though not expired (known dead).

    Returns
    -------
    list of Claimed
        The posters that were claimed; the others had left the stage (or finished), or
        are held by another worker, or (``fresh_only``) had a delivery die on them.
    """
    if not poster_ids:
        return []
    table = cast(Table, Poster.__table__)
    c = table.c
    at_stage = c.status == stage if stage is not None else c.status.in_(PENDING)
    now = utcnow()
    # free: no lease, an expired one, or one nobody holds (a retry's, see claims.settle)
    free = or_(c.lease_expires_at.is_(None), c.lease_expires_at < now, c.worker.is_(None))
    if worker is not None:
        free = or_(free, c.worker == worker)
    if takeover:
        free = or_(free, c.worker.in_(list(takeover)))
    where = [c.id.in_(list(poster_ids)), at_stage, free]
    if fresh_only:
        where.append(c.deliveries == 0)
    rows = session.execute(
        update(table).where(*where)
        .values(attempts=c.attempts + 1, deliveries=c.deliveries + 1, updated_at=now,
                claimed_at=now, worker=worker, lease_expires_at=lease_until)
        .returning(c.id, c.run_id, c.source, c.sha256, c.status, c.deliveries)).all()
    return [Claimed(*row) for row in rows]


def advance(session: Session, poster_id: int, stage: str, to: str, **fields: Any) -> bool:
    """Move a poster from ``stage`` to the next pending stage ``to``, setting ``fields``.

    Returns False when the poster had already left ``stage`` (nothing changed).
    """
    result = session.execute(
        plain_update(Poster).where(Poster.id == poster_id, Poster.status == stage)
        .values(status=to, updated_at=utcnow(), claimed_at=None, lease_expires_at=None,
                deliveries=0, **fields)
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
    if error is not None:
        error = stored_error(error)
    result = session.execute(
        plain_update(Poster).where(Poster.id == poster_id, Poster.status == stage)
        .values(status=status, error=error, error_code=error_code, updated_at=utcnow(),
                claimed_at=None, lease_expires_at=None, deliveries=0, **fields)
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
                    lease_expires_at=None, deliveries=0,
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
                                deliveries=0, updated_at=utcnow()))
        session.execute(plain_update(Run).where(Run.id == run_id).values(
            pending=Run.pending + len(ids), finished_at=None, analysis_state="none"))
    return ids


def describe(session: Session, poster_ids: Sequence[int]) -> dict[int, tuple[str, str, str]]:
    """(run name, movie key, error code or "") of these posters, by id, for log lines."""
    if not poster_ids:
        return {}
    rows = session.execute(
        select(Poster.id, Run.name, Poster.movie_key, Poster.error_code)
        .join(Run, Run.id == Poster.run_id).where(Poster.id.in_(list(poster_ids))))
    return {r.id: (r.name, r.movie_key, r.error_code or "") for r in rows}


def cancel_pending(session: Session, run_id: int, *, reason: str) -> int:
    """End every poster of the run still at a pending stage as ``cancelled``.

    Messages already queued for them then find them past their stage and do nothing; a
    worker in the middle of one finishes its work, and its conditional update moves
    nothing. Returns how many posters were cancelled (taken off the run's counter).
    """
    moved = cast(CursorResult[Any], session.execute(
        plain_update(Poster).where(Poster.run_id == run_id, Poster.status.in_(PENDING))
        .values(status=End.CANCELLED, error=reason, error_code=End.CANCELLED.value,
                claimed_at=None, updated_at=utcnow()))).rowcount
    if moved:
        _count_down(session, run_id, moved)
    return int(moved)
