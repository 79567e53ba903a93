"""The local face detector's parameters: a leaf module (no model, no posterlab import), so
the settings can check them and the detector can use them without an import cycle."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

# yuface warns, and YuNet degrades, above 960 px a side; larger inputs are scaled down.
YUNET_MAX_SIDE = 960
MODEL = "yunet-libfacedetection-v3"


# Named overrides for POSTERLAB_FACE_PARAMS. ``accurate``: one 2.5x pass, chosen by the
# same cross-validation on people's counts within the pixels of one 2.5x pass instead of
# one 2x pass; about 1.6x the CPU of the default for Spearman 0.835 against 0.811 and
# within one 0.900 against 0.879 on held-out posters (BENCHMARKS.md, "Face counts").
PRESETS: dict[str, dict[str, Any]] = {"accurate": {"scales": [2.5]}}


@dataclass(frozen=True)
class LocalParams:
    """What changes the local detector's answer (all of it goes into ``cache_key``).

    scales
        Scale factors of the YuNet passes, merged by NMS. Posters are 182x268 and YuNet
        misses faces smaller than ~20 px at 1x; each scaled image is capped at
        ``max_side``. The cost grows with the pixels: one pass at 2x costs ~21 ms of CPU
        on a 182x268 poster, decoding included, one at 2.5x (the ``accurate`` preset)
        ~34 ms.
    conf_threshold
        Minimum YuNet score, in [0, 1], of a counted face.
    keep_from
        Score floor of the candidates kept with the answer (at most ``conf_threshold``):
        counts at any threshold above it can be made later without detecting again.
    nms_iou
        Greedy non-maximum suppression across scales: a box overlapping a better one by
        more than this IoU is dropped. 1.0 switches it off.
    max_side
        Longest side of the image given to YuNet, at most 960.
    min_face
        Minimum face side as a fraction of the image's shorter side; 0 keeps every size.
    min_eye_ratio
        Minimum eye distance as a fraction of the box width (~0.45 on a frontal face,
        falling towards 0 as the head turns to a profile); 0 switches it off. People
        count profiles, so the default keeps them.
    """

    scales: tuple[float, ...] = (2.0,)
    conf_threshold: float = 0.5
    keep_from: float = 0.3
    nms_iou: float = 0.3
    max_side: int = 960
    min_face: float = 0.0
    min_eye_ratio: float = 0.0

    def __post_init__(self) -> None:
        if not self.scales or not all(0.0 < s <= 8.0 for s in self.scales) \
                or len(set(self.scales)) != len(self.scales):
            raise ValueError(f"scales must be distinct factors in (0, 8], got {self.scales!r}")
        if not 0.0 <= self.conf_threshold <= 1.0:
            raise ValueError(f"conf_threshold must be in [0, 1], got {self.conf_threshold!r}")
        if not 0.0 <= self.keep_from <= self.conf_threshold:
            raise ValueError(f"keep_from must be in [0, conf_threshold], got {self.keep_from!r}")
        if not 0.0 < self.nms_iou <= 1.0:
            raise ValueError(f"nms_iou must be in (0, 1], got {self.nms_iou!r}")
        if not 32 <= self.max_side <= YUNET_MAX_SIDE:
            raise ValueError(f"max_side must be in [32, {YUNET_MAX_SIDE}], got {self.max_side!r}")
        if not 0.0 <= self.min_face < 1.0:
            raise ValueError(f"min_face must be in [0, 1), got {self.min_face!r}")
        if not 0.0 <= self.min_eye_ratio < 1.0:
            raise ValueError(f"min_eye_ratio must be in [0, 1), got {self.min_eye_ratio!r}")

    @property
    def cache_key(self) -> str:
        """``local:<model>:<parameters>``, stable across runs and processes."""
        scales = "+".join(f"{s:g}" for s in self.scales)
        return (
            f"local:{MODEL}:scales={scales},conf={self.conf_threshold:g},"
            f"keep={self.keep_from:g},nms={self.nms_iou:g},max_side={self.max_side},"
            f"min_face={self.min_face:g},eyes={self.min_eye_ratio:g}"
        )

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> LocalParams:
        """The defaults with the overrides of a JSON-like mapping (``scales`` as a list).

        >>> LocalParams.from_mapping({"scales": [2, 3], "conf_threshold": 0.7}).scales
        (2.0, 3.0)
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown face detector parameters {unknown}; choose from "
                             f"{', '.join(sorted(known))}")
        changes = dict(values)
        if "scales" in changes:
            scales = changes["scales"]
            if not isinstance(scales, (list, tuple)):
                raise ValueError(f"scales must be a list of numbers, got {scales!r}")
            changes["scales"] = tuple(float(s) for s in scales)
        return replace(cls(), **changes)
