"""Client of the Azure Face ``detect`` REST protocol: the ``azure`` and ``http`` providers.

``http`` is the same protocol against posterlab's own service (:mod:`.server`). Every
request goes through a shared :class:`~posterlab.faces.ratelimit.GcraLimiter` first, has
connect and read timeouts, and is retried within bounds:

* 429: wait ``Retry-After`` if given, else the "N seconds" of the message, else an
  exponential backoff with jitter; the wait is pushed onto the shared limiter so every
  process holds back, not just this one;
* 5xx, timeouts, connection errors, unreadable answers: exponential backoff with jitter,
  at most ``max_retries`` times, then :class:`~posterlab.errors.FaceApiUnavailable`;
* 400-class: no retry, :class:`~posterlab.errors.FaceApiInputError` with the API's code
  and message; 401/403: :class:`~posterlab.errors.FaceApiAuthError`.

Waits longer than ``max_wait`` raise :class:`~posterlab.errors.RateLimited` at once, so a
Celery task re-schedules itself with a countdown instead of sleeping in a worker slot.
The API key is sent in a header and appears in no log, message or repr.
"""

from __future__ import annotations

import logging
import math
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, NoReturn, Protocol
from urllib.parse import urlsplit

import requests
from urllib3.exceptions import NewConnectionError

from posterlab.errors import (
    FaceApiAuthError,
    FaceApiError,
    FaceApiInputError,
    FaceApiUnavailable,
    RateLimited,
)
from posterlab.faces.base import ApiUsage, Detection, FaceBox, attach_usage
from posterlab.faces.images import MAX_BYTES, MIN_BYTES, api_ready_bytes, image_height

log = logging.getLogger(__name__)

DETECT_PATH = "/face/v1.0/detect"
KEY_HEADER = "Ocp-Apim-Subscription-Key"
_SECONDS_RE = re.compile(r"(\d+(?:\.\d+)?)\s*seconds?\b", re.IGNORECASE)


class Limiter(Protocol):
    """What the client needs of a rate limiter (see :class:`.ratelimit.GcraLimiter`)."""

    def acquire(self, *, max_wait: float) -> float: ...

    def defer(self, seconds: float) -> None: ...


@dataclass(frozen=True)
class RetryPolicy:
    """How long to wait and how often to try again."""

    max_retries: int = 8
    max_wait: float = 10.0  # longer waits become RateLimited(retry_after=...)
    backoff_base: float = 0.5  # first backoff ceiling; doubles per retry
    backoff_cap: float = 8.0
    connect_timeout: float = 3.05  # just over a multiple of 3 s, the TCP retransmit window
    read_timeout: float = 30.0  # Azure answers in ~1 s; 30 s means it is stuck

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {self.max_retries!r}")
        for name in ("max_wait", "backoff_base", "backoff_cap", "connect_timeout", "read_timeout"):
            value = getattr(self, name)
            if not (value >= 0 and math.isfinite(value)):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")

    def backoff(self, retry: int, rng: random.Random) -> float:
        """Full-jitter exponential backoff before retry number ``retry`` (0-based)."""
        ceiling = min(self.backoff_cap, self.backoff_base * 2.0**retry, self.max_wait)
        return rng.uniform(0.0, ceiling)


def detect_url(endpoint: str) -> str:
    """The detect URL of an endpoint given with or without ``/face/v1.0``.

    >>> detect_url("https://x.cognitiveservices.azure.com/")
    'https://x.cognitiveservices.azure.com/face/v1.0/detect'
    >>> detect_url("http://127.0.0.1:5005/face/v1.0")
    'http://127.0.0.1:5005/face/v1.0/detect'
    """
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"endpoint must be an http(s) URL, got {_public_url(endpoint)!r}")
    base = endpoint.rstrip("/")
    if base.endswith("/detect"):
        base = base[: -len("/detect")]
    if not base.endswith("/face/v1.0"):
        base += "/face/v1.0"
    return base + "/detect"


