"""Schema management and the features' storage format."""

from __future__ import annotations

import numpy as np
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select

from posterlab.errors import SchemaOutOfDate
from posterlab.storage import queries
from posterlab.storage.engine import make_engine, session_factory
from posterlab.storage.models import Base, Run
from posterlab.storage.schema import current_revision, ensure_schema, head_revision, upgrade
from posterlab.storage.vectors import pack_vectors, unpack_vectors


def test_vectors_round_trip_as_float32_with_their_shapes() -> None:
    vectors = {"hog": np.arange(12, dtype=np.float64).reshape(3, 4), "grey_hist": np.ones(20)}
    back = unpack_vectors(pack_vectors(vectors))
    assert back["hog"].dtype == np.float32 and back["hog"].shape == (3, 4)
    np.testing.assert_array_equal(back["hog"], vectors["hog"])
    np.testing.assert_array_equal(back["grey_hist"], np.ones(20, dtype=np.float32))


def test_an_out_of_date_schema_is_refused_with_the_command_to_run(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        upgrade(engine, "0001")
        with engine.begin() as conn:
            conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0000'")
        with pytest.raises(SchemaOutOfDate, match="posterlab db upgrade"):
            ensure_schema(engine)
    finally:
        engine.dispose()


def test_an_empty_database_is_not_created_when_creation_is_not_allowed(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        with pytest.raises(SchemaOutOfDate, match="db upgrade"):
            ensure_schema(engine, create=False)
    finally:
        engine.dispose()


def test_scalar_columns_match_the_feature_names() -> None:
    from posterlab.imaging import SCALAR_FEATURES
    from posterlab.storage.models import SCALAR_COLUMNS

    assert tuple(SCALAR_FEATURES) == SCALAR_COLUMNS


def test_the_migrations_build_exactly_the_schema_of_the_models(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        ensure_schema(engine, create=True)
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()


def test_a_database_of_the_first_revision_upgrades_with_its_rows(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        upgrade(engine, "0001")
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "INSERT INTO runs (name, manifest, mode, feature_version, face_key, settings, "
                "total, pending, created_at, analysis_state) VALUES ('old', 'm.csv', "
                "'embedded', 'v1', 'local', '{}', 0, 0, '2026-11-30 05:00:00+00', 'none')")
        with pytest.raises(SchemaOutOfDate, match="posterlab db upgrade"):
            ensure_schema(engine)
        upgrade(engine)
        ensure_schema(engine, create=False)
        assert current_revision(engine) == head_revision()
        indexes = {ix["name"] for ix in inspect(engine).get_indexes("posters")}
        assert "ix_posters_run_updated" in indexes
        with session_factory(engine)() as s:
            run = s.scalars(select(Run)).one()
            assert run.created_at.isoformat() == "2026-11-30T05:00:00+00:00"
            assert queries.status_counts(s, run.id)["done"] == 0
    finally:
        engine.dispose()
