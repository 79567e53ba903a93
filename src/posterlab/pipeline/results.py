"""What travels between the rooms of the pipeline: jobs out, one result type per stage back,
and the transition a recorded result makes.

All are small frozen dataclasses that pickle cheaply (the embedded runner sends jobs to
pool children and gets results back).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

from posterlab.faces.base import ApiUsage
from posterlab.stages import Stage

Box = list[float | None]  # left, top, width, height, score


@dataclass(frozen=True)
class Job:
    """One stage of one poster, small enough to send to another process."""

    poster_id: int
    run_id: int
    stage: Stage
    source: str | None = None
    sha256: str | None = None
    attempt: int = 1
    preprocess: dict[str, Any] = field(default_factory=dict)

    def then(self, stage: Stage, sha256: str | None) -> Job:
        """The job of the next stage of the same poster (a first attempt)."""
        return replace(self, stage=stage, sha256=sha256, attempt=1)


@dataclass(frozen=True)
class Fetched:
    """The poster's bytes are in the blob store."""

    stage: ClassVar[Stage] = Stage.FETCH
    poster_id: int
    attempt: int
    sha256: str
    size: int


@dataclass(frozen=True)
class Extracted:
    """The image's features, ready to store under ``feature_version``."""

    stage: ClassVar[Stage] = Stage.EXTRACT
    poster_id: int
    attempt: int
    sha256: str
    scalars: dict[str, float]
    vectors: bytes
    feature_version: str


@dataclass(frozen=True)
class Counted:
    """The faces found on the image."""

    stage: ClassVar[Stage] = Stage.FACES
    poster_id: int
    attempt: int
    sha256: str
    face_count: int
    boxes: list[Box]  # the counted faces
    usage: ApiUsage = field(default_factory=ApiUsage)
    prominent_faces: int | None = None  # None: the image's height is unknown
    image_height: int | None = None
    detections: list[Box] | None = None  # every detection, counted or not, best first


@dataclass(frozen=True)
class Failed:
    """A stage did not succeed; ``retryable`` errors may be tried again."""

    poster_id: int
    stage: Stage
    attempt: int
    error: str
    code: str
    retryable: bool = False
    retry_after: float | None = None
    usage: ApiUsage = field(default_factory=ApiUsage)


Result = Fetched | Extracted | Counted | Failed
Chain = list[Result]  # a poster's results in stage order; only the last may be Failed


def usage_of(result: Result) -> ApiUsage:
    return result.usage if isinstance(result, Counted | Failed) else ApiUsage()


def counters(usage: ApiUsage) -> dict[str, int]:
    """The usage as the poster's counter columns."""
    return {"api_calls": usage.api_calls, "rate_limited": usage.rate_limited,
            "retries": usage.retries}


@dataclass(frozen=True)
class Transition:
    """Where recording a result (or a cache hit) left a poster.

    ``stage`` set: the poster waits for that stage, to run at ``attempt`` after ``delay``
    seconds (None: now), in a batch of its own when ``alone`` (a process died on it: the
    next death must be charged to it only). ``stage`` None: the poster ended
    (``terminal``) just now.
    """

    poster_id: int
    run_id: int
    stage: Stage | None = None
    attempt: int = 1
    delay: float | None = None
    terminal: str | None = None
    analysis_due: bool = False  # this poster was the run's last: analyze the run
    alone: bool = False

    def with_analysis(self) -> Transition:
        return replace(self, analysis_due=True)
