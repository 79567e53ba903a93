"""Decoding poster bytes into float RGB arrays (provisional; deepened by the imaging work)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from posterlab.errors import ImageError


def decode_image(data: bytes, *, max_pixels: int = 50_000_000, min_side: int = 16) -> np.ndarray:
    """Decode image bytes to a float64 RGB array of shape (H, W, 3) in [0, 1]."""
    if not data:
        raise ImageError("empty file (0 bytes)", code="image-empty")
    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.width * im.height > max_pixels:
                raise ImageError("too many pixels", code="image-too-large")
            rgb = np.asarray(im.convert("RGB"), dtype=np.float64) / 255.0
    except ImageError:
        raise
    except Exception as exc:
        raise ImageError(f"not a readable image: {exc}", code="image-unreadable") from None
    if min(rgb.shape[:2]) < min_side:
        raise ImageError("image too small", code="image-too-small")
    return rgb
