"""Read-only queries over a run on a real SQLite file and a real PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session, sessionmaker

from posterlab.manifest import PosterRef
from posterlab.storage import caches, posters, queries
from posterlab.storage.engine import transaction
from posterlab.storage.models import Poster, Run, utcnow

MakeRef = Callable[..., PosterRef]
T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _finished_run(factory: sessionmaker[Session], run_id: int, ref: MakeRef) -> list[int]:
    """Five posters: done now (w1), failed now (w1), done an hour ago (w3), at extract
    claimed now (w2), at fetch untouched."""
    with transaction(factory) as s:
        ids = posters.add_posters(s, run_id, [ref(i) for i in range(5)]).queued
        posters.claim_many(s, ids[:3], "fetch", worker="w1")
        posters.finish(s, ids[0], "fetch", status="done")
        posters.finish(s, ids[1], "fetch", status="failed", error="x: y", error_code="x")
        posters.finish(s, ids[2], "fetch", status="done")
        posters.advance(s, ids[3], "fetch", "extract")
        posters.claim_many(s, [ids[3]], "extract", worker="w2")
        old = s.get_one(Poster, ids[2])
        old.updated_at, old.worker = utcnow() - timedelta(hours=1), "w3"
        s.get_one(Poster, ids[4]).updated_at = utcnow() - timedelta(hours=1)
    return ids


def test_counts_name_every_state_even_when_empty(
        factory: sessionmaker[Session], run_id: int, ref: MakeRef) -> None:
    _finished_run(factory, run_id, ref)
    with factory() as s:
        assert queries.status_counts(s, run_id) == {
            "fetch": 1, "extract": 1, "faces": 0, "done": 2, "failed": 1, "cancelled": 0}
        assert queries.status_counts(s, run_id + 1) == {
            "fetch": 0, "extract": 0, "faces": 0, "done": 0, "failed": 0, "cancelled": 0}


def test_face_figures_add_up_over_one_run_only(
        factory: sessionmaker[Session], new_run: Callable[..., int], ref: MakeRef) -> None:
    one, other = new_run("one"), new_run("other")
    with transaction(factory) as s:
        for run_id, calls in ((one, 2), (other, 7)):
            for pid in posters.add_posters(s, run_id, [ref(1), ref(2)]).queued:
                posters.add_counters(s, pid, api_calls=calls, rate_limited=1)
    with factory() as s:
        assert queries.face_figures(s, one) == {
            "api_calls": 4, "cache_hits": 0, "rate_limited": 2, "retries": 0}


def test_recent_finished_counts_the_posters_that_ended_since(
        factory: sessionmaker[Session], run_id: int, ref: MakeRef) -> None:
    before = utcnow()
    _finished_run(factory, run_id, ref)
    with factory() as s:
        count, first, last = queries.recent_finished(s, run_id, before - timedelta(seconds=1))
        assert queries.recent_finished(s, run_id, utcnow() + timedelta(seconds=1)
                                       ) == (0, None, None)
    assert count == 2  # the one that ended an hour ago and the pending ones do not count
    assert first is not None and last is not None
    assert first.tzinfo is UTC and last.tzinfo is UTC
    assert before <= first <= last <= utcnow()


def test_workers_seen_are_those_that_touched_a_poster_lately(
        factory: sessionmaker[Session], run_id: int, ref: MakeRef) -> None:
    _finished_run(factory, run_id, ref)
    with factory() as s:
        assert queries.workers_seen(s, run_id, utcnow() - timedelta(minutes=5)) == 2
        assert queries.workers_seen(s, run_id, utcnow() - timedelta(hours=2)) == 3
        assert queries.workers_seen(s, run_id + 1, utcnow() - timedelta(hours=2)) == 0


def test_run_progress_gathers_what_status_shows(
        factory: sessionmaker[Session], run_id: int, ref: MakeRef) -> None:
    _finished_run(factory, run_id, ref)
    with factory() as s:
        run = s.get_one(Run, run_id)
        progress = queries.run_progress(s, run)
        assert progress.counts == queries.status_counts(s, run_id)
        assert progress.faces == queries.face_figures(s, run_id)
    assert (progress.recent, progress.workers_seen, progress.pending) == (2, 2, 2)
    assert not progress.complete and progress.as_of.tzinfo is UTC
    # two posters ended within the last second: the speed's one-second floor applies
    assert 0 < progress.posters_per_second <= 2.0
    assert progress.eta_seconds == pytest.approx(2 / progress.posters_per_second)


def _progress(pending: int, recent: int, first: float, last: float, as_of: float
              ) -> queries.RunProgress:
    at = [None if x < 0 else T0 + timedelta(seconds=x) for x in (first, last, as_of)]
    assert at[2] is not None
    return queries.RunProgress(counts={"fetch": pending, "done": 100}, faces={},
                               recent=recent, first=at[0], last=at[1], workers_seen=1,
                               as_of=at[2])


def test_the_speed_is_over_the_recent_window_up_to_now_while_the_run_goes_on() -> None:
    progress = _progress(pending=10, recent=30, first=0, last=10, as_of=15)
    assert progress.posters_per_second == 2.0 and progress.eta_seconds == 5.0


def test_the_speed_of_a_finished_run_ends_at_its_last_poster() -> None:
    progress = _progress(pending=0, recent=30, first=0, last=10, as_of=600)
    assert progress.complete and progress.posters_per_second == 3.0
    assert progress.eta_seconds is None


def test_no_recent_completion_means_no_speed_and_no_eta() -> None:
    progress = _progress(pending=10, recent=0, first=-1, last=-1, as_of=15)
    assert progress.posters_per_second == 0.0 and progress.eta_seconds is None


def test_failures_are_grouped_by_code_with_a_few_examples(
        factory: sessionmaker[Session], run_id: int, ref: MakeRef) -> None:
    with transaction(factory) as s:
        ids = posters.add_posters(s, run_id, [ref(i) for i in range(5)]).queued
        for i, pid in enumerate(ids):
            code = "fetch-timeout" if i < 4 else "image-empty"
            posters.finish(s, pid, "fetch", status="failed", error=f"{code}: {i}",
                           error_code=code)
    with factory() as s:
        groups = queries.failure_groups(s, run_id, examples=2)
    assert [(g["code"], g["count"]) for g in groups] == [("fetch-timeout", 4), ("image-empty", 1)]
    assert groups[0]["examples"] == [
        {"movie": "1000", "row": 0, "title": "Movie 0", "error": "fetch-timeout: 0"},
        {"movie": "1001", "row": 1, "title": "Movie 1", "error": "fetch-timeout: 1"}]


def test_results_have_one_row_per_poster_with_the_features_of_the_run_version(
        factory: sessionmaker[Session], new_run: Callable[..., int], ref: MakeRef) -> None:
    run_id = new_run("r", feature_version="v2")
    with transaction(factory) as s:
        ids = posters.add_posters(s, run_id, [ref(1), ref(2)]).queued
        posters.finish(s, ids[0], "fetch", status="done", sha256="a" * 64, face_count=3)
        for version, mean_r in (("v1", 0.1), ("v2", 0.2)):
            caches.save_features(s, sha256="a" * 64, version=version,
                                 scalars={"mean_r": mean_r}, vectors=b"x")
    with factory() as s:
        rows = s.execute(queries.results_select(s.get_one(Run, run_id))).all()
    assert [(r.movie_key, r.status, r.face_count, r.mean_r) for r in rows] == [
        ("1001", "done", 3, 0.2), ("1002", "fetch", None, None)]
