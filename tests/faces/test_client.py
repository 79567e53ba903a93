"""The Azure-protocol client against a real misbehaving HTTP server on 127.0.0.1.

Sleeps go to a fake clock (the waits are asserted, not endured); timeouts are real.
"""

from __future__ import annotations

import logging
import random
import socket

import pytest
import requests

from posterlab.config import Rate
from posterlab.errors import (
    FaceApiAuthError,
    FaceApiError,
    FaceApiInputError,
    FaceApiUnavailable,
    ImageError,
    RateLimited,
)
from posterlab.faces.azure import AzureFaceClient, RetryPolicy
from posterlab.faces.base import ApiUsage, usage_of
from posterlab.faces.ratelimit import MemoryGcraLimiter

KEY = "k3y-7f0a9c2e-never-in-logs"
FACES = [{"faceRectangle": {"top": 10, "left": 20, "width": 30, "height": 40}},
         {"faceRectangle": {"top": 1, "left": 2, "width": 3, "height": 4}}]
OK = ("json", 200, FACES, {})
BACKOFF_BASE = 0.5


def throttled(retry_after: str | None = None, message: str = "Rate limit is exceeded.") -> tuple:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    return ("json", 429, {"error": {"code": "429", "message": message}}, headers)


@pytest.fixture
def make_client(fault_server, clock):
    sessions: list[requests.Session] = []

    def make(*, max_retries: int = 3, read_timeout: float = 5.0,
             url: str | None = None) -> AzureFaceClient:
        session = requests.Session()
        sessions.append(session)
        return AzureFaceClient(
            url or fault_server.url, key=KEY, session=session,
            limiter=MemoryGcraLimiter(Rate(1000, 1.0), clock=clock, sleep=clock.sleep),
            policy=RetryPolicy(max_retries=max_retries, max_wait=10.0,
                               backoff_base=BACKOFF_BASE, read_timeout=read_timeout),
            sleep=clock.sleep, clock=clock, rng=random.Random(7),
        )

    yield make
    for session in sessions:
        session.close()


def test_an_answer_becomes_faces_and_one_call(fault_server, make_client, noise_png) -> None:
    fault_server.script(OK)
    detection = make_client().detect(noise_png)
    assert detection.count == 2
    assert (detection.faces[0].left, detection.faces[0].top) == (20, 10)
    assert detection.usage == ApiUsage(api_calls=1, rate_limited=0, retries=0)


def test_the_request_follows_the_azure_detect_protocol(fault_server, make_client,
                                                       noise_png) -> None:
    fault_server.script(OK)
    make_client().detect(noise_png)
    (seen,) = fault_server.seen
    assert seen.path == "/face/v1.0/detect"
    assert seen.params["returnFaceId"] == ["false"]
    assert seen.params["detectionModel"] == ["detection_03"]
    assert seen.params["recognitionModel"] == ["recognition_04"]
    assert seen.headers["Content-Type"] == "application/octet-stream"
    assert seen.headers["Ocp-Apim-Subscription-Key"] == KEY
    assert seen.body == noise_png


def test_a_burst_of_429_with_retry_after_is_waited_out_and_counted(
        fault_server, make_client, clock, noise_png) -> None:
    fault_server.script(throttled("2"), throttled("1"), OK)
    detection = make_client().detect(noise_png)
    assert detection.count == 2
    assert detection.usage == ApiUsage(api_calls=3, rate_limited=2, retries=2)
    assert clock.slept == pytest.approx([2.0, 1.0], abs=0.01)


def test_a_429_without_retry_after_waits_the_seconds_its_message_names(
        fault_server, make_client, clock, noise_png) -> None:
    fault_server.script(throttled(message="Rate limit is exceeded. Try again in 3 seconds."), OK)
    assert make_client().detect(noise_png).rate_limited == 1
    assert clock.slept == pytest.approx([3.0], abs=0.01)


