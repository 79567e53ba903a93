"""A run's posters by status and its face-API totals, from ``run_counts``.

The table is kept by triggers on ``posters`` (migration ``0007_run_counts``), so reading
it costs a few rows whatever the size of the run. On PostgreSQL the triggers append
deltas (no hot row for concurrent writers); :func:`compact` folds them back into one
row per status, and readers call it when :func:`read_counts` saw many rows.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from posterlab.stages import PENDING, TERMINAL
from posterlab.storage.models import RunCount

FACE_FIGURES = ("api_calls", "cache_hits", "rate_limited", "retries")
# delta rows of a run past which a reader folds them: ~100 statuses' worth of writes,
# well under a millisecond to sum, and folding them costs about as little
COMPACT_AFTER = 256


@dataclass(frozen=True)
class Counts:
    """Posters by status (every pending stage and end present) and face-API totals."""

    by_status: dict[str, int]
    faces: dict[str, int]
    rows: int  # rows summed: how many deltas wait to be folded

    @property
    def needs_compaction(self) -> bool:
        return self.rows > COMPACT_AFTER


def read_counts(session: Session, run_id: int) -> Counts:
    """Sum the run's rows of ``run_counts`` (one index range, a few rows)."""
    found = session.execute(
        select(RunCount.status, func.sum(RunCount.n), func.count(),
               *(func.sum(getattr(RunCount, f)) for f in FACE_FIGURES))
        .where(RunCount.run_id == run_id).group_by(RunCount.status)).all()
    by_status = {status: 0 for status in (*PENDING, *TERMINAL)}
    faces = dict.fromkeys(FACE_FIGURES, 0)
    rows = 0
    for status, n, k, *figures in found:
        rows += int(k)
        if int(n) or status in by_status:
            by_status[status] = int(n)
        for name, value in zip(FACE_FIGURES, figures, strict=True):
            faces[name] += int(value or 0)
    return Counts(by_status, faces, rows)


def compact(session: Session, run_id: int) -> None:
    """Fold the run's delta rows into one row per status (PostgreSQL; no-op on SQLite).

    One statement, so it sees one snapshot: rows committed meanwhile by writers are
    neither deleted nor summed, and two readers folding at once cannot count a row twice
    (the second one's DELETE skips the rows the first one removed).
    """
    if session.get_bind().dialect.name != "postgresql":
        return
    cols = ", ".join(FACE_FIGURES)
    sums = ", ".join(f"sum({f})" for f in FACE_FIGURES)
    session.execute(text(
        f"WITH gone AS (DELETE FROM run_counts WHERE run_id = :run "
        f"RETURNING status, n, {cols}) "
        f"INSERT INTO run_counts (run_id, status, n, {cols}) "
        f"SELECT :run, status, sum(n), {sums} FROM gone GROUP BY status"), {"run": run_id})
