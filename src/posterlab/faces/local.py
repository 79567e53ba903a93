"""The in-process detector: YuNet (libfacedetection, through ``yuface``) on decoded bytes.

:func:`detect_faces` is pure array code; :class:`LocalDetector` adds decoding and the
provider contract. The defaults (2x upscale, confidence 0.85, NMS at IoU 0.3, faces turned
towards the viewer: eye distance at least 0.3 of the box width) were chosen with
``benchmarks/faces_quality.py`` on general grounds, not per poster; its docstring lists
every variant measured. On the shared data they give precision/recall 1.00/1.00 on
face_boxes and, against face_reference, exact 0.67, within-one 0.91, Spearman 0.78
(raw YuNet: 0.55/0.84/0.71) for ~17 ms of CPU per 182x268 poster.
"""

from __future__ import annotations

import math
import multiprocessing
import threading
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
import yuface
from PIL import Image
from threadpoolctl import ThreadpoolController

from posterlab.faces.base import Detection, FaceBox, iou
from posterlab.imaging.decode import DEFAULT_MAX_BYTES, decode_poster

# yuface warns, and YuNet degrades, above 960 px a side; larger inputs are scaled down.
YUNET_MAX_SIDE = 960
MODEL = "yunet-libfacedetection-v3"


@dataclass(frozen=True)
class LocalParams:
    """What changes the local detector's answer (all of it goes into ``cache_key``).

    upscale
        Scale factor applied before detection. Posters are 182x268 and YuNet misses the
        many faces smaller than ~20 px at that size; the scaled image is capped at
        ``max_side``.
    conf_threshold
        Minimum YuNet score in [0, 1].
    min_face
        Minimum face side as a fraction of the image's shorter side; tiny faces in
        crowds and on printed credits are not what a poster "shows".
    nms_iou
        Boxes overlapping a better one by more than this IoU are dropped (YuNet's own
        NMS leaves some doubles after upscaling). 1.0 switches it off.
    max_side
        Longest side of the image given to YuNet, at most 960.
    min_eye_ratio
        Minimum distance between the two eye landmarks as a fraction of the box width; 0
        switches it off. Eyes sit ~0.45 of YuNet's box width apart on a frontal face and
        the ratio shrinks with the cosine of the head's turn, so 0.3 drops faces turned
        more than ~45-50 degrees (near profiles), which face counts made with frontal
        detectors (such as the IMDB 5000 reference) do not include, and boxes whose
        landmarks collapsed.
    """

    upscale: float = 2.0
    conf_threshold: float = 0.85
    min_face: float = 0.0
    nms_iou: float = 0.3
    max_side: int = 640
    min_eye_ratio: float = 0.3

    def __post_init__(self) -> None:
        if not 0.0 < self.upscale <= 8.0:
            raise ValueError(f"upscale must be in (0, 8], got {self.upscale!r}")
        if not 0.0 <= self.conf_threshold <= 1.0:
            raise ValueError(f"conf_threshold must be in [0, 1], got {self.conf_threshold!r}")
        if not 0.0 <= self.min_face < 1.0:
            raise ValueError(f"min_face must be in [0, 1), got {self.min_face!r}")
        if not 0.0 < self.nms_iou <= 1.0:
            raise ValueError(f"nms_iou must be in (0, 1], got {self.nms_iou!r}")
        if not 32 <= self.max_side <= YUNET_MAX_SIDE:
            raise ValueError(f"max_side must be in [32, {YUNET_MAX_SIDE}], got {self.max_side!r}")
        if not 0.0 <= self.min_eye_ratio < 1.0:
            raise ValueError(f"min_eye_ratio must be in [0, 1), got {self.min_eye_ratio!r}")

    @property
    def cache_key(self) -> str:
        """``local:<model>:<parameters>``, stable across runs and processes."""
        return (
            f"local:{MODEL}:upscale={self.upscale:g},conf={self.conf_threshold:g},"
            f"min_face={self.min_face:g},nms={self.nms_iou:g},max_side={self.max_side},"
            f"eyes={self.min_eye_ratio:g}"
        )


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


def nms(boxes: list[FaceBox], *, iou_threshold: float) -> list[FaceBox]:
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


def eye_ratio(landmarks: list[int] | list[float], box_width: float) -> float:
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


