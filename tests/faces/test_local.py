"""The local detector: pure array code on tiny synthetic inputs, then real posters."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from posterlab.errors import ImageError
from posterlab.faces.base import Detection, FaceBox, FaceDetector, iou
from posterlab.faces.local import (
    LocalDetector,
    LocalParams,
    detect_faces,
    eye_ratio,
    nms,
    to_bgr_uint8,
)


def test_to_bgr_uint8_swaps_channels_and_scales_both_sides() -> None:
    rgb = np.zeros((10, 20, 3))
    rgb[..., 0] = 1.0
    out = to_bgr_uint8(rgb, scale=2.0)
    assert out.shape == (20, 40, 3) and out.dtype == np.uint8 and out.flags.c_contiguous
    assert tuple(out[5, 5]) == (0, 0, 255)


def test_to_bgr_uint8_names_a_wrong_shape() -> None:
    with pytest.raises(ValueError, match="image"):
        to_bgr_uint8(np.zeros((10, 10)))


def test_a_blank_image_has_no_faces() -> None:
    assert detect_faces(np.full((268, 182, 3), 0.5)) == ()


def test_nms_keeps_the_best_of_overlapping_boxes_and_disjoint_ones() -> None:
    best, double, other = FaceBox(0, 0, 10, 10, 0.9), FaceBox(1, 0, 10, 10, 0.8), \
        FaceBox(50, 50, 10, 10, 0.5)
    assert nms([double, other, best], iou_threshold=0.3) == [best, other]


def test_the_eye_ratio_is_eye_distance_over_box_width() -> None:
    frontal = [30, 40, 75, 40, 52, 60, 35, 80, 70, 80]  # eyes 45 px apart, level
    tilted = [30, 40, 66, 67, 40, 70, 25, 85, 50, 100]  # eyes 45 px apart, rolled 37 deg
    assert eye_ratio(frontal, 100) == pytest.approx(0.45)
    assert eye_ratio(tilted, 100) == pytest.approx(0.45)  # roll does not count, only turn
    assert eye_ratio(frontal, 200) == pytest.approx(0.225)
    assert eye_ratio(frontal, 0) == 0.0


def test_the_docstring_examples_hold() -> None:
    import doctest

    import posterlab.faces.local as local

    result = doctest.testmod(local, extraglobs={"np": np})
    assert result.attempted > 0 and result.failed == 0


def test_iou_of_identical_and_disjoint_boxes() -> None:
    box = FaceBox(3, 4, 10, 12)
    assert iou(box, box) == 1.0
    assert iou(box, FaceBox(100, 100, 5, 5)) == 0.0


@pytest.mark.parametrize(("field", "value"), [
    ("upscale", 0.0), ("conf_threshold", 1.5), ("min_face", -0.1), ("nms_iou", 0.0),
    ("max_side", 2000), ("min_eye_ratio", -0.1), ("min_eye_ratio", 1.0),
])
def test_invalid_parameters_are_named(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=field):
        LocalParams(**{field: value})


def test_the_cache_key_is_stable_and_changes_with_every_parameter() -> None:
    assert LocalDetector().cache_key == LocalDetector().cache_key
    keys = {LocalParams(**change).cache_key for change in
            ({}, {"upscale": 1.0}, {"conf_threshold": 0.6}, {"min_face": 0.1},
             {"nms_iou": 0.5}, {"max_side": 480}, {"min_eye_ratio": 0.0})}
    assert len(keys) == 7
    assert all(k.startswith("local:yunet") for k in keys)


def test_the_local_detector_is_a_face_detector_that_costs_no_calls(noise_png) -> None:
    detector = LocalDetector()
    assert isinstance(detector, FaceDetector)
    assert detector.detect(noise_png) == Detection(faces=())


def test_bytes_that_are_no_image_raise_image_error() -> None:
    with pytest.raises(ImageError):
        LocalDetector().detect(b"definitely not a poster")


def test_three_faces_are_found_on_a_poster_showing_three(poster_bytes) -> None:
    detection = LocalDetector().detect(poster_bytes)
    assert detection.count == 3
    for face in detection.faces:
        assert face.left >= 0 and face.left + face.width <= 182
        assert face.top >= 0 and face.top + face.height <= 268
        assert face.score is not None and face.score >= 0.85
    assert [f.area for f in detection.faces] == sorted((f.area for f in detection.faces),
                                                       reverse=True)


def test_hand_drawn_faces_are_found_at_iou_one_half(face_data: Path) -> None:
    folder = face_data / "face_boxes"
    with (folder / "face_boxes.csv").open(newline="") as f:
        truth = [row for row in csv.DictReader(f) if row["image"] == "2007_007763.jpg"]
    found = LocalDetector().detect((folder / "2007_007763.jpg").read_bytes()).faces
    boxes = [FaceBox(int(r["left"]), int(r["top"]), int(r["width"]), int(r["height"]))
             for r in truth]
    hits = sum(any(iou(b, f) >= 0.5 for f in found) for b in boxes)
    assert hits == len(boxes) == len(found)


@pytest.mark.parametrize("poster", [
    "88727.jpg",  # Anne of Green Gables (1985): one girl in profile
    "2752688.jpg",  # Rosewater (2014): one small face in profile
])
def test_faces_in_profile_are_not_counted_unless_asked(face_data: Path, poster: str) -> None:
    data = (face_data / "face_reference" / "posters" / poster).read_bytes()
    assert LocalDetector().detect(data).count == 0
    everything = LocalDetector(LocalParams(min_eye_ratio=0.0)).detect(data)
    assert everything.count == 1
