"""Posters and their claims on a real SQLite file and a real PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from posterlab.manifest import PosterRef
from posterlab.storage import claims, posters, queries, runs
from posterlab.storage.engine import transaction
from posterlab.storage.models import Poster, Run, utcnow

MakeRef = Callable[..., PosterRef]


def test_adding_the_same_rows_twice_leaves_one_row_per_movie_and_fails_duplicates(
        factory: sessionmaker[Session], run_id: int, ref: MakeRef) -> None:
    batch = [ref(1), ref(2), ref(3, imdb_id="1001"), ref(4, imdb_id=None, error="manifest-x: no")]
    with transaction(factory) as s:
        first = posters.add_posters(s, run_id, batch)
    with transaction(factory) as s:
        second = posters.add_posters(s, run_id, batch)
    assert (len(first.queued), first.failed, first.existing, first.duplicates) == (2, 2, 0, 1)
    assert (len(second.queued), second.failed, second.existing, second.duplicates) == (
        0, 0, 4, 0)
    with factory() as s:
        run = s.get_one(Run, run_id)
        assert (run.total, run.pending) == (4, 2)
        keys = sorted(s.scalars(select(Poster.movie_key)))
        dup = s.scalars(select(Poster).where(Poster.movie_key == "row:3")).one()
        kept = s.scalars(select(Poster).where(Poster.movie_key == "1001")).one()
    assert keys == ["1001", "1002", "row:3", "row:4"]
    assert (dup.status, dup.error_code, dup.imdb_id, dup.source) == (
        "failed", "manifest-duplicate", None, None)
    assert "already on row 1" in (dup.error or "")
    assert (kept.row, kept.title, kept.status) == (1, "Movie 1", "fetch")


def test_a_duplicate_in_a_later_batch_fails_without_touching_the_first_row(
        factory: sessionmaker[Session], run_id: int, ref: MakeRef) -> None:
    with transaction(factory) as s:
        posters.add_posters(s, run_id, [ref(1)])
    with transaction(factory) as s:
        added = posters.add_posters(s, run_id, [ref(2), ref(9, imdb_id="1001")])
    assert (len(added.queued), added.failed, added.duplicates) == (1, 1, 1)
    with factory() as s:
        first = s.scalars(select(Poster).where(Poster.movie_key == "1001")).one()
        assert (first.row, first.source, first.status) == (1, "/p/1.jpg", "fetch")
        assert queries.failure_groups(s, run_id)[0]["code"] == "manifest-duplicate"


def test_finishing_a_poster_twice_decrements_the_run_counter_once(
        factory: sessionmaker[Session], run_id: int, ref: MakeRef) -> None:
    with transaction(factory) as s:
        ids = posters.add_posters(s, run_id, [ref(1), ref(2)]).queued
    with transaction(factory) as s:
        assert posters.advance(s, ids[0], "fetch", "extract", sha256="a" * 64)
        assert not posters.advance(s, ids[0], "fetch", "extract")  # redelivered: no change
        assert posters.finish(s, ids[0], "extract", status="done") == 1
        assert posters.finish(s, ids[0], "extract", status="done") is None
        assert not runs.claim_analysis(s, run_id)  # one poster still pending
        assert posters.finish(s, ids[1], "fetch", status="failed", error="x: y",
                              error_code="x") == 0
        assert runs.claim_analysis(s, run_id)
        assert not runs.claim_analysis(s, run_id)  # exactly once
    with factory() as s:
        assert queries.status_counts(s, run_id)["done"] == 1
        assert s.get_one(Run, run_id).finished_at is not None


def test_finishing_with_a_pending_status_is_refused(
        factory: sessionmaker[Session], run_id: int, ref: MakeRef) -> None:
    with transaction(factory) as s:
        (pid,) = posters.add_posters(s, run_id, [ref(1)]).queued
        with pytest.raises(ValueError, match="status"):
            posters.finish(s, pid, "fetch", status="extract")


def test_retrying_failures_by_reason_requeues_only_those(
        factory: sessionmaker[Session], run_id: int, ref: MakeRef) -> None:
    with transaction(factory) as s:
        ids = posters.add_posters(s, run_id, [ref(1), ref(2), ref(3)]).queued
        posters.finish(s, ids[0], "fetch", status="failed", error="fetch-timeout: slow",
                       error_code="fetch-timeout")
        posters.finish(s, ids[1], "fetch", status="failed", error="image-empty: 0 bytes",
                       error_code="image-empty")
        posters.finish(s, ids[2], "fetch", status="done")
    with transaction(factory) as s:
        assert posters.requeue_failed(s, run_id, reason="timeout") == [ids[0]]
    with factory() as s:
        counts = queries.status_counts(s, run_id)
        groups = queries.failure_groups(s, run_id)
        assert s.get_one(Run, run_id).pending == 1
    assert counts["fetch"] == 1 and counts["failed"] == 1
    assert [g["code"] for g in groups] == ["image-empty"]


def test_finishing_many_posters_at_once_counts_each_once(
        factory: sessionmaker[Session], run_id: int, ref: MakeRef) -> None:
    with transaction(factory) as s:
        ids = posters.add_posters(s, run_id, [ref(1), ref(2), ref(3)]).queued
    items = [posters.Finished(pid, "fetch", f"{i:064x}", 100 + i, i, api_calls=1)
             for i, pid in enumerate(ids[:2])]
    with transaction(factory) as s:
        remaining = posters.finish_many(s, run_id, items)
    with factory() as s:
        rows = {p.id: p for p in s.scalars(select(Poster))}
        pending = s.get_one(Run, run_id).pending
    if remaining is None:  # the driver cannot count rows of an executemany: nothing moved
        assert pending == 3 and all(p.status == "fetch" for p in rows.values())
        return
    assert remaining == pending == 1
    assert [rows[i].status for i in ids] == ["done", "done", "fetch"]
    assert rows[ids[1]].face_count == 1 and rows[ids[1]].size == 101
    assert rows[ids[1]].api_calls == 1 and rows[ids[0]].claimed_at is None


def _three_stages(factory: sessionmaker[Session], run_id: int, ref: MakeRef) -> list[int]:
    """Four posters: at fetch, at extract, at faces, and done."""
    with transaction(factory) as s:
        ids = posters.add_posters(s, run_id, [ref(i) for i in range(4)]).queued
        posters.advance(s, ids[1], "fetch", "extract", sha256="1" * 64)
        posters.advance(s, ids[2], "fetch", "faces", sha256="2" * 64)
        posters.finish(s, ids[3], "fetch", status="done")
    return ids


def test_claiming_many_at_one_stage_takes_only_the_posters_at_that_stage(
        factory: sessionmaker[Session], run_id: int, ref: MakeRef) -> None:
    ids = _three_stages(factory, run_id, ref)
    with transaction(factory) as s:
        claimed = posters.claim_many(s, ids, "extract", worker="w1")
    assert claimed == [posters.Claimed(ids[1], run_id, "/p/1.jpg", "1" * 64, "extract")]
    pid, claimed_run, source, sha, status, deliveries = claimed[0]  # a plain tuple too
    assert (pid, claimed_run, source, sha, status, deliveries) == tuple(claimed[0])
    with factory() as s:
        row = s.get_one(Poster, ids[1])
        assert (row.attempts, row.worker) == (1, "w1") and row.claimed_at is not None
        assert (row.deliveries, row.lease_expires_at) == (1, None)  # counted, no lease
        assert s.get_one(Poster, ids[0]).claimed_at is None


def test_claiming_many_at_any_stage_takes_every_pending_poster_with_its_stage(
        factory: sessionmaker[Session], run_id: int, ref: MakeRef) -> None:
    ids = _three_stages(factory, run_id, ref)
    with transaction(factory) as s:
        claimed = posters.claim_many(s, ids, None, worker="w2")
        assert posters.claim_many(s, [], None) == []
    assert sorted((c.id, c.status) for c in claimed) == [
        (ids[0], "fetch"), (ids[1], "extract"), (ids[2], "faces")]


def test_pending_posters_are_listed_with_their_stage_and_source_in_id_order(
        factory: sessionmaker[Session], run_id: int, ref: MakeRef) -> None:
    ids = _three_stages(factory, run_id, ref)
    with factory() as s:
        assert posters.pending_posters(s, run_id) == [
            (ids[0], "fetch", "/p/0.jpg"), (ids[1], "extract", "/p/1.jpg"),
            (ids[2], "faces", "/p/2.jpg")]
        assert posters.pending_poster_ids(s, run_id, limit=2) == ids[:2]


def test_claiming_one_poster_returns_it_while_it_is_at_that_stage(
        factory: sessionmaker[Session], run_id: int, ref: MakeRef) -> None:
    with transaction(factory) as s:
        (pid,) = posters.add_posters(s, run_id, [ref(1)]).queued
        claimed = posters.claim(s, pid, "fetch", worker="w")
        assert claimed is not None and claimed.attempts == 1
        assert posters.claim(s, pid, "extract") is None
        assert posters.current_stage(s, pid) == "fetch"
        assert posters.current_stage(s, pid + 1000) is None
        assert posters.run_id_of(s, pid) == run_id
        assert posters.run_id_of(s, pid + 1000) is None
        assert posters.pending_poster_ids(s, run_id) == [pid]


def test_a_claim_left_too_long_is_stuck_until_released(
        factory: sessionmaker[Session], run_id: int, ref: MakeRef) -> None:
    with transaction(factory) as s:
        fresh, old, waiting = posters.add_posters(s, run_id, [ref(1), ref(2), ref(3)]).queued
        posters.claim_many(s, [fresh, old], "fetch")
        s.get_one(Poster, old).claimed_at = utcnow() - timedelta(hours=1)
        s.get_one(Poster, waiting).updated_at = utcnow() - timedelta(hours=1)
    with transaction(factory) as s:
        assert claims.stuck_posters(s, run_id, timedelta(minutes=5)) == [(old, "fetch")]
        assert claims.stuck_posters(s, run_id, timedelta(minutes=5), include_unclaimed=True
                                     ) == [(old, "fetch"), (waiting, "fetch")]
        claims.release(s, [old])
    with factory() as s:
        assert claims.stuck_posters(s, run_id, timedelta(minutes=5)) == []


def test_face_api_counters_add_up(
        factory: sessionmaker[Session], run_id: int, ref: MakeRef) -> None:
    with transaction(factory) as s:
        (pid,) = posters.add_posters(s, run_id, [ref(1)]).queued
        posters.add_counters(s, pid, api_calls=2, retries=1, cache_hits=0)
        posters.add_counters(s, pid, api_calls=1)
    with factory() as s:
        row = s.get_one(Poster, pid)
        assert (row.api_calls, row.retries, row.cache_hits) == (3, 1, 0)


def test_movie_keys_fall_back_to_the_manifest_row(ref: MakeRef) -> None:
    assert posters.movie_key(ref(7)) == "1007"
    assert posters.movie_key(ref(7, imdb_id=None)) == "row:7"


