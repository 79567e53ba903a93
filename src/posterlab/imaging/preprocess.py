"""Preprocessing: a declared, ordered list of named steps that turns a decoded poster into
its canonical form, and the version hash that ties stored features to those steps.

The default pipeline is::

    resize(height=128) -> grey -> rescale_intensity(low=2, high=98)

* ``resize`` keeps the aspect ratio. 128 rows are enough for HOG, LBP, Canny and SIFT to
  see a poster's structure and keep decode + all features of a 182x268 poster near 15 ms (SIFT
  alone costs ~150 ms at full size). Aspects beyond 1:4 or 4:1 are clamped so the width
  stays within [max(16, height/4), 4*height].
* ``grey`` is the luminance of :func:`skimage.color.rgb2gray` (Rec. 709 weights
  0.2125, 0.7154, 0.0721). Steps before it work on RGB (resize, rescale_intensity,
  gaussian), steps after it on grey (any step but grey).
* ``rescale_intensity`` stretches the ``low``-``high`` percentile range to [0, 1]
  (contrast stretching with ``exposure.rescale_intensity`` and an input range), so
  texture features compare posters of different exposure.
* ``equalize_hist`` (``nbins``), ``median`` (``radius`` of a disk, ``filters.rank.median``
  on the uint8 image) and ``gaussian`` (``sigma``) are available but off by default.

:class:`PreprocessConfig` also carries the parameters of the features, because they too
decide what a stored number means; :func:`feature_version` hashes all of it together with
:data:`FEATURES_SCHEMA`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from posterlab.features_schema import DEFAULT_PROFILE, PROFILES
from posterlab.imaging._validate import float_rgb, positive_float, positive_int
from posterlab.imaging.steps import (
    RGB_STEPS,
    STEP_DEFAULTS,
    PreprocessStep,
    canonical_size,
    default_steps,
    override_params,
    parse_steps,
    run_step,
)

__all__ = [
    "FEATURES_SCHEMA", "LUMA_WEIGHTS", "STEP_DEFAULTS", "Canonical", "PreprocessConfig",
    "PreprocessStep", "canonical_size", "default_steps", "feature_version", "luminance",
    "preprocess",
]

# Bump whenever the feature code changes what it computes for the same config: stored
# rows then carry a different feature_version and are recomputed instead of mixed.
# 2: images over twice the canonical size are box-reduced while decoding (memory budget)
FEATURES_SCHEMA = 2
LUMA_WEIGHTS = (0.2125, 0.7154, 0.0721)  # skimage.color.rgb2gray, Rec. 709


@dataclass(frozen=True)
class PreprocessConfig:
    """Preprocessing steps and feature parameters; everything :func:`feature_version` hashes.

    Attributes
    ----------
    steps : tuple of PreprocessStep
        The ordered pipeline (see the module docstring); exactly one ``grey`` step.
    grey_bins : int
        Bins of the grey histogram; the 256 grey levels are grouped evenly (20).
    channel_bins : int
        Bins per channel of the R, G, B histograms (16, so 48 values).
    dominant_k : int
        Number of dominant colours found by k-means (5).
    dominant_sample : int
        Pixels sampled for fitting k-means (2000; shares are counted on every pixel).
    seed : int
        Seed of the k-means sampling and initialisation (0).
    lbp_points, lbp_radius : int, float
        Uniform LBP with P points on a circle of radius R (8, 1.0 -> P + 2 = 10 bins).
    hog_shape : tuple of int
        (rows, cols) the grey image is resampled to for HOG, whatever its aspect (128, 80):
        posters are 2:3, so this is a mild squeeze that gives every poster the same length.
    hog_cell, hog_block, hog_orientations : int
        HOG cells of 16x16 pixels, blocks of 2x2 cells, 9 orientations: 8x5 cells, 7x4
        blocks, 7*4*2*2*9 = 1008 values (L2-Hys).
    canny_sigma : float
        Gaussian sigma of the Canny detector behind ``edge_density`` (1.0).
    sift_upsampling, sift_octaves : int
        ``skimage.feature.SIFT(upsampling=1, n_octaves=3)``: no doubling of a 128-row image
        (the default doubling triples the cost and counts mostly JPEG noise).
    profile : str
        Which features to compute: ``course``, ``standard`` or ``full`` (the default; see
        :data:`~posterlab.features_schema.PROFILE_FEATURES`). Part of the feature version.

    Examples
    --------
    >>> PreprocessConfig().grey_bins
    20
    >>> PreprocessConfig.from_mapping({"resize.height": 160}).steps[0]
    PreprocessStep(name='resize', params=(('height', 160),))
    """

    steps: tuple[PreprocessStep, ...] = field(default_factory=default_steps)
    grey_bins: int = 20
    channel_bins: int = 16
    dominant_k: int = 5
    dominant_sample: int = 2000
    seed: int = 0
    lbp_points: int = 8
    lbp_radius: float = 1.0
    hog_shape: tuple[int, int] = (128, 80)
    hog_cell: int = 16
    hog_block: int = 2
    hog_orientations: int = 9
    canny_sigma: float = 1.0
    sift_upsampling: int = 1
    sift_octaves: int = 3
    profile: str = DEFAULT_PROFILE

    def __post_init__(self) -> None:
        steps = tuple(self.steps)
        if not all(isinstance(step, PreprocessStep) for step in steps):
            raise ValueError("steps must be PreprocessStep objects; "
                             "build them with PreprocessStep.of(name, ...)")
        names = [step.name for step in steps]
        if names.count("grey") != 1:
            raise ValueError(f"steps must contain exactly one 'grey' step, got {names}")
        before_grey = names[: names.index("grey")]
        wrong = [name for name in before_grey if name not in RGB_STEPS]
        if wrong:
            raise ValueError(f"steps {wrong} work on grey images only; put them after 'grey'")
        set_ = self._set
        set_("steps", steps)
        for name in ("grey_bins", "channel_bins", "dominant_k"):
            set_(name, positive_int(getattr(self, name), name, minimum=2))
        set_("dominant_sample", positive_int(self.dominant_sample, "dominant_sample"))
        set_("seed", positive_int(self.seed, "seed", minimum=0))
        set_("lbp_points", positive_int(self.lbp_points, "lbp_points", minimum=4))
        set_("lbp_radius", positive_float(self.lbp_radius, "lbp_radius"))
        for name in ("hog_cell", "hog_block", "hog_orientations", "sift_upsampling",
                     "sift_octaves"):
            set_(name, positive_int(getattr(self, name), name))
        if self.sift_upsampling not in (1, 2, 4):
            raise ValueError(f"sift_upsampling must be 1, 2 or 4, got {self.sift_upsampling}")
        set_("canny_sigma", positive_float(self.canny_sigma, "canny_sigma"))
        if self.profile not in PROFILES:
            raise ValueError(f"profile must be one of {', '.join(PROFILES)}, "
                             f"got {self.profile!r}")
        shape = tuple(self.hog_shape)
        if len(shape) != 2:
            raise ValueError(f"hog_shape must be (rows, cols), got {self.hog_shape!r}")
        shape = tuple(positive_int(side, "hog_shape", minimum=16) for side in shape)
        if min(shape) < self.hog_cell * self.hog_block:
            raise ValueError(f"hog_shape {shape} must hold at least one block of "
                             f"{self.hog_block}x{self.hog_block} cells of {self.hog_cell} px")
        set_("hog_shape", shape)

    def _set(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)  # normalising inside a frozen dataclass

    @classmethod
    def from_mapping(cls, overrides: Mapping[str, Any]) -> PreprocessConfig:
        """Build a config from a settings mapping; unknown keys raise ValueError naming them.

        Keys are field names, ``"steps"`` (a list whose items are a step name, a mapping
        ``{"name": ..., **params}`` or a :class:`PreprocessStep`), or ``"<step>.<param>"`` to change
        one parameter of a step in the list (``{"resize.height": 160}``).

        Examples
        --------
        >>> config = PreprocessConfig.from_mapping({"steps": ["grey", {"name": "median"}]})
        >>> [step.name for step in config.steps]
        ['grey', 'median']
        """
        if not isinstance(overrides, Mapping):
            raise ValueError(f"overrides must be a mapping, got {type(overrides).__name__}")
        fields = {f.name for f in dataclasses.fields(cls)}
        plain = {k: v for k, v in overrides.items() if k in fields and k != "steps"}
        dotted = {k: v for k, v in overrides.items() if isinstance(k, str) and "." in k}
        unknown = sorted(str(k) for k in overrides if k not in fields and k not in dotted)
        if unknown:
            raise ValueError(f"unknown preprocess setting(s) {', '.join(unknown)}; known: "
                             f"{', '.join(sorted(fields))} and '<step>.<param>'")
        steps = (parse_steps(overrides["steps"]) if "steps" in overrides
                 else default_steps())
        steps = override_params(steps, dotted)
        return cls(steps=steps, **plain)

    def to_mapping(self) -> dict[str, Any]:
        """A JSON-ready dict that :meth:`from_mapping` turns back into an equal config.

        Examples
        --------
        >>> PreprocessConfig().to_mapping()["steps"][0]
        {'name': 'resize', 'height': 128}
        """
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["steps"] = [{"name": step.name, **dict(step.params)} for step in self.steps]
        out["hog_shape"] = list(self.hog_shape)
        return out


@dataclass(frozen=True, eq=False)
class Canonical:
    """A poster in canonical form.

    Attributes
    ----------
    rgb : numpy.ndarray
        float64 (h, w, 3) in [0, 1]: the image as it enters the ``grey`` step (resized).
        Colour features are measured here.
    luma : numpy.ndarray
        float64 (h, w) in [0, 1]: the luminance of ``rgb``, not enhanced. Brightness,
        contrast, grey histogram, entropy and layout are measured here.
    grey : numpy.ndarray
        float64 in [0, 1]: after every step. Texture and shape features are measured here.

    Examples
    --------
    >>> canon = preprocess(np.ones((32, 16)), PreprocessConfig())
    >>> canon.rgb.shape, float(canon.luma.mean())
    ((128, 64, 3), 1.0)
    """

    rgb: np.ndarray
    luma: np.ndarray
    grey: np.ndarray


def feature_version(config: PreprocessConfig, *, schema: int = FEATURES_SCHEMA) -> str:
    """Twelve hex digits identifying the steps, their parameters and the feature code.

    Parameters
    ----------
    config : PreprocessConfig
        The configuration whose features are stored.
    schema : int, optional
        Version of the feature code, :data:`FEATURES_SCHEMA` by default.

    Returns
    -------
    str
        Stable across processes and machines: a sha256 of canonical JSON.

    Examples
    --------
    >>> v = feature_version(PreprocessConfig())
    >>> len(v), v == feature_version(PreprocessConfig.from_mapping({}))
    (12, True)
    """
    if not isinstance(config, PreprocessConfig):
        raise ValueError(f"config must be a PreprocessConfig, got {type(config).__name__}")
    mapping = config.to_mapping()
    if mapping["profile"] == DEFAULT_PROFILE:  # the versions of before profiles stay valid
        del mapping["profile"]
    payload = json.dumps({"schema": int(schema), "config": mapping},
                         sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def luminance(rgb: np.ndarray) -> np.ndarray:
    """Rec. 709 luminance of a float RGB image, as :func:`skimage.color.rgb2gray`.

    Parameters
    ----------
    rgb : numpy.ndarray
        (H, W, 3) float in [0, 1].

    Returns
    -------
    numpy.ndarray
        (H, W) float64 in [0, 1].

    Examples
    --------
    >>> float(luminance(np.ones((16, 16, 3)))[0, 0])
    1.0
    """
    return _luminance(float_rgb(rgb, "rgb"))


def _luminance(rgb: np.ndarray) -> np.ndarray:
    r, g, b = LUMA_WEIGHTS
    # Spelled out rather than `rgb @ weights`: exact, and identical in every process.
    return np.clip(rgb[:, :, 0] * r + rgb[:, :, 1] * g + rgb[:, :, 2] * b, 0.0, 1.0)


def preprocess(image: np.ndarray, config: PreprocessConfig) -> Canonical:
    """Run the configured steps over a decoded image.

    Parameters
    ----------
    image : numpy.ndarray
        (H, W, 3) or (H, W), uint8, uint16, bool or float in [0, 1] (what
        :func:`~posterlab.imaging.decode.decode_image` returns), at least 16x16.
    config : PreprocessConfig
        The steps to run.

    Returns
    -------
    Canonical
        The canonical RGB, its luminance and the preprocessed grey image.

    Examples
    --------
    >>> canon = preprocess(np.zeros((268, 182, 3)), PreprocessConfig())
    >>> canon.rgb.shape, canon.grey.shape
    ((128, 87, 3), (128, 87))
    """
    if not isinstance(config, PreprocessConfig):
        raise ValueError(f"config must be a PreprocessConfig, got {type(config).__name__}")
    current = float_rgb(image)
    rgb = luma = current
    for step in config.steps:
        if step.name == "grey":
            rgb = current
            current = luma = _luminance(current)
        else:
            current = run_step(current, step)
    return Canonical(rgb=rgb, luma=luma, grey=current)