def test_a_429_with_no_hint_backs_off_exponentially_within_bounds(
        fault_server, make_client, clock, noise_png) -> None:
    fault_server.script(throttled(), throttled(), throttled(), OK)
    detection = make_client(max_retries=3).detect(noise_png)
    assert detection.usage == ApiUsage(api_calls=4, rate_limited=3, retries=3)
    assert len(clock.slept) == 3
    for retry, slept in enumerate(clock.slept):
        assert 0.0 <= slept <= BACKOFF_BASE * 2**retry + 0.01


def test_a_retry_after_beyond_max_wait_raises_rate_limited_at_once(
        fault_server, make_client, clock, noise_png) -> None:
    fault_server.script(throttled("60"), OK)
    with pytest.raises(RateLimited) as caught:
        make_client().detect(noise_png)
    assert caught.value.retry_after == pytest.approx(60.0)
    assert usage_of(caught.value) == ApiUsage(api_calls=1, rate_limited=1, retries=0)
    assert clock.slept == [] and len(fault_server.seen) == 1


def test_an_http_date_retry_after_is_measured_against_the_server_date(
        fault_server, make_client, clock, noise_png) -> None:
    fault_server.script(("json", 429, {"error": {"code": "429", "message": "slow down"}},
                         {"Retry-After": "Wed, 21 Oct 2015 07:28:04 GMT",
                          "Date": "Wed, 21 Oct 2015 07:28:00 GMT"}), OK)
    make_client().detect(noise_png)
    assert clock.slept == pytest.approx([4.0], abs=0.01)


def test_server_errors_are_retried_a_bounded_number_of_times(
        fault_server, make_client, clock, noise_png) -> None:
    fault_server.script(("json", 503, {"error": {"code": "ServiceUnavailable",
                                                 "message": "busy"}}, {}))
    with pytest.raises(FaceApiUnavailable, match="503 ServiceUnavailable: busy") as caught:
        make_client(max_retries=3).detect(noise_png)
    assert len(fault_server.seen) == 4
    assert usage_of(caught.value) == ApiUsage(api_calls=4, rate_limited=0, retries=3)
    assert len(clock.slept) == 3


def test_a_500_then_an_answer_succeeds_with_the_retries_counted(
        fault_server, make_client, noise_png) -> None:
    fault_server.script(("raw", 500, "Internal Server Error"), ("raw", 502, "Bad Gateway"), OK)
    assert make_client().detect(noise_png).usage == ApiUsage(3, 0, 2)


def test_a_server_hanging_past_the_read_timeout_is_retried(
        fault_server, make_client, noise_png) -> None:
    fault_server.script(("hang", 2.0), OK)
    detection = make_client(read_timeout=0.3).detect(noise_png)
    assert detection.usage == ApiUsage(api_calls=2, rate_limited=0, retries=1)


def test_a_server_that_always_hangs_ends_in_a_timeout_error(
        fault_server, make_client, noise_png) -> None:
    fault_server.script(("hang", 2.0))
    with pytest.raises(FaceApiUnavailable, match="no answer in time") as caught:
        make_client(max_retries=1, read_timeout=0.2).detect(noise_png)
    assert caught.value.code == "face-api-timeout"
    assert usage_of(caught.value) == ApiUsage(api_calls=2, rate_limited=0, retries=1)


def test_an_unreadable_answer_is_retried(fault_server, make_client, noise_png) -> None:
    fault_server.script(("raw", 200, "<html>proxy error</html>"),
                        ("json", 200, {"not": "a list"}, {}), OK)
    assert make_client().detect(noise_png).usage == ApiUsage(3, 0, 2)


def test_a_connection_reset_is_retried(fault_server, make_client, noise_png) -> None:
    fault_server.script(("reset",), OK)
    assert make_client().detect(noise_png).usage == ApiUsage(2, 0, 1)


