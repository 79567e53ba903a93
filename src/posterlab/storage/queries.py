"""Read-only queries over a run: counts, progress, failures and the results' rows.

Every filter starts with ``run_id`` so it reads one run's slice of an index
(``ix_posters_run_status``, ``ix_posters_run_updated``), not the whole posters table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, distinct, func, select
from sqlalchemy.orm import Session

from posterlab.stages import PENDING, TERMINAL, WORKED
from posterlab.storage.counts import read_counts
from posterlab.storage.models import (
    SCALAR_COLUMNS,
    FaceRow,
    FeatureRow,
    Poster,
    Run,
    utcnow,
)

RATE_WINDOW = timedelta(seconds=60)   # recent completions that give the speed and the ETA
WORKER_WINDOW = timedelta(minutes=5)  # a worker that touched a poster since is "seen"


def status_counts(session: Session, run_id: int) -> dict[str, int]:
    """Posters of the run by status; every pending stage, ``done`` and ``failed`` present.

    Read from ``run_counts`` (kept by triggers), not counted over the run's posters.
    """
    return read_counts(session, run_id).by_status


def face_figures(session: Session, run_id: int) -> dict[str, int]:
    """The run's face-API figures: api_calls, cache_hits, rate_limited, retries."""
    return read_counts(session, run_id).faces


def count_posters(session: Session, run_id: int) -> dict[str, int]:
    """:func:`status_counts` counted over the posters themselves (a scan of the run)."""
    rows = session.execute(
        select(Poster.status, func.count()).where(Poster.run_id == run_id)
        .group_by(Poster.status)).all()
    counts = {stage: 0 for stage in (*PENDING, *TERMINAL)}
    counts.update({status: int(n) for status, n in rows})
    return counts


def recent_finished(session: Session, run_id: int, since: datetime
                    ) -> tuple[int, datetime | None, datetime | None]:
    """Posters of the run that a worker ended (done or failed) at or after ``since``.

    Returns
    -------
    tuple of (int, datetime or None, datetime or None)
        Their number, and the first and last of their ``updated_at`` (aware UTC), None
        when there are none.
    """
    count, first, last = session.execute(select(
        func.count(), func.min(Poster.updated_at), func.max(Poster.updated_at)).where(
        Poster.run_id == run_id, Poster.updated_at >= since,
        Poster.status.in_(WORKED))).one()
    return int(count), first, last


def workers_seen(session: Session, run_id: int, since: datetime) -> int:
    """How many distinct workers touched a poster of the run at or after ``since``."""
    n = session.scalar(select(func.count(distinct(Poster.worker))).where(
        Poster.run_id == run_id, Poster.updated_at >= since))
    return int(n or 0)


@dataclass(frozen=True)
class RunProgress:
    """Where a run stands, as of ``as_of``: what ``posterlab status`` shows.

    ``recent`` posters ended within the rate window, the first at ``first`` and the
    last at ``last``; ``faces`` holds the face-API figures by name.
    """

    counts: Mapping[str, int]
    faces: Mapping[str, int]
    recent: int
    first: datetime | None
    last: datetime | None
    workers_seen: int
    as_of: datetime
    needs_compaction: bool = False  # run_counts holds many deltas (see storage.counts)

    @property
    def pending(self) -> int:
        """Posters at a pending stage."""
        return sum(self.counts.get(stage, 0) for stage in PENDING)

    @property
    def complete(self) -> bool:
        """Whether every poster has ended."""
        return self.pending == 0

    @property
    def posters_per_second(self) -> float:
        """Completions per second over the recent window (ending now, or at the end)."""
        if not self.recent or self.first is None:
            return 0.0
        end = self.last if self.complete and self.last is not None else self.as_of
        return self.recent / max(1.0, (end - self.first).total_seconds())

    @property
    def eta_seconds(self) -> float | None:
        """Seconds left at the recent speed; None when done or when nothing moved."""
        rate = self.posters_per_second
        return self.pending / rate if rate > 0 and self.pending else None


