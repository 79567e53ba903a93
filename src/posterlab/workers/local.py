"""The embedded runner: the same stages, in a local process pool, with no server.

Children compute (fetch into the blob store, features, faces: a poster's stages in one
round trip, see :func:`~posterlab.pipeline.compute_chain`); only this parent process
writes to the database, claiming and recording posters in batches. All state is in the
database, so an interrupted run (Ctrl-C, kill) resumes where it stopped: the next run
picks up every poster that is not ``done`` or ``failed``.
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
from posterlab.pipeline import Job, Outcome, StageContext, Step, compute_chain, plan, record_many
from posterlab.storage import repository as repo
from posterlab.storage.engine import transaction
from posterlab.storage.models import PENDING_STAGES

IN_FLIGHT_PER_WORKER = 6  # enough queued work to keep each child busy while we write
GATHER_SECONDS = 0.02  # wait this long for more finished posters to record together
# Children are replaced after this many posters: the YuNet binding keeps ~36 KB per call
# (measured), so a long-lived child would grow by ~36 MB per 1,000 posters.
TASKS_PER_CHILD = 1000

PRELOAD = ["posterlab.pipeline", "posterlab.imaging.features", "posterlab.faces.local"]

_child_ctx: StageContext | None = None


def single_threaded_blas() -> None:
    """One BLAS thread per process: with one process per core, more threads only contend
    (measured: a 1600x29 @ 29x16 product went from 37 us to 7.5 ms on a busy 2-core host)."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)


def _init_child(settings: Settings) -> None:
    global _child_ctx  # one context per child process, built once after start
    single_threaded_blas()
    _child_ctx = StageContext(settings, worker=f"local:{os.getpid()}")


def _compute_in_child(job: Job) -> list[Outcome]:
    assert _child_ctx is not None
    return compute_chain(job, _child_ctx)


@dataclass
class Summary:
    processed: int = 0
    done: int = 0
    failed: int = 0
    analysis_due: bool = False
    interrupted: bool = False


Submit = Callable[[Job], "Future[list[Outcome]]"]
Progress = Callable[[str], None] | None


def run_embedded(
    factory: sessionmaker[Session],
    settings: Settings,
    run_id: int,
    *,
    workers: int | None = None,
    on_progress: Progress = None,
) -> Summary:
    """Process every pending poster of ``run_id``; returns counts. Ctrl-C stops cleanly."""
    workers = max(1, workers or os.cpu_count() or 1)
    ctx = StageContext(settings, worker="local")
    summary = Summary()
    with transaction(factory) as session:
        pending = repo.pending_poster_ids(session, run_id)
    queue: list[tuple[int, int]] = [(pid, 1) for pid in reversed(pending)]
    delayed: list[tuple[float, int, int]] = []  # (due time, poster id, attempt)
    pool = None
    if workers == 1:
        submit: Submit = _inline_submit(ctx)
    else:
        context = multiprocessing.get_context("forkserver")
        # children fork from a server that has imported these: a recycled child starts in
        # milliseconds instead of re-importing scikit-image and the detector
        context.set_forkserver_preload(PRELOAD)
        pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_init_child,
                                   initargs=(share_face_quota(settings, workers),),
                                   max_tasks_per_child=TASKS_PER_CHILD)
        submit = lambda job: pool.submit(_compute_in_child, job)  # noqa: E731
    in_flight: set[Future[list[Outcome]]] = set()
    limit = workers * IN_FLIGHT_PER_WORKER
    try:
        while queue or in_flight or delayed:
            now = time.monotonic()
            while delayed and delayed[0][0] <= now:
                _, pid, attempt = heapq.heappop(delayed)
                queue.append((pid, attempt))
            if queue and len(in_flight) < limit:
                batch = [queue.pop() for _ in range(min(len(queue), limit - len(in_flight)))]
                for job in _start(factory, ctx, batch, queue, summary, on_progress):
                    in_flight.add(submit(job))
                continue
            if not in_flight:
                if delayed:
                    time.sleep(max(0.0, min(1.0, delayed[0][0] - time.monotonic())))
                continue
            timeout = max(0.0, delayed[0][0] - time.monotonic()) if delayed else None
            finished, _ = wait(in_flight, timeout=timeout, return_when=FIRST_COMPLETED)
            if len(finished) < workers and len(in_flight) > len(finished):
                # gather a few more: one transaction for several posters is much cheaper
                more, _ = wait(in_flight - finished, timeout=GATHER_SECONDS)
                finished = finished | more
            in_flight -= finished
            chains = [f.result() for f in finished]
            with transaction(factory) as session:
                steps = record_many(session, chains, ctx, run_id)
            for chain, step in zip(chains, steps, strict=True):
                _follow(step, chain[-1].poster_id, chain[-1].attempt, queue, delayed, summary,
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


def _inline_submit(ctx: StageContext) -> Submit:
    def submit(job: Job) -> Future[list[Outcome]]:
        future: Future[list[Outcome]] = Future()
        future.set_result(compute_chain(job, ctx))
        return future

    return submit


def _start(factory: sessionmaker[Session], ctx: StageContext, batch: list[tuple[int, int]],
           queue: list[tuple[int, int]], summary: Summary, on_progress: Progress
           ) -> list[Job]:
    """Claim and plan a batch of posters in one transaction; the jobs to compute.

    A poster whose stage was answered from a cache goes back on the queue for its next
    stage.
    """
    jobs: list[Job] = []
    fresh = [pid for pid, attempt in batch if attempt == 1]
    with transaction(factory) as session:
        # posters waiting to be fetched need nothing but a claim: one statement for all
        for row in repo.claim_many(session, fresh, "fetch", worker=ctx.worker):
            run = ctx.run(session, row.run_id)
            jobs.append(Job(row.id, "fetch", row.source, row.sha256, 1,
                            dict(run.settings.get("preprocess") or {})))
        claimed = {job.poster_id for job in jobs}
        for poster_id, attempt in batch:
            if poster_id in claimed:
                continue
            stage = repo.current_stage(session, poster_id)
            if stage not in PENDING_STAGES:
                continue
            poster = repo.claim(session, poster_id, stage, worker=ctx.worker)
            if poster is None:
                continue
            planned = plan(session, poster, ctx.run(session, poster.run_id), ctx,
                           attempt=attempt)
            if isinstance(planned, Job):
                jobs.append(planned)
                continue
            _tally(planned, summary, on_progress)
            if planned.next_stage is not None:
                queue.append((poster_id, 1))
    return jobs


def _follow(step: Step, poster_id: int, attempt: int, queue: list[tuple[int, int]],
            delayed: list[tuple[float, int, int]], summary: Summary, on_progress: Progress
            ) -> None:
    _tally(step, summary, on_progress)
    if step.retry_in is not None:
        heapq.heappush(delayed, (time.monotonic() + step.retry_in, poster_id, attempt + 1))
    elif step.next_stage is not None:
        queue.append((poster_id, 1))  # LIFO: finish started posters before new ones


def _tally(step: Step, summary: Summary, on_progress: Progress) -> None:
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
