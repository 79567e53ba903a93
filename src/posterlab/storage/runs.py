"""The runs aggregate: creating and finding runs, and the once-only analysis trigger.

Functions receive the session and never commit by themselves.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from posterlab.errors import StorageError
from posterlab.storage._sql import dialect_insert, plain_update
from posterlab.storage.models import Poster, Run, utcnow


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
    """The run called ``name``, created if new.

    Returns
    -------
    tuple of (Run, bool)
        The run, and whether this call created it (an existing run is left as it is).
    """
    stmt = dialect_insert(session, Run).values(
        name=name, manifest=manifest, mode=mode, feature_version=feature_version,
        face_key=face_key, settings=dict(settings), total=0, pending=0,
        created_at=utcnow(), analysis_state="none",
    ).on_conflict_do_nothing(index_elements=["name"]).returning(Run.id)
    # RETURNING, not rowcount: psycopg reports -1 for INSERT .. ON CONFLICT DO NOTHING
    created = session.execute(stmt).first() is not None
    run = session.scalars(select(Run).where(Run.name == name)).one()
    return run, created


def find_run(session: Session, name: str | None) -> Run:
    """The run called ``name``, or the most recent one when ``name`` is None.

    Raises
    ------
    StorageError
        When there is no such run, with the command that lists or starts runs.
    """
    stmt = select(Run)
    stmt = stmt.where(Run.name == name) if name else stmt.order_by(Run.id.desc()).limit(1)
    run = session.scalars(stmt).first()
    if run is None:
        if name:
            raise StorageError(f"there is no run called {name!r}; `posterlab runs` lists them")
        raise StorageError("there is no run yet; start one with `posterlab run MANIFEST` "
                           "or `posterlab enqueue MANIFEST`")
    return run


def get_run(session: Session, run_id: int) -> Run:
    """The run with id ``run_id``.

    Raises
    ------
    StorageError
        When there is no such run (it was deleted).
    """
    run = session.get(Run, run_id)
    if run is None:
        raise StorageError(f"there is no run with id {run_id}; `posterlab runs` lists them")
    return run


def list_runs(session: Session) -> list[Run]:
    """Every run, oldest first."""
    return list(session.scalars(select(Run).order_by(Run.id)))


def claim_analysis(session: Session, run_id: int, *, force: bool = False) -> bool:
    """Take the run's analysis: exactly once when the last poster ends, unless ``force``.

    Returns
    -------
    bool
        True for the one caller that should now run (or queue) the analysis.
    """
    stmt = plain_update(Run).where(Run.id == run_id)
    if not force:
        stmt = stmt.where(Run.pending == 0, Run.analysis_state == "none")
    stmt = stmt.values(analysis_state="queued", analysis_at=utcnow(),
                       analysis_crashes=0).returning(Run.id)
    return session.execute(stmt).first() is not None


def begin_analysis(session: Session, run_id: int, *, max_crashes: int | None) -> int | None:
    """Mark the run's analysis ``running``; the times it was found running already.

    A delivery that finds the analysis ``running`` comes after a process died in it (the
    OOM killer, a native crash: the broker hands the message out again). Returns None,
    with the analysis ``failed``, when that has happened ``max_crashes`` times; the
    result of an earlier analysis, if any, is kept.
    """
    run = session.get(Run, run_id, with_for_update=True)
    if run is None:
        raise LookupError(f"no run with id {run_id}")
    crashes = run.analysis_crashes + (run.analysis_state == "running")
    run.analysis_crashes = crashes
    run.analysis_at = utcnow()
    if max_crashes is not None and crashes >= max_crashes:
        run.analysis_state = "failed"
        run.analysis = {"error": f"worker-crashed: the analysis killed its worker process "
                                 f"{crashes} times (out of memory?); see the worker logs, "
                                 f"then `posterlab analyze --run {run.name}` by hand"}
        return None
    run.analysis_state = "running"
    return crashes


def renew_analysis(session: Session, run_id: int) -> None:
    """Say the run's analysis is still running (its lease: ``analysis_at`` is now)."""
    session.execute(plain_update(Run).where(Run.id == run_id, Run.analysis_state == "running")
                    .values(analysis_at=utcnow()))


def take_lost_analyses(session: Session, silent_for: timedelta) -> list[int]:
    """Distributed runs whose analysis is ``running`` but has not been renewed for
    ``silent_for`` (its worker died whole): queued again, for the caller to publish."""
    stmt = (plain_update(Run)
            .where(Run.mode == "distributed", Run.analysis_state == "running",
                   Run.analysis_at < utcnow() - silent_for)
            .values(analysis_state="queued", analysis_at=utcnow()).returning(Run.id))
    return [int(i) for i in session.scalars(stmt)]


def save_analysis(session: Session, run_id: int, *, state: str,
                  result: Mapping[str, Any] | None) -> None:
    """Record the analysis' state (``running``, ``done``, ``failed``...) and its result."""
    session.execute(plain_update(Run).where(Run.id == run_id).values(
        analysis_state=state, analysis=dict(result) if result is not None else None,
        analysis_at=utcnow()))


def skip_analysis(session: Session, run_id: int, *, state: str = "skipped") -> None:
    """Mark the run's analysis ``skipped`` (nothing queues it unless asked by hand), or
    ``state`` (``none``: not claimed, so the next completion of the run claims it)."""
    session.execute(plain_update(Run).where(Run.id == run_id).values(
        analysis_state=state, analysis_at=utcnow()))


def delete_run(session: Session, run_id: int) -> int:
    """Delete a run and its posters; the number of posters deleted.

    The content-addressed caches (features by image, faces by image) are shared by runs
    and stay.
    """
    posters = session.scalar(select(func.count()).select_from(Poster)
                             .where(Poster.run_id == run_id))
    quiet = {"synchronize_session": False}
    session.execute(delete(Poster).where(Poster.run_id == run_id).execution_options(**quiet))
    session.execute(delete(Run).where(Run.id == run_id).execution_options(**quiet))
    return int(posters or 0)


def rename_run(session: Session, old: str, new: str) -> Run:
    """Give the run called ``old`` the name ``new``.

    Raises
    ------
    StorageError
        When there is no run ``old``, or a run is already called ``new``.
    """
    run = find_run(session, old)
    if session.scalar(select(Run.id).where(Run.name == new)) is not None:
        raise StorageError(f"there is already a run called {new!r}; choose another name "
                           "or `posterlab delete --run` it first")
    session.execute(plain_update(Run).where(Run.id == run.id).values(name=new))
    return run
