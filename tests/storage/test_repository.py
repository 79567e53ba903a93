"""Repository functions on a real SQLite file and a real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from posterlab.errors import SchemaOutOfDate
from posterlab.manifest import PosterRef
from posterlab.storage import repository as repo
from posterlab.storage.engine import make_engine, session_factory, transaction
from posterlab.storage.models import Poster, Run
from posterlab.storage.schema import ensure_schema, upgrade
from posterlab.storage.vectors import pack_vectors, unpack_vectors


@pytest.fixture
def factory(db_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(db_url)
    ensure_schema(engine, create=True)
    yield session_factory(engine)
    engine.dispose()


def ref(row: int, imdb_id: str | None = "", error: str | None = None) -> PosterRef:
    return PosterRef(row=row, imdb_id=str(1000 + row) if imdb_id == "" else imdb_id,
                     title=f"Movie {row}", rating=6.5, genres=("Drama",),
                     source=f"/p/{row}.jpg", error=error)


def new_run(factory: sessionmaker[Session], name: str = "r") -> int:
    with transaction(factory) as s:
        run, created = repo.get_or_create_run(s, name=name, manifest="m.csv", mode="embedded",
                                              feature_version="v1", face_key="local", settings={})
        assert created
        return run.id


def test_adding_the_same_rows_twice_leaves_one_row_per_movie(
        factory: sessionmaker[Session]) -> None:
    run_id = new_run(factory)
    batch = [ref(1), ref(2), ref(3, imdb_id="1001"), ref(4, imdb_id=None, error="manifest-x: no")]
    with transaction(factory) as s:
        first = repo.add_posters(s, run_id, batch)
    with transaction(factory) as s:
        second = repo.add_posters(s, run_id, batch)
    assert (len(first.queued), first.failed, first.existing) == (2, 1, 1)
    assert (len(second.queued), second.failed, second.existing) == (0, 0, 4)
    with factory() as s:
        run = s.get_one(Run, run_id)
        assert (run.total, run.pending) == (3, 2)
        keys = sorted(s.scalars(select(Poster.movie_key)))
    assert keys == ["1001", "1002", "row:4"]


def test_finishing_a_poster_twice_decrements_the_run_counter_once(
        factory: sessionmaker[Session]) -> None:
    run_id = new_run(factory)
    with transaction(factory) as s:
        ids = repo.add_posters(s, run_id, [ref(1), ref(2)]).queued
    with transaction(factory) as s:
        assert repo.advance(s, ids[0], "fetch", "extract", sha256="a" * 64)
        assert not repo.advance(s, ids[0], "fetch", "extract")  # redelivered: no change
        assert repo.finish(s, ids[0], "extract", status="done") == 1
        assert repo.finish(s, ids[0], "extract", status="done") is None
        assert not repo.claim_analysis(s, run_id)  # one poster still pending
        assert repo.finish(s, ids[1], "fetch", status="failed", error="x: y",
                           error_code="x") == 0
        assert repo.claim_analysis(s, run_id)
        assert not repo.claim_analysis(s, run_id)  # exactly once
    with factory() as s:
        assert repo.status_counts(s, run_id)["done"] == 1
        assert s.get_one(Run, run_id).finished_at is not None


def test_retrying_failures_by_reason_requeues_only_those(factory: sessionmaker[Session]) -> None:
    run_id = new_run(factory)
    with transaction(factory) as s:
        ids = repo.add_posters(s, run_id, [ref(1), ref(2), ref(3)]).queued
        repo.finish(s, ids[0], "fetch", status="failed", error="fetch-timeout: slow",
                    error_code="fetch-timeout")
        repo.finish(s, ids[1], "fetch", status="failed", error="image-empty: 0 bytes",
                    error_code="image-empty")
        repo.finish(s, ids[2], "fetch", status="done")
    with transaction(factory) as s:
        assert repo.requeue_failed(s, run_id, reason="timeout") == [ids[0]]
    with factory() as s:
        counts = repo.status_counts(s, run_id)
        groups = repo.failure_groups(s, run_id)
        assert s.get_one(Run, run_id).pending == 1
    assert counts["fetch"] == 1 and counts["failed"] == 1
    assert [g["code"] for g in groups] == ["image-empty"]


def test_features_and_faces_are_stored_once_per_content(factory: sessionmaker[Session]) -> None:
    sha = "b" * 64
    with transaction(factory) as s:
        for _ in range(2):
            repo.save_features(s, sha256=sha, version="v1", scalars={"mean_r": 0.5},
                               vectors=pack_vectors({"grey_hist": np.ones(20)}))
            repo.save_faces(s, sha256=sha, face_key="local", count=2, boxes=[[1, 2, 3, 4, 0.9]])
    with factory() as s:
        assert repo.has_features(s, sha, "v1") and not repo.has_features(s, sha, "v2")
        cached = repo.cached_faces(s, sha, "local")
        assert cached is not None and cached.face_count == 2


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


def test_finishing_many_posters_at_once_counts_each_once(factory: sessionmaker[Session]) -> None:
    run_id = new_run(factory)
    with transaction(factory) as s:
        ids = repo.add_posters(s, run_id, [ref(1), ref(2), ref(3)]).queued
    items = [repo.Finished(pid, "fetch", f"{i:064x}", 100 + i, i, api_calls=1)
             for i, pid in enumerate(ids[:2])]
    with transaction(factory) as s:
        remaining = repo.finish_many(s, run_id, items)
    with factory() as s:
        posters = {p.id: p for p in s.scalars(select(Poster))}
        pending = s.get_one(Run, run_id).pending
    if remaining is None:  # the driver cannot count rows of an executemany: nothing moved
        assert pending == 3 and all(p.status == "fetch" for p in posters.values())
        return
    assert remaining == pending == 1
    assert [posters[i].status for i in ids] == ["done", "done", "fetch"]
    assert posters[ids[1]].face_count == 1 and posters[ids[1]].size == 101
    assert posters[ids[1]].api_calls == 1 and posters[ids[0]].claimed_at is None
