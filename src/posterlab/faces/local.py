"""The in-process detector: YuNet (libfacedetection, through ``yuface``) on decoded bytes.

The array code is :mod:`posterlab.faces.yunet`; :class:`LocalDetector` adds decoding, one
OpenMP thread per call and the provider contract. The defaults (one pass at 2x, faces
scoring at least 0.5, every candidate from 0.3 kept with the answer, NMS at IoU 0.3, no
filter on the head's turn: people count profiles) were chosen by cross-validation against
240 posters counted by people (``benchmarks/faces_quality.py``; BENCHMARKS.md, "Face
counts", has the figures), within 25 ms of CPU per 182x268 poster. The ``accurate``
preset (:data:`posterlab.face_params.PRESETS`: one 2.5x pass, chosen the same way within
the pixels of one 2.5x pass) costs ~1.6x the CPU and counts a little closer to people.
"""

from __future__ import annotations

import multiprocessing
import threading
from concurrent.futures import ProcessPoolExecutor

from threadpoolctl import ThreadpoolController

from posterlab.face_params import MODEL, YUNET_MAX_SIDE, LocalParams
from posterlab.faces.base import Detection, FaceBox
from posterlab.faces.yunet import (
    detect_candidates,
    detect_faces,
    eye_ratio,
    faces_of,
    nms,
    to_bgr_uint8,
)
from posterlab.imaging.decode import DEFAULT_MAX_BYTES, decode_poster

__all__ = ["MODEL", "YUNET_MAX_SIDE", "LocalDetector", "LocalParams",
           "RecycledDetector", "detect_faces", "eye_ratio", "nms", "to_bgr_uint8"]


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
            candidates = detect_candidates(decoded.rgb, self.params)
        scale = decoded.width / decoded.rgb.shape[1]
        if scale != 1.0:  # reduced while decoding: boxes in the stored image's pixels
            candidates = tuple(FaceBox(round(f.left * scale), round(f.top * scale),
                                       round(f.width * scale), round(f.height * scale), f.score)
                               for f in candidates)
        return Detection(faces=faces_of(candidates, self.params.conf_threshold),
                         image_height=decoded.height, candidates=candidates)

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
