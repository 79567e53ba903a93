"""Feature profiles: what each computes, and that each has its own feature version."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from posterlab.features_schema import PROFILE_FEATURES, PROFILES, SCALAR_FEATURES
from posterlab.imaging import PreprocessConfig, extract_features
from posterlab.imaging.preprocess import FEATURES_SCHEMA, feature_version


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return np.random.default_rng(3).random((268, 182, 3))


@pytest.mark.parametrize("profile", PROFILES)
def test_each_profile_computes_exactly_its_features(image: np.ndarray, profile: str) -> None:
    features = extract_features(image, PreprocessConfig(profile=profile))
    scalars, vectors = PROFILE_FEATURES[profile]
    assert tuple(features.scalars) == scalars
    assert tuple(features.vectors) == vectors


def test_the_course_profile_is_the_case_study_and_agrees_with_the_full_one(
        image: np.ndarray) -> None:
    course = extract_features(image, PreprocessConfig(profile="course"))
    full = extract_features(image, PreprocessConfig())
    assert set(course.scalars) == {f"mean_{c}" for c in "rgbhsv"}
    assert set(course.vectors) == {"grey_hist"} and course.vectors["grey_hist"].shape == (20,)
    for name, value in course.scalars.items():  # the same numbers, only fewer of them
        assert value == full.scalars[name]
    assert course.vectors["grey_hist"].tobytes() == full.vectors["grey_hist"].tobytes()
    standard = extract_features(image, PreprocessConfig(profile="standard"))
    assert "sift_keypoints" not in standard.scalars
    assert len(standard.scalars) == len(SCALAR_FEATURES) - 1


def test_every_profile_has_its_own_feature_version_and_full_keeps_the_old_one() -> None:
    versions = {p: feature_version(PreprocessConfig(profile=p)) for p in PROFILES}
    assert len(set(versions.values())) == len(PROFILES)
    # the default profile hashes as configs did before profiles existed: stored rows stay
    mapping = PreprocessConfig().to_mapping()
    del mapping["profile"]
    payload = json.dumps({"schema": FEATURES_SCHEMA, "config": mapping}, sort_keys=True,
                         separators=(",", ":"))
    assert versions["full"] == hashlib.sha256(payload.encode()).hexdigest()[:12]
    assert feature_version(PreprocessConfig.from_mapping({"profile": "course"})) == \
        versions["course"]


def test_an_unknown_profile_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ValueError, match="course, standard, full"):
        PreprocessConfig(profile="fast")
