"""YuNet on RGB arrays: passes at several scales, merged and thresholded (pure array code).

A detection is made in two steps, so that a parameter study needs one YuNet pass per scale
and poster, not one per parameter set:

1. :func:`yunet_pass` runs YuNet once at one scale and returns every candidate scoring at
   least the storage floor (``LocalParams.keep_from``), in the image's own pixels, with
   the eye distance its landmarks give;
2. :func:`merge` takes the passes of every scale in ``LocalParams.scales``, drops what the
   optional filters reject and applies greedy non-maximum suppression across scales.

The faces are the merged candidates scoring at least ``conf_threshold``
(:func:`faces_of`). Greedy NMS decides each box from the better-scored boxes only, so
thresholding after NMS gives exactly what thresholding before it would: the stored
candidates answer "how many faces at threshold t" for every t above the floor.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import NamedTuple

import numpy as np
import yuface
from PIL import Image

from posterlab.face_params import MODEL, YUNET_MAX_SIDE, LocalParams
from posterlab.faces.base import FaceBox, iou

__all__ = ["MODEL", "YUNET_MAX_SIDE", "Candidate", "LocalParams", "detect_candidates",
           "detect_faces", "eye_ratio", "faces_of", "merge", "nms", "to_bgr_uint8", "yunet_pass"]

class Candidate(NamedTuple):
    """One YuNet detection in the original image's pixels."""

    box: FaceBox  # with its score
    eyes: float  # eye distance / box width (see eye_ratio)


def to_bgr_uint8(image: np.ndarray, *, scale: float = 1.0) -> np.ndarray:
    """Resize an RGB image (float in [0, 1] or uint8) by ``scale``; C-contiguous BGR uint8.

    Pillow's bilinear filter widens its support when shrinking, so downscaling is
    anti-aliased; it is ~20x faster than ``skimage.transform.resize`` at these sizes.

    >>> to_bgr_uint8(np.ones((2, 3, 3)) * [1.0, 0.5, 0.0], scale=2.0)[0, 0]
    array([  0, 128, 255], dtype=uint8)
    """
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must have shape (H, W, 3), got {image.shape}")
    if not scale > 0:
        raise ValueError(f"scale must be positive, got {scale!r}")
    rgb = image if image.dtype == np.uint8 else (
        np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8))
    if scale != 1.0:
        size = (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale)))
        rgb = np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BILINEAR))
    return np.ascontiguousarray(rgb[:, :, ::-1])


def eye_ratio(landmarks: Sequence[float], box_width: float) -> float:
    """Distance between the eyes (YuNet's first two landmarks, ``x0 y0 x1 y1 ...``) / width.

    ~0.45 on a frontal face; it falls towards 0 as the head turns to a profile.

    >>> eye_ratio([30, 40, 75, 40, 52, 60, 35, 80, 70, 80], 100)
    0.45
    >>> round(eye_ratio([30, 40, 50, 40, 35, 60, 32, 80, 52, 80], 100), 2)
    0.2
    """
    if box_width <= 0:
        return 0.0
    return math.hypot(landmarks[2] - landmarks[0], landmarks[3] - landmarks[1]) / box_width


def yunet_pass(image: np.ndarray, scale: float, *, floor: float, max_side: int = YUNET_MAX_SIDE
               ) -> list[Candidate]:
    """One YuNet pass on an RGB image scaled by ``scale`` (capped at ``max_side``).

    Every candidate scoring at least ``floor``, clipped to the image, in its pixels.

    >>> yunet_pass(np.zeros((64, 48, 3)), 2.0, floor=0.3)
    []
    """
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must have shape (H, W, 3), got {image.shape}")
    height, width = image.shape[:2]
    factor = min(scale, max_side / max(height, width))
    scores, rects, landmarks = yuface.detect(to_bgr_uint8(image, scale=factor), conf=floor)
    found = []
    for score, (x, y, w, h), marks in zip(scores.tolist(), rects.tolist(), landmarks.tolist(),
                                          strict=True):
        left, top = max(0, round(x / factor)), max(0, round(y / factor))
        right = min(width, round((x + w) / factor))
        bottom = min(height, round((y + h) / factor))
        if right - left < 1 or bottom - top < 1 or score / 100.0 < floor:
            continue
        box = FaceBox(left, top, right - left, bottom - top, score / 100.0)
        found.append(Candidate(box, eye_ratio(marks, w)))
    return found


def nms(boxes: Iterable[FaceBox], *, iou_threshold: float) -> list[FaceBox]:
    """Greedy non-maximum suppression: best score first, drop boxes overlapping a kept one.

    >>> a, b = FaceBox(0, 0, 10, 10, 0.9), FaceBox(1, 1, 10, 10, 0.8)
    >>> nms([b, a], iou_threshold=0.3) == [a]
    True
    """
    kept: list[FaceBox] = []
    for box in sorted(boxes, key=lambda b: -(b.score or 0.0)):
        if all(iou(box, other) <= iou_threshold for other in kept):
            kept.append(box)
    return kept


def merge(passes: Sequence[Sequence[Candidate]], params: LocalParams, *,
          image_shape: tuple[int, ...]) -> tuple[FaceBox, ...]:
    """The candidates of every pass that the filters keep, after NMS across passes.

    Sorted best score first. ``image_shape`` is the original image's ``(H, W, ...)``.
    """
    min_side = params.min_face * min(image_shape[:2])
    boxes = [c.box for found in passes for c in found
             if (c.box.score or 0.0) >= params.keep_from
             and max(c.box.width, c.box.height) >= min_side and c.eyes >= params.min_eye_ratio]
    if params.nms_iou < 1.0:
        return tuple(nms(boxes, iou_threshold=params.nms_iou))
    return tuple(sorted(boxes, key=lambda b: -(b.score or 0.0)))


def faces_of(candidates: Iterable[FaceBox], conf_threshold: float) -> tuple[FaceBox, ...]:
    """The candidates scoring at least ``conf_threshold``, largest first (as Azure sorts).

    >>> [f.score for f in faces_of([FaceBox(0, 0, 9, 9, 0.5), FaceBox(0, 0, 5, 5, 0.7)], 0.6)]
    [0.7]
    """
    # scores are whole percents: a tolerance keeps 0.6 >= 0.6 true in floating point
    kept = [b for b in candidates if (b.score or 0.0) >= conf_threshold - 1e-9]
    return tuple(sorted(kept, key=lambda b: -b.area))


def detect_candidates(image: np.ndarray, params: LocalParams | None = None
                      ) -> tuple[FaceBox, ...]:
    """Every merged candidate of ``image`` scoring at least ``params.keep_from``."""
    params = params or LocalParams()
    passes = [yunet_pass(image, s, floor=params.keep_from, max_side=params.max_side)
              for s in params.scales]
    return merge(passes, params, image_shape=image.shape)


def detect_faces(image: np.ndarray, params: LocalParams | None = None) -> tuple[FaceBox, ...]:
    """The faces in an RGB image (float in [0, 1] or uint8), in its own pixels.

    Boxes are clipped to the image and sorted by area, largest first.

    >>> detect_faces(np.zeros((64, 48, 3)))
    ()
    """
    params = params or LocalParams()
    return faces_of(detect_candidates(image, params), params.conf_threshold)