def _public_url(url: str) -> str:
    """``url`` without user info or query, fit for messages and cache keys."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}"


class _Attempt(Exception):
    """One failed attempt worth retrying: the error to raise if it was the last one."""

    def __init__(
        self, error: FaceApiError, *, sent: bool = True, delay: float | None = None,
        throttled: bool = False,
    ) -> None:
        super().__init__(str(error))
        self.error = error
        self.sent = sent  # the request reached the API (and may be billed)
        self.delay = delay  # None: use the backoff
        self.throttled = throttled  # a 429 answer


class AzureFaceClient:
    """A :class:`~posterlab.faces.base.FaceDetector` speaking the Azure Face detect protocol.

    ``session``, ``limiter``, ``sleep``, ``clock`` and ``rng`` are arguments so tests
    can drive every path without patching.
    """

    def __init__(
        self,
        endpoint: str,
        *,
        key: str | None,
        session: requests.Session,
        limiter: Limiter,
        provider: str = "azure",
        policy: RetryPolicy | None = None,
        detection_model: str = "detection_03",
        sleep: Callable[[float], object] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        if provider not in ("azure", "http"):
            raise ValueError(f"provider must be 'azure' or 'http', got {provider!r}")
        self.provider = provider
        self.url = detect_url(endpoint)
        self.cache_key = f"{provider}:{_public_url(self.url)}:{detection_model}"
        self._key = key
        self._session = session
        self._limiter = limiter
        self._policy = policy or RetryPolicy()
        self._params = {
            "returnFaceId": "false",  # faceIds need Microsoft's approval and are not used
            "returnFaceLandmarks": "false",
            "detectionModel": detection_model,
            "recognitionModel": "recognition_04",
        }
        self._sleep = sleep
        self._clock = clock
        self._rng = rng or random.Random()

    def __repr__(self) -> str:
        return f"AzureFaceClient({_public_url(self.url)!r}, provider={self.provider!r})"

    def detect(self, data: bytes) -> Detection:
        """Send ``data`` to the API and return its faces with the cost of getting them.

        Both features come from the boxes answered: the count, and the prominent faces
        against the height of the image sent. Failures raise with their cost attached:
        see :func:`~.base.usage_of`.
        """
        body, content_type = api_ready_bytes(data)
        height = image_height(body)
        calls = throttled = retries = 0
        try:
            for attempt in range(self._policy.max_retries + 1):
                retries += attempt > 0
                self._limiter.acquire(max_wait=self._policy.max_wait)
                try:
                    faces = self._send(body, content_type)
                except _Attempt as failed:
                    calls += failed.sent
                    throttled += failed.throttled
                    if attempt == self._policy.max_retries:
                        raise failed.error from None
                    self._wait_before_retry(failed, attempt)
                else:
                    calls += 1
                    return Detection(faces, api_calls=calls, rate_limited=throttled,
                                     retries=retries, image_height=height)
            raise AssertionError("unreachable: the last attempt returns or raises")
        except FaceApiError as exc:
            raise attach_usage(exc, ApiUsage(calls, throttled, retries)) from None

    def _wait_before_retry(self, failed: _Attempt, attempt: int) -> None:
        delay = failed.delay
        if delay is None:
            delay = self._policy.backoff(attempt, self._rng)
        if failed.throttled:
            if delay > self._policy.max_wait:
                raise RateLimited(
                    f"face API at {_public_url(self.url)} is rate limiting; "
                    f"retry in {delay:.1f} s", retry_after=delay)
            # everyone sharing the quota should hold back, not only this caller; the
            # next acquire() then waits for it
            self._limiter.defer(delay)
            return
        log.info("face API attempt %d failed (%s); retrying in %.2f s",
                 attempt + 1, failed.error, delay)
        self._sleep(delay)

    def _send(self, body: bytes, content_type: str) -> tuple[FaceBox, ...]:
        headers = {"Content-Type": content_type}
        if self._key:
            headers[KEY_HEADER] = self._key
        where = _public_url(self.url)
        started = self._clock()
        try:
            response = self._session.post(
                self.url, params=self._params, data=body, headers=headers,
                timeout=(self._policy.connect_timeout, self._policy.read_timeout),
                allow_redirects=False,
            )
        # `from None` everywhere: a chained requests error holds the request, key included
        except requests.ConnectTimeout:
            raise _Attempt(FaceApiUnavailable(
                f"face API at {where}: connect timed out", code="face-api-timeout"),
                sent=False) from None
        except requests.Timeout as exc:
            raise _Attempt(FaceApiUnavailable(
                f"face API at {where}: no answer in time ({type(exc).__name__})",
                code="face-api-timeout")) from None
        except requests.RequestException as exc:
            raise _Attempt(FaceApiUnavailable(
                f"face API at {where} unreachable: {_cause(exc)}", code="face-api-connection"),
                sent=_reached_server(exc)) from None
        log.debug("face API answered %d in %.3f s", response.status_code, self._clock() - started)
        if response.status_code == 200:
            return self._parse_faces(response)
        self._raise_for_status(response)

    def _parse_faces(self, response: requests.Response) -> tuple[FaceBox, ...]:
        try:
            payload: Any = response.json()
            faces = tuple(
                FaceBox(int(r["left"]), int(r["top"]), int(r["width"]), int(r["height"]))
                for r in (face["faceRectangle"] for face in payload)
            )
        except (ValueError, TypeError, KeyError) as exc:
            raise _Attempt(FaceApiUnavailable(
                f"face API answered 200 with an unreadable body ({type(exc).__name__}): "
                f"{_snippet(response.text)}", code="face-api-bad-answer")) from None
        return faces

    def _raise_for_status(self, response: requests.Response) -> NoReturn:
        status = response.status_code
        code, message = _error_of(response)
        where = _public_url(self.url)
        if status == 429:
            wait = _retry_after(response, message)
            raise _Attempt(
                RateLimited(f"face API at {where} answered 429 {code}: {message}",
                            retry_after=wait),
                delay=wait, throttled=True)
        if status >= 500 or status == 408:
            raise _Attempt(FaceApiUnavailable(
                f"face API at {where} answered {status} {code}: {message}"))
        if status in (401, 403):
            raise FaceApiAuthError(f"face API at {where} refused the key ({status} {code}: "
                                   f"{message}); check POSTERLAB_FACE_API_KEY")
        if status in (404, 405) or status < 400:
            raise FaceApiError(f"face API at {where} answered {status} {code}: {message}; "
                               "check POSTERLAB_FACE_API_URL", code="face-api-endpoint")
        raise FaceApiInputError(f"face API rejected the image ({status} {code}): {message}")


def _reached_server(exc: requests.RequestException) -> bool:
    """Whether a failed request got as far as the API (a refused connection costs nothing)."""
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return not isinstance(reason, NewConnectionError)


def _cause(exc: requests.RequestException) -> str:
    """A short cause for a message: the innermost error's class and text, no URL."""
    inner: BaseException = exc
    while True:
        nxt = getattr(inner.args[0], "reason", None) if inner.args else None
        if not isinstance(nxt, BaseException) or nxt is inner:
            break
        inner = nxt
    return f"{type(inner).__name__}: {_snippet(str(inner), 120)}"


def _error_of(response: requests.Response) -> tuple[str, str]:
    """Azure's ``{"error": {"code", "message"}}``, or the status and a snippet of the body."""
    try:
        error = response.json()["error"]
        return str(error.get("code", response.status_code)), str(error.get("message", ""))
    except (ValueError, TypeError, KeyError, AttributeError):
        return str(response.status_code), _snippet(response.text)


def _retry_after(response: requests.Response, message: str) -> float | None:
    """Seconds to wait from ``Retry-After`` (seconds or HTTP date) or "N seconds" in text."""
    header = response.headers.get("Retry-After", "").strip()
    if header:
        try:
            return max(0.0, float(header))
        except ValueError:
            pass
        try:
            # an HTTP date is measured against the server's own Date, not our clock
            until = parsedate_to_datetime(header)
            now = parsedate_to_datetime(response.headers["Date"])
            return max(0.0, (until - now).total_seconds())
        except (KeyError, TypeError, ValueError):
            pass
    found = _SECONDS_RE.search(message)
    return float(found.group(1)) if found else None


def _snippet(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."


__all__ = ["MAX_BYTES", "MIN_BYTES", "AzureFaceClient", "RetryPolicy", "detect_url"]
