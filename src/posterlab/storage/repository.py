"""Data functions: each receives the session, upserts, and never commits by itself.

Every state change of a poster is a conditional UPDATE (``WHERE status = <expected>``),
so a redelivered task, a second worker or a retry can never move a poster twice, and the
run counter is decremented exactly once per poster.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, Select, Table, bindparam, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from posterlab.errors import StorageError
from posterlab.manifest import PosterRef
from posterlab.stages import TERMINAL
from posterlab.storage.models import (
    PENDING_STAGES,
    SCALAR_COLUMNS,
    FaceRow,
    FeatureRow,
    Poster,
    Run,
    utcnow,
)

FIRST_STAGE = PENDING_STAGES[0]


def _update(model: Any) -> Any:
    """UPDATE without the ORM's session synchronisation: these statements are conditional
    writes whose effect is read back with RETURNING, and the evaluation costs ~0.3 ms each."""
    return update(model).execution_options(synchronize_session=False)


def _insert(session: Session, model: Any) -> Any:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(model)
    if dialect == "sqlite":
        return sqlite.insert(model)
    raise StorageError(f"database {dialect!r} is not supported; use SQLite or PostgreSQL")


# ---------------------------------------------------------------- runs


def get_or_create_run(
    session: Session,
    *,
    name: str,
    manifest: str,
    mode: str,
    feature_version: str,
    face_key: str,
    settings: Mapping[str, Any],
) -> tuple[Run, bool]:
    """The run called ``name``, created if new. Returns (run, created)."""
    stmt = _insert(session, Run).values(
        name=name, manifest=manifest, mode=mode, feature_version=feature_version,
        face_key=face_key, settings=dict(settings), total=0, pending=0,
        created_at=utcnow(), analysis_state="none",
    ).on_conflict_do_nothing(index_elements=["name"]).returning(Run.id)
    # RETURNING, not rowcount: psycopg reports -1 for INSERT .. ON CONFLICT DO NOTHING
    created = session.execute(stmt).first() is not None
    run = session.scalars(select(Run).where(Run.name == name)).one()
    return run, created


def find_run(session: Session, name: str | None) -> Run:
    """The run called ``name``, or the most recent one when ``name`` is None."""
    stmt = select(Run)
    stmt = stmt.where(Run.name == name) if name else stmt.order_by(Run.id.desc()).limit(1)
    run = session.scalars(stmt).first()
    if run is None:
        if name:
            raise StorageError(f"there is no run called {name!r}; `posterlab runs` lists them")
        raise StorageError("there is no run yet; start one with `posterlab run MANIFEST` "
                           "or `posterlab enqueue MANIFEST`")
    return run


def list_runs(session: Session) -> list[Run]:
    return list(session.scalars(select(Run).order_by(Run.id)))


# ---------------------------------------------------------------- posters


def movie_key(ref: PosterRef) -> str:
    return ref.imdb_id if ref.imdb_id else f"row:{ref.row}"


def poster_values(run_id: int, ref: PosterRef, now: datetime) -> dict[str, Any]:
    failed = ref.error is not None
    return {
        "run_id": run_id, "movie_key": movie_key(ref), "imdb_id": ref.imdb_id, "row": ref.row,
        "title": ref.title, "score": ref.rating, "genres": "|".join(ref.genres),
        "source": ref.source, "status": "failed" if failed else FIRST_STAGE,
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
    """Insert a batch of manifest rows; existing (run, movie) pairs are left as they are."""
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
    stmt = _insert(session, table).on_conflict_do_nothing(index_elements=["run_id", "movie_key"])
    session.execute(stmt, list(seen.values()))
    rows = session.execute(
        select(Poster.id, Poster.status).where(Poster.run_id == run_id, Poster.created_at == now)
        .order_by(Poster.id)).all()
    queued = [r.id for r in rows if r.status != "failed"]
    failed = len(rows) - len(queued)
    session.execute(_update(Run).where(Run.id == run_id).values(
        total=Run.total + len(rows), pending=Run.pending + len(queued),
        finished_at=None if queued else Run.finished_at))
    return Added(queued, failed, len(refs) - len(rows))


def pending_poster_ids(session: Session, run_id: int, *, limit: int | None = None) -> list[int]:
    stmt = (select(Poster.id).where(Poster.run_id == run_id, Poster.status.in_(PENDING_STAGES))
            .order_by(Poster.id))
    if limit:
        stmt = stmt.limit(limit)
    return list(session.scalars(stmt))


def pending_posters(session: Session, run_id: int) -> list[tuple[int, str]]:
    """(id, stage) of the run's posters that are not done or failed, in id order."""
    rows = session.execute(select(Poster.id, Poster.status).where(
        Poster.run_id == run_id, Poster.status.in_(PENDING_STAGES)).order_by(Poster.id))
    return [(r.id, r.status) for r in rows]


