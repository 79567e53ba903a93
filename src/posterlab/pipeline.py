"""The stages as plain functions over poster ids, used by both modes.

A poster moves ``fetch -> extract -> faces -> done`` (or ``failed`` at any stage).
Each stage is split in three so that the same code serves Celery workers and the
embedded process pool:

- :func:`plan` (parent / task, with a session): is the work already cached? Then
  record it and move on; else describe it as a small picklable :class:`Job`.
- :func:`compute` (any process, no database): fetch bytes into the blob store, analyse
  them, count faces. Errors become data (an :class:`Outcome` with a reason), never raise.
- :func:`record` (with a session): store the outcome with conditional updates, so doing
  a stage twice leaves one row, the same row.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from posterlab.config import Settings
from posterlab.errors import PosterlabError, RateLimited
from posterlab.fetch import FetchPolicy, fetch_bytes
from posterlab.imaging.features import analyse_bytes
from posterlab.imaging.preprocess import PreprocessConfig, feature_version
from posterlab.storage import repository as repo
from posterlab.storage.blobs import BlobStore
from posterlab.storage.engine import transaction
from posterlab.storage.models import Poster, Run
from posterlab.storage.vectors import pack_vectors

if TYPE_CHECKING:
    import redis
    from sqlalchemy.orm import Session, sessionmaker

    from posterlab.faces.base import FaceDetector

log = logging.getLogger(__name__)

NEXT_STAGE = {"fetch": "extract", "extract": "faces", "faces": "done"}
MAX_ATTEMPTS = {"fetch": 4, "extract": 3, "faces": 8}  # per stage, transient errors only
# Waiting for quota is not a fault: a run on a 20/minute plan waits a lot, by design.
MAX_RATE_LIMITED_ATTEMPTS = 200
BACKOFF_BASE = 2.0  # seconds; doubles per attempt, with jitter, capped
BACKOFF_CAP = 300.0


@dataclass
class StageContext:
    """What a process needs to compute stages; built once per process (after fork)."""

    settings: Settings
    redis_client: redis.Redis | None = None
    worker: str | None = None
    _detector: FaceDetector | None = field(default=None, repr=False)
    _configs: dict[str, tuple[PreprocessConfig, str]] = field(default_factory=dict, repr=False)
    _runs: dict[int, Run] = field(default_factory=dict, repr=False)

    @cached_property
    def blobs(self) -> BlobStore:
        return BlobStore(self.settings.blob_dir)

    @cached_property
    def policy(self) -> FetchPolicy:
        return FetchPolicy.from_settings(self.settings)

    @cached_property
    def preprocess(self) -> PreprocessConfig:
        """This process's own preprocessing (used to create runs)."""
        return PreprocessConfig.from_mapping(self.settings.preprocess)

    @cached_property
    def feature_version(self) -> str:
        return feature_version(self.preprocess)

    def run(self, session: Session, run_id: int) -> Run:
        """The run, cached: plan reads only what never changes (settings, versions)."""
        if run_id not in self._runs:
            run = session.get_one(Run, run_id)
            session.expunge(run)
            self._runs[run_id] = run
        return self._runs[run_id]

    def preprocess_for(self, overrides: dict[str, Any]) -> tuple[PreprocessConfig, str]:
        """The run's preprocessing (runs carry theirs, workers follow) and its version."""
        key = repr(sorted(overrides.items()))
        if key not in self._configs:
            config = PreprocessConfig.from_mapping(overrides)
            self._configs[key] = (config, feature_version(config))
        return self._configs[key]

    @property
    def detector(self) -> FaceDetector:
        if self._detector is None:
            from posterlab.faces import build_detector

            self._detector = build_detector(self.settings, redis_client=self.redis_client)
        return self._detector

    @cached_property
    def face_key(self) -> str:
        return self.detector.cache_key


@dataclass(frozen=True)
class Job:
    """One stage of one poster, small enough to send to another process."""

    poster_id: int
    stage: str
    source: str | None = None
    sha256: str | None = None
    attempt: int = 1
    preprocess: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    """What :func:`compute` found; ``error`` set means the stage did not succeed."""

    poster_id: int
    stage: str
    attempt: int = 1
    sha256: str | None = None
    size: int | None = None
    scalars: dict[str, float] | None = None
    vectors: bytes | None = None
    feature_version: str | None = None
    face_count: int | None = None
    boxes: list[list[float | None]] | None = None  # left, top, width, height, score
    counters: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    error_code: str | None = None
    retryable: bool = False
    retry_after: float | None = None


