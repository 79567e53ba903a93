"""The recycled detector: same answers as the in-process one, from short-lived children."""

from __future__ import annotations

import io
import os

import pytest
from PIL import Image

from posterlab.errors import ImageError
from posterlab.faces.local import LocalDetector, RecycledDetector, _warm_child


def _jpeg() -> bytes:
    from skimage import data

    buf = io.BytesIO()
    Image.fromarray(data.astronaut()).save(buf, format="JPEG")
    return buf.getvalue()


@pytest.mark.slow  # child processes that load the detector, about 9 s
def test_recycled_detector_answers_like_the_local_one_and_replaces_its_child() -> None:
    image = _jpeg()
    recycled = RecycledDetector(per_process=2)
    try:
        expected = LocalDetector().detect(image)
        answers = [recycled.detect(image) for _ in range(5)]
        assert all(a == expected for a in answers) and expected.count == 1
        pool = recycled._executor()
        pids = set()
        for _ in range(4):  # two calls per child: at least two different children
            pids.add(pool.submit(os.getpid).result())
            pool.submit(_warm_child, recycled.params, 1_000).result()
        assert len(pids) >= 2 and os.getpid() not in pids
        with pytest.raises(ImageError):
            recycled.detect(b"not an image at all" * 100)
    finally:
        recycled.close()


def test_recycled_detector_refuses_a_non_positive_lifetime() -> None:
    with pytest.raises(ValueError, match="per_process"):
        RecycledDetector(per_process=0)
