"""The preprocessing steps: their names, parameters, defaults and implementations.

A :class:`PreprocessStep` is a name and its full parameter set; :func:`run_step` applies one to an
image. :mod:`posterlab.imaging.preprocess` strings them into a pipeline.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np

from posterlab.imaging._validate import positive_float, positive_int, to_ubyte

# name -> parameter defaults; a parameter's type is its default's type.
STEP_DEFAULTS: Mapping[str, Mapping[str, Any]] = MappingProxyType({
    "resize": MappingProxyType({"height": 128}),
    "grey": MappingProxyType({}),
    "rescale_intensity": MappingProxyType({"low": 2.0, "high": 98.0}),
    "equalize_hist": MappingProxyType({"nbins": 256}),
    "median": MappingProxyType({"radius": 1}),
    "gaussian": MappingProxyType({"sigma": 1.0}),
})
RGB_STEPS = frozenset({"resize", "rescale_intensity", "gaussian"})  # allowed before grey


@dataclass(frozen=True)
class PreprocessStep:
    """One named preprocessing step with all its parameters (defaults filled in).

    Build it with :meth:`of`, which validates the parameters and normalises their types,
    so ``sigma=1`` and ``sigma=1.0`` are the same step with the same version hash.

    Examples
    --------
    >>> PreprocessStep.of("median", radius=2)
    PreprocessStep(name='median', params=(('radius', 2),))
    """

    name: str
    params: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def of(cls, name: str, **params: Any) -> PreprocessStep:
        """Validate ``params`` for step ``name`` and fill in the defaults."""
        if name not in STEP_DEFAULTS:
            raise ValueError(f"step {name!r} is unknown; use one of {', '.join(STEP_DEFAULTS)}")
        defaults = STEP_DEFAULTS[name]
        unknown = sorted(set(params) - set(defaults))
        if unknown:
            raise ValueError(f"step {name!r} has no parameter {', '.join(unknown)}; "
                             f"it takes {', '.join(defaults) or 'none'}")
        values: dict[str, Any] = {}
        for key, default in defaults.items():
            label = f"{name}.{key}"
            value = params.get(key, default)
            if isinstance(default, int):
                values[key] = positive_int(value, label, minimum=16 if key == "height" else 1)
            else:
                values[key] = positive_float(value, label, allow_zero=key == "low")
        if name == "rescale_intensity" and not values["low"] < values["high"] <= 100.0:
            raise ValueError("rescale_intensity.low and .high must satisfy "
                             f"0 <= low < high <= 100, got {values['low']}, {values['high']}")
        if name == "equalize_hist" and values["nbins"] < 2:
            raise ValueError(f"equalize_hist.nbins must be >= 2, got {values['nbins']}")
        return cls(name, tuple(values.items()))

    def param(self, key: str) -> Any:
        """The value of parameter ``key``.

        Examples
        --------
        >>> PreprocessStep.of("gaussian").param("sigma")
        1.0
        """
        params = dict(self.params)
        if key not in params:
            raise ValueError(f"step {self.name!r} has no parameter {key!r}")
        return params[key]


def default_steps() -> tuple[PreprocessStep, ...]:
    """The default pipeline: resize(height=128), grey, rescale_intensity(low=2, high=98).

    Examples
    --------
    >>> [step.name for step in default_steps()]
    ['resize', 'grey', 'rescale_intensity']
    """
    return (PreprocessStep.of("resize"), PreprocessStep.of("grey"),
            PreprocessStep.of("rescale_intensity"))


def canonical_size(shape: tuple[int, ...], height: int) -> tuple[int, int]:
    """(rows, cols) of the resize step for an image of ``shape``: aspect kept, clamped.

    Examples
    --------
    >>> canonical_size((268, 182), 128)
    (128, 87)
    """
    rows, cols = shape[0], shape[1]
    width = round(cols * height / rows)
    narrowest = max(16, math.ceil(height / 4))  # features need 16 columns
    return height, int(min(max(width, narrowest), 4 * height))


def _resize(image: np.ndarray, *, height: int) -> np.ndarray:
    size = canonical_size(image.shape, height)
    if size == image.shape[:2]:
        return image
    from skimage import transform  # here: reading a step list needs no scikit-image

    shrinking = size[0] < image.shape[0] or size[1] < image.shape[1]
    out = transform.resize(image, size + image.shape[2:], order=1, mode="edge",
                           anti_aliasing=shrinking, preserve_range=True)
    return np.clip(out, 0.0, 1.0)


def _rescale_intensity(image: np.ndarray, *, low: float, high: float) -> np.ndarray:
    from skimage import exposure

    lo, hi = np.percentile(image, (low, high))
    if hi <= lo:  # a flat image has no range to stretch
        return image
    return exposure.rescale_intensity(image, in_range=(lo, hi), out_range=(0.0, 1.0))


def _equalize_hist(image: np.ndarray, *, nbins: int) -> np.ndarray:
    from skimage import exposure

    if image.min() == image.max():  # equalising a flat image would invent a level
        return image
    return exposure.equalize_hist(image, nbins=nbins).astype(np.float64)


def _median(image: np.ndarray, *, radius: int) -> np.ndarray:
    from skimage import filters
    from skimage.morphology import disk

    # Rank filters work on integer images; 256 levels is what the course's uint8 uses.
    return filters.rank.median(to_ubyte(image), footprint=disk(radius)) / 255.0


def _gaussian(image: np.ndarray, *, sigma: float) -> np.ndarray:
    from skimage import filters

    axis = -1 if image.ndim == 3 else None
    return filters.gaussian(image, sigma=sigma, channel_axis=axis, preserve_range=True)


def run_step(image: np.ndarray, step: PreprocessStep) -> np.ndarray:
    """Apply one step (any but ``grey``, which :func:`preprocess` handles) to a float image.

    Examples
    --------
    >>> run_step(np.zeros((20, 30)), PreprocessStep.of("resize", height=40)).shape
    (40, 60)
    """
    if not isinstance(step, PreprocessStep) or step.name not in _STEP_FUNCTIONS:
        raise ValueError(f"step must be a PreprocessStep other than 'grey', got {step!r}")
    return _STEP_FUNCTIONS[step.name](image, **dict(step.params))


_STEP_FUNCTIONS: Mapping[str, Callable[..., np.ndarray]] = MappingProxyType({
    "resize": _resize,
    "rescale_intensity": _rescale_intensity,
    "equalize_hist": _equalize_hist,
    "median": _median,
    "gaussian": _gaussian,
})


def parse_steps(items: Any) -> tuple[PreprocessStep, ...]:
    if isinstance(items, str | bytes) or not isinstance(items, Iterable):
        raise ValueError(f"steps must be a list of steps, got {items!r}")
    steps = []
    for item in items:
        if isinstance(item, PreprocessStep):
            steps.append(PreprocessStep.of(item.name, **dict(item.params)))
        elif isinstance(item, str):
            steps.append(PreprocessStep.of(item))
        elif isinstance(item, Mapping) and isinstance(item.get("name"), str):
            params = {k: v for k, v in item.items() if k != "name"}
            steps.append(PreprocessStep.of(item["name"], **params))
        else:
            raise ValueError(f"steps: cannot read step {item!r}; write a name like 'grey' "
                             "or a mapping like {'name': 'median', 'radius': 2}")
    return tuple(steps)


def override_params(steps: tuple[PreprocessStep, ...],
                    dotted: Mapping[str, Any]) -> tuple[PreprocessStep, ...]:
    by_name: dict[str, dict[str, Any]] = {}
    for key, value in dotted.items():
        name, _, param = key.partition(".")
        if name not in [step.name for step in steps]:
            raise ValueError(f"setting {key!r} changes step {name!r}, which is not in the "
                             f"steps {[step.name for step in steps]}")
        by_name.setdefault(name, {})[param] = value
    return tuple(PreprocessStep.of(step.name, **{**dict(step.params), **by_name.get(step.name, {})})
                 for step in steps)

