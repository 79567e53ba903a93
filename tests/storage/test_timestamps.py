"""Timestamps are stored in UTC and come back aware UTC on SQLite and PostgreSQL alike."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import DateTime, func, select, text
from sqlalchemy.exc import StatementError
from sqlalchemy.orm import Session, sessionmaker

from posterlab.manifest import PosterRef
from posterlab.storage import caches, posters, runs
from posterlab.storage.engine import transaction
from posterlab.storage.models import Base, FaceRow, FeatureRow, Poster, Run
from posterlab.storage.types import UTCDateTime

MakeRef = Callable[..., PosterRef]

PLUS_TWO = timezone(timedelta(hours=2))
NOON_UTC = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def _every_timestamp(factory: sessionmaker[Session], run_id: int, ref: MakeRef) -> None:
    with transaction(factory) as s:
        (pid,) = posters.add_posters(s, run_id, [ref(1)]).queued
        posters.claim(s, pid, "fetch")
        posters.finish(s, pid, "fetch", status="done", sha256="a" * 64)
        runs.claim_analysis(s, run_id)
        caches.save_features(s, sha256="a" * 64, version="v1", scalars={}, vectors=b"")
        caches.save_faces(s, sha256="a" * 64, face_key="local", count=0, boxes=[])
        s.get_one(Poster, pid).claimed_at = NOON_UTC  # finish cleared it


def test_every_timestamp_column_reads_back_aware_utc_through_the_orm(
        factory: sessionmaker[Session], run_id: int, ref: MakeRef) -> None:
    _every_timestamp(factory, run_id, ref)
    with factory() as s:
        run, poster = s.get_one(Run, run_id), s.scalars(select(Poster)).one()
        feature, face = s.scalars(select(FeatureRow)).one(), s.scalars(select(FaceRow)).one()
        values = [run.created_at, run.finished_at, run.analysis_at, poster.claimed_at,
                  poster.created_at, poster.updated_at, feature.created_at, face.created_at]
    assert all(v is not None and v.tzinfo is UTC for v in values), values


def test_core_selects_and_aggregates_read_back_aware_utc(
        factory: sessionmaker[Session], run_id: int, ref: MakeRef) -> None:
    _every_timestamp(factory, run_id, ref)
    with factory() as s:
        updated = s.scalar(select(Poster.updated_at))
        latest = s.scalar(select(func.max(Poster.updated_at)))
    assert updated is not None and latest is not None
    assert updated.tzinfo is UTC and latest.tzinfo is UTC and latest == updated


def test_a_timestamp_of_another_zone_is_stored_as_the_same_instant(
        factory: sessionmaker[Session], run_id: int, ref: MakeRef) -> None:
    with transaction(factory) as s:
        (pid,) = posters.add_posters(s, run_id, [ref(1)]).queued
        s.get_one(Poster, pid).updated_at = NOON_UTC.astimezone(PLUS_TWO)  # 14:00 at +02:00
    with factory() as s:
        back = s.scalar(select(Poster.updated_at))
        minute = timedelta(minutes=1)
        after = s.scalar(select(func.count()).where(
            Poster.updated_at >= (NOON_UTC - minute).astimezone(PLUS_TWO)))
        before = s.scalar(select(func.count()).where(Poster.updated_at >= NOON_UTC + minute))
    assert back == NOON_UTC and back is not None and (back.hour, back.tzinfo) == (12, UTC)
    assert (after, before) == (1, 0)


def test_a_naive_timestamp_is_refused(
        factory: sessionmaker[Session], run_id: int, ref: MakeRef) -> None:
    with transaction(factory) as s:
        (pid,) = posters.add_posters(s, run_id, [ref(1)]).queued
    naive = datetime(2026, 1, 1)
    with factory() as s, pytest.raises(StatementError, match="naive"):
        s.execute(select(Poster.id).where(Poster.updated_at >= naive))
    with factory() as s, pytest.raises(StatementError, match="naive"):
        s.get_one(Poster, pid).updated_at = naive
        s.flush()


def test_timestamps_written_by_hand_in_sql_read_back_aware_utc(
        factory: sessionmaker[Session], run_id: int, ref: MakeRef) -> None:
    with transaction(factory) as s:
        posters.add_posters(s, run_id, [ref(1)])
        hour_ago = ("datetime('now', '-1 hour')" if s.get_bind().dialect.name == "sqlite"
                    else "now() - interval '1 hour'")
        s.execute(text(f"UPDATE posters SET claimed_at = {hour_ago}"))
    with factory() as s:
        claimed = s.scalar(select(Poster.claimed_at))
    assert claimed is not None and claimed.tzinfo is UTC
    assert abs(datetime.now(UTC) - timedelta(hours=1) - claimed) < timedelta(minutes=1)


def test_every_timestamp_column_of_the_schema_is_utc_aware() -> None:
    columns = [c for table in Base.metadata.tables.values() for c in table.columns
               if isinstance(c.type, (DateTime, UTCDateTime))]
    assert len(columns) == 11  # lease_expires_at and the run counts' column included
    assert all(isinstance(c.type, UTCDateTime) for c in columns), columns


def test_the_type_converts_on_the_way_in_and_marks_utc_on_the_way_out() -> None:
    kind = UTCDateTime()
    stored = kind.process_bind_param(NOON_UTC.astimezone(PLUS_TWO), None)
    assert stored == NOON_UTC and stored is not None and stored.tzinfo is UTC
    assert kind.process_result_value(datetime(2026, 6, 1, 12, 0), None) == NOON_UTC
    assert kind.process_result_value(NOON_UTC.astimezone(PLUS_TWO), None).tzinfo is UTC
    assert kind.process_bind_param(None, None) is None
    with pytest.raises(TypeError, match="datetime"):
        kind.process_bind_param("2026-06-01", None)
