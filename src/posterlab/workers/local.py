"""The embedded runner: the same stages, in a local process pool, with no server.

Children compute (fetch into the blob store, features, faces); only this parent process
writes to the database, in small batched transactions. All state is in the database,
so an interrupted run (Ctrl-C, kill) resumes where it stopped: the next run picks up
every poster that is not ``done`` or ``failed``.
"""

from __future__ import annotations

import heapq
import multiprocessing
import os
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from posterlab.config import Rate, Settings
from posterlab.pipeline import Job, Outcome, StageContext, Step, compute, plan, record
from posterlab.storage import repository as repo
from posterlab.storage.engine import transaction
from posterlab.storage.models import Poster, Run

IN_FLIGHT_PER_WORKER = 4  # enough queued work to keep each child busy while we write
COMMIT_EVERY = 0.25  # seconds: batch the parent's writes, ~4 commits a second

_child_ctx: StageContext | None = None


def _init_child(settings: Settings) -> None:
    global _child_ctx  # one context per child process, built once after start
    single_threaded_blas()
    _child_ctx = StageContext(settings, worker=f"local:{os.getpid()}")


def single_threaded_blas() -> None:
    """One BLAS thread per process: with one process per core, more threads only contend
    (measured: a 1600x29 @ 29x16 product went from 37 us to 7.5 ms on a busy 2-core host)."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)


def _compute_in_child(job: Job) -> Outcome:
    assert _child_ctx is not None
    return compute(job, _child_ctx)


@dataclass
class Summary:
    processed: int = 0
    done: int = 0
    failed: int = 0
    analysis_due: bool = False
    interrupted: bool = False


def run_embedded(
    factory: sessionmaker[Session],
    settings: Settings,
    run_id: int,
    *,
    workers: int | None = None,
    on_progress: Callable[[str], None] | None = None,
) -> Summary:
    """Process every pending poster of ``run_id``; returns counts. Ctrl-C stops cleanly."""
    workers = max(1, workers or os.cpu_count() or 1)
    ctx = StageContext(settings, worker="local")
    summary = Summary()
    with transaction(factory) as session:
        pending = repo.pending_poster_ids(session, run_id)
    queue: list[int] = list(reversed(pending))
    delayed: list[tuple[float, int, int]] = []  # (due time, poster id, attempt)
    if workers == 1:
        submit: Callable[[Job], Future[Outcome]] = _inline_submit(ctx)
        pool = None
    else:
        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("forkserver"),
                                   initializer=_init_child,
                                   initargs=(share_face_quota(settings, workers),))
        submit = lambda job: pool.submit(_compute_in_child, job)  # noqa: E731
    in_flight: dict[Future[Outcome], Job] = {}
    limit = workers * IN_FLIGHT_PER_WORKER
    try:
        while queue or in_flight or delayed:
            now = time.monotonic()
            while delayed and delayed[0][0] <= now:
                _, pid, attempt = heapq.heappop(delayed)
                _start(factory, ctx, pid, attempt, submit, in_flight, summary, on_progress)
            while queue and len(in_flight) < limit:
                _start(factory, ctx, queue.pop(), 1, submit, in_flight, summary, on_progress)
            if not in_flight:
                if delayed:
                    time.sleep(max(0.0, min(1.0, delayed[0][0] - time.monotonic())))
                continue
            timeout = max(0.0, delayed[0][0] - time.monotonic()) if delayed else None
            finished, _ = wait(list(in_flight), timeout=timeout, return_when=FIRST_COMPLETED)
            outcomes = [f.result() for f in finished]
            for f in finished:
                del in_flight[f]
            for outcome, step in _record_all(factory, ctx, outcomes):
                _follow(step, outcome.poster_id, outcome.attempt, queue, delayed, summary,
                        on_progress)
    except KeyboardInterrupt:
        summary.interrupted = True
    finally:
        if pool is not None:
            pool.shutdown(wait=not summary.interrupted, cancel_futures=True)
    return summary


def share_face_quota(settings: Settings, workers: int) -> Settings:
    """Each of ``workers`` children gets its share of the face-API quota.

    Embedded runs have no Redis to hold a global limiter, so the quota is split: the
    children together never exceed ``POSTERLAB_FACE_API_RATE``.
    """
    rate = settings.face_api_rate
    share = Rate(rate.count / workers, rate.period, max(1, rate.burst // workers))
    return settings.with_(face_api_rate=share)


def _inline_submit(ctx: StageContext) -> Callable[[Job], Future[Outcome]]:
    def submit(job: Job) -> Future[Outcome]:
        future: Future[Outcome] = Future()
        future.set_result(compute(job, ctx))
        return future

    return submit


def _start(factory: sessionmaker[Session], ctx: StageContext, poster_id: int, attempt: int,
           submit: Callable[[Job], Future[Outcome]], in_flight: dict[Future[Outcome], Job],
           summary: Summary, on_progress: Callable[[str], None] | None) -> None:
    """Plan the poster's current stage; submit its work, or follow a cached step."""
    while True:
        with transaction(factory) as session:
            poster = session.get(Poster, poster_id)
            if poster is None or poster.status in ("done", "failed"):
                return
            poster = repo.claim(session, poster_id, poster.status, worker=ctx.worker)
            if poster is None:
                return
            run = session.get_one(Run, poster.run_id)
            planned = plan(session, poster, run, ctx, attempt=attempt)
        if isinstance(planned, Job):
            in_flight[submit(planned)] = planned
            return
        _tally(planned, summary, on_progress)
        if planned.next_stage is None:
            return
        attempt = 1


def _record_all(factory: sessionmaker[Session], ctx: StageContext, outcomes: list[Outcome]
                ) -> list[tuple[Outcome, Step]]:
    with transaction(factory) as session:
        return [(o, record(session, o, ctx)) for o in outcomes]


def _follow(step: Step, poster_id: int, attempt: int, queue: list[int],
            delayed: list[tuple[float, int, int]], summary: Summary,
            on_progress: Callable[[str], None] | None) -> None:
    _tally(step, summary, on_progress)
    if step.retry_in is not None:
        heapq.heappush(delayed, (time.monotonic() + step.retry_in, poster_id, attempt + 1))
    elif step.next_stage is not None:
        queue.append(poster_id)  # LIFO: finish started posters before starting new ones


def _tally(step: Step, summary: Summary, on_progress: Callable[[str], None] | None) -> None:
    if step.terminal:
        summary.processed += 1
        if step.terminal == "done":
            summary.done += 1
        else:
            summary.failed += 1
        if on_progress:
            on_progress(step.terminal)
    if step.analysis_due:
        summary.analysis_due = True
