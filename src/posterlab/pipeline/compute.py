"""Compute: a stage's work on one poster, in any process, with no database.

Fetch bytes into the blob store, extract features, count faces. Errors become data (a
:class:`~posterlab.pipeline.results.Failed` with a reason), never exceptions: a bad poster
fails, the process goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from posterlab.errors import PosterlabError, RateLimited
from posterlab.faces.base import FaceBox, usage_of
from posterlab.imaging.features import analyze_bytes
from posterlab.pipeline.context import StageContext
from posterlab.pipeline.results import Box, Chain, Counted, Extracted, Failed, Fetched, Job, Result
from posterlab.stages import Stage
from posterlab.storage.vectors import pack_vectors

log = logging.getLogger(__name__)
MAX_ERROR = 2000  # characters of an error kept with the poster


def compute(job: Job, ctx: StageContext) -> Result:
    """Run one stage's work. Never raises for a bad poster: the reason goes in the result."""
    try:
        return _STAGES[job.stage](job, ctx)
    except RateLimited as exc:
        return _failure(job, exc, retry_after=exc.retry_after)
    except PosterlabError as exc:
        return _failure(job, exc)
    except Exception as exc:  # a bug or a library surprise: fail the poster, keep the worker
        log.exception("unexpected error in stage %s of poster %s", job.stage, job.poster_id)
        return Failed(job.poster_id, job.stage, job.attempt,
                      f"internal: {type(exc).__name__}: {exc}"[:MAX_ERROR], "internal")


def chainable(stage: Stage, ctx: StageContext) -> bool:
    """May ``stage`` run right after the previous one in the same process, unplanned?

    ``extract`` always (a duplicate image is just analyzed again and stored once);
    ``faces`` only when :attr:`StageContext.chains_faces`.
    """
    return stage is Stage.EXTRACT or (stage is Stage.FACES and ctx.chains_faces)


def compute_chain(job: Job, ctx: StageContext, *, through: Stage = Stage.FACES) -> Chain:
    """Compute ``job`` and the stages after it, up to ``through``, while they succeed and
    are :func:`chainable`: one round trip to the database instead of one per stage."""
    chain: Chain = [compute(job, ctx)]
    while True:
        last = chain[-1]
        nxt = last.stage.next
        if isinstance(last, Failed) or last.stage is through or nxt is None \
                or not chainable(nxt, ctx):
            return chain
        job = job.then(nxt, last.sha256)
        chain.append(compute(job, ctx))


def fetch_all(jobs: Sequence[Job], ctx: StageContext) -> list[Result]:
    """Download the posters of several fetch jobs at once (the process's
    :class:`~posterlab.fetch.many.Downloader`: caps per host and in all, retries that hold
    no slot, a real deadline), store their bytes; one result per job, in order."""
    results: list[Result | None] = [None] * len(jobs)
    wanted = [i for i, job in enumerate(jobs) if job.source]
    for i, job in enumerate(jobs):
        if not job.source:
            results[i] = _failure(job, PosterlabError("the poster has no source",
                                                      code="fetch-no-source"))

    def store(index: int, outcome: bytes | PosterlabError) -> None:
        job = jobs[wanted[index]]
        try:
            results[wanted[index]] = (
                _failure(job, outcome, retry_after=getattr(outcome, "retry_after", None))
                if isinstance(outcome, PosterlabError)
                else Fetched(job.poster_id, job.attempt, ctx.blobs.put(outcome), len(outcome)))
        except PosterlabError as exc:  # the blob store refused: the poster fails, not all
            results[wanted[index]] = _failure(job, exc)

    ctx.downloader.fetch_many([jobs[i].source or "" for i in wanted], on_done=store)
    return [r if r is not None else _failure(jobs[i], PosterlabError(
        "the download ended without a result", code="internal")) for i, r in enumerate(results)]


def _failure(job: Job, exc: PosterlabError, *, retry_after: float | None = None) -> Failed:
    return Failed(job.poster_id, job.stage, job.attempt, exc.reason[:MAX_ERROR], exc.code,
                  retryable=exc.retryable, retry_after=retry_after, usage=usage_of(exc))


def _fetch(job: Job, ctx: StageContext) -> Result:
    return fetch_all([job], ctx)[0]


def _stored(job: Job) -> str:
    if not job.sha256:
        raise PosterlabError(f"the poster has no stored bytes for stage {job.stage}",
                             code="internal")
    return job.sha256


def _extract(job: Job, ctx: StageContext) -> Extracted:
    sha = _stored(job)
    config, version = ctx.preprocess_for(job.preprocess)
    features = analyze_bytes(ctx.blobs.get(sha), config, max_pixels=ctx.settings.max_pixels,
                             max_bytes=ctx.settings.max_image_bytes)
    return Extracted(job.poster_id, job.attempt, sha, dict(features.scalars),
                     pack_vectors(features.vectors), version)


def _faces(job: Job, ctx: StageContext) -> Counted:
    sha = _stored(job)
    detection = ctx.detector.detect(ctx.blobs.get(sha))
    return Counted(job.poster_id, job.attempt, sha, detection.count,
                   _boxes(detection.faces), detection.usage,
                   prominent_faces=detection.prominent, image_height=detection.image_height,
                   detections=_boxes(detection.detections))


def _boxes(faces: Sequence[FaceBox]) -> list[Box]:
    return [[f.left, f.top, f.width, f.height, f.score] for f in faces]


_STAGES: dict[Stage, Callable[[Job, StageContext], Result]] = {
    Stage.FETCH: _fetch, Stage.EXTRACT: _extract, Stage.FACES: _faces}
