"""extract_features / analyze_bytes: the contract the pipeline and the database rely on."""

from __future__ import annotations

import io
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from posterlab.errors import ImageError
from posterlab.imaging import (
    SCALAR_FEATURES,
    VECTOR_FEATURES,
    Features,
    PreprocessConfig,
    analyze_bytes,
    extract_features,
    vector_lengths,
)

POSTERS = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "posters" / "posters"


def png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "PNG")
    return buffer.getvalue()


def test_scalar_feature_names_are_exactly_the_database_columns() -> None:
    assert SCALAR_FEATURES == (
        "mean_r", "mean_g", "mean_b", "mean_h", "mean_s", "mean_v",
        "std_r", "std_g", "std_b", "std_h", "std_s", "std_v",
        "brightness", "contrast", "colorfulness", "entropy", "edge_density", "sift_keypoints",
        "centre_x", "centre_y", "thirds", "width", "height", "aspect",
    )


def test_vector_lengths_at_the_default_config_are_the_documented_ones() -> None:
    assert vector_lengths(PreprocessConfig()) == VECTOR_FEATURES
    assert VECTOR_FEATURES == {"grey_hist": 20, "rgb_hist": 48, "lbp_hist": 10,
                               "dominant_colors": 20, "hog": 1008}


def test_all_vectors_of_a_poster_fit_in_8_kb_as_float32() -> None:
    features = extract_features(np.random.default_rng(0).random((268, 182, 3)))
    assert features.nbytes == 4 * sum(VECTOR_FEATURES.values()) == 4424
    assert features.nbytes < 8 * 1024


def test_a_uniform_grey_image_has_its_known_features() -> None:
    features = extract_features(np.full((128, 64, 3), 0.5))
    s = features.scalars
    assert list(s) == list(SCALAR_FEATURES)
    assert (s["mean_r"], s["mean_v"], s["mean_s"], s["mean_h"]) == (0.5, 0.5, 0.0, 0.0)
    assert s["brightness"] == pytest.approx(0.5)
    assert s["contrast"] == pytest.approx(0.0, abs=1e-12)
    assert (s["colorfulness"], s["entropy"], s["edge_density"], s["sift_keypoints"]) == (
        0.0, 0.0, 0.0, 0.0)
    assert (s["centre_x"], s["centre_y"], s["thirds"]) == (0.5, 0.5, 0.0)
    assert (s["width"], s["height"], s["aspect"]) == (64.0, 128.0, 0.5)
    v = features.vectors
    assert v["grey_hist"][10] == 1.0  # level 128 of 256 falls in bin 128 * 20 // 256
    assert v["lbp_hist"][8] == 1.0
    np.testing.assert_array_equal(v["hog"], 0.0)
    np.testing.assert_array_equal(v["dominant_colors"][:4], [0.5, 0.5, 0.5, 1.0])


def test_a_half_red_half_blue_image_has_its_known_colour_features() -> None:
    image = np.zeros((128, 64, 3))  # canonical size already: no resampling blurs the seam
    image[:, :32, 0] = 1.0
    image[:, 32:, 2] = 1.0
    s = extract_features(image).scalars
    assert (s["mean_r"], s["mean_g"], s["mean_b"], s["mean_v"], s["mean_s"]) == (
        0.5, 0.0, 0.5, 1.0, 1.0)
    assert s["mean_h"] == pytest.approx(1 / 3)
    assert s["brightness"] == pytest.approx((0.2125 + 0.0721) / 2)
    assert s["centre_x"] < 0.5  # red is brighter than blue
    dominant = extract_features(image).vectors["dominant_colors"].reshape(5, 4)
    assert sorted(map(tuple, dominant[:2].tolist())) == [(0, 0, 1, 0.5), (1, 0, 0, 0.5)]


def test_width_height_and_aspect_are_those_of_the_decoded_image() -> None:
    s = extract_features(np.zeros((300, 200, 3))).scalars
    assert (s["width"], s["height"], s["aspect"]) == (200.0, 300.0, 200 / 300)


