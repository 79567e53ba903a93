"""The local detector: pure array code on tiny synthetic inputs, then real posters."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from posterlab.errors import ImageError
from posterlab.faces.base import FaceBox, FaceDetector, iou
from posterlab.faces.local import (
    LocalDetector,
    LocalParams,
    detect_faces,
    eye_ratio,
    nms,
    to_bgr_uint8,
)
from posterlab.faces.yunet import Candidate, detect_candidates, faces_of, merge
from posterlab.imaging.decode import decode_image

REPO = Path(__file__).resolve().parents[2]


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

    import posterlab.face_params as params
    import posterlab.faces.base as base
    import posterlab.faces.yunet as yunet

    for module in (yunet, params, base):
        result = doctest.testmod(module, extraglobs={"np": np})
        assert result.attempted > 0 and result.failed == 0, module.__name__


def test_iou_of_identical_and_disjoint_boxes() -> None:
    box = FaceBox(3, 4, 10, 12)
    assert iou(box, box) == 1.0
    assert iou(box, FaceBox(100, 100, 5, 5)) == 0.0


@pytest.mark.parametrize(("field", "value"), [
    ("scales", (0.0,)), ("scales", ()), ("scales", (2.0, 2.0)), ("conf_threshold", 1.5),
    ("keep_from", 0.9), ("keep_from", -0.1), ("min_face", -0.1), ("nms_iou", 0.0),
    ("max_side", 2000), ("min_eye_ratio", -0.1), ("min_eye_ratio", 1.0),
])
def test_invalid_parameters_are_named(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        LocalParams(**{field: value})  # type: ignore[arg-type]


def test_the_cache_key_is_stable_and_changes_with_every_parameter() -> None:
    assert LocalDetector().cache_key == LocalDetector().cache_key
    changes = ({}, {"scales": (2.5,)}, {"scales": (1.0, 2.5)}, {"conf_threshold": 0.6},
               {"keep_from": 0.2}, {"min_face": 0.1}, {"nms_iou": 0.5}, {"max_side": 480},
               {"min_eye_ratio": 0.3})
    keys = {LocalParams(**change).cache_key for change in changes}  # type: ignore[arg-type]
    assert len(keys) == len(changes)
    assert all(k.startswith("local:yunet") for k in keys)


def test_parameters_come_from_a_mapping_and_unknown_ones_are_named() -> None:
    params = LocalParams.from_mapping({"scales": [2, 3], "conf_threshold": 0.7})
    assert params == LocalParams(scales=(2.0, 3.0), conf_threshold=0.7)
    assert LocalParams.from_mapping({}) == LocalParams()
    with pytest.raises(ValueError, match="upscale"):
        LocalParams.from_mapping({"upscale": 2})
    with pytest.raises(ValueError, match="scales"):
        LocalParams.from_mapping({"scales": 2})


def test_the_local_detector_is_a_face_detector_that_costs_no_calls(noise_png) -> None:
    detector = LocalDetector()
    assert isinstance(detector, FaceDetector)
    found = detector.detect(noise_png)
    assert found.faces == () and found.usage.api_calls == 0 and found.prominent == 0


def test_merging_suppresses_doubles_across_scales_and_thresholding_commutes() -> None:
    at_2x = [Candidate(FaceBox(10, 10, 20, 20, 0.9), 0.45),
             Candidate(FaceBox(60, 60, 10, 10, 0.4), 0.45)]
    at_3x = [Candidate(FaceBox(11, 10, 20, 21, 0.7), 0.45),  # the same face again
             Candidate(FaceBox(100, 10, 12, 12, 0.6), 0.1)]  # a profile
    params = LocalParams(scales=(2.0, 3.0), conf_threshold=0.5)
    merged = merge([at_2x, at_3x], params, image_shape=(268, 182))
    assert [b.score for b in merged] == [0.9, 0.6, 0.4]
    assert [b.score for b in faces_of(merged, 0.5)] == [0.9, 0.6]
    frontal = LocalParams(scales=(2.0, 3.0), conf_threshold=0.5, min_eye_ratio=0.3)
    assert [b.score for b in merge([at_2x, at_3x], frontal, image_shape=(268, 182))] == [0.9, 0.4]


def test_bytes_that_are_no_image_raise_image_error() -> None:
    with pytest.raises(ImageError):
        LocalDetector().detect(b"definitely not a poster")


def test_three_faces_are_found_on_a_poster_showing_three(poster_bytes) -> None:
    detection = LocalDetector().detect(poster_bytes)
    assert detection.count == 3
    for face in detection.faces:
        assert face.left >= 0 and face.left + face.width <= 182
        assert face.top >= 0 and face.top + face.height <= 268
        assert face.score is not None and face.score >= LocalParams().conf_threshold
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
def test_faces_in_profile_are_counted_and_the_frontal_filter_drops_them(
        face_data: Path, poster: str) -> None:
    data = (face_data / "face_reference" / "posters" / poster).read_bytes()
    assert LocalDetector().detect(data).count == 1
    # the former default: one pass at 2x, score 0.85, eyes at least 0.3 of the box width
    frontal = LocalParams(scales=(2.0,), conf_threshold=0.85, min_eye_ratio=0.3)
    assert LocalDetector(frontal).detect(data).count == 0


def test_the_candidates_answer_for_every_threshold_above_the_floor(poster_bytes) -> None:
    rgb = decode_image(poster_bytes)
    candidates = detect_candidates(rgb)
    assert len(candidates) >= 3
    for conf in (0.3, 0.5, 0.7, 0.9):
        assert faces_of(candidates, conf) == detect_faces(rgb, LocalParams(conf_threshold=conf))


# Counted by two people, disagreements settled by a third look (benchmarks/data/
# faces_human.csv); the detector's counts at the default parameters, as measured.
PINNED = [  # imdb id, people's faces and prominent faces, detector's faces and prominent
    ("24453", 6, 5, 6, 5),  # Born Reckless / Pilgrimage double bill
    ("89748", 4, 0, 4, 0),  # When Father Was Away on Business: a family photo
    ("441674", 3, 3, 2, 2),  # one of the three faces is missed at 2x (found at 2.5x)
    ("12281", 4, 0, 3, 0),  # three of four small faces at the top of the stairs
    ("281870", 7, 3, 4, 3),  # La fuga: the small faces of the bottom strip are missed
    ("55256", 0, 0, 0, 0),  # One, Two, Three: a graphic drawing, no face counted
]


@pytest.mark.parametrize(("imdb_id", "faces", "prominent", "found", "found_prominent"), PINNED)
def test_counts_on_labelled_posters_are_pinned(face_data: Path, imdb_id: str, faces: int,
                                               prominent: int, found: int,
                                               found_prominent: int) -> None:
    with (REPO / "benchmarks" / "data" / "faces_human.csv").open(newline="") as f:
        people = {r["imdb_id"]: r for r in csv.DictReader(f)}[imdb_id]
    assert (int(people["faces"]), int(people["prominent"])) == (faces, prominent)
    data = (face_data / "posters" / "posters" / f"{imdb_id}.jpg").read_bytes()
    detection = LocalDetector().detect(data)
    assert (detection.count, detection.prominent) == (found, found_prominent)
    assert detection.image_height == 268
    assert detection.candidates is not None and len(detection.candidates) >= found
