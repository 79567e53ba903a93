"""Texture, shape and layout features with known answers on tiny synthetic images."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from skimage import feature, measure

from posterlab.imaging.texture import (
    centre_of_mass,
    edge_density,
    hog_length,
    hog_vector,
    lbp_histogram,
    shannon_entropy,
    sift_keypoint_count,
    thirds,
)


def step_edge(column: int, shape: tuple[int, int] = (36, 36)) -> np.ndarray:
    image = np.zeros(shape)
    image[:, column:] = 1.0
    return image


def smooth_noise(size: int = 96, seed: int = 0) -> np.ndarray:
    noise = ndimage.gaussian_filter(np.random.default_rng(seed).random((size, size)), 2)
    return (noise - noise.min()) / (noise.max() - noise.min())


def test_the_default_hog_geometry_gives_1008_values() -> None:
    # 128x80 in 16-px cells: 8x5 cells, 7x4 blocks of 2x2 cells, 9 orientations.
    assert hog_length((128, 80)) == 7 * 4 * 2 * 2 * 9 == 1008


@pytest.mark.parametrize("shape", [(128, 87), (300, 100), (16, 16), (50, 400)])
def test_every_image_gives_the_same_hog_length(shape: tuple[int, int]) -> None:
    image = np.random.default_rng(0).random(shape)
    assert hog_vector(image).shape == (1008,)


def test_hog_matches_skimage_on_an_image_of_the_window_size() -> None:
    image = smooth_noise(64)
    expected = feature.hog(image, 9, (16, 16), (2, 2), block_norm="L2-Hys")
    np.testing.assert_array_equal(hog_vector(image, shape=(64, 64)), expected)


def test_hog_of_a_flat_image_is_zero() -> None:
    np.testing.assert_array_equal(hog_vector(np.full((128, 80), 0.5)), 0.0)


def test_a_hog_window_smaller_than_a_block_is_refused() -> None:
    with pytest.raises(ValueError, match="shape"):
        hog_length((20, 64), cell=16, block=2)


def test_a_flat_image_has_only_the_all_neighbours_lbp_code() -> None:
    hist = lbp_histogram(np.full((16, 16), 0.5))
    assert hist.shape == (10,)
    assert hist[8] == 1.0


def test_lbp_histograms_sum_to_one_and_grow_with_the_points() -> None:
    image = smooth_noise(32)
    hist = lbp_histogram(image, points=16, radius=2)
    assert hist.shape == (18,)
    assert hist.sum() == pytest.approx(1.0)


def test_a_flat_image_has_no_edges() -> None:
    assert edge_density(np.full((32, 32), 0.7)) == 0.0


def test_edges_of_a_step_lie_along_the_step() -> None:
    image = step_edge(16, (32, 32))
    edges = feature.canny(image)
    assert set(np.nonzero(edges)[1]) <= {15, 16}
    assert 1 / 32 <= edge_density(image) <= 2 / 32


@pytest.mark.parametrize("image, bits", [
    (np.full((16, 16), 0.5), 0.0),
    (step_edge(8, (16, 16)), 1.0),
    (np.tile(np.arange(256) / 255, (16, 1)), 8.0),
])
def test_entropy_known_answers(image: np.ndarray, bits: float) -> None:
    assert shannon_entropy(image) == bits


def test_entropy_equals_skimage_on_the_uint8_image() -> None:
    image = np.random.default_rng(4).integers(0, 256, (40, 40)).astype(np.uint8)
    assert shannon_entropy(image) == pytest.approx(measure.shannon_entropy(image))


def test_a_flat_image_has_no_sift_keypoints() -> None:
    assert sift_keypoint_count(np.full((64, 64), 0.5)) == 0


def test_blobs_have_sift_keypoints() -> None:
    assert sift_keypoint_count(smooth_noise()) > 10


def test_sift_upsampling_must_be_1_2_or_4() -> None:
    with pytest.raises(ValueError, match="upsampling"):
        sift_keypoint_count(np.zeros((16, 16)), upsampling=3)


@pytest.mark.parametrize("image, centre", [
    (np.full((20, 30), 0.4), (0.5, 0.5)),
    (np.zeros((20, 30)), (0.5, 0.5)),
    (step_edge(12, (16, 16)), (0.875, 0.5)),
    (step_edge(12, (16, 16)).T, (0.5, 0.875)),
])
def test_centre_of_brightness_known_answers(image: np.ndarray,
                                            centre: tuple[float, float]) -> None:
    assert centre_of_mass(image) == pytest.approx(centre)


def test_an_edge_on_a_thirds_line_scores_one() -> None:
    assert thirds(step_edge(12)) == 1.0
    assert thirds(step_edge(24)) == 1.0


def test_an_edge_in_the_middle_scores_only_where_it_crosses_the_horizontal_bands() -> None:
    # rows 10-13 and 22-25 of 36 lie within 1/18 of y = 1/3 and y = 2/3
    assert thirds(step_edge(18)) == pytest.approx(8 / 36)


def test_a_flat_image_scores_zero_on_thirds() -> None:
    assert thirds(np.full((20, 20), 0.5)) == 0.0


@pytest.mark.parametrize("call, name", [
    (lambda: hog_vector(np.zeros((16, 16)), cell=0), "cell"),
    (lambda: hog_length((128,)), "shape"),  # type: ignore[arg-type]
    (lambda: lbp_histogram(np.zeros((16, 16)), points=2), "points"),
    (lambda: lbp_histogram(np.zeros((16, 16)), radius=-1.0), "radius"),
    (lambda: lbp_histogram(np.zeros((16, 16)), radius=9.0), "radius"),
    (lambda: edge_density(np.zeros((16, 16)), sigma=0), "sigma"),
    (lambda: shannon_entropy(np.zeros((8, 8))), "grey"),
    (lambda: centre_of_mass(np.zeros((16, 16, 3))), "grey"),
    (lambda: sift_keypoint_count(np.zeros((16, 16)), n_octaves=0), "n_octaves"),
])
def test_invalid_arguments_raise_value_error_naming_the_parameter(call: object,
                                                                  name: str) -> None:
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        call()  # type: ignore[operator]
