"""Every face provider fills both features, face_count and prominent_faces, from its boxes:
the local detector, and the http and azure clients against posterlab's real face API on
127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from posterlab.config import Rate
from posterlab.faces.azure import AzureFaceClient
from posterlab.faces.base import PROMINENT_FRACTION, Detection, FaceBox, prominent_count
from posterlab.faces.local import LocalDetector
from posterlab.faces.ratelimit import MemoryGcraLimiter
from posterlab.faces.server import create_app


@pytest.fixture(scope="module")
def api(serve_app) -> Iterator[str]:
    """posterlab's face API on the local detector, no key, no quota."""
    with serve_app(create_app(detector=LocalDetector())) as url:
        yield url


def client(api: str, provider: str, session: requests.Session) -> AzureFaceClient:
    return AzureFaceClient(api, key=None, provider=provider, session=session,
                           limiter=MemoryGcraLimiter(Rate(100, 1.0)))


def test_a_face_is_prominent_from_a_tenth_of_the_image_height() -> None:
    assert PROMINENT_FRACTION == 0.1
    faces = [FaceBox(0, 0, 30, 27), FaceBox(0, 0, 30, 26), FaceBox(0, 0, 5, 100)]
    assert prominent_count(faces, 268) == 2
    assert prominent_count(faces, None) is None
    assert Detection(tuple(faces), image_height=268).prominent == 2
    assert Detection(tuple(faces)).prominent is None


# (poster, faces, prominent faces) at the default parameters
POSTERS = [
    ("face_reference/posters/421054.jpg", 3, 0),  # Domino: three small faces in a row
    ("posters/posters/24453.jpg", 6, 5),  # Born Reckless / Pilgrimage: one under a tenth
]


@pytest.mark.parametrize(("poster", "faces", "prominent"), POSTERS)
def test_the_local_detector_fills_both_and_keeps_its_candidates(
        face_data, poster: str, faces: int, prominent: int) -> None:
    found = LocalDetector().detect((face_data / poster).read_bytes())
    assert (found.count, found.prominent, found.image_height) == (faces, prominent, 268)
    assert found.candidates is not None and set(found.faces) <= set(found.candidates)
    scores = [b.score or 0.0 for b in found.detections]
    assert scores == sorted(scores, reverse=True)


@pytest.mark.parametrize("provider", ["http", "azure"])
@pytest.mark.parametrize(("poster", "faces", "prominent"), POSTERS)
def test_the_api_providers_fill_both_from_the_boxes_they_get(
        api, face_data, provider: str, poster: str, faces: int, prominent: int) -> None:
    with requests.Session() as session:
        remote = client(api, provider, session).detect((face_data / poster).read_bytes())
    assert (remote.count, remote.prominent, remote.image_height) == (faces, prominent, 268)
    assert remote.prominent == sum(f.height >= 26.8 for f in remote.faces)
    # an API answers the counted faces only: they are all its detections
    assert remote.candidates is None and set(remote.detections) == set(remote.faces)
