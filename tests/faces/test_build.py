"""build_detector wires settings to the right provider and quota."""

from __future__ import annotations

import pytest
import redis
import requests

from posterlab.config import Rate, Settings
from posterlab.faces import build_detector, limiter_key
from posterlab.faces.azure import AzureFaceClient
from posterlab.faces.local import LocalDetector
from posterlab.faces.server import create_app


def test_the_local_provider_builds_the_local_detector() -> None:
    assert isinstance(build_detector(Settings()), LocalDetector)


def test_an_api_provider_without_url_is_refused() -> None:
    with pytest.raises(ValueError, match="face_api_url"):
        build_detector(Settings(face_provider="azure"))


def test_the_limiter_key_separates_endpoints_and_keys_and_hides_the_key() -> None:
    a = Settings(face_provider="azure", face_api_url="https://a/", face_api_key="s3cret")
    assert limiter_key(a) != limiter_key(a.with_(face_api_key="other"))
    assert limiter_key(a) != limiter_key(a.with_(face_api_url="https://b/"))
    assert "s3cret" not in limiter_key(a)


def test_http_without_redis_uses_an_in_process_quota(serve_app, noise_png) -> None:
    with serve_app(create_app()) as url, requests.Session() as session:
        detector = build_detector(Settings(face_provider="http", face_api_url=url),
                                  session=session)
        assert isinstance(detector, AzureFaceClient)
        assert detector.detect(noise_png).api_calls == 1


@pytest.mark.redis
def test_http_with_redis_shares_its_quota_through_redis(serve_app, redis_client: redis.Redis,
                                                        noise_png) -> None:
    with serve_app(create_app()) as url, requests.Session() as session:
        settings = Settings(face_provider="http", face_api_url=url,
                            face_api_rate=Rate(1, 60.0))
        try:
            detector = build_detector(settings, redis_client=redis_client, session=session)
            assert detector.detect(noise_png).api_calls == 1
            assert redis_client.exists(limiter_key(settings))
        finally:
            redis_client.delete(limiter_key(settings))
