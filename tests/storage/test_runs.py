"""Runs and the analysis trigger on a real SQLite file and a real PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy.orm import Session, sessionmaker

from posterlab.errors import StorageError
from posterlab.storage import runs
from posterlab.storage.engine import transaction
from posterlab.storage.models import Run


def test_creating_a_run_twice_returns_the_first_one(factory: sessionmaker[Session]) -> None:
    with transaction(factory) as s:
        first, created = runs.get_or_create_run(
            s, name="r", manifest="a.csv", mode="embedded", feature_version="v1",
            face_key="local", settings={"profile": "course"})
    with transaction(factory) as s:
        again, created_again = runs.get_or_create_run(
            s, name="r", manifest="b.csv", mode="distributed", feature_version="v2",
            face_key="http", settings={})
    assert created and not created_again
    assert (again.id, again.manifest, again.settings) == (first.id, "a.csv", {"profile": "course"})


def test_a_run_is_found_by_name_or_as_the_most_recent(
        factory: sessionmaker[Session], new_run: Callable[..., int]) -> None:
    old, recent = new_run("old"), new_run("recent")
    with factory() as s:
        assert runs.find_run(s, "old").id == old
        assert runs.find_run(s, None).id == recent
        assert [r.name for r in runs.list_runs(s)] == ["old", "recent"]
        assert runs.get_run(s, old).name == "old"
        with pytest.raises(StorageError, match=f"no run with id {recent + 1}"):
            runs.get_run(s, recent + 1)
        with pytest.raises(StorageError, match="posterlab runs"):
            runs.find_run(s, "missing")


def test_finding_a_run_in_an_empty_database_says_how_to_start_one(
        factory: sessionmaker[Session]) -> None:
    with factory() as s, pytest.raises(StorageError, match="posterlab run MANIFEST"):
        runs.find_run(s, None)


def test_the_analysis_is_claimed_once_unless_forced(
        factory: sessionmaker[Session], run_id: int) -> None:
    with transaction(factory) as s:
        assert runs.claim_analysis(s, run_id)  # an empty run has nothing pending
        assert not runs.claim_analysis(s, run_id)
        assert runs.claim_analysis(s, run_id, force=True)
    with factory() as s:
        run = s.get_one(Run, run_id)
        assert run.analysis_state == "queued" and run.analysis_at is not None


def test_a_saved_analysis_keeps_its_state_and_result(
        factory: sessionmaker[Session], run_id: int) -> None:
    with transaction(factory) as s:
        runs.save_analysis(s, run_id, state="done", result={"model": {"r2": 0.1}})
    with transaction(factory) as s:
        assert s.get_one(Run, run_id).analysis == {"model": {"r2": 0.1}}
        runs.save_analysis(s, run_id, state="failed", result=None)
    with factory() as s:
        run = s.get_one(Run, run_id)
        assert (run.analysis_state, run.analysis) == ("failed", None)