def current_stage(session: Session, poster_id: int) -> str | None:
    return session.scalar(select(Poster.status).where(Poster.id == poster_id))


def claim(session: Session, poster_id: int, stage: str, *, worker: str | None = None
          ) -> Poster | None:
    """Mark an attempt at ``stage``; None when the poster is no longer at that stage."""
    now = utcnow()
    return session.execute(
        _update(Poster).where(Poster.id == poster_id, Poster.status == stage)
        .values(attempts=Poster.attempts + 1, updated_at=now, claimed_at=now, worker=worker)
        .returning(Poster)
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()


def claim_many(session: Session, poster_ids: Sequence[int], stage: str, *,
               worker: str | None = None) -> list[Any]:
    """:func:`claim` for many posters in one statement; rows (id, run_id, source, sha256,
    status) of those that were at ``stage``."""
    if not poster_ids:
        return []
    table: Table = Poster.__table__  # type: ignore[assignment]
    now = utcnow()
    return list(session.execute(
        update(table).where(table.c.id.in_(list(poster_ids)), table.c.status == stage)
        .values(attempts=table.c.attempts + 1, updated_at=now, claimed_at=now, worker=worker)
        .returning(table.c.id, table.c.run_id, table.c.source, table.c.sha256,
                   table.c.status)).all())


def advance(session: Session, poster_id: int, stage: str, to: str, **fields: Any) -> bool:
    """Move a poster from ``stage`` to the next pending stage."""
    result = session.execute(
        _update(Poster).where(Poster.id == poster_id, Poster.status == stage)
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
    assert status in ("done", "failed"), status
    result = session.execute(
        _update(Poster).where(Poster.id == poster_id, Poster.status == stage)
        .values(status=status, error=error, error_code=error_code, updated_at=utcnow(),
                claimed_at=None, **fields)
        .returning(Poster.run_id)
    ).first()
    if result is None:
        return None
    remaining = session.execute(
        _update(Run).where(Run.id == result.run_id).values(pending=Run.pending - 1)
        .returning(Run.pending)
    ).scalar_one()
    if remaining == 0:
        session.execute(_update(Run).where(Run.id == result.run_id)
                        .values(finished_at=utcnow()))
    return int(remaining)


@dataclass(frozen=True)
class Finished:
    """A poster that went from ``stage`` to ``done`` in one go (see :func:`finish_many`)."""

    poster_id: int
    stage: str
    sha256: str
    size: int | None
    face_count: int
    api_calls: int = 0
    rate_limited: int = 0
    retries: int = 0


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
    table: Table = Poster.__table__  # type: ignore[assignment]
    c = table.c
    stmt = (update(table)
            .where(c.id == bindparam("pid"), c.status == bindparam("stage"))
            .values(status="done", error=None, error_code=None, claimed_at=None,
                    updated_at=bindparam("now"),
                    sha256=bindparam("sha"), size=func.coalesce(bindparam("size"), c.size),
                    face_count=bindparam("faces"),
                    api_calls=c.api_calls + bindparam("calls"),
                    rate_limited=c.rate_limited + bindparam("limited"),
                    retries=c.retries + bindparam("again")))
    now = utcnow()
    moved = cast(CursorResult[Any], session.execute(stmt, [
        {"pid": i.poster_id, "stage": i.stage, "now": now, "sha": i.sha256, "size": i.size,
         "faces": i.face_count, "calls": i.api_calls, "limited": i.rate_limited,
         "again": i.retries} for i in items])).rowcount
    remaining = session.execute(
        _update(Run).where(Run.id == run_id).values(pending=Run.pending - moved)
        .returning(Run.pending)).scalar_one()
    if remaining == 0:
        session.execute(_update(Run).where(Run.id == run_id).values(finished_at=utcnow()))
    return int(remaining)


def save_features_many(session: Session, rows: Sequence[Mapping[str, Any]]) -> None:
    """:func:`save_features` for many images at once (executemany)."""
    if rows:
        table = FeatureRow.__table__
        session.execute(_insert(session, table).on_conflict_do_nothing(
            index_elements=["sha256", "feature_version"]), list(rows))


def save_faces_many(session: Session, rows: Sequence[Mapping[str, Any]]) -> None:
    """:func:`save_faces` for many images at once (executemany)."""
    if rows:
        table = FaceRow.__table__
        session.execute(_insert(session, table).on_conflict_do_nothing(
            index_elements=["sha256", "face_key"]), list(rows))


def add_counters(session: Session, poster_id: int, **counters: int) -> None:
    """Add to a poster's face-API counters (api_calls, cache_hits, rate_limited, retries)."""
    values = {k: getattr(Poster, k) + v for k, v in counters.items() if v}
    if values:
        session.execute(_update(Poster).where(Poster.id == poster_id).values(**values))


def requeue_failed(session: Session, run_id: int, *, reason: str | None = None) -> list[int]:
    """Send failed posters (all, or those whose error contains ``reason``) back to the start.

    Posters refused at manifest reading have no source and stay failed.
    """
    stmt = select(Poster.id).where(Poster.run_id == run_id, Poster.status == "failed",
                                   Poster.source.is_not(None))
    if reason:
        stmt = stmt.where(Poster.error.contains(reason))
    ids = list(session.scalars(stmt))
    if ids:
        session.execute(_update(Poster).where(Poster.id.in_(ids), Poster.status == "failed")
                        .values(status=FIRST_STAGE, error=None, error_code=None,
                                updated_at=utcnow()))
        session.execute(_update(Run).where(Run.id == run_id).values(
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
    cutoff = utcnow() - older_than
    stale = Poster.claimed_at < cutoff
    if include_unclaimed:
        waited = utcnow() - (older_than if unclaimed_for is None else unclaimed_for)
        stale = stale | (Poster.claimed_at.is_(None) & (Poster.updated_at <= waited))
    rows = session.execute(
        select(Poster.id, Poster.status).where(
            Poster.run_id == run_id, Poster.status.in_(PENDING_STAGES), stale)
        .order_by(Poster.id).limit(limit)
    ).all()
    return [(r.id, r.status) for r in rows]


def release(session: Session, poster_ids: Iterable[int]) -> None:
    """Forget the claims on these posters (re-queued by the sweeper)."""
    ids = list(poster_ids)
    if ids:
        session.execute(_update(Poster).where(Poster.id.in_(ids))
                        .values(claimed_at=None, updated_at=utcnow()))


# ---------------------------------------------------------------- features and faces


def has_features(session: Session, sha256: str, version: str) -> bool:
    return session.get(FeatureRow, (sha256, version)) is not None


def features_present(session: Session, shas: Iterable[str], version: str) -> set[str]:
    """Which of ``shas`` already have features of ``version`` (one query)."""
    wanted = sorted(set(shas))
    if not wanted:
        return set()
    return set(session.scalars(select(FeatureRow.sha256).where(
        FeatureRow.sha256.in_(wanted), FeatureRow.feature_version == version)))


def cached_faces_many(session: Session, shas: Iterable[str], face_key: str
                      ) -> dict[str, FaceRow]:
    """The cached face answers for ``shas`` under ``face_key`` (one query)."""
    wanted = sorted(set(shas))
    if not wanted:
        return {}
    rows = session.scalars(select(FaceRow).where(FaceRow.sha256.in_(wanted),
                                                 FaceRow.face_key == face_key))
    return {row.sha256: row for row in rows}


def save_features(session: Session, *, sha256: str, version: str,
                  scalars: Mapping[str, float], vectors: bytes) -> None:
    """Store the features of some bytes; a second save of the same key keeps the first."""
    unknown = set(scalars) - set(SCALAR_COLUMNS)
    if unknown:
        raise StorageError(f"features without a column: {sorted(unknown)}")
    stmt = _insert(session, FeatureRow).values(
        sha256=sha256, feature_version=version, vectors=vectors, created_at=utcnow(),
        **{k: float(v) for k, v in scalars.items()},
    ).on_conflict_do_nothing(index_elements=["sha256", "feature_version"])
    session.execute(stmt)


def cached_faces(session: Session, sha256: str, face_key: str) -> FaceRow | None:
    return session.get(FaceRow, (sha256, face_key))


def save_faces(session: Session, *, sha256: str, face_key: str, count: int,
               boxes: list[list[float | None]]) -> None:
    stmt = _insert(session, FaceRow).values(
        sha256=sha256, face_key=face_key, face_count=count, boxes=boxes, created_at=utcnow(),
    ).on_conflict_do_nothing(index_elements=["sha256", "face_key"])
    session.execute(stmt)


# ---------------------------------------------------------------- analysis trigger


def claim_analysis(session: Session, run_id: int, *, force: bool = False) -> bool:
    """Take the run's analysis (exactly once when the last poster ends, unless ``force``)."""
    stmt = _update(Run).where(Run.id == run_id)
    if not force:
        stmt = stmt.where(Run.pending == 0, Run.analysis_state == "none")
    stmt = stmt.values(analysis_state="queued", analysis_at=utcnow()).returning(Run.id)
    return session.execute(stmt).first() is not None


def save_analysis(session: Session, run_id: int, *, state: str,
                  result: Mapping[str, Any] | None) -> None:
    session.execute(_update(Run).where(Run.id == run_id).values(
        analysis_state=state, analysis=dict(result) if result is not None else None,
        analysis_at=utcnow()))


# ---------------------------------------------------------------- queries


def status_counts(session: Session, run_id: int) -> dict[str, int]:
    rows = session.execute(
        select(Poster.status, func.count()).where(Poster.run_id == run_id)
        .group_by(Poster.status)).all()
    counts = {stage: 0 for stage in (*PENDING_STAGES, "done", "failed")}
    counts.update({status: int(n) for status, n in rows})
    return counts


def face_figures(session: Session, run_id: int) -> dict[str, int]:
    row = session.execute(
        select(func.coalesce(func.sum(Poster.api_calls), 0),
               func.coalesce(func.sum(Poster.cache_hits), 0),
               func.coalesce(func.sum(Poster.rate_limited), 0),
               func.coalesce(func.sum(Poster.retries), 0))
        .where(Poster.run_id == run_id)).one()
    return dict(zip(("api_calls", "cache_hits", "rate_limited", "retries"),
                    (int(v) for v in row), strict=True))


def failure_groups(session: Session, run_id: int, *, examples: int = 3
                   ) -> list[dict[str, Any]]:
    """Failed posters grouped by error code, largest group first, with a few examples."""
    groups = session.execute(
        select(Poster.error_code, func.count()).where(
            Poster.run_id == run_id, Poster.status == "failed")
        .group_by(Poster.error_code).order_by(func.count().desc())).all()
    out = []
    for code, n in groups:
        sample = session.execute(
            select(Poster.movie_key, Poster.row, Poster.error).where(
                Poster.run_id == run_id, Poster.status == "failed", Poster.error_code == code)
            .order_by(Poster.id).limit(examples)).all()
        out.append({"code": code, "count": int(n),
                    "examples": [{"movie": r.movie_key, "row": r.row, "error": r.error}
                                 for r in sample]})
    return out


def results_select(run: Run) -> Select:  # type: ignore[type-arg]
    """One row per poster of ``run``: movie fields, state, face count and scalar features."""
    feats = [getattr(FeatureRow, name).label(name) for name in SCALAR_COLUMNS]
    stmt: Select = (  # type: ignore[type-arg]
        select(Poster.imdb_id, Poster.movie_key, Poster.row, Poster.title,
               Poster.score, Poster.genres, Poster.status, Poster.error, Poster.sha256,
               Poster.face_count, *feats, FeatureRow.vectors)
        .select_from(Poster)
        .outerjoin(FeatureRow, (FeatureRow.sha256 == Poster.sha256)
                   & (FeatureRow.feature_version == run.feature_version))
        .where(Poster.run_id == run.id)
        .order_by(Poster.id)
    )
    return stmt


def recent_finished(session: Session, run_id: int, since: datetime
                    ) -> tuple[int, datetime | None, datetime | None]:
    """(count, first, last update time) of the run's posters that ended since ``since``."""
    count, first, last = session.execute(select(
        func.count(), func.min(Poster.updated_at), func.max(Poster.updated_at)).where(
        Poster.run_id == run_id, Poster.status.in_(TERMINAL), Poster.updated_at >= since)).one()
    return int(count), first, last


def workers_seen(session: Session, run_id: int, since: datetime) -> int:
    """How many distinct workers touched the run's posters since ``since``."""
    return int(session.scalar(select(func.count(func.distinct(Poster.worker))).where(
        Poster.run_id == run_id, Poster.updated_at >= since)) or 0)
