"""Argument checks shared by the imaging functions: each raises ValueError naming the parameter."""

from __future__ import annotations

import numpy as np

MIN_SIDE = 16  # the smallest image the features are defined for (same as decode_image)


def float_image(image: object, name: str = "image") -> np.ndarray:
    """Any numeric grey (H, W) or RGB (H, W, 3) array -> float64 in [0, 1], same shape.

    Integer dtypes are scaled by their maximum (uint8 by 255, uint16 by 65535), as
    ``skimage.util.img_as_float`` does; booleans map to {0, 1}; floats must already lie
    in [0, 1].
    """
    if not isinstance(image, np.ndarray):
        raise ValueError(f"{name} must be a numpy array, got {type(image).__name__}")
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3):
        raise ValueError(f"{name} must have shape (H, W) or (H, W, 3), got {image.shape}")
    if min(image.shape[:2]) < MIN_SIDE:
        raise ValueError(f"{name} must be at least {MIN_SIDE}x{MIN_SIDE}, got {image.shape[:2]}")
    if image.dtype == np.bool_:
        return image.astype(np.float64)
    if np.issubdtype(image.dtype, np.unsignedinteger):
        return image.astype(np.float64) / np.iinfo(image.dtype).max
    if np.issubdtype(image.dtype, np.signedinteger):
        # skimage's convention: negative values are clipped, the positive range is kept.
        return np.clip(image.astype(np.float64), 0, None) / np.iinfo(image.dtype).max
    if not np.issubdtype(image.dtype, np.floating):
        raise ValueError(f"{name} must have a numeric dtype, got {image.dtype}")
    out = image.astype(np.float64)
    if not np.isfinite(out).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    if out.size and (out.min() < 0.0 or out.max() > 1.0):
        raise ValueError(
            f"{name} is a float array with values in [{out.min():g}, {out.max():g}]; "
            "float images must lie in [0, 1]"
        )
    return out


def float_rgb(image: object, name: str = "image") -> np.ndarray:
    """Like :func:`float_image` but the result is always (H, W, 3); grey is repeated."""
    out = float_image(image, name)
    if out.ndim == 2:
        out = np.repeat(out[:, :, np.newaxis], 3, axis=2)
    return out


def float_grey(image: object, name: str = "image") -> np.ndarray:
    """A 2-D float image in [0, 1]; RGB is refused (say which grey you mean first)."""
    out = float_image(image, name)
    if out.ndim != 2:
        raise ValueError(f"{name} must be a 2-D grey image, got shape {out.shape}")
    return out


def positive_int(value: object, name: str, *, minimum: int = 1) -> int:
    """``value`` as an int >= ``minimum``; floats with an integral value are accepted."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def positive_float(value: object, name: str, *, allow_zero: bool = False) -> float:
    """``value`` as a finite float > 0 (or >= 0 with ``allow_zero``)."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        raise ValueError(f"{name} must be a number, got {value!r}")
    number = float(value)
    if not np.isfinite(number) or number < 0 or (number == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")
    return number


def to_ubyte(image: np.ndarray) -> np.ndarray:
    """float [0, 1] -> uint8 by rounding (what rank filters and LBP need)."""
    return np.rint(image * 255.0).astype(np.uint8)
