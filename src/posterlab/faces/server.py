"""posterlab's own face API: the Azure Face ``detect`` contract on the local detector.

``posterlab faceapi serve`` runs it (:func:`serve`); :func:`create_app` builds the
Starlette app for tests and embedding. What it implements of Azure's contract:

* ``POST /face/v1.0/detect`` with the image bytes as ``application/octet-stream``;
  parameters ``returnFaceId``, ``returnFaceLandmarks`` (only ``false``),
  ``returnFaceAttributes`` (only empty), ``returnRecognitionModel``, ``detectionModel``
  (``detection_01..03``, all answered by the same local model), ``recognitionModel``
  (``recognition_01..04``), ``faceIdTimeToLive`` (ignored);
* the answer: a JSON array of ``{"faceRectangle": {top, left, width, height}}``, largest
  face first; errors as ``{"error": {"code", "message"}}``: 400 ``InvalidImage`` /
  ``InvalidImageSize`` / ``InvalidURL`` / ``BadArgument``, 401, 404, 405, 415, 429 (with
  ``Retry-After``);
* the key, when one is configured, in the ``Ocp-Apim-Subscription-Key`` header.

Two deliberate differences. ``returnFaceId=true`` is honoured, not refused: the
unmodified ``cognitive_face`` client asks for it by default, so each face then carries a
``faceId`` derived from the image's sha256 and the face's rank (a stable UUID; no other
endpoint uses faceIds here). And a JSON ``{"url": ...}`` body is answered 400
``InvalidURL``: this service does not fetch URLs, which would make it a proxy into the
network it runs in.

The quota is a strict in-process GCRA (one uvicorn worker, one process), forgiving
``jitter`` seconds of arrival jitter so that a client pacing itself exactly at the
quota is not punished for network and scheduling noise.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import math
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from posterlab.config import Rate
from posterlab.errors import ImageError, PosterlabError, RateLimited
from posterlab.faces.base import Detection, FaceDetector
from posterlab.faces.images import MAX_BYTES, accepted_format, size_problem
from posterlab.faces.local import RecycledDetector
from posterlab.faces.ratelimit import MemoryGcraLimiter

log = logging.getLogger(__name__)

DETECT_PATH = "/face/v1.0/detect"
DEFAULT_JITTER = 0.05  # s; scheduling hiccups on a busy 2-core host reach tens of ms
_FACE_ID_NAMESPACE = uuid.UUID("5f0c1a52-9d7e-4a8e-9a43-2b7f3c0d1e6a")
_DETECTION_MODELS = ("detection_01", "detection_02", "detection_03")
_RECOGNITION_MODELS = ("recognition_01", "recognition_02", "recognition_03", "recognition_04")
_ACCESS_DENIED = (
    "Access denied due to invalid subscription key or wrong API endpoint. Make sure to "
    "provide a valid key for an active subscription and use a correct regional API "
    "endpoint for your resource."
)


class ApiError(Exception):
    """An answer in Azure's error shape."""

    def __init__(self, status: int, code: str, message: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


def error_response(status: int, code: str, message: str,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    """``{"error": {"code", "message"}}`` with ``status``."""
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status,
                        headers=headers)


def _flag(query: Any, name: str, default: bool) -> bool:
    value = query.get(name)
    if value is None or value == "":
        return default
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ApiError(400, "BadArgument", f"Invalid argument {name}: {value!r}.")


def _check_params(query: Any) -> tuple[bool, bool]:
    """Validate the detect parameters; ``(returnFaceId, returnRecognitionModel)``."""
    face_id = _flag(query, "returnFaceId", True)
    if _flag(query, "returnFaceLandmarks", False):
        raise ApiError(400, "BadArgument", "returnFaceLandmarks=true is not supported here.")
    if query.get("returnFaceAttributes"):
        raise ApiError(400, "BadArgument", "returnFaceAttributes is not supported here.")
    if query.get("detectionModel", "detection_01") not in _DETECTION_MODELS:
        raise ApiError(400, "BadArgument", "Invalid detectionModel.")
    if query.get("recognitionModel", "recognition_01") not in _RECOGNITION_MODELS:
        raise ApiError(400, "BadArgument", "Invalid recognitionModel.")
    return face_id, _flag(query, "returnRecognitionModel", False)


async def _read_image(request: Request, max_bytes: int) -> bytes:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json":
        raise ApiError(400, "InvalidURL", "This service does not fetch image URLs; send the "
                       "image bytes as application/octet-stream.")
    if content_type != "application/octet-stream":
        raise ApiError(415, "BadArgument", "Invalid Media Type.")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise ApiError(400, "InvalidImageSize", size_problem(int(declared)) or "Too big.")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:  # a body without (or lying in) Content-Length
            raise ApiError(400, "InvalidImageSize", "Image size is too big.")
        chunks.append(chunk)
    data = b"".join(chunks)
    problem = size_problem(len(data))
    if problem:
        raise ApiError(400, "InvalidImageSize", problem)
    if accepted_format(data) is None:
        raise ApiError(400, "InvalidImage", "Decoding error, image format unsupported.")
    return data


class _DetectService:
    """The state behind the routes: detector, quota, key; one detection at a time."""

    def __init__(self, detector: FaceDetector, limiter: MemoryGcraLimiter | None,
                 key: str | None, max_bytes: int) -> None:
        self.engine, self.limiter, self.key, self.max_bytes = detector, limiter, key, max_bytes
        # one detection at a time: the model is not known to be thread-safe and the host's
        # cores are better spent on the workers than on a pile of waiting threads
        self.one_at_a_time = anyio.CapacityLimiter(1)

    async def detect(self, request: Request) -> Response:
        """``POST /face/v1.0/detect``: the faces on the posted image, or an Azure error."""
        started = time.perf_counter()
        try:
            self._authorise(request)
            self._take_quota()
            face_id, with_model = _check_params(request.query_params)
            data = await _read_image(request, self.max_bytes)
            found = await self._run_detector(data)
        except ApiError as exc:
            log.info("detect -> %d %s (%.0f ms)", exc.status, exc.code,
                     1000 * (time.perf_counter() - started))
            return error_response(exc.status, exc.code, exc.message, exc.headers)
        model = request.query_params.get("recognitionModel", "recognition_01")
        answer = _faces_answer(found, hashlib.sha256(data).hexdigest(), face_id=face_id,
                               model=model if with_model else None)
        log.info("detect -> 200, %d faces (%.0f ms)", len(answer),
                 1000 * (time.perf_counter() - started))
        return JSONResponse(answer)

    def _authorise(self, request: Request) -> None:
        if self.key is not None and not hmac.compare_digest(
                request.headers.get("Ocp-Apim-Subscription-Key", "").encode(), self.key.encode()):
            raise ApiError(401, "401", _ACCESS_DENIED)

    def _take_quota(self) -> None:
        if self.limiter is None:
            return
        try:
            self.limiter.acquire(max_wait=0.0)
        except RateLimited as exc:
            seconds = max(1, math.ceil(exc.retry_after or 0.0))
            raise ApiError(429, "429", f"Rate limit is exceeded. Try again in "
                           f"{seconds} seconds.", {"Retry-After": str(seconds)}) from None

    async def _run_detector(self, data: bytes) -> Detection:
        try:
            return await anyio.to_thread.run_sync(self.engine.detect, data,
                                                  limiter=self.one_at_a_time)
        except ImageError as exc:
            if exc.code == "image-too-large":  # the per-image memory budget, from the header
                raise ApiError(400, "InvalidImageSize", "Image size is too big.") from None
            raise ApiError(400, "InvalidImage",
                           "Decoding error, image format unsupported.") from None

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        """Load the model before the first request, not during it; close it at the end."""
        warm = getattr(self.engine, "warm", None)
        if warm is not None:
            await anyio.to_thread.run_sync(warm)
        yield
        close = getattr(self.engine, "close", None)
        if close is not None:
            await anyio.to_thread.run_sync(close)


def _faces_answer(found: Detection, digest: str, *, face_id: bool,
                  model: str | None) -> list[dict[str, Any]]:
    """Azure's answer: the faces largest first, with a stable faceId and the model if asked."""
    answer = []
    for rank, box in enumerate(sorted(found.faces, key=lambda b: -b.area)):
        face: dict[str, Any] = {}
        if face_id:
            face["faceId"] = str(uuid.uuid5(_FACE_ID_NAMESPACE, f"{digest}:{rank}"))
        face["faceRectangle"] = {"top": box.top, "left": box.left,
                                 "width": box.width, "height": box.height}
        if model is not None:
            face["recognitionModel"] = model
        answer.append(face)
    return answer


async def _http_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, HTTPException):  # Starlette sends only HTTPException here
        return await _server_error(request, exc)
    messages = {404: "Resource not found", 405: "Method not allowed"}
    return error_response(exc.status_code, str(exc.status_code),
                          messages.get(exc.status_code, str(exc.detail)))