def test_config_changes_vector_lengths_as_vector_lengths_says() -> None:
    config = PreprocessConfig(grey_bins=8, channel_bins=4, dominant_k=3, lbp_points=16,
                              lbp_radius=2, hog_shape=(64, 64))
    features = extract_features(np.random.default_rng(1).random((40, 40, 3)), config)
    assert {k: v.shape[0] for k, v in features.vectors.items()} == vector_lengths(config)


def test_the_same_image_gives_bit_identical_features() -> None:
    image = np.random.default_rng(2).random((90, 60, 3))
    assert extract_features(image) == extract_features(image.copy())
    assert extract_features(image) != extract_features(image[::-1].copy())


def test_another_process_computes_bit_identical_features() -> None:
    data = png(np.random.default_rng(3).integers(0, 256, (120, 80, 3), dtype=np.uint8))
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        theirs = pool.submit(analyze_bytes, data).result(timeout=120)
    assert theirs == analyze_bytes(data)


def test_analyze_bytes_decodes_and_extracts() -> None:
    image = np.zeros((60, 40, 3), dtype=np.uint8)
    image[..., 1] = 255
    features = analyze_bytes(png(image))
    assert features.scalars["mean_g"] == 1.0
    assert features.scalars["mean_h"] == pytest.approx(1 / 3)


def test_analyze_bytes_applies_the_pixel_limit() -> None:
    with pytest.raises(ImageError) as caught:
        analyze_bytes(png(np.zeros((60, 40, 3), dtype=np.uint8)), max_pixels=2000)
    assert caught.value.code == "image-too-large"


def test_analyze_bytes_refuses_html() -> None:
    with pytest.raises(ImageError, match="HTML"):
        analyze_bytes(b"<html><body>404</body></html>")


def test_extract_features_refuses_a_config_of_the_wrong_type() -> None:
    with pytest.raises(ValueError, match="config"):
        extract_features(np.zeros((16, 16, 3)), {"grey_bins": 3})  # type: ignore[arg-type]


DTYPES = st.sampled_from([np.uint8, np.uint16, np.float32, np.float64, np.bool_])


@st.composite
def images(draw: st.DrawFn) -> np.ndarray:
    dtype = np.dtype(draw(DTYPES))
    shape = (draw(st.integers(16, 72)), draw(st.integers(16, 72)))
    if draw(st.booleans()):
        shape += (3,)
    if dtype.kind == "f":
        elements = st.floats(0, 1, width=dtype.itemsize * 8)
    elif dtype.kind == "b":
        elements = st.booleans()
    else:
        elements = st.integers(0, np.iinfo(dtype).max)
    return draw(arrays(dtype, shape, elements=elements))


@settings(max_examples=30, deadline=None)
@given(images())
def test_every_feature_is_finite_and_has_its_documented_length(image: np.ndarray) -> None:
    features = extract_features(image)
    assert isinstance(features, Features)
    assert list(features.scalars) == list(SCALAR_FEATURES)
    assert all(type(v) is float and np.isfinite(v) for v in features.scalars.values())
    assert {k: v.shape for k, v in features.vectors.items()} == {
        k: (n,) for k, n in VECTOR_FEATURES.items()}
    for vector in features.vectors.values():
        assert vector.dtype == np.float32 and np.isfinite(vector).all()
    s = features.scalars
    bounded = [k for k in SCALAR_FEATURES
               if k not in ("colorfulness", "entropy", "sift_keypoints", "width", "height",
                            "aspect")]
    assert all(0.0 <= s[k] <= 1.0 for k in bounded)
    assert 0.0 <= s["mean_h"] < 1.0 and 0.0 <= s["entropy"] <= 8.0


@pytest.mark.data
def test_real_posters_yield_complete_features() -> None:
    if not POSTERS.is_dir():
        pytest.skip(f"real posters not found at {POSTERS} (../shared/data is optional)")
    for path in sorted(POSTERS.glob("*.jpg"))[:5]:
        features = analyze_bytes(path.read_bytes())
        assert (features.scalars["width"], features.scalars["height"]) == (182.0, 268.0)
        assert features.scalars["sift_keypoints"] > 0
        assert all(np.isfinite(v) for v in features.scalars.values())