@dataclass(frozen=True)
class Step:
    """What happened when an outcome was recorded."""

    next_stage: str | None = None       # a pending stage to run next
    retry_in: float | None = None       # run the same stage again after this many seconds
    terminal: str | None = None         # "done" | "failed" when the poster ended now
    analysis_due: bool = False          # this poster was the run's last: analyse the run


# ---------------------------------------------------------------- compute (no database)


def compute(job: Job, ctx: StageContext) -> Outcome:
    """Run one stage's work. Never raises for a bad poster: the reason goes in the outcome."""
    try:
        if job.stage == "fetch":
            return _fetch(job, ctx)
        if job.stage == "extract":
            return _extract(job, ctx)
        if job.stage == "faces":
            return _faces(job, ctx)
        raise ValueError(f"stage must be one of {list(NEXT_STAGE)}, got {job.stage!r}")
    except RateLimited as exc:
        return _failure(job, exc, retry_after=exc.retry_after)
    except PosterlabError as exc:
        return _failure(job, exc)
    except Exception as exc:  # a bug or a library surprise: fail the poster, keep the worker
        log.exception("unexpected error in stage %s of poster %s", job.stage, job.poster_id)
        return Outcome(job.poster_id, job.stage, job.attempt,
                       error=f"internal: {type(exc).__name__}: {exc}"[:2000],
                       error_code="internal")


def chainable(stage: str, ctx: StageContext) -> bool:
    """May ``stage`` run right after the previous one in the same process, unplanned?

    ``extract`` always (a duplicate image is just analysed again and stored once);
    ``faces`` only for the local detector: a paid API's answers are looked up in the
    cache first, so that stage is planned with the database.
    """
    return stage == "extract" or (stage == "faces" and ctx.settings.face_provider == "local")


def compute_chain(job: Job, ctx: StageContext, *, through: str = "faces") -> list[Outcome]:
    """Compute ``job`` and the stages after it, up to ``through``, while they succeed and
    are :func:`chainable`. One round trip instead of one per stage."""
    outcomes = [compute(job, ctx)]
    while True:
        last = outcomes[-1]
        nxt = NEXT_STAGE[last.stage]
        if last.error is not None or last.stage == through or nxt == "done" \
                or not chainable(nxt, ctx):
            return outcomes
        job = Job(job.poster_id, nxt, job.source, last.sha256, 1, job.preprocess)
        outcomes.append(compute(job, ctx))


def _failure(job: Job, exc: PosterlabError, *, retry_after: float | None = None) -> Outcome:
    from posterlab.faces.base import usage_of

    usage = usage_of(exc)  # failed API calls are paid for too: count them
    return Outcome(job.poster_id, job.stage, job.attempt, error=exc.reason[:2000],
                   error_code=exc.code, retryable=exc.retryable, retry_after=retry_after,
                   counters={"api_calls": usage.api_calls, "rate_limited": usage.rate_limited,
                             "retries": usage.retries})


def _fetch(job: Job, ctx: StageContext) -> Outcome:
    if not job.source:
        raise PosterlabError("the poster has no source", code="fetch-no-source")
    data = fetch_bytes(job.source, policy=ctx.policy)
    sha = ctx.blobs.put(data)
    return Outcome(job.poster_id, job.stage, job.attempt, sha256=sha, size=len(data))


def _extract(job: Job, ctx: StageContext) -> Outcome:
    assert job.sha256 is not None
    config, version = ctx.preprocess_for(job.preprocess)
    features = analyse_bytes(ctx.blobs.get(job.sha256), config,
                             max_pixels=ctx.settings.max_pixels)
    return Outcome(job.poster_id, job.stage, job.attempt, sha256=job.sha256,
                   scalars=dict(features.scalars), vectors=pack_vectors(features.vectors),
                   feature_version=version)


def _faces(job: Job, ctx: StageContext) -> Outcome:
    assert job.sha256 is not None
    detection = ctx.detector.detect(ctx.blobs.get(job.sha256))
    boxes = [[f.left, f.top, f.width, f.height, f.score] for f in detection.faces]
    return Outcome(job.poster_id, job.stage, job.attempt, sha256=job.sha256,
                   face_count=detection.count, boxes=boxes,
                   counters={"api_calls": detection.api_calls,
                             "rate_limited": detection.rate_limited,
                             "retries": detection.retries})


# ---------------------------------------------------------------- plan and record (database)


