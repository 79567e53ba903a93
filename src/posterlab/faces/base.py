"""The face-detection contract shared by every provider.

A detector turns image bytes into a :class:`Detection`: the faces found, plus the
counters the store shows per poster (HTTP calls paid for, 429 answers seen, retries).
Errors are those of :mod:`posterlab.errors`; a failed call still carries its counters
in :func:`usage_of`, because failed calls are billed too.

Two features come from the faces: ``face_count`` (every face) and ``prominent_faces``
(faces at least :data:`PROMINENT_FRACTION` of the image's height), both from the boxes,
so every provider fills them the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

# A face is prominent when its box is at least this fraction of the image's height.
PROMINENT_FRACTION = 0.1


@dataclass(frozen=True)
class FaceBox:
    """One face rectangle in pixels of the decoded image; ``score`` in [0, 1] when known."""

    left: int
    top: int
    width: int
    height: int
    score: float | None = None

    @property
    def area(self) -> int:
        """Width times height, in pixels."""
        return self.width * self.height


@dataclass(frozen=True)
class ApiUsage:
    """What one ``detect`` call cost: requests sent, 429 answers seen, re-sent requests."""

    api_calls: int = 0
    rate_limited: int = 0
    retries: int = 0


def prominent_count(faces: tuple[FaceBox, ...] | list[FaceBox], image_height: int | None
                    ) -> int | None:
    """How many of ``faces`` are at least :data:`PROMINENT_FRACTION` of ``image_height``.

    ``None`` when the image's height is unknown.

    >>> prominent_count([FaceBox(0, 0, 20, 27), FaceBox(0, 0, 20, 26)], 268)
    1
    """
    if image_height is None:
        return None
    return sum(f.height >= PROMINENT_FRACTION * image_height for f in faces)


@dataclass(frozen=True)
class Detection:
    """The faces found on one image and what finding them cost.

    ``candidates`` are every detection the provider made, counted or not (the local
    detector keeps those above its score floor, so counts at other thresholds need no
    second pass); ``None`` means the faces are all there is (an API answers only those).
    ``image_height`` is the height in pixels of the image the boxes are in.
    """

    faces: tuple[FaceBox, ...]
    api_calls: int = 0  # HTTP requests actually sent (0 for the local detector)
    rate_limited: int = 0  # 429 answers seen
    retries: int = 0  # requests sent again after a 429, a 5xx or a transport error
    image_height: int | None = None
    candidates: tuple[FaceBox, ...] | None = None

    @property
    def count(self) -> int:
        """Number of faces."""
        return len(self.faces)

    @property
    def prominent(self) -> int | None:
        """Number of faces at least 1/10 of the image's height (``None``: height unknown)."""
        return prominent_count(self.faces, self.image_height)

    @property
    def detections(self) -> tuple[FaceBox, ...]:
        """Every detection made, best score first: the candidates, else the faces."""
        found = self.faces if self.candidates is None else self.candidates
        return tuple(sorted(found, key=lambda b: -(b.score or 0.0)))

    @property
    def usage(self) -> ApiUsage:
        """The counters alone."""
        return ApiUsage(self.api_calls, self.rate_limited, self.retries)


@runtime_checkable
class FaceDetector(Protocol):
    """Anything that counts faces in image bytes.

    ``cache_key`` names the provider and every parameter that changes the answer (model,
    thresholds, upscaling), never a secret: the same bytes with the same ``cache_key``
    give the same answer, so the store may cache answers by ``(sha256, cache_key)``.
    """

    provider: str
    cache_key: str

    def detect(self, data: bytes) -> Detection:
        """Find the faces in ``data``; raise ``FaceApiError`` subclasses or ``ImageError``."""
        ...


def attach_usage(exc: BaseException, usage: ApiUsage) -> BaseException:
    """Record on ``exc`` what the failed call cost, so the caller can still count it."""
    exc.face_api_usage = usage  # type: ignore[attr-defined]
    return exc


def usage_of(exc: BaseException) -> ApiUsage:
    """The counters of the failed call that raised ``exc`` (zeros if it sent nothing).

    >>> usage_of(ValueError("x"))
    ApiUsage(api_calls=0, rate_limited=0, retries=0)
    """
    usage = getattr(exc, "face_api_usage", None)
    return usage if isinstance(usage, ApiUsage) else ApiUsage()


def iou(a: FaceBox, b: FaceBox) -> float:
    """Intersection over union of two boxes, in [0, 1].

    >>> iou(FaceBox(0, 0, 10, 10), FaceBox(5, 0, 10, 10))
    0.3333333333333333
    """
    w = min(a.left + a.width, b.left + b.width) - max(a.left, b.left)
    h = min(a.top + a.height, b.top + b.height) - max(a.top, b.top)
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    return inter / (a.area + b.area - inter)
