"""The memory budget of a decode and decode-time reduction (small arrays, in process; the
peak RSS of real worker processes on huge decodes is in tests/reliability/test_poison.py)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from posterlab.errors import ImageError
from posterlab.imaging.budget import MIB, decode_cost, reduction_for
from posterlab.imaging.decode import decode_image, decode_poster
from posterlab.imaging.features import analyze_bytes, extract_features


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def noise(width: int, height: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(height // 8, width // 8, 3), dtype=np.uint8)
    return Image.fromarray(small).resize((width, height), Image.Resampling.BILINEAR)


def test_the_cost_counts_bytes_per_pixel_and_every_conversion_not_pixels_alone() -> None:
    pixels = 7000 * 7000
    one_bit, rgba = decode_cost((7000, 7000), "1"), decode_cost((7000, 7000), "RGBA")
    assert one_bit == pixels * (1 + 4 + 24)  # stored, convert("RGB"), float RGB
    assert rgba == pixels * (4 + 56)  # float RGBA then RGB composited
    reduced = decode_cost((7000, 7000), "1", reduced=(259, 259))
    assert pixels * 2 < reduced < pixels * 2 + 259 * 259 * 40  # stored + as L, small floats
    assert decode_cost((100, 100), "RGB", progressive_jpeg=True) > decode_cost((100, 100), "RGB")


def test_an_image_whose_decode_exceeds_the_budget_is_refused_before_decoding() -> None:
    data = encode(Image.new("1", (3000, 3000), 1), "PNG")  # 9 MP, a 5 KB file
    assert len(data) < 10_000
    with pytest.raises(ImageError, match="POSTERLAB_MAX_IMAGE_BYTES") as caught:
        decode_image(data, max_bytes=64 * MIB)  # its float RGB alone is 206 MiB
    assert caught.value.code == "image-too-large"
    small = decode_poster(data, need=lambda size: (300, 300), max_bytes=64 * MIB)
    assert small.rgb.shape == (300, 300, 3) and (small.width, small.height) == (3000, 3000)


@pytest.mark.parametrize("mode", ["1", "L", "P", "RGB", "RGBA", "I;16"])
def test_every_mode_is_reduced_to_at_least_what_is_needed(mode: str) -> None:
    image = noise(1200, 1800).convert(mode) if mode != "I;16" else Image.new(mode, (1200, 1800), 9)
    out = decode_poster(encode(image, "PNG"), need=lambda size: (200, 300))
    assert out.rgb.shape == (300, 200, 3) and out.rgb.dtype == np.float64
    assert (out.width, out.height) == (1200, 1800)
    assert out.rgb.min() >= 0.0 and out.rgb.max() <= 1.0


def test_a_jpeg_is_scaled_while_decoding_and_never_below_the_need() -> None:
    data = encode(noise(4000, 3000), "JPEG", quality=90, progressive=True)
    out = decode_poster(data, need=lambda size: (480, 360))
    assert 480 <= out.rgb.shape[1] < 960 and 360 <= out.rgb.shape[0] < 720
    assert (out.width, out.height) == (4000, 3000)
    assert reduction_for((4000, 3000), (480, 360)) == 8


def test_an_exif_rotated_image_reports_its_upright_size_when_reduced() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    data = encode(noise(1600, 800), "JPEG", exif=exif.tobytes())
    out = decode_poster(data, need=lambda size: (100, 100))
    assert (out.width, out.height) == (800, 1600)
    assert out.rgb.shape[0] > out.rgb.shape[1]  # upright: taller than wide


def test_features_of_a_large_poster_measured_reduced_match_the_full_decode() -> None:
    data = encode(noise(1400, 2100, seed=3), "PNG")
    reduced = analyze_bytes(data)
    full = extract_features(decode_image(data))
    assert (reduced.scalars["width"], reduced.scalars["height"]) == (1400.0, 2100.0)
    assert reduced.scalars["aspect"] == full.scalars["aspect"]
    # colour is kept; texture differs (skimage's anti-aliasing from the full size blurs
    # more than a box reduction does: HOG correlates ~0.7), hence FEATURES_SCHEMA 2
    for name in ("mean_r", "mean_g", "mean_b", "brightness"):
        assert reduced.scalars[name] == pytest.approx(full.scalars[name], abs=0.01), name
    assert reduced == analyze_bytes(data)  # deterministic, as stored features must be
