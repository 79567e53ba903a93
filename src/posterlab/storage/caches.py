"""Content-addressed caches: image features by (sha256, version), faces by (sha256, key).

Identical bytes are analysed once and a face-API answer is never paid for twice: every
save is an insert that keeps the first row of a key. Functions receive the session and
never commit by themselves.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from posterlab.errors import StorageError
from posterlab.storage._sql import dialect_insert
from posterlab.storage.models import SCALAR_COLUMNS, FaceRow, FeatureRow, utcnow

# Keys per IN list: well under SQLite's 32766 bound parameters and PostgreSQL's 65535.
LOOKUP_CHUNK = 1000


def has_features(session: Session, sha256: str, version: str) -> bool:
    """Whether the features of these bytes at ``version`` are stored."""
    return session.get(FeatureRow, (sha256, version)) is not None


def features_present(session: Session, shas: Iterable[str], version: str) -> set[str]:
    """Which of ``shas`` have their features stored at ``version``.

    One query per :data:`LOOKUP_CHUNK` keys, for a planner that checks a batch at once.
    """
    found: set[str] = set()
    for part in _chunks(shas):
        found.update(session.scalars(select(FeatureRow.sha256).where(
            FeatureRow.feature_version == version, FeatureRow.sha256.in_(part))))
    return found


def save_features(session: Session, *, sha256: str, version: str,
                  scalars: Mapping[str, float], vectors: bytes) -> None:
    """Store the features of some bytes; a second save of the same key keeps the first.

    Raises
    ------
    StorageError
        When ``scalars`` names a feature that has no column.
    """
    unknown = set(scalars) - set(SCALAR_COLUMNS)
    if unknown:
        raise StorageError(f"features without a column: {sorted(unknown)}")
    stmt = dialect_insert(session, FeatureRow).values(
        sha256=sha256, feature_version=version, vectors=vectors, created_at=utcnow(),
        **{k: float(v) for k, v in scalars.items()},
    ).on_conflict_do_nothing(index_elements=["sha256", "feature_version"])
    session.execute(stmt)


def save_features_many(session: Session, rows: Sequence[Mapping[str, Any]]) -> None:
    """:func:`save_features` for many images at once (executemany of column mappings).

    A feature the run's profile does not compute is stored as NULL: every row gets every
    column, so rows of several profiles can share one statement.
    """
    if rows:
        table = FeatureRow.__table__
        empty = dict.fromkeys(SCALAR_COLUMNS)
        session.execute(dialect_insert(session, table).on_conflict_do_nothing(
            index_elements=["sha256", "feature_version"]), [{**empty, **row} for row in rows])


def cached_faces(session: Session, sha256: str, face_key: str) -> FaceRow | None:
    """The cached face-API answer for these bytes and detector key, if any."""
    return session.get(FaceRow, (sha256, face_key))


def cached_faces_many(session: Session, shas: Iterable[str], face_key: str
                      ) -> dict[str, FaceRow]:
    """The cached face-API answers of ``shas`` for ``face_key``, by sha256.

    Bytes with no cached answer are absent from the result.
    """
    found: dict[str, FaceRow] = {}
    for part in _chunks(shas):
        found.update((row.sha256, row) for row in session.scalars(select(FaceRow).where(
            FaceRow.face_key == face_key, FaceRow.sha256.in_(part))))
    return found


def save_faces(session: Session, *, sha256: str, face_key: str, count: int,
               boxes: list[list[float | None]], prominent: int | None = None,
               image_height: int | None = None,
               detections: list[list[float | None]] | None = None) -> None:
    """Cache a face-API answer; a second save of the same key keeps the first.

    ``detections`` are every detection made, counted or not (default: ``boxes``).
    """
    stmt = dialect_insert(session, FaceRow).values(
        sha256=sha256, face_key=face_key, face_count=count, boxes=boxes,
        prominent_faces=prominent, image_height=image_height,
        detections=boxes if detections is None else detections, created_at=utcnow(),
    ).on_conflict_do_nothing(index_elements=["sha256", "face_key"])
    session.execute(stmt)


def save_faces_many(session: Session, rows: Sequence[Mapping[str, Any]]) -> None:
    """:func:`save_faces` for many images at once (executemany of column mappings)."""
    if rows:
        table = FaceRow.__table__
        session.execute(dialect_insert(session, table).on_conflict_do_nothing(
            index_elements=["sha256", "face_key"]), list(rows))


def _chunks(keys: Iterable[str]) -> Iterator[list[str]]:
    unique = sorted(set(keys))
    for start in range(0, len(unique), LOOKUP_CHUNK):
        yield unique[start:start + LOOKUP_CHUNK]
