"""Counting faces on posters: the local detector, the Azure-protocol client, the quota.

Build a detector once per process with :func:`build_detector` and call
``detector.detect(data)``; see :mod:`posterlab.faces.base` for the contract.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from posterlab.config import Settings
from posterlab.faces.base import ApiUsage, Detection, FaceBox, FaceDetector, usage_of

if TYPE_CHECKING:
    import redis
    import requests

__all__ = ["ApiUsage", "Detection", "FaceBox", "FaceDetector", "build_detector",
           "limiter_key", "usage_of"]


def limiter_key(settings: Settings) -> str:
    """The Redis key of the quota of ``settings``' face API: one per endpoint and key.

    The API key enters only as a truncated hash, so two subscriptions on one endpoint
    get two quotas without the key ever being readable in Redis.
    """
    ident = f"{settings.face_provider}|{settings.face_api_url}|{settings.face_api_key or ''}"
    return f"posterlab:ratelimit:faceapi:{hashlib.sha256(ident.encode()).hexdigest()[:16]}"


def build_detector(
    settings: Settings,
    *,
    redis_client: redis.Redis | None = None,
    session: requests.Session | None = None,
) -> FaceDetector:
    """The detector ``settings.face_provider`` names.

    ``local``: :class:`~posterlab.faces.local.LocalDetector` with ``settings.face_params``
    (``redis_client`` and ``session`` unused). ``http`` / ``azure``:
    :class:`~posterlab.faces.azure.AzureFaceClient` on ``settings.face_api_url`` with a
    quota of ``settings.face_api_rate`` shared through ``redis_client`` by every process
    (:class:`~.ratelimit.RedisGcraLimiter`), or held in this process alone when
    ``redis_client`` is ``None``. ``session`` defaults to a new ``requests.Session`` (one
    per process: sessions are not fork-safe).
    """
    # imports stay inside: `from posterlab.faces import Detection` (the store does) must
    # not load YuNet or requests
    if settings.face_provider == "local":
        from posterlab.face_params import LocalParams
        from posterlab.faces.local import LocalDetector

        return LocalDetector(LocalParams.from_mapping(settings.face_params),
                             max_pixels=settings.max_pixels, max_bytes=settings.max_image_bytes)
    if settings.face_provider not in ("http", "azure"):
        raise ValueError(f"settings.face_provider {settings.face_provider!r} is unknown")
    if not settings.face_api_url:
        raise ValueError(f"settings.face_api_url is needed by provider {settings.face_provider!r}")

    import requests

    from posterlab.faces.azure import AzureFaceClient, RetryPolicy
    from posterlab.faces.ratelimit import MemoryGcraLimiter, RedisGcraLimiter

    key = limiter_key(settings)
    limiter = (RedisGcraLimiter(redis_client, settings.face_api_rate, key=key)
               if redis_client is not None
               else MemoryGcraLimiter(settings.face_api_rate, key=key))
    return AzureFaceClient(
        settings.face_api_url,
        key=settings.face_api_key,
        provider=settings.face_provider,
        session=session if session is not None else requests.Session(),
        limiter=limiter,
        policy=RetryPolicy(max_retries=settings.face_api_max_retries),
    )
