"""The embedded runner: the same stages, in a local process pool, with no server.

Children compute (fetch into the blob store, features, faces: a poster's stages in one
round trip, see :func:`~posterlab.pipeline.compute_chain`); only this parent process
writes to the database, claiming (:func:`~posterlab.pipeline.claim_and_plan`) and
recording (:func:`~posterlab.pipeline.record_batch`) posters in batches, as Celery tasks
do. All state is in the database, so an interrupted run (Ctrl-C, kill) resumes where it
stopped: the next run picks up every poster that is not ``done`` or ``failed``.

A child that dies (killed, out of memory, a native crash) breaks the pool: the pool is
replaced, and the posters it held are run again one at a time, each alone in the pool,
so that a poster that kills its process is known; at ``POSTERLAB_MAX_CRASHES`` deaths it
fails ``worker-crashed`` (see :func:`~posterlab.pipeline.claim_and_plan`), and the run
goes on.
"""

from __future__ import annotations

import heapq
import logging
import os
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import (
    FIRST_COMPLETED,
    Future,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
    wait,
)
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field

from sqlalchemy.orm import Session, sessionmaker

from posterlab.config import Rate, Settings
from posterlab.fetch.local import is_local
from posterlab.pipeline import Chain, Job, StageContext, Transition, compute_chain
from posterlab.pipeline.claim import claim_and_plan
from posterlab.pipeline.compute import fetch_all
from posterlab.pipeline.record import record_batch
from posterlab.stages import End, Stage
from posterlab.storage import claims, posters
from posterlab.storage.engine import transaction
from posterlab.workers.process import (
    POSTERS_PER_CHILD,
    pool_context,
    pool_size,
    set_up_compute_process,
    steady_malloc,
)

IN_FLIGHT_PER_WORKER = 8  # enough queued work to keep each child busy while we write
BACKLOG_PER_SLOT = 4  # posters downloaded ahead, per pool slot, waiting for the pool
_IO, _CPU = "io", "cpu"
# Posters are claimed and recorded in batches: one transaction for several posters costs
# about what one for a single poster does. A lane starts work once this share of its
# slots is free, and finished posters are gathered up to that many (for at most
# GATHER_SECONDS), while the children work through what they still hold.
BATCH_SHARE = {_CPU: 2, _IO: 4}  # a half of the pool's slots, a quarter of the downloads'
GATHER_SECONDS = 0.25

log = logging.getLogger(__name__)
_child_ctx: StageContext | None = None  # one per pool child, built by its initializer

Work = tuple[int, Stage, int]  # poster id, the stage it waits for, attempt
Submit = Callable[[Job], "Future[Chain]"]
Progress = Callable[[str], None] | None


def _init_child(settings: Settings) -> None:
    global _child_ctx
    set_up_compute_process()
    _child_ctx = StageContext(settings, worker=f"local:{os.getpid()}")


def _compute_in_child(job: Job) -> Chain:
    if _child_ctx is None:
        raise RuntimeError("pool child used before its initializer ran")
    return compute_chain(job, _child_ctx)


@dataclass
class Summary:
    processed: int = 0
    done: int = 0
    failed: int = 0
    analysis_due: bool = False
    interrupted: bool = False