def plan(session: Session, poster: Poster, run: Run, ctx: StageContext, *, attempt: int = 1
         ) -> Job | Step:
    """The work for the poster's current stage, or the :class:`Step` taken from a cache."""
    stage = poster.status
    overrides = dict(run.settings.get("preprocess") or {})
    if stage == "extract":
        _, version = ctx.preprocess_for(overrides)
        if version != run.feature_version:
            return _end(session, poster.id, stage, "failed", error_code="config-mismatch",
                        error=f"config-mismatch: this worker computes feature version "
                        f"{version} but the run was created with {run.feature_version}; "
                        "run workers of the same posterlab version, then `posterlab retry`")
        if poster.sha256 and repo.has_features(session, poster.sha256, version):
            repo.advance(session, poster.id, "extract", "faces")
            return Step(next_stage="faces")
    if stage == "faces" and poster.sha256:
        cached = repo.cached_faces(session, poster.sha256, ctx.face_key)
        if cached is not None:
            repo.add_counters(session, poster.id, cache_hits=1)
            return _end(session, poster.id, "faces", "done", face_count=cached.face_count)
    return Job(poster.id, stage, poster.source, poster.sha256, attempt, overrides)


def record(session: Session, outcome: Outcome, ctx: StageContext) -> Step:
    """Store an outcome; returns what to do next with the poster."""
    pid, stage = outcome.poster_id, outcome.stage
    if outcome.counters:
        repo.add_counters(session, pid, **outcome.counters)
    if outcome.error is not None:
        budget = (MAX_RATE_LIMITED_ATTEMPTS if outcome.error_code == "rate-limited"
                  else MAX_ATTEMPTS[stage])
        if outcome.retryable and outcome.attempt < budget:
            repo.add_counters(session, pid, retries=1)
            return Step(retry_in=backoff(outcome.attempt, outcome.retry_after))
        error = outcome.error
        if outcome.retryable:
            error = f"{error} (gave up after {outcome.attempt} attempts)"
        return _end(session, pid, stage, "failed", error=error, error_code=outcome.error_code)
    if stage == "fetch":
        repo.advance(session, pid, "fetch", "extract", sha256=outcome.sha256, size=outcome.size)
        return Step(next_stage="extract")
    if stage == "extract":
        assert outcome.sha256 and outcome.scalars is not None and outcome.vectors is not None
        assert outcome.feature_version is not None
        repo.save_features(session, sha256=outcome.sha256, version=outcome.feature_version,
                           scalars=outcome.scalars, vectors=outcome.vectors)
        repo.advance(session, pid, "extract", "faces")
        return Step(next_stage="faces")
    assert outcome.sha256 and outcome.face_count is not None
    repo.save_faces(session, sha256=outcome.sha256, face_key=ctx.face_key,
                    count=outcome.face_count, boxes=outcome.boxes or [])
    return _end(session, pid, "faces", "done", face_count=outcome.face_count)


def record_chain(session: Session, outcomes: list[Outcome], ctx: StageContext) -> Step:
    """Record chained outcomes in order; the step after the last one."""
    step = Step()
    for outcome in outcomes:
        step = record(session, outcome, ctx)
        if step.next_stage != NEXT_STAGE[outcome.stage]:
            break  # failed, retrying, ended, or moved on by someone else
    return step


def record_many(session: Session, chains: list[list[Outcome]], ctx: StageContext,
                run_id: int) -> list[Step]:
    """:func:`record_chain` for many posters of one run, for a single writer.

    Chains that took a poster all the way to ``done`` are stored with one statement per
    table (the embedded parent's writes were most of its CPU); the others one by one.
    """
    def whole(c: list[Outcome]) -> bool:
        return c[-1].stage == "faces" and all(o.error is None for o in c)

    complete = [c for c in chains if whole(c)]
    now = repo.utcnow()
    features = [{"sha256": o.sha256, "feature_version": o.feature_version,
                 "vectors": o.vectors, "created_at": now, **(o.scalars or {})}
                for c in complete for o in c if o.stage == "extract"]
    faces = [{"sha256": c[-1].sha256, "face_key": ctx.face_key, "face_count": c[-1].face_count,
              "boxes": c[-1].boxes or [], "created_at": now} for c in complete]
    items = [repo.Finished(c[0].poster_id, c[0].stage, c[-1].sha256 or "",
                           next((o.size for o in c if o.stage == "fetch"), None),
                           c[-1].face_count or 0,
                           **{k: sum(o.counters.get(k, 0) for o in c)
                              for k in ("api_calls", "rate_limited", "retries")})
             for c in complete]
    remaining = None
    if complete:
        repo.save_features_many(session, features)
        repo.save_faces_many(session, faces)
        remaining = repo.finish_many(session, run_id, items)
    if remaining is None:  # nothing complete, or rows moved cannot be counted: one by one
        return [record_chain(session, c, ctx) for c in chains]
    steps = [Step(terminal="done") if whole(c) else record_chain(session, c, ctx)
             for c in chains]
    if repo.claim_analysis(session, run_id):  # the batch held the run's last poster
        steps[-1] = Step(steps[-1].next_stage, steps[-1].retry_in, steps[-1].terminal, True)
    return steps


