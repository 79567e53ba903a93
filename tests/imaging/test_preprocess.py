"""PreprocessConfig, the step list, feature_version and preprocess()."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import color

from posterlab.imaging.preprocess import (
    Canonical,
    PreprocessConfig,
    PreprocessStep,
    canonical_size,
    default_steps,
    feature_version,
    luminance,
    preprocess,
)

GREY_ONLY = PreprocessConfig(steps=(PreprocessStep.of("grey"),))


def grey_only(*steps: PreprocessStep) -> PreprocessConfig:
    return PreprocessConfig(steps=(PreprocessStep.of("grey"), *steps))


def test_the_default_steps_are_resize_grey_and_a_percentile_stretch() -> None:
    assert [(s.name, dict(s.params)) for s in PreprocessConfig().steps] == [
        ("resize", {"height": 128}),
        ("grey", {}),
        ("rescale_intensity", {"low": 2.0, "high": 98.0}),
    ]


def test_a_poster_is_resized_to_128_rows_keeping_its_aspect() -> None:
    canon = preprocess(np.zeros((268, 182, 3)), PreprocessConfig())
    assert isinstance(canon, Canonical)
    assert canon.rgb.shape == (128, 87, 3)
    assert canon.luma.shape == canon.grey.shape == (128, 87)


@pytest.mark.parametrize("shape, expected", [((268, 182), (128, 87)), ((16, 4000), (128, 512)),
                                             ((4000, 16), (128, 32)), ((64, 64), (128, 128))])
def test_extreme_aspects_are_clamped_to_between_1_4_and_4_1(shape: tuple[int, int],
                                                           expected: tuple[int, int]) -> None:
    assert canonical_size(shape, 128) == expected


def test_a_canonical_sized_image_is_not_resampled() -> None:
    image = np.random.default_rng(0).random((128, 64, 3))
    steps = (PreprocessStep.of("resize"), PreprocessStep.of("grey"))
    canon = preprocess(image, PreprocessConfig(steps=steps))
    np.testing.assert_array_equal(canon.rgb, image)


def test_grey_is_the_luminance_of_skimage_rgb2gray() -> None:
    image = np.random.default_rng(1).random((20, 30, 3))
    np.testing.assert_allclose(luminance(image), color.rgb2gray(image), atol=1e-12)
    np.testing.assert_allclose(preprocess(image, GREY_ONLY).grey, color.rgb2gray(image),
                               atol=1e-12)


def test_a_grey_input_passes_through_the_grey_step_unchanged() -> None:
    image = np.random.default_rng(2).random((20, 20))
    np.testing.assert_allclose(preprocess(image, GREY_ONLY).grey, image, atol=1e-12)


def test_integer_inputs_are_scaled_by_their_dtype_maximum() -> None:
    canon = preprocess(np.full((16, 16), 65535, dtype=np.uint16), GREY_ONLY)
    np.testing.assert_allclose(canon.grey, 1.0)


def test_rescale_intensity_stretches_the_percentile_range_to_0_1() -> None:
    image = np.linspace(0.4, 0.6, 400).reshape(20, 20)
    canon = preprocess(image, grey_only(PreprocessStep.of("rescale_intensity", low=0, high=100)))
    assert canon.grey.min() == 0.0 and canon.grey.max() == 1.0
    np.testing.assert_allclose(canon.luma, image, atol=1e-12)  # luma is never enhanced


@pytest.mark.parametrize(
    "step", [PreprocessStep.of("rescale_intensity"), PreprocessStep.of("equalize_hist")]
)
def test_enhancing_a_flat_image_leaves_it_flat(step: PreprocessStep) -> None:
    canon = preprocess(np.full((20, 20), 0.3), grey_only(step))
    np.testing.assert_array_equal(canon.grey, 0.3)


def test_equalize_hist_spreads_a_narrow_histogram() -> None:
    image = np.linspace(0.45, 0.55, 400).reshape(20, 20)
    grey = preprocess(image, grey_only(PreprocessStep.of("equalize_hist"))).grey
    assert grey.max() - grey.min() > 0.9


def test_median_removes_a_single_bright_pixel() -> None:
    image = np.zeros((20, 20))
    image[10, 10] = 1.0
    median = grey_only(PreprocessStep.of("median"))
    np.testing.assert_array_equal(preprocess(image, median).grey, 0.0)


def test_gaussian_spreads_a_single_bright_pixel() -> None:
    image = np.zeros((20, 20))
    image[10, 10] = 1.0
    grey = preprocess(image, grey_only(PreprocessStep.of("gaussian", sigma=1))).grey
    assert 0.0 < grey[10, 10] < 1.0 and grey[10, 11] > 0.0
    assert grey.sum() == pytest.approx(1.0)


def test_steps_before_grey_change_the_canonical_rgb() -> None:
    image = np.linspace(0.4, 0.6, 20 * 20 * 3).reshape(20, 20, 3)
    config = PreprocessConfig(steps=(PreprocessStep.of("rescale_intensity", low=0, high=100),
                                     PreprocessStep.of("grey")))
    rgb = preprocess(image, config).rgb
    assert rgb.min() == 0.0 and rgb.max() == 1.0


def test_grey_only_steps_before_grey_are_refused() -> None:
    with pytest.raises(ValueError, match=r"\['median'\] work on grey"):
        PreprocessConfig(steps=(PreprocessStep.of("median"), PreprocessStep.of("grey")))


@pytest.mark.parametrize("steps", [(), (PreprocessStep.of("grey"), PreprocessStep.of("grey"))])
def test_the_steps_need_exactly_one_grey(steps: tuple[PreprocessStep, ...]) -> None:
    with pytest.raises(ValueError, match="exactly one 'grey'"):
        PreprocessConfig(steps=steps)


@pytest.mark.parametrize("name, params, match", [
    ("blur", {}, "step 'blur' is unknown"),
    ("median", {"size": 3}, "no parameter size"),
    ("median", {"radius": 0}, "median.radius"),
    ("gaussian", {"sigma": -1.0}, "gaussian.sigma"),
    ("resize", {"height": 8}, "resize.height"),
    ("rescale_intensity", {"low": 50, "high": 40}, "low < high"),
    ("equalize_hist", {"nbins": 1}, "equalize_hist.nbins"),
])
def test_bad_step_parameters_raise_value_error_naming_them(name: str, params: dict[str, object],
                                                           match: str) -> None:
    with pytest.raises(ValueError, match=match):
        PreprocessStep.of(name, **params)


@pytest.mark.parametrize("field, value", [("grey_bins", 1), ("dominant_k", 0), ("seed", -1),
                                          ("lbp_radius", 0.0), ("hog_shape", (16, 16)),
                                          ("sift_upsampling", 3), ("canny_sigma", "x")])
def test_bad_feature_parameters_raise_value_error_naming_them(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        PreprocessConfig(**{field: value})


def test_from_an_empty_mapping_gives_the_default_config() -> None:
    assert PreprocessConfig.from_mapping({}) == PreprocessConfig()


def test_from_mapping_refuses_unknown_keys_naming_them() -> None:
    with pytest.raises(ValueError, match="greybins, size"):
        PreprocessConfig.from_mapping({"greybins": 10, "size": 3, "seed": 1})


def test_from_mapping_reads_steps_as_names_mappings_or_steps() -> None:
    config = PreprocessConfig.from_mapping({
        "steps": ["resize", {"name": "grey"}, PreprocessStep.of("median", radius=2),
                  {"name": "gaussian", "sigma": 0.5}],
        "grey_bins": 10,
    })
    assert [s.name for s in config.steps] == ["resize", "grey", "median", "gaussian"]
    assert config.steps[2].param("radius") == 2
    assert config.steps[3].param("sigma") == 0.5
    assert config.grey_bins == 10


def test_a_dotted_key_changes_one_parameter_of_a_listed_step() -> None:
    config = PreprocessConfig.from_mapping({"resize.height": 160})
    assert config.steps[0] == PreprocessStep.of("resize", height=160)
    assert config.steps[1:] == default_steps()[1:]


def test_a_dotted_key_for_a_step_not_in_the_list_is_refused() -> None:
    with pytest.raises(ValueError, match="'median', which is not in the steps"):
        PreprocessConfig.from_mapping({"median.radius": 2})


def test_to_mapping_round_trips_through_from_mapping() -> None:
    config = PreprocessConfig.from_mapping({"steps": ["grey", "median"], "hog_shape": [64, 64]})
    assert PreprocessConfig.from_mapping(config.to_mapping()) == config


def test_the_default_feature_version_is_pinned() -> None:
    # Changing a default changes every stored feature; when this fails on purpose, update
    # the value here (and bump FEATURES_SCHEMA if feature code changed).
    assert feature_version(PreprocessConfig()) == "b096266add10"


def test_feature_version_changes_with_any_parameter_and_with_the_schema() -> None:
    base = PreprocessConfig()
    versions = {
        feature_version(base),
        feature_version(PreprocessConfig.from_mapping({"resize.height": 129})),
        feature_version(PreprocessConfig.from_mapping({"rescale_intensity.low": 1})),
        feature_version(PreprocessConfig(grey_bins=21)),
        feature_version(PreprocessConfig(steps=default_steps()[:2])),
        feature_version(base, schema=999),
    }
    assert len(versions) == 6
    assert all(len(v) == 12 and int(v, 16) >= 0 for v in versions)


def test_feature_version_ignores_how_numbers_are_spelled() -> None:
    as_ints = PreprocessConfig.from_mapping({"rescale_intensity.low": 2, "lbp_radius": 1,
                                             "hog_shape": [128, 80]})
    assert feature_version(as_ints) == feature_version(PreprocessConfig())


def test_preprocess_refuses_a_config_that_is_not_a_preprocess_config() -> None:
    with pytest.raises(ValueError, match="config"):
        preprocess(np.zeros((16, 16)), {"steps": []})  # type: ignore[arg-type]


@pytest.mark.parametrize("image, match", [
    (np.zeros((15, 40)), "at least 16x16"),
    (np.zeros((20, 20, 4)), r"\(H, W\) or \(H, W, 3\)"),
    (np.full((20, 20), 1.5), r"float images must lie in \[0, 1\]"),
    (np.full((20, 20), np.nan), "NaN"),
    ([[0.0] * 20] * 20, "numpy array"),
])
def test_bad_images_raise_value_error_naming_the_image(image: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        preprocess(image, PreprocessConfig())  # type: ignore[arg-type]
