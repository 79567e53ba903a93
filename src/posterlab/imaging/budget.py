"""The memory a decode needs, counted from the header before any pixel is decoded.

A 14 KB PNG can hold 7000x7000 1-bit pixels: the file says nothing of the memory its
decode takes. What does is the header: width x height x the bytes Pillow keeps per pixel
of the mode, plus each conversion on the way to float RGB (a palette becomes RGBA, 16-bit
grey becomes 32-bit, the float64 array itself takes 24 bytes a pixel, 56 with alpha).

:func:`decode_cost` adds these up for a decode that may be reduced (JPEG draft mode
scales by 1/2, 1/4 or 1/8 while decoding; ``Image.reduce`` box-averages by a whole
factor right after, premultiplying alpha in a copy first), so that a caller that only
needs a small image (the features are measured at 128 rows, the face detector sees at
most 640 pixels a side) is charged for the small float array it gets, and a caller that
wants every pixel is charged for all.
"""

from __future__ import annotations

import math

# bytes Pillow keeps per pixel of each mode (its 24-bit modes are stored in 32 bits)
PIXEL_BYTES: dict[str, int] = {
    "1": 1, "L": 1, "P": 1, "I;16": 2, "I;16L": 2, "I;16B": 2, "I;16N": 2,
    "LA": 4, "La": 4, "PA": 4, "RGB": 4, "RGBA": 4, "RGBa": 4, "RGBX": 4, "CMYK": 4,
    "YCbCr": 4, "LAB": 4, "HSV": 4, "I": 4, "F": 4,
}
UNKNOWN_PIXEL_BYTES = 8  # a mode not listed: counted generously, Pillow refuses most anyway
# modes Image.reduce cannot take, and the mode each is converted to first
REDUCIBLE_AS: dict[str, str] = {"1": "L", "P": "RGBA", "I;16": "I", "I;16L": "I",
                                "I;16B": "I", "I;16N": "I"}
FLOAT_RGB_BYTES = 3 * 8  # the float64 RGB array decode returns
FLOAT_ALPHA_BYTES = 4 * 8 + 3 * 8  # float64 RGBA, then the RGB composited over white
DCT_COEFFICIENT_BYTES = 2  # a progressive JPEG keeps every coefficient until the end
MIB = 1024 * 1024


def pixel_bytes(mode: str) -> int:
    """Bytes Pillow holds per pixel of ``mode``."""
    return PIXEL_BYTES.get(mode, UNKNOWN_PIXEL_BYTES)


def has_alpha(mode: str, transparency: bool = False) -> bool:
    """Does a ``mode`` image go through RGBA (and its float RGBA array) on its way to RGB?"""
    return transparency or "A" in mode or "a" in mode


def decode_cost(size: tuple[int, int], mode: str, *, reduced: tuple[int, int] | None = None,
                transparency: bool = False, progressive_jpeg: bool = False) -> int:
    """Bytes that decoding a ``size`` image of ``mode`` to float RGB holds at its peak.

    Parameters
    ----------
    size : (width, height)
        As the decoder will produce it (after any JPEG draft scaling).
    mode : str
        Pillow's mode of the decoded image.
    reduced : (width, height), optional
        The size after ``Image.reduce`` (the float array's size); ``size`` when None.
    transparency : bool
        The image has a transparent colour (a palette with transparency, ``tRNS``).
    progressive_jpeg : bool
        A progressive JPEG: libjpeg keeps all DCT coefficients of the full image.

    Examples
    --------
    >>> decode_cost((100, 100), "RGB") == 100 * 100 * (4 + 24)
    True
    >>> decode_cost((7000, 7000), "1", reduced=(259, 259)) // MIB   # 1-bit, reduced by 27
    95
    """
    width, height = size
    out_w, out_h = reduced or size
    total = width * height * pixel_bytes(mode)
    if progressive_jpeg:
        total += width * height * 3 * DCT_COEFFICIENT_BYTES
    alpha = has_alpha(mode, transparency)
    if (out_w, out_h) != (width, height):
        if mode in REDUCIBLE_AS:  # converted at full size before reducing
            total += width * height * pixel_bytes(REDUCIBLE_AS[mode])
        if alpha:  # reduce premultiplies alpha into a full-size copy first
            total += width * height * 4
        total += out_w * out_h * 4
    elif mode not in ("RGB", "RGBA"):  # convert("RGB"/"RGBA") at full size
        total += width * height * 4
    per_pixel = FLOAT_ALPHA_BYTES if alpha else FLOAT_RGB_BYTES
    return total + out_w * out_h * per_pixel


def reduction_for(size: tuple[int, int], at_least: tuple[int, int]) -> int:
    """The largest whole factor that keeps a ``size`` image at least ``at_least``.

    >>> reduction_for((7000, 7000), (256, 256)), reduction_for((182, 268), (174, 256))
    (27, 1)
    """
    factor = min(size[0] // max(1, at_least[0]), size[1] // max(1, at_least[1]))
    return max(1, factor)


def reduced_size(size: tuple[int, int], factor: int) -> tuple[int, int]:
    """The size ``Image.reduce(factor)`` gives (it rounds up)."""
    return math.ceil(size[0] / factor), math.ceil(size[1] / factor)