async def _server_error(request: Request, exc: Exception) -> Response:
    log.exception("detect failed")
    reason = exc.reason if isinstance(exc, PosterlabError) else type(exc).__name__
    return error_response(500, "InternalServerError", f"Detection failed: {reason}")


def create_app(
    *,
    detector: FaceDetector | None = None,
    rate: Rate | None = None,
    key: str | None = None,
    max_bytes: int = MAX_BYTES,
    jitter: float = DEFAULT_JITTER,
    clock: Callable[[], float] = time.monotonic,
) -> Starlette:
    """The face API as a Starlette app.

    ``detector`` defaults to the local YuNet detector; ``rate`` ``None`` means no quota;
    ``key`` ``None`` accepts any caller.
    """
    if max_bytes < 1:
        raise ValueError(f"max_bytes must be positive, got {max_bytes!r}")
    if detector is None:  # a long-lived process: detect in a child that is recycled
        detector = RecycledDetector()
    limiter = (MemoryGcraLimiter(rate, clock=clock, jitter=jitter, key="server")
               if rate is not None else None)
    service = _DetectService(detector, limiter, key, max_bytes)

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "detector": service.engine.cache_key,
                             "rate": str(rate) if rate else None, "key_required": key is not None})

    return Starlette(
        routes=[Route(DETECT_PATH, service.detect, methods=["POST"]),
                Route("/health", health, methods=["GET"])],
        exception_handlers={HTTPException: _http_error, Exception: _server_error},
        lifespan=service.lifespan,
    )


def serve(
    host: str = "127.0.0.1",
    port: int = 5005,
    *,
    rate: Rate | None = None,
    key: str | None = None,
    detector: FaceDetector | None = None,
    log_level: str = "info",
) -> None:
    """Run the face API with uvicorn until interrupted (one worker: the quota is in-process).

    uvicorn's access log is off: it would print query strings, and Azure clients may
    put ``subscription-key`` there; the app logs each answer without them.
    """
    app = create_app(detector=detector, rate=rate, key=key)
    config = uvicorn.Config(app, host=host, port=port, workers=1, log_level=log_level,
                            access_log=False)
    log.info("face API on http://%s:%d%s, quota %s, key %s", host, port, DETECT_PATH,
             rate or "none", "required" if key else "not required")
    uvicorn.Server(config).run()