def test_a_refused_connection_costs_no_call(make_client, noise_png) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"  # bound, not listening
        with pytest.raises(FaceApiUnavailable, match="unreachable") as caught:
            make_client(max_retries=2, url=url).detect(noise_png)
    assert usage_of(caught.value) == ApiUsage(api_calls=0, rate_limited=0, retries=2)


def test_an_invalid_image_answer_is_not_retried_and_names_the_api_code(
        fault_server, make_client, clock, noise_png) -> None:
    fault_server.script(("json", 400, {"error": {"code": "InvalidImage",
                                                 "message": "Decoding error."}}, {}), OK)
    with pytest.raises(FaceApiInputError, match=r"400 InvalidImage\).*Decoding error") as caught:
        make_client().detect(noise_png)
    assert not caught.value.retryable
    assert len(fault_server.seen) == 1 and clock.slept == []


def test_a_refused_key_raises_an_auth_error_that_does_not_show_the_key(
        fault_server, make_client, noise_png) -> None:
    fault_server.script(("json", 401, {"error": {"code": "401", "message": "Access denied"}}, {}))
    client = make_client()
    with pytest.raises(FaceApiAuthError) as caught:
        client.detect(noise_png)
    assert len(fault_server.seen) == 1
    assert KEY not in str(caught.value) and KEY not in repr(caught.value)
    assert KEY not in repr(client) and KEY not in client.cache_key
    assert caught.value.__cause__ is None and caught.value.__context__ is None


def test_the_key_appears_in_no_log_line_or_error(fault_server, make_client, noise_png,
                                                 caplog) -> None:
    caplog.set_level(logging.DEBUG)
    fault_server.script(("reset",), ("hang", 2.0), ("raw", 500, "oops"), throttled("1"))
    with pytest.raises(FaceApiError) as caught:
        make_client(max_retries=4, read_timeout=0.2).detect(noise_png)
    assert caplog.records  # the retries were logged
    assert KEY not in caplog.text
    assert KEY not in str(caught.value)


def test_a_quota_wait_beyond_max_wait_raises_before_sending(fault_server, clock,
                                                            noise_png) -> None:
    limiter = MemoryGcraLimiter(Rate(1, 60.0), clock=clock, sleep=clock.sleep)
    limiter.acquire(max_wait=0.0)  # someone else just used the quota
    with requests.Session() as session:
        client = AzureFaceClient(fault_server.url, key=KEY, session=session, limiter=limiter,
                                 sleep=clock.sleep, clock=clock)
        with pytest.raises(RateLimited) as caught:
            client.detect(noise_png)
    assert caught.value.retry_after == pytest.approx(60.0)
    assert fault_server.seen == [] and usage_of(caught.value) == ApiUsage()


def test_bytes_the_api_would_refuse_are_not_sent(fault_server, make_client) -> None:
    fault_server.script(OK)
    client = make_client()
    with pytest.raises(FaceApiInputError, match="InvalidImageSize"):
        client.detect(b"\xff\xd8\xff" + b"\0" * 100)
    with pytest.raises(ImageError):
        client.detect(b"not an image at all" * 100)
    assert fault_server.seen == []


def test_a_webp_poster_is_sent_as_png(fault_server, make_client, noise_png) -> None:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.open(io.BytesIO(noise_png)).save(out, format="WEBP", lossless=True)
    fault_server.script(OK)
    make_client().detect(out.getvalue())
    assert fault_server.seen[0].body.startswith(b"\x89PNG")


def test_the_cache_key_names_provider_endpoint_and_model_only(make_client) -> None:
    client = make_client(url="http://user:pw@127.0.0.1:5005/face/v1.0/")
    assert client.cache_key == "azure:http://127.0.0.1:5005/face/v1.0/detect:detection_03"


def test_an_invalid_retry_policy_names_the_parameter() -> None:
    with pytest.raises(ValueError, match="max_retries"):
        RetryPolicy(max_retries=-1)
    with pytest.raises(ValueError, match="read_timeout"):
        RetryPolicy(read_timeout=float("inf"))
