"""posterlab's face API on a real uvicorn: the Azure contract, with clients that speak it."""

from __future__ import annotations

from collections.abc import Iterator

import cognitive_face as CF
import pytest
import requests
from cognitive_face.util import CognitiveFaceException

from posterlab.config import Rate
from posterlab.faces.azure import AzureFaceClient
from posterlab.faces.local import LocalDetector
from posterlab.faces.ratelimit import MemoryGcraLimiter
from posterlab.faces.server import create_app

KEY = "server-test-key"
DETECT = "/face/v1.0/detect"
OCTET = {"Content-Type": "application/octet-stream"}


@pytest.fixture(scope="module")
def api(serve_app) -> Iterator[str]:
    """A server with a key and no quota, shared by the module."""
    with serve_app(create_app(detector=LocalDetector(), key=KEY, max_bytes=64 * 1024)) as url:
        yield url


@pytest.fixture
def cf(api: str) -> Iterator[None]:
    """cognitive_face keeps its settings in class attributes: set them, put them back."""
    old_key, old_url = CF.Key.get(), CF.BaseUrl.get()
    CF.Key.set(KEY)
    CF.BaseUrl.set(f"{api}/face/v1.0/")
    yield
    CF.Key.set(old_key)
    CF.BaseUrl.set(old_url)


def post(url: str, data: bytes, *, key: str | None = KEY, headers: dict | None = None,
         **params: str) -> requests.Response:
    sent = {**OCTET, **(headers or {})}
    if key is not None:
        sent["Ocp-Apim-Subscription-Key"] = key
    return requests.post(url + DETECT, data=data, headers=sent, params=params, timeout=10)


def assert_azure_error(response: requests.Response, status: int, code: str) -> None:
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["message"]


def test_the_unmodified_cognitive_face_client_counts_faces(cf, face_data) -> None:
    poster = face_data / "face_reference" / "posters" / "421054.jpg"
    faces = CF.face.detect(str(poster))  # returnFaceId=true, as the client sends by default
    assert len(faces) == 3
    assert set(faces[0]["faceRectangle"]) == {"top", "left", "width", "height"}
    areas = [f["faceRectangle"]["width"] * f["faceRectangle"]["height"] for f in faces]
    assert areas == sorted(areas, reverse=True)
    # faceIds are stable per image bytes and face rank
    assert [f["faceId"] for f in CF.face.detect(str(poster))] == [f["faceId"] for f in faces]


def test_cognitive_face_sees_azures_error_for_a_wrong_key(cf, face_data) -> None:
    CF.Key.set("wrong")
    with pytest.raises(CognitiveFaceException) as caught:
        CF.face.detect(str(face_data / "face_reference" / "posters" / "421054.jpg"))
    assert (caught.value.status_code, caught.value.code) == (401, "401")


def test_cognitive_face_gets_invalid_url_for_a_url_body(cf) -> None:
    with pytest.raises(CognitiveFaceException) as caught:
        CF.face.detect("https://example.org/poster.jpg")
    assert (caught.value.status_code, caught.value.code) == (400, "InvalidURL")


def test_posterlabs_own_client_gets_what_the_local_detector_finds(api, poster_bytes) -> None:
    with requests.Session() as session:
        client = AzureFaceClient(api, key=KEY, provider="http", session=session,
                                 limiter=MemoryGcraLimiter(Rate(100, 1.0)))
        remote = client.detect(poster_bytes)
    local = LocalDetector().detect(poster_bytes)
    assert [(f.left, f.top, f.width, f.height) for f in remote.faces] == \
        [(f.left, f.top, f.width, f.height) for f in local.faces]
    assert remote.api_calls == 1


def test_a_missing_key_is_refused_in_azures_error_shape(api, noise_png) -> None:
    assert_azure_error(post(api, noise_png, key=None), 401, "401")


def test_an_image_without_faces_gives_an_empty_list(api, noise_png) -> None:
    response = post(api, noise_png, returnFaceId="false")
    assert response.status_code == 200 and response.json() == []


def test_sizes_outside_the_limits_are_invalid_image_size(api, noise_png) -> None:
    assert_azure_error(post(api, noise_png[:500]), 400, "InvalidImageSize")
    assert_azure_error(post(api, noise_png * 8), 400, "InvalidImageSize")  # > 64 KB here


def test_bytes_of_no_accepted_format_are_invalid_image(api) -> None:
    assert_azure_error(post(api, b"RIFF\0\0\0\0WEBPVP8 " + b"\0" * 2000), 400, "InvalidImage")
    assert_azure_error(post(api, b"\xff\xd8\xff" + b"\x13" * 2000), 400, "InvalidImage")


def test_a_body_of_another_media_type_is_refused(api, noise_png) -> None:
    response = post(api, noise_png, headers={"Content-Type": "image/png"})
    assert_azure_error(response, 415, "BadArgument")


@pytest.mark.parametrize("params", [
    {"detectionModel": "detection_99"},
    {"recognitionModel": "nope"},
    {"returnFaceId": "maybe"},
    {"returnFaceLandmarks": "true"},
    {"returnFaceAttributes": "age,gender"},
])
def test_parameters_it_cannot_honour_are_bad_arguments(api, noise_png, params) -> None:
    assert_azure_error(post(api, noise_png, **params), 400, "BadArgument")


def test_unknown_paths_and_methods_answer_in_azures_shape(api) -> None:
    assert_azure_error(requests.get(api + "/face/v1.0/nothing", timeout=5), 404, "404")
    assert_azure_error(requests.get(api + DETECT, timeout=5), 405, "405")


def test_health_answers_json(api) -> None:
    response = requests.get(api + "/health", timeout=5)
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert response.json()["detector"].startswith("local:")


def test_the_quota_answers_429_with_retry_after(serve_app, noise_png) -> None:
    with serve_app(create_app(detector=LocalDetector(), rate=Rate(1, 60.0), jitter=0.0)) as url:
        assert post(url, noise_png, key=None).status_code == 200
        response = post(url, noise_png, key=None)
    assert_azure_error(response, 429, "429")
    seconds = int(response.headers["Retry-After"])
    assert 58 <= seconds <= 60
    assert f"Try again in {seconds} seconds." in response.json()["error"]["message"]
