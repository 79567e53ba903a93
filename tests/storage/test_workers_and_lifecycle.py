"""Worker heartbeats and a run's lifecycle on a real SQLite file and a real PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from posterlab.manifest import PosterRef
from posterlab.storage import posters, runs, workers
from posterlab.storage.engine import transaction
from posterlab.storage.models import Run, utcnow

MakeRef = Callable[..., PosterRef]


def test_a_heartbeat_upserts_its_node_and_counts_the_posters_of_its_processes(
        factory: sessionmaker[Session], run_id: int, ref: MakeRef) -> None:
    now = utcnow()
    with transaction(factory) as s:
        ids = posters.add_posters(s, run_id, [ref(i) for i in range(4)]).queued
        posters.claim_many(s, ids[:3], "fetch", worker="h:1")
        posters.claim_many(s, ids[3:], "fetch", worker="h:9")
        for beat in (now - timedelta(seconds=30), now):
            workers.beat(s, name="n@h", hostname="h", queues="fetch,extract", pid=1,
                         processes=["h:1", "h:2"], now=beat, started_at=now)
        workers.beat(s, name="old@h", hostname="h", queues="faces", pid=5, processes=["h:9"],
                     now=now - timedelta(hours=1), started_at=now - timedelta(hours=2))
    with factory() as s:
        seen = workers.seen_since(s, now - timedelta(minutes=5), run_id=run_id,
                                  recent=now - timedelta(minutes=1))
    assert [(w.name, w.posters_last_minute, w.queues) for w in seen] == [
        ("n@h", 3, "fetch,extract")]
    assert seen[0].last_seen == now


def test_cancel_ends_waiting_posters_once_and_completes_the_run(
        factory: sessionmaker[Session], run_id: int, ref: MakeRef) -> None:
    with transaction(factory) as s:
        ids = posters.add_posters(s, run_id, [ref(i) for i in range(3)]).queued
        posters.finish(s, ids[0], "fetch", status="done")
        assert posters.cancel_pending(s, run_id, reason="cancelled: by hand") == 2
        assert posters.cancel_pending(s, run_id, reason="again") == 0
        # a worker finishing a cancelled poster's stage moves nothing
        assert posters.finish(s, ids[1], "fetch", status="done") is None
    with factory() as s:
        run = s.get_one(Run, run_id)
        assert (run.pending, run.finished_at is not None) == (0, True)


def test_new_posters_make_a_done_analysis_due_again(
        factory: sessionmaker[Session], run_id: int, ref: MakeRef) -> None:
    with transaction(factory) as s:
        runs.save_analysis(s, run_id, state="done", result={"n": 1})
        posters.add_posters(s, run_id, [ref(0)])
    with factory() as s:
        assert s.get_one(Run, run_id).analysis_state == "none"