def share_face_quota(settings: Settings, workers: int) -> Settings:
    """Each of ``workers`` children gets its share of the face-API quota.

    Embedded runs have no Redis to hold a global limiter, so the quota is split: the
    children together never exceed ``POSTERLAB_FACE_API_RATE``.
    """
    rate = settings.face_api_rate
    share = Rate(rate.count / workers, rate.period, max(1, rate.burst // workers))
    return settings.with_(face_api_rate=share)


def run_embedded(factory: sessionmaker[Session], settings: Settings, run_id: int, *,
                 workers: int | None = None, on_progress: Progress = None) -> Summary:
    """Process every pending poster of ``run_id``; returns counts. Ctrl-C stops cleanly."""
    workers = pool_size(workers)
    ctx = StageContext(settings, worker="local")
    pool = _Pool(settings, workers) if workers > 1 else None
    if pool is None:  # this process computes the posters itself (its BLAS stays as is:
        steady_malloc()  # the analysis may run here after the posters)
    downloads = ThreadPoolExecutor(settings.fetch_concurrency, "posterlab-download")
    cpu: Submit = _inline_submit(ctx) if pool is None else pool.submit
    io: Submit = lambda job: downloads.submit(fetch_all, [job], ctx)  # noqa: E731
    runner = _Runner(factory, ctx, run_id, {_IO: io, _CPU: cpu},
                     {_IO: settings.fetch_concurrency, _CPU: workers * IN_FLIGHT_PER_WORKER},
                     on_progress, pool, window=settings.max_queued)
    try:
        runner.run()
    except KeyboardInterrupt:
        runner.summary.interrupted = True
        runner.release()
    finally:
        downloads.shutdown(wait=not runner.summary.interrupted, cancel_futures=True)
        ctx.close()
        if pool is not None:
            pool.shutdown(wait=not runner.summary.interrupted)
    return runner.summary


class _Pool:
    """The process pool of the children, replaced when one of them dies."""

    def __init__(self, settings: Settings, workers: int) -> None:
        self.settings, self.workers = settings, workers
        self.executor = self._start()
        self.replaced = 0

    def _start(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(self.workers, mp_context=pool_context(self.workers),
                                   initializer=_init_child,
                                   initargs=(share_face_quota(self.settings, self.workers),),
                                   max_tasks_per_child=POSTERS_PER_CHILD)

    def submit(self, job: Job) -> Future[Chain]:
        return self.executor.submit(_compute_in_child, job)

    def replace(self) -> None:
        """A child died and broke the pool: start a new one (the old one is gone)."""
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.executor = self._start()
        self.replaced += 1

    def shutdown(self, *, wait: bool) -> None:
        self.executor.shutdown(wait=wait, cancel_futures=True)


def _inline_submit(ctx: StageContext) -> Submit:
    def submit(job: Job) -> Future[Chain]:
        future: Future[Chain] = Future()
        future.set_result(compute_chain(job, ctx))
        return future

    return submit




@dataclass
class _Runner:
    """One embedded run's loop: claim a batch, hand it to its lane, record what finishes.

    Two lanes: downloads on threads (they wait on the network, never on a CPU) and
    features and faces on the process pool (with the read of a poster that is a local
    file: one job and one round trip to the database for all its stages). Downloads run
    ahead of the pool, but only while the posters waiting for the pool stay under
    :data:`BACKLOG_PER_SLOT` per slot: memory stays bounded however far the downloads
    could run ahead.
    """

    factory: sessionmaker[Session]
    ctx: StageContext
    run_id: int
    submit: dict[str, Submit]
    limit: dict[str, int]
    on_progress: Progress
    pool: _Pool | None = None
    summary: Summary = field(default_factory=Summary)
    queues: dict[str, list[Work]] = field(  # LIFO: started posters finish first
        default_factory=lambda: {_IO: [], _CPU: []})
    delayed: list[tuple[float, Work]] = field(default_factory=list)  # a heap by due time
    in_flight: dict[Future[Chain], str] = field(default_factory=dict)  # future -> lane
    jobs: dict[Future[Chain], Job] = field(default_factory=dict)
    alone: list[Work] = field(default_factory=list)  # to run alone: a child died on them
    local: set[int] = field(default_factory=set)  # posters read from a file, not downloaded
    isolating: Future[Chain] | None = None  # the one job in the pool, alone

    window: int = 1000  # pending posters read from the database at a time
    cursor: int | None = 0  # the last poster id read; None once the run is read through

    def run(self) -> None:
        while (self.cursor is not None or any(self.queues.values()) or self.in_flight
               or self.delayed or self.alone):
            self._refill()
            self._release_due()
            started = [self._start_alone()] + [self._start(lane, room) for lane in (_CPU, _IO)
                                               if (room := self._room(lane)) > 0]
            if any(started):
                continue
            if self.in_flight:
                self._record(self._finished())
            elif self.delayed:
                time.sleep(max(0.0, min(1.0, self.delayed[0][0] - time.monotonic())))

    def _refill(self) -> None:
        """Read the next window of the run's pending posters once the queues run low:
        a million-poster run holds ``window`` of them in memory, not a million."""
        if self.cursor is None or sum(map(len, self.queues.values())) > self.window // 2:
            return
        with transaction(self.factory) as session:
            pending = posters.pending_posters(session, self.run_id, after=self.cursor,
                                              limit=self.window)
        self.cursor = pending[-1][0] if len(pending) == self.window else None
        fresh: dict[str, list[Work]] = {_IO: [], _CPU: []}
        for pid, status, source in reversed(pending):
            if source and is_local(source):
                self.local.add(pid)
            fresh[self._lane(pid, Stage(status))].append((pid, Stage(status), 1))
        for lane, works in fresh.items():  # the new window goes after what is queued
            self.queues[lane][:0] = works

    def _lane(self, poster_id: int, stage: Stage) -> str:
        """Downloads run on threads of this process; the rest on the process pool, and so
        does a poster read from a local file, whose stages all run there in one job."""
        return _IO if stage is Stage.FETCH and poster_id not in self.local else _CPU

    def _batch(self, lane: str) -> int:
        return max(1, self.limit[lane] // BATCH_SHARE[lane])

    def _room(self, lane: str) -> int:
        """How many more posters ``lane`` may start now: none until a batch's worth of
        its slots is free (see :data:`BATCH_SHARE`)."""
        busy = sum(1 for held in self.in_flight.values() if held == lane)
        if lane == _CPU and (self.isolating is not None or self.alone):
            return 0  # the pool drains, then runs one poster alone
        if self.limit[lane] - busy < self._batch(lane):
            return 0
        room = min(len(self.queues[lane]), self.limit[lane] - busy)
        if lane == _IO:  # downloads wait while the pool has enough ahead of it
            backlog = len(self.queues[_CPU]) + (len(self.in_flight) - busy)
            room = min(room, self.limit[_CPU] * BACKLOG_PER_SLOT - backlog)
        return room

    def _release_due(self) -> None:
        now = time.monotonic()
        while self.delayed and self.delayed[0][0] <= now:
            work = heapq.heappop(self.delayed)[1]
            self.queues[self._lane(work[0], work[1])].append(work)

    def _start(self, lane: str, room: int) -> bool:
        """Claim and plan up to ``room`` posters of ``lane`` (one transaction), submit
        their jobs; whether any poster was taken."""
        groups: dict[tuple[Stage, int], list[int]] = defaultdict(list)
        queue = self.queues[lane]
        for _ in range(room):
            pid, stage, attempt = queue.pop()
            groups[stage, attempt].append(pid)
        with transaction(self.factory) as session:
            planned = [claim_and_plan(session, self.ctx, stage, ids, attempt=attempt)
                       for (stage, attempt), ids in groups.items()]
        for plan in planned:
            for job in plan.jobs:
                self._submit(job)
            for moved in plan.moved:
                self._follow(moved)
        return bool(groups)

    def _submit(self, job: Job) -> Future[Chain]:
        lane = self._lane(job.poster_id, job.stage)
        future = self.submit[lane](job)
        self.in_flight[future], self.jobs[future] = lane, job
        return future

    def _start_alone(self) -> bool:
        """Claim and start one poster a child died on, alone in the pool (downloads, in
        this process, need no pool to themselves); whether one was taken."""
        cpu_busy = any(lane == _CPU for lane in self.in_flight.values())
        index = next((i for i, w in enumerate(self.alone)
                      if self._lane(w[0], w[1]) == _IO or not cpu_busy), None)
        if index is None:
            return False
        pid, stage, attempt = self.alone.pop(index)
        with transaction(self.factory) as session:
            plan = claim_and_plan(session, self.ctx, stage, [pid], attempt=attempt)
        for job in plan.jobs:
            future = self._submit(job)
            if self._lane(job.poster_id, job.stage) == _CPU:
                self.isolating = future
        for moved in plan.moved:
            self._follow(moved)
        return True

    def release(self) -> None:
        """Interrupted: the posters in flight did not kill anyone, uncount their delivery."""
        with transaction(self.factory) as session:
            claims.undeliver(session, [job.poster_id for job in self.jobs.values()])

    def _finished(self) -> list[Chain]:
        timeout = max(0.0, self.delayed[0][0] - time.monotonic()) if self.delayed else None
        done, _ = wait(self.in_flight, timeout=timeout, return_when=FIRST_COMPLETED)
        target = min(len(self.in_flight), self._batch(_CPU))
        until = time.monotonic() + GATHER_SECONDS
        while done and len(done) < target and (left := until - time.monotonic()) > 0:
            more, _ = wait(set(self.in_flight) - done, timeout=left,
                           return_when=FIRST_COMPLETED)  # a batch for one transaction
            done = done | more
        chains, died = [], []
        for future in done:
            del self.in_flight[future]
            job = self.jobs.pop(future)
            if future is self.isolating:
                self.isolating = None
            try:
                chains.append(future.result())
            except BrokenProcessPool:
                died.append(job)
        if died:
            self._child_died(died)
        return chains

    def _child_died(self, jobs: list[Job]) -> None:
        """A child died: the pool is replaced, each poster it held is run again alone."""
        log.warning("a pool process died holding %d posters; replacing the pool, then "
                    "running them one at a time", len(jobs))
        for job in jobs:
            self.alone.append((job.poster_id, job.stage, job.attempt))
        if self.pool is not None and not any(lane == _CPU for lane in self.in_flight.values()):
            self.pool.replace()
    def _record(self, chains: list[Chain]) -> None:
        if not chains:
            return
        run_of = {chain[0].poster_id: self.run_id for chain in chains}
        with transaction(self.factory) as session:
            moved = record_batch(session, chains, self.ctx, run_of)
        for transition in moved:
            self._follow(transition)

    def _follow(self, t: Transition) -> None:
        if t.terminal:
            self.local.discard(t.poster_id)
            self.summary.processed += 1
            self.summary.done += t.terminal == End.DONE
            self.summary.failed += t.terminal == End.FAILED
            if self.on_progress:
                self.on_progress(t.terminal)
        self.summary.analysis_due |= t.analysis_due
        if t.stage is not None and t.delay is not None:
            heapq.heappush(self.delayed, (time.monotonic() + t.delay,
                                          (t.poster_id, t.stage, t.attempt)))
        elif t.stage is not None and t.alone:
            self.alone.append((t.poster_id, t.stage, t.attempt))
        elif t.stage is not None:
            self.queues[self._lane(t.poster_id, t.stage)].append(
                (t.poster_id, t.stage, t.attempt))
