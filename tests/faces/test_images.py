"""Which bytes the face API takes: the formats Azure accepts, as imaging names them."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from posterlab.errors import FaceApiInputError
from posterlab.faces.images import ACCEPTED, accepted_format, api_ready_bytes
from posterlab.imaging.decode import sniff_format


def encode(fmt: str, size: tuple[int, int] = (64, 64)) -> bytes:
    out = io.BytesIO()
    Image.effect_noise(size, 64).convert("RGB").save(out, format=fmt)
    return out.getvalue()


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "BMP"])
def test_the_formats_azure_accepts_are_accepted_under_imagings_names(fmt: str) -> None:
    data = encode(fmt)
    assert accepted_format(data) == sniff_format(data) == fmt
    assert fmt in ACCEPTED


@pytest.mark.parametrize("fmt", ["WEBP", "TIFF"])
def test_images_azure_refuses_are_known_to_imaging_but_not_accepted(fmt: str) -> None:
    data = encode(fmt)
    assert sniff_format(data) == fmt
    assert accepted_format(data) is None


def test_bytes_that_are_no_image_are_not_accepted() -> None:
    assert accepted_format(b"<html><body>not found</body></html>") is None


def test_an_accepted_image_goes_to_the_api_unchanged() -> None:
    data = encode("PNG")
    assert api_ready_bytes(data) == (data, "application/octet-stream")


def test_a_tiff_is_re_encoded_as_png_before_it_costs_a_call() -> None:
    body, _ = api_ready_bytes(encode("TIFF"))
    assert accepted_format(body) == "PNG"


def test_an_accepted_image_under_1_kb_is_refused_before_the_call() -> None:
    with pytest.raises(FaceApiInputError, match="InvalidImageSize"):
        api_ready_bytes(encode("PNG", (4, 4)))
