"""SQLAlchemy 2.x models.

- ``runs``: one per ``run``/``enqueue`` of a manifest; carries the run counter
  (``pending``: posters not yet ``done``/``failed``) that triggers the analysis once.
- ``posters``: one per (run, movie): the movie's manifest fields and the poster's work
  state (``status`` is the next stage to run, or ``done``/``failed``).
- ``features``: content-addressed by (sha256, feature_version): identical bytes are
  analysed once, across runs; a change of preprocessing parameters makes a new version.
- ``faces``: the face-detection cache, by (sha256, detector cache key): the count, the
  prominent count, the counted boxes and every detection with its score.
- ``workers``: one heartbeat row per ``posterlab worker`` node (``posterlab status``).
- ``results`` (a view, made by migration 0006): one row per poster with its run's name,
  face count and scalar features, for SQL users.
- ``run_counts``: a run's posters by status with their face-API totals, kept by triggers
  on ``posters`` (migration 0007); read through :mod:`posterlab.storage.counts`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from posterlab.features_schema import SCALAR_FEATURES
from posterlab.storage.types import UTCDateTime

# The float columns of the features table: the scalar feature names, whose one home is
# posterlab.features_schema (a leaf module, so the schema does not follow the feature code).
SCALAR_COLUMNS: tuple[str, ...] = SCALAR_FEATURES


def utcnow() -> datetime:
    """The current time, aware, in UTC (what every timestamp column holds)."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Run(Base):
    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    manifest: Mapped[str] = mapped_column(Text)
    mode: Mapped[str] = mapped_column(String(20))  # embedded | distributed
    feature_version: Mapped[str] = mapped_column(String(40))
    face_key: Mapped[str] = mapped_column(String(200))
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    total: Mapped[int] = mapped_column(Integer, default=0)
    pending: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    analysis_state: Mapped[str] = mapped_column(String(20), default="none")
    analysis_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    analysis: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # deliveries of the analysis that found it already running: its process died in it
    analysis_crashes: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class Poster(Base):
    __tablename__ = "posters"
    __table_args__ = (
        UniqueConstraint("run_id", "movie_key", name="uq_posters_run_movie"),
        Index("ix_posters_run_status", "run_id", "status"),
        Index("ix_posters_run_claimed", "run_id", "claimed_at"),
        Index("ix_posters_run_created", "run_id", "created_at"),
        # recent activity of a run (status: speed, workers seen) reads a few rows of
        # millions by this range instead of every finished poster of the run
        Index("ix_posters_run_updated", "run_id", "updated_at"),
        # the few posters waiting for room in their stage's queue, found without a scan
        Index("ix_posters_deferred", "status", "id", sqlite_where=text("deferred"),
              postgresql_where=text("deferred")),
        Index("ix_posters_lease", "lease_expires_at"),  # the sweep of expired leases
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    # imdb id when valid, else "row:<n>" so a malformed row still has one stable row
    movie_key: Mapped[str] = mapped_column(String(40))
    imdb_id: Mapped[str | None] = mapped_column(String(20))
    row: Mapped[int] = mapped_column(Integer)
    title: Mapped[str | None] = mapped_column(Text)
    score: Mapped[float | None] = mapped_column(Float)
    genres: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20))
    error: Mapped[str | None] = mapped_column(Text)
    error_code: Mapped[str | None] = mapped_column(String(60))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    size: Mapped[int | None] = mapped_column(Integer)
    face_count: Mapped[int | None] = mapped_column(Integer)
    prominent_faces: Mapped[int | None] = mapped_column(Integer)
    api_calls: Mapped[int] = mapped_column(Integer, default=0)
    cache_hits: Mapped[int] = mapped_column(Integer, default=0)
    rate_limited: Mapped[int] = mapped_column(Integer, default=0)
    retries: Mapped[int] = mapped_column(Integer, default=0)
    worker: Mapped[str | None] = mapped_column(String(200))
    # waiting in the database for room in its stage's queue (bounded by max_queued);
    # published, and cleared, when the queue drains
    deferred: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # set while a worker holds the poster's current stage; a stale value means the
    # worker died mid-stage and the sweeper may re-queue the poster
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # a distributed worker's claim holds until then: renewed by its heartbeat while it
    # lives, re-queued by any living worker's sweep once expired (``worker`` names it)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # deliveries of the current stage to a process that never recorded a result: each
    # one a process that died working on the poster (reset when a result is recorded)
    deliveries: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class FeatureRow(Base):
    __tablename__ = "features"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    feature_version: Mapped[str] = mapped_column(String(40), primary_key=True)
    # one float column per name in SCALAR_COLUMNS, declared below
    vectors: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


for _name in SCALAR_COLUMNS:
    setattr(FeatureRow, _name, mapped_column(_name, Float, nullable=True))
del _name


class FaceRow(Base):
    __tablename__ = "faces"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    face_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    face_count: Mapped[int] = mapped_column(Integer)
    boxes: Mapped[list[Any]] = mapped_column(JSON)  # the counted faces
    # faces at least 1/10 of the image's height; NULL in answers cached before it existed
    prominent_faces: Mapped[int | None] = mapped_column(Integer)
    image_height: Mapped[int | None] = mapped_column(Integer)
    # every detection, counted or not ([left, top, width, height, score], best first):
    # the local detector's candidates above its floor, an API's faces
    detections: Mapped[list[Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RunCount(Base):
    """Posters of a run at one status, and their face-API totals (or a delta of them).

    Written only by the database's triggers on ``posters``; on PostgreSQL several rows
    per (run, status) are summed (see :mod:`posterlab.storage.counts`).
    """

    __tablename__ = "run_counts"
    __table_args__ = (Index("ix_run_counts_run_status", "run_id", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(20))
    n: Mapped[int] = mapped_column(Integer)
    api_calls: Mapped[int] = mapped_column(Integer)
    cache_hits: Mapped[int] = mapped_column(Integer)
    rate_limited: Mapped[int] = mapped_column(Integer)
    retries: Mapped[int] = mapped_column(Integer)


class WorkerRow(Base):
    """A ``posterlab worker`` node's heartbeat: who it is, what it consumes, when last seen.

    ``processes`` lists the ``host:pid`` names its processes sign posters with
    (``posters.worker``), so its recent posters can be counted.
    """

    __tablename__ = "workers"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    hostname: Mapped[str] = mapped_column(String(200))
    queues: Mapped[str] = mapped_column(String(200))
    pid: Mapped[int] = mapped_column(Integer)
    processes: Mapped[list[Any]] = mapped_column(JSON)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
