"""Colour features on uniform, two-colour and gradient images with known answers."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from skimage import color

from posterlab.imaging.color import (
    channel_histograms,
    color_moments,
    colorfulness,
    dominant_colors,
    grey_histogram,
    kmeans,
    rgb_to_hsv,
)

RED, BLUE = (1.0, 0.0, 0.0), (0.0, 0.0, 1.0)


def two_colour(left: tuple[float, ...], right: tuple[float, ...], *, split: int = 16,
               shape: tuple[int, int] = (16, 32)) -> np.ndarray:
    image = np.empty((*shape, 3))
    image[:, :split] = left
    image[:, split:] = right
    return image


@settings(max_examples=40, deadline=None)
@given(arrays(np.uint8, st.tuples(st.integers(16, 24), st.integers(16, 24), st.just(3)),
              elements=st.sampled_from([0, 1, 50, 128, 200, 255])))
def test_rgb_to_hsv_equals_skimage_including_ties(image: np.ndarray) -> None:
    # A few levels make many pixels where two channels tie for the maximum.
    np.testing.assert_allclose(rgb_to_hsv(image), color.rgb2hsv(image), atol=1e-12)


def test_hue_of_pure_colours() -> None:
    image = np.zeros((16, 48, 3))
    image[:, :16, 0] = image[:, 16:32, 1] = image[:, 32:, 2] = 1.0
    hsv = rgb_to_hsv(image)
    np.testing.assert_allclose(hsv[0, [0, 16, 32], 0], [0.0, 1 / 3, 2 / 3])
    np.testing.assert_array_equal(hsv[:, :, 1:], 1.0)


def test_moments_of_a_uniform_image_are_its_colour_with_no_spread() -> None:
    moments = color_moments(np.tile([0.2, 0.4, 0.8], (16, 16, 1)))
    assert moments["mean_r"] == pytest.approx(0.2)
    assert moments["mean_h"] == pytest.approx(0.6111111)
    assert moments["mean_s"] == pytest.approx(0.75)
    assert moments["mean_v"] == pytest.approx(0.8)
    assert all(moments[f"std_{c}"] == pytest.approx(0, abs=1e-12) for c in "rgbhsv")
    assert list(moments) == [f"{stat}_{c}" for stat in ("mean", "std") for c in "rgbhsv"]


def test_moments_of_half_red_half_blue() -> None:
    moments = color_moments(two_colour(RED, BLUE))
    assert (moments["mean_r"], moments["mean_g"], moments["mean_b"]) == (0.5, 0.0, 0.5)
    assert moments["std_r"] == 0.5
    assert moments["mean_h"] == pytest.approx((0 + 2 / 3) / 2)


def test_a_grey_image_has_no_colorfulness() -> None:
    assert colorfulness(two_colour((0.0,) * 3, (1.0,) * 3)) == 0.0


def test_colorfulness_of_pure_red_follows_the_formula() -> None:
    # rg = 255, yb = 127.5, no spread: M = 0.3 * sqrt(255^2 + 127.5^2)
    expected = 0.3 * np.hypot(255, 127.5)
    assert colorfulness(np.tile(RED, (16, 16, 1))) == pytest.approx(expected)


def test_red_and_blue_halves_are_more_colourful_than_pure_red() -> None:
    assert colorfulness(two_colour(RED, BLUE)) > colorfulness(np.tile(RED, (16, 16, 1)))


def test_a_gradient_through_all_256_levels_fills_every_bin_evenly() -> None:
    gradient = np.tile(np.arange(256) / 255, (16, 1))
    np.testing.assert_array_equal(grey_histogram(gradient, bins=16), np.full(16, 1 / 16))


def test_the_20_bin_histogram_groups_levels_as_np_histogram_does() -> None:
    gradient = np.tile(np.arange(256) / 255, (16, 1))
    expected, _ = np.histogram(np.arange(256), bins=20, range=(0, 256))
    np.testing.assert_allclose(grey_histogram(gradient), expected / 256)


def test_grey_histogram_of_two_levels() -> None:
    image = np.zeros((16, 16))
    image[:4] = 1.0
    hist = grey_histogram(image, bins=20)
    assert hist.shape == (20,)
    assert (hist[0], hist[19], hist.sum()) == (0.75, 0.25, 1.0)


def test_channel_histograms_of_half_red_half_blue() -> None:
    hist = channel_histograms(two_colour(RED, BLUE), bins=4).reshape(3, 4)
    np.testing.assert_array_equal(hist, [[0.5, 0, 0, 0.5], [1, 0, 0, 0], [0.5, 0, 0, 0.5]])


def test_dominant_colours_of_a_two_colour_image_are_those_colours_with_their_shares() -> None:
    colours = dominant_colors(two_colour(RED, BLUE, split=24), k=5)
    assert colours.shape == (5, 4)
    np.testing.assert_array_equal(colours[0], [1.0, 0.0, 0.0, 0.75])
    np.testing.assert_array_equal(colours[1], [0.0, 0.0, 1.0, 0.25])
    np.testing.assert_array_equal(colours[2:, 3], 0.0)


def test_dominant_colours_are_the_same_for_the_same_seed() -> None:
    image = np.random.default_rng(3).random((64, 64, 3))
    first = dominant_colors(image, k=5, sample=500, rng=7)
    np.testing.assert_array_equal(first, dominant_colors(image, k=5, sample=500, rng=7))
    assert first[:, 3].sum() == pytest.approx(1.0)
    assert np.all(np.diff(first[:, 3]) <= 0)  # largest share first


def test_kmeans_finds_two_well_separated_clusters() -> None:
    points = np.array([[0.0, 0.0], [0.1, 0.0], [5.0, 5.0], [5.1, 5.0]])
    centres = kmeans(points, 2, rng=np.random.default_rng(0))
    np.testing.assert_allclose(sorted(centres.tolist()), [[0.05, 0.0], [5.05, 5.0]])


@pytest.mark.parametrize("call, name", [
    (lambda: grey_histogram(np.zeros((16, 16)), bins=1), "bins"),
    (lambda: grey_histogram(np.zeros((16, 16)), bins=300), "bins"),
    (lambda: grey_histogram(np.zeros((16, 16, 3))), "grey"),
    (lambda: channel_histograms(np.zeros((16, 16, 3)), bins=0), "bins"),
    (lambda: dominant_colors(np.zeros((16, 16, 3)), k=0), "k"),
    (lambda: dominant_colors(np.zeros((16, 16, 3)), sample=0), "sample"),
    (lambda: colorfulness(np.full((16, 16, 3), 2.0)), "rgb"),
    (lambda: rgb_to_hsv(np.zeros((16, 16, 2))), "rgb"),
    (lambda: kmeans(np.zeros(3), 2, rng=np.random.default_rng()), "points"),
])
def test_invalid_arguments_raise_value_error_naming_the_parameter(call: object,
                                                                  name: str) -> None:
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        call()  # type: ignore[operator]