def detect_faces(image: np.ndarray, params: LocalParams | None = None) -> tuple[FaceBox, ...]:
    """Find faces in an RGB image (float in [0, 1] or uint8), in its own pixel coordinates.

    Boxes are clipped to the image and sorted by area, largest first (as Azure does).
    YuNet keeps scores strictly above ``conf_threshold`` (in whole percent).

    >>> detect_faces(np.zeros((64, 48, 3)))
    ()
    """
    params = params or LocalParams()
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must have shape (H, W, 3), got {image.shape}")
    height, width = image.shape[:2]
    scale = min(params.upscale, params.max_side / max(height, width))
    bgr = to_bgr_uint8(image, scale=scale)
    scores, rects, landmarks = yuface.detect(bgr, conf=params.conf_threshold)
    min_side = params.min_face * min(height, width)
    boxes = []
    for score, (x, y, w, h), marks in zip(scores.tolist(), rects.tolist(), landmarks.tolist(),
                                          strict=True):
        left, top = max(0, round(x / scale)), max(0, round(y / scale))
        right = min(width, round((x + w) / scale))
        bottom = min(height, round((y + h) / scale))
        if right - left < 1 or bottom - top < 1 or max(w, h) / scale < min_side:
            continue
        if eye_ratio(marks, w) < params.min_eye_ratio:
            continue
        boxes.append(FaceBox(left, top, right - left, bottom - top, score / 100.0))
    if params.nms_iou < 1.0:
        boxes = nms(boxes, iou_threshold=params.nms_iou)
    return tuple(sorted(boxes, key=lambda b: -b.area))


class LocalDetector:
    """The ``local`` provider: decode the bytes, run :func:`detect_faces`; no API calls."""

    provider = "local"

    def __init__(self, params: LocalParams | None = None, *, max_pixels: int = 50_000_000,
                 max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        if max_pixels < 1 or max_bytes < 1:
            raise ValueError(f"max_pixels and max_bytes must be positive, got "
                             f"{max_pixels!r}, {max_bytes!r}")
        self.params = params or LocalParams()
        self.cache_key = self.params.cache_key
        self._max_pixels = max_pixels
        self._max_bytes = max_bytes
        # yuface does not document thread safety; the server calls from a thread pool
        self._lock = threading.Lock()
        # YuNet runs on OpenMP with a thread per core that spin-waits: next to other busy
        # processes (every Celery worker) that made it 5-7x slower here. One thread per
        # call; parallelism comes from processes.
        self._threads = ThreadpoolController().select(user_api="openmp")

    def __repr__(self) -> str:
        return f"LocalDetector({self.params!r})"

    def detect(self, data: bytes) -> Detection:
        """Decode ``data`` and find its faces; ``ImageError`` if it is not a usable image."""
        decoded = decode_poster(data, need=self._need, max_pixels=self._max_pixels,
                                max_bytes=self._max_bytes)
        with self._lock, self._threads.limit(limits=1):
            faces = detect_faces(decoded.rgb, self.params)
        scale = decoded.width / decoded.rgb.shape[1]
        if scale != 1.0:  # reduced while decoding: boxes in the stored image's pixels
            faces = tuple(FaceBox(round(f.left * scale), round(f.top * scale),
                                  round(f.width * scale), round(f.height * scale), f.score)
                          for f in faces)
        return Detection(faces=faces)

    def _need(self, size: tuple[int, int]) -> tuple[int, int]:
        """The longest side YuNet is given: a larger image is box-reduced while decoding,
        to no less than that (then scaled down to it, anti-aliased)."""
        side = self.params.max_side
        return (side, 1) if size[0] >= size[1] else (1, side)


DETECTIONS_PER_PROCESS = 500  # the yuface binding keeps ~36 KB per call (measured)

_process_detector: LocalDetector | None = None


def _child_detector(params: LocalParams, max_pixels: int) -> LocalDetector:
    global _process_detector  # one detector per child process, reused until it retires
    if _process_detector is None:
        _process_detector = LocalDetector(params, max_pixels=max_pixels)
    return _process_detector


def _detect_in_child(params: LocalParams, max_pixels: int, data: bytes) -> Detection:
    return _child_detector(params, max_pixels).detect(data)


def _warm_child(params: LocalParams, max_pixels: int) -> None:
    _child_detector(params, max_pixels)


class RecycledDetector:
    """:class:`LocalDetector` in a child process replaced every ``per_process`` calls.

    For long-lived processes (the face API service): the YuNet binding never frees ~36 KB
    per detection, so one process would grow by ~36 MB per 1,000 images. The child is
    started on the first call, not at construction.
    """

    provider = "local"

    def __init__(self, params: LocalParams | None = None, *, max_pixels: int = 50_000_000,
                 per_process: int = DETECTIONS_PER_PROCESS) -> None:
        if per_process < 1:
            raise ValueError(f"per_process must be positive, got {per_process!r}")
        self.params = params or LocalParams()
        self.cache_key = self.params.cache_key
        self._max_pixels = max_pixels
        self._per_process = per_process
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"RecycledDetector({self.params!r}, per_process={self._per_process})"

    def _executor(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    1, mp_context=multiprocessing.get_context("forkserver"),
                    max_tasks_per_child=self._per_process)
            return self._pool

    def warm(self) -> None:
        """Start the child and load the model now (a service calls this before serving)."""
        self._executor().submit(_warm_child, self.params, self._max_pixels).result()

    def detect(self, data: bytes) -> Detection:
        """Detect in the child; ``ImageError`` and the like come back as raised there."""
        return self._executor().submit(_detect_in_child, self.params, self._max_pixels,
                                       data).result()

    def close(self) -> None:
        """Stop the child process (a later call starts a new one)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
