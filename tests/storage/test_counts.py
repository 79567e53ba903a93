"""run_counts, kept by triggers, agrees with counting the posters, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from posterlab.manifest import PosterRef
from posterlab.storage import counts, posters, queries
from posterlab.storage.engine import transaction
from posterlab.storage.models import Poster, Run, RunCount

MakeRef = Callable[..., PosterRef]


def _scan_faces(s: Session, run_id: int) -> dict[str, int]:
    row = s.execute(select(*(func.coalesce(func.sum(getattr(Poster, f)), 0)
                             for f in counts.FACE_FIGURES)).where(Poster.run_id == run_id)).one()
    return dict(zip(counts.FACE_FIGURES, (int(v) for v in row), strict=True))


def _agree(factory: sessionmaker[Session], run_id: int) -> dict[str, int]:
    with factory() as s:
        read = counts.read_counts(s, run_id)
        assert read.by_status == queries.count_posters(s, run_id)
        assert read.faces == _scan_faces(s, run_id)
        return read.by_status


def test_every_move_of_a_poster_is_counted_as_a_scan_would_count_it(
        factory: sessionmaker[Session], run_id: int, ref: MakeRef) -> None:
    with transaction(factory) as s:
        added = posters.add_posters(s, run_id, [ref(i) for i in range(6)]
                                    + [ref(9, imdb_id=None, error="bad_row: no id")])
        ids = added.queued
    assert _agree(factory, run_id)["fetch"] == 6
    with transaction(factory) as s:
        posters.claim_many(s, ids, "fetch", worker="w1")  # no move: nothing to count
        posters.advance(s, ids[0], "fetch", "extract")
        posters.finish(s, ids[1], "fetch", status="failed", error="http_404: gone",
                       error_code="http_404")
        posters.finish_many(s, run_id, [posters.Finished(ids[2], "fetch", "a" * 64, 10, 2,
                                                         api_calls=3, rate_limited=1)])
        posters.add_counters(s, ids[3], cache_hits=2, retries=1)
    assert _agree(factory, run_id) == {"fetch": 3, "extract": 1, "faces": 0, "done": 1,
                                       "failed": 2, "cancelled": 0}
    with transaction(factory) as s:
        posters.requeue_failed(s, run_id)
        s.execute(delete(Poster).where(Poster.id == ids[5]))
    assert _agree(factory, run_id)["fetch"] == 4  # 3 + 2 failed sent back - 1 deleted


def test_a_run_deleted_takes_its_counts_with_it(
        factory: sessionmaker[Session], new_run: Callable[..., int], ref: MakeRef) -> None:
    gone, kept = new_run("gone"), new_run("kept")
    with transaction(factory) as s:
        posters.add_posters(s, gone, [ref(1), ref(2)])
        posters.add_posters(s, kept, [ref(1)])
    with transaction(factory) as s:
        s.execute(delete(Run).where(Run.id == gone))
    with factory() as s:
        assert s.scalar(select(func.count()).select_from(RunCount)
                        .where(RunCount.run_id == gone)) == 0
    assert _agree(factory, kept)["fetch"] == 1


def test_folding_the_deltas_keeps_the_sums(
        factory: sessionmaker[Session], run_id: int, ref: MakeRef) -> None:
    with transaction(factory) as s:
        ids = posters.add_posters(s, run_id, [ref(i) for i in range(40)]).queued
    for pid in ids:  # one statement each: on PostgreSQL, one delta row each
        with transaction(factory) as s:
            posters.finish(s, pid, "fetch", status="done", api_calls=1)
    before = _agree(factory, run_id)
    with transaction(factory) as s:
        counts.compact(s, run_id)
    assert _agree(factory, run_id) == before
    with factory() as s:
        assert counts.read_counts(s, run_id).rows <= len(before)
