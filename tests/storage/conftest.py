"""Storage fixtures: a schema at head on the test's database, a run, manifest rows."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from sqlalchemy.orm import Session, sessionmaker

from posterlab.manifest import PosterRef
from posterlab.storage import runs
from posterlab.storage.engine import make_engine, session_factory, transaction
from posterlab.storage.schema import ensure_schema

MakeRef = Callable[..., PosterRef]


@pytest.fixture
def factory(db_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(db_url)
    ensure_schema(engine, create=True)
    yield session_factory(engine)
    engine.dispose()


def _ref(row: int, imdb_id: str | None = "", error: str | None = None) -> PosterRef:
    return PosterRef(row=row, imdb_id=str(1000 + row) if imdb_id == "" else imdb_id,
                     title=f"Movie {row}", rating=6.5, genres=("Drama",),
                     source=f"/p/{row}.jpg", error=error)


@pytest.fixture
def ref() -> MakeRef:
    """Builds manifest row ``row`` (imdb id 1000+row unless given; ``error``: refused)."""
    return _ref


@pytest.fixture
def new_run(factory: sessionmaker[Session]) -> Callable[..., int]:
    """Creates a run (called ``name``) and returns its id."""
    def create(name: str = "r", feature_version: str = "v1") -> int:
        with transaction(factory) as s:
            run, created = runs.get_or_create_run(
                s, name=name, manifest="m.csv", mode="embedded",
                feature_version=feature_version, face_key="local", settings={})
            assert created
            return run.id
    return create


@pytest.fixture
def run_id(new_run: Callable[..., int]) -> int:
    return new_run()