def run_progress(session: Session, run: Run, *, now: datetime | None = None,
                 rate_window: timedelta = RATE_WINDOW,
                 worker_window: timedelta = WORKER_WINDOW) -> RunProgress:
    """Everything ``posterlab status`` reports about ``run`` beyond the run's own row.

    Parameters
    ----------
    run
        The run.
    now
        The time the figures are as of (aware); the current time by default.
    rate_window, worker_window
        How far back completions count for the speed, and workers count as seen.
    """
    as_of = utcnow() if now is None else now
    recent, first, last = recent_finished(session, run.id, as_of - rate_window)
    counts = read_counts(session, run.id)
    return RunProgress(
        counts=counts.by_status, faces=counts.faces, recent=recent, first=first, last=last,
        workers_seen=workers_seen(session, run.id, as_of - worker_window), as_of=as_of,
        needs_compaction=counts.needs_compaction)


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
            select(Poster.movie_key, Poster.row, Poster.title, Poster.error).where(
                Poster.run_id == run_id, Poster.status == "failed", Poster.error_code == code)
            .order_by(Poster.id).limit(examples)).all()
        out.append({"code": code, "count": int(n),
                    "examples": [{"movie": r.movie_key, "row": r.row, "title": r.title,
                                  "error": r.error}
                                 for r in sample]})
    return out


def results_select(run: Run) -> Select:  # type: ignore[type-arg]  # 2.0 and 2.1 differ
    """One row per poster of ``run``: movie fields, state, face count and scalar features."""
    feats = [getattr(FeatureRow, name).label(name) for name in SCALAR_COLUMNS]
    return (
        select(Poster.imdb_id, Poster.movie_key, Poster.row, Poster.title,
               Poster.score, Poster.genres, Poster.status, Poster.error, Poster.sha256,
               Poster.face_count, Poster.prominent_faces, *feats, FeatureRow.vectors)
        .select_from(Poster)
        .outerjoin(FeatureRow, (FeatureRow.sha256 == Poster.sha256)
                   & (FeatureRow.feature_version == run.feature_version))
        .where(Poster.run_id == run.id)
        .order_by(Poster.id)
    )


DETECTION_COLUMNS = ("imdb_id", "provider", "score", "x", "y", "w", "h", "image_height")


def detection_rows(session: Session, run: Run) -> list[tuple[Any, ...]]:
    """Every face detection of the run's posters, one row per detection.

    Rows are ``(imdb_id, provider, score, x, y, w, h, image_height)`` in
    :data:`DETECTION_COLUMNS` order, best score first per poster, from the answers cached
    for the run's detector (its ``face_key``): the local detector's candidates down to its
    floor, counted or not, or an API's faces (score ``None``). A poster without any
    detection has no row; ``imdb_id`` is the movie key when the id was not valid.
    Answers cached before detections were kept give their counted faces.
    """
    provider = run.face_key.split(":", 1)[0]
    found = session.execute(
        select(Poster.id, Poster.imdb_id, Poster.movie_key, FaceRow.boxes, FaceRow.detections,
               FaceRow.image_height)
        .join(FaceRow, (FaceRow.sha256 == Poster.sha256) & (FaceRow.face_key == run.face_key))
        .where(Poster.run_id == run.id)
        .order_by(Poster.id))
    rows: list[tuple[Any, ...]] = []
    for r in found:
        boxes = r.detections if r.detections is not None else r.boxes
        rows.extend((r.imdb_id or r.movie_key, provider, score, x, y, w, h, r.image_height)
                    for x, y, w, h, score in boxes)
    return rows


def face_scores(session: Session, run: Run) -> dict[str, list[float] | None]:
    """Every detection's score per image of the run (by ``sha256``), from the answers
    cached for the run's detector: the local detector's candidates down to its floor,
    so that the count at any higher threshold is known. None where the scores are not
    known (an API's faces, answers cached before detections were kept)."""
    found = session.execute(
        select(FaceRow.sha256, FaceRow.detections)
        .join(Poster, (FaceRow.sha256 == Poster.sha256) & (FaceRow.face_key == run.face_key))
        .where(Poster.run_id == run.id))
    out: dict[str, list[float] | None] = {}
    for sha256, detections in found:
        scores = None if detections is None else [d[4] for d in detections]
        out[sha256] = None if scores is None or any(s is None for s in scores) else \
            [float(s) for s in scores]
    return out