def _end(session: Session, poster_id: int, stage: str, status: str, **fields: Any) -> Step:
    remaining = repo.finish(session, poster_id, stage, status=status, **fields)
    if remaining is None:  # somebody else already ended it
        return Step()
    due = remaining == 0 and repo.claim_analysis(
        session, session.get(Poster, poster_id).run_id)  # type: ignore[union-attr]
    return Step(terminal=status, analysis_due=due)


def backoff(attempt: int, retry_after: float | None = None, *, rng: random.Random | None = None
            ) -> float:
    """Seconds before retrying: the server's word when given, else exponential with jitter."""
    if retry_after is not None and retry_after >= 0:
        return min(float(retry_after), BACKOFF_CAP)
    rng = rng or random.Random()
    delay = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (attempt - 1))
    return delay * (0.5 + rng.random() / 2)



def run_stage(factory: sessionmaker[Session], ctx: StageContext, poster_id: int, stage: str,
              *, attempt: int = 1, through: str | None = None) -> Step:
    """Plan, compute and record one stage of one poster (what a Celery task does), and the
    :func:`chainable` stages after it up to ``through``.

    The database transaction is not held while computing.
    """
    with transaction(factory) as session:
        poster = repo.claim(session, poster_id, stage, worker=ctx.worker)
        if poster is None:  # already past this stage (redelivery) or gone
            return Step()
        planned = plan(session, poster, ctx.run(session, poster.run_id), ctx, attempt=attempt)
    if isinstance(planned, Step):
        return planned
    outcomes = compute_chain(planned, ctx, through=through or stage)
    with transaction(factory) as session:
        return record_chain(session, outcomes, ctx)


def run_stage_many(factory: sessionmaker[Session], ctx: StageContext, poster_ids: list[int],
                   stage: str, *, attempt: int = 1) -> list[tuple[int, Step]]:
    """:func:`run_stage` for a few posters with one claiming and one recording transaction
    (what the ``fetch`` task does with its chunk, a few ids at a time)."""
    steps: list[tuple[int, Step]] = []
    jobs: list[Job] = []
    with transaction(factory) as session:
        for poster_id in poster_ids:
            poster = repo.claim(session, poster_id, stage, worker=ctx.worker)
            if poster is None:
                continue
            planned = plan(session, poster, ctx.run(session, poster.run_id), ctx,
                           attempt=attempt)
            if isinstance(planned, Step):
                steps.append((poster_id, planned))
            else:
                jobs.append(planned)
    outcomes = [compute(job, ctx) for job in jobs]
    with transaction(factory) as session:
        steps += [(o.poster_id, record(session, o, ctx)) for o in outcomes]
    return steps


def analyse_run(factory: sessionmaker[Session], run_id: int) -> dict[str, Any]:
    """Train the model and compute the correlations of a run; store and return the result.

    Whatever goes wrong, the run's analysis ends ``done`` or ``failed`` (with the error),
    never stuck in ``running``; ``posterlab analyze`` re-runs it by hand.
    """
    try:
        from posterlab.analysis import analyze
        from posterlab.storage.export import results_frame

        with transaction(factory) as session:
            run = session.get_one(Run, run_id)
            frame = results_frame(session, run, vectors=True)
            repo.save_analysis(session, run_id, state="running", result=run.analysis)
        done = frame[frame["status"] == "done"].reset_index(drop=True)
        result = analyze(done, seed=0).to_dict()
    except Exception as exc:
        log.exception("analysis of run %s failed", run_id)
        with transaction(factory) as session:
            repo.save_analysis(session, run_id, state="failed",
                               result={"error": f"{type(exc).__name__}: {exc}"})
        raise
    with transaction(factory) as session:
        repo.save_analysis(session, run_id, state="done", result=result)
    return result
