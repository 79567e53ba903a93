"""Poster features: the scalar columns and the vectors stored for every poster.

Where each feature is measured (see :class:`~posterlab.imaging.preprocess.Canonical`):

* ``canonical.rgb`` (128 rows at the defaults): mean/std of R, G, B, H, S, V,
  colorfulness, per-channel histograms, dominant colours. Measuring at a fixed scale
  makes a 4000-pixel scan and its 182-pixel thumbnail agree.
* ``canonical.luma`` (Rec. 709 luminance, not enhanced): brightness (mean), contrast
  (RMS, the standard deviation), entropy, the grey histogram, centre of brightness and
  the rule-of-thirds share.
* ``canonical.grey`` (after every preprocessing step): edge density, SIFT keypoints,
  LBP histogram, HOG.
* the decoded image itself: width, height, aspect.

At the default config the vectors hold 20 + 48 + 10 + 20 + 1008 = 1106 float32 values,
4,424 bytes per poster (the budget is 8 KB).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from posterlab.features_schema import PROFILE_FEATURES
from posterlab.imaging._validate import float_rgb
from posterlab.imaging.color import (
    channel_histograms,
    color_moments,
    colorfulness,
    dominant_colors,
    grey_histogram,
)
from posterlab.imaging.decode import DEFAULT_MAX_BYTES, decode_poster
from posterlab.imaging.preprocess import Canonical, PreprocessConfig, canonical_size, preprocess
from posterlab.imaging.texture import (
    centre_of_mass,
    edge_density,
    hog_length,
    hog_vector,
    lbp_histogram,
    shannon_entropy,
    sift_keypoint_count,
    thirds,
)

__all__ = ["FEATURE_GROUPS", "Features", "analyze_bytes", "extract_features", "vector_lengths"]

_Values = dict[str, float | np.ndarray]


@dataclass(frozen=True, eq=False)
class Features:
    """The features of one poster.

    Attributes
    ----------
    scalars : dict
        One finite Python float per scalar feature of the config's profile, in the order
        of :data:`~posterlab.features_schema.SCALAR_FEATURES` (every one of them for the
        default ``full`` profile).
    vectors : dict
        One 1-D float32 array per vector feature of the profile, in the order of
        :data:`~posterlab.features_schema.VECTOR_FEATURES`.

    Two Features are equal when every scalar and every vector is bit-identical.

    Examples
    --------
    >>> features = extract_features(np.zeros((16, 16, 3)))
    >>> features == extract_features(np.zeros((16, 16, 3))), features.scalars["width"]
    (True, 16.0)
    """

    scalars: dict[str, float]
    vectors: dict[str, np.ndarray]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Features):
            return NotImplemented
        return (self.scalars == other.scalars
                and self.vectors.keys() == other.vectors.keys()
                and all(self.vectors[k].dtype == other.vectors[k].dtype
                        and self.vectors[k].tobytes() == other.vectors[k].tobytes()
                        for k in self.vectors))

    __hash__ = None  # type: ignore[assignment]  # holds arrays

    @property
    def nbytes(self) -> int:
        """Bytes the vectors take as float32.

        Examples
        --------
        >>> extract_features(np.zeros((32, 32, 3))).nbytes
        4424
        """
        return sum(int(v.nbytes) for v in self.vectors.values())


def vector_lengths(config: PreprocessConfig) -> dict[str, int]:
    """Length of every vector feature under ``config``.

    Examples
    --------
    >>> from posterlab.features_schema import VECTOR_FEATURES
    >>> vector_lengths(PreprocessConfig()) == VECTOR_FEATURES
    True
    """
    if not isinstance(config, PreprocessConfig):
        raise ValueError(f"config must be a PreprocessConfig, got {type(config).__name__}")
    return {
        "grey_hist": config.grey_bins,
        "rgb_hist": 3 * config.channel_bins,
        "lbp_hist": config.lbp_points + 2,
        "dominant_colors": 4 * config.dominant_k,
        "hog": hog_length(config.hog_shape, cell=config.hog_cell, block=config.hog_block,
                          orientations=config.hog_orientations),
    }


def _color(canon: Canonical, config: PreprocessConfig) -> _Values:
    rgb = canon.rgb
    return {
        **color_moments(rgb),
        "colorfulness": colorfulness(rgb),
        "rgb_hist": channel_histograms(rgb, config.channel_bins),
        "dominant_colors": dominant_colors(rgb, config.dominant_k, sample=config.dominant_sample,
                                           rng=np.random.default_rng(config.seed)).ravel(),
    }


def _tone(canon: Canonical, config: PreprocessConfig) -> _Values:
    luma = canon.luma
    centre_x, centre_y = centre_of_mass(luma)
    return {
        "brightness": float(luma.mean()),
        "contrast": float(luma.std()),
        "entropy": shannon_entropy(luma),
        "grey_hist": grey_histogram(luma, config.grey_bins),
        "centre_x": centre_x,
        "centre_y": centre_y,
        "thirds": thirds(luma),
    }


def _texture(canon: Canonical, config: PreprocessConfig) -> _Values:
    grey = canon.grey
    return {
        "edge_density": edge_density(grey, sigma=config.canny_sigma),
        "lbp_hist": lbp_histogram(grey, points=config.lbp_points, radius=config.lbp_radius),
        "hog": hog_vector(grey, shape=config.hog_shape, cell=config.hog_cell,
                          block=config.hog_block, orientations=config.hog_orientations),
    }


def _course(canon: Canonical, config: PreprocessConfig) -> _Values:
    """The ``course`` profile: mean R, G, B, H, S, V and the grey histogram, nothing more."""
    means = {name: value for name, value in color_moments(canon.rgb).items()
             if name.startswith("mean_")}
    return {**means, "grey_hist": grey_histogram(canon.luma, config.grey_bins)}


def _sift(canon: Canonical, config: PreprocessConfig) -> _Values:
    count = sift_keypoint_count(canon.grey, upsampling=config.sift_upsampling,
                                n_octaves=config.sift_octaves)
    return {"sift_keypoints": float(count)}


# The feature groups in the order extract_features runs them; public so that
# benchmarks/imaging.py can time each group with the very code the pipeline runs.
FEATURE_GROUPS: Mapping[str, Callable[[Canonical, PreprocessConfig], _Values]] = (
    MappingProxyType({"color": _color, "tone": _tone, "texture": _texture, "sift": _sift}))
# The groups each profile runs (a profile's features are PROFILE_FEATURES[profile]).
PROFILE_GROUPS: Mapping[str, tuple[Callable[[Canonical, PreprocessConfig], _Values], ...]] = (
    MappingProxyType({"course": (_course,), "standard": (_color, _tone, _texture),
                      "full": tuple(FEATURE_GROUPS.values())}))


def extract_features(image: np.ndarray, config: PreprocessConfig | None = None, *,
                     size: tuple[int, int] | None = None) -> Features:
    """Preprocess a decoded image and compute every scalar and vector feature.

    Parameters
    ----------
    image : numpy.ndarray
        (H, W, 3) or (H, W) image as :func:`~posterlab.imaging.decode.decode_image` returns
        it (float in [0, 1]; integer dtypes are scaled by their maximum), at least 16x16.
    config : PreprocessConfig, optional
        Steps and feature parameters; the defaults when ``None``.
    size : (width, height), optional
        The size of the image as stored, when ``image`` was reduced while decoding
        (the ``width``, ``height`` and ``aspect`` features); the array's own by default.

    Returns
    -------
    Features
        Deterministic: the same image and config give bit-identical features.

    Examples
    --------
    >>> features = extract_features(np.full((64, 48, 3), 0.5))
    >>> features.scalars["brightness"], features.scalars["aspect"]
    (0.5, 0.75)
    >>> features.vectors["hog"].shape, features.vectors["hog"].dtype
    ((1008,), dtype('float32'))
    """
    config = PreprocessConfig() if config is None else config
    if not isinstance(config, PreprocessConfig):
        raise ValueError(f"config must be a PreprocessConfig or None, got {type(config).__name__}")
    image = float_rgb(image)
    width, height = size or (image.shape[1], image.shape[0])
    canon = preprocess(image, config)
    values: _Values = {"width": float(width), "height": float(height),
                       "aspect": width / height}
    for group in PROFILE_GROUPS[config.profile]:
        values.update(group(canon, config))
    scalars, vectors = PROFILE_FEATURES[config.profile]
    lengths = vector_lengths(config)
    return _assemble(values, scalars, {name: lengths[name] for name in vectors})


def analyze_bytes(data: bytes, config: PreprocessConfig | None = None, *,
                  max_pixels: int = 50_000_000, max_bytes: int = DEFAULT_MAX_BYTES) -> Features:
    """Decode poster bytes and extract their features: the one call the pipeline makes.

    Parameters
    ----------
    data : bytes
        The image file.
    config : PreprocessConfig, optional
        Steps and feature parameters; the defaults when ``None``.
    max_pixels : int, optional
        Decompression-bomb limit, checked before decoding.
    max_bytes : int, optional
        Memory budget of the decode, checked before decoding. An image larger than the
        canonical form needs is reduced while decoding, to no less than twice the
        canonical size, and charged for that (see
        :func:`~posterlab.imaging.decode.decode_poster`).

    Returns
    -------
    Features

    Raises
    ------
    posterlab.errors.ImageError
        When the bytes cannot be analysed (see :func:`~posterlab.imaging.decode.decode_image`).

    Examples
    --------
    >>> import io
    >>> from PIL import Image
    >>> buf = io.BytesIO(); Image.new("RGB", (40, 60), "red").save(buf, "PNG")
    >>> analyze_bytes(buf.getvalue()).scalars["mean_r"]
    1.0
    """
    config = PreprocessConfig() if config is None else config
    decoded = decode_poster(data, need=decode_need(config), max_pixels=max_pixels,
                            max_bytes=max_bytes)
    return extract_features(decoded.rgb, config, size=(decoded.width, decoded.height))


def decode_need(config: PreprocessConfig) -> Callable[[tuple[int, int]], tuple[int, int]] | None:
    """What a decode for ``config`` must keep: twice the canonical size, when resizing is
    the first step (every later step then sees the same canonical image); else all."""
    first = config.steps[0] if config.steps else None
    if first is None or first.name != "resize":
        return None
    rows = int(first.param("height"))

    def need(size: tuple[int, int]) -> tuple[int, int]:
        height, width = canonical_size((size[1], size[0]), rows)
        return 2 * width, 2 * height

    return need


def _assemble(values: _Values, names: tuple[str, ...], lengths: Mapping[str, int]
              ) -> Features:
    scalars = {name: float(values[name]) for name in names}
    bad = [name for name, value in scalars.items() if not np.isfinite(value)]
    if bad:  # a bug, never a property of the input: every feature is defined for any image
        raise RuntimeError(f"features {bad} are not finite")
    vectors = {name: np.ascontiguousarray(values[name], dtype=np.float32)
               for name in lengths}
    wrong = {name: v.shape for name, v in vectors.items() if v.shape != (lengths[name],)}
    if wrong:
        raise RuntimeError(f"vector features {wrong} differ from their documented lengths")
    return Features(scalars=scalars, vectors=vectors)
