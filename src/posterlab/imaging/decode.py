"""Decoding poster bytes into float RGB arrays, whatever image format arrives.

Every failure is an :class:`~posterlab.errors.ImageError` with a stable ``code`` (failures
are grouped by it) and a message a person can act on:

==================== =====================================================================
code                 meaning
==================== =====================================================================
image-empty          zero bytes
image-not-an-image   HTML, text, SVG or an unsupported format
image-truncated      starts like an image but the data stops early
image-too-large      more pixels than ``max_pixels``, or a decode needing more memory than
                     ``max_bytes`` (both read from the header, before decoding)
image-too-small      a side shorter than ``min_side``
image-unreadable     anything else the decoder refuses (corrupt data, exotic modes)
==================== =====================================================================

Decoding trusts Pillow for the formats below only: a restricted list keeps plugins that
shell out (EPS runs Ghostscript) or that nobody posts as a poster out of reach.
Colour profiles are not applied; values are taken as stored (posters are sRGB).

Pillow's warnings are silenced with ``warnings.catch_warnings``, which changes
process-wide state: call :func:`decode_image` from processes (Celery's prefork pool, the
embedded process pool), not from several threads of one process at once, if you rely on
warnings filters elsewhere.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError

from posterlab.errors import ImageError
from posterlab.imaging.budget import MIB, REDUCIBLE_AS, decode_cost, reduced_size, reduction_for

# MPO is how Pillow names the multi-picture JPEGs many phone cameras write.
RASTER_FORMATS = ("JPEG", "MPO", "PNG", "GIF", "BMP", "DIB", "WEBP", "TIFF", "PPM", "AVIF")

# Leading bytes of the formats above, to tell "truncated image" from "not an image".
_SIGNATURES = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)
_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")
_TRUNCATION_HINTS = ("truncated", "eof", "end of file", "not enough data", "premature")
DEFAULT_MAX_BYTES = 384 * MIB  # memory one decode may take (POSTERLAB_MAX_IMAGE_BYTES)
_DRAFTABLE = ("JPEG", "MPO")  # libjpeg scales by 1/2, 1/4, 1/8 while decoding
# EXIF orientation -> the transpose that turns the picture upright (ImageOps' table)
_UPRIGHT = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
            4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
            6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
            8: Image.Transpose.ROTATE_90}
# (width, height) of the stored image -> the smallest (width, height) the caller needs
Need = Callable[[tuple[int, int]], tuple[int, int]]


@dataclass(frozen=True, eq=False)
class Decoded:
    """A decoded image: its float RGB pixels, perhaps reduced, and its size as stored.

    Attributes
    ----------
    rgb : numpy.ndarray
        float64 (h, w, 3) in [0, 1], upright; smaller than the stored image when the
        caller said it needs less (see :func:`decode_poster`).
    width, height : int
        The upright size of the image as stored, whatever the reduction.
    """

    rgb: np.ndarray
    width: int
    height: int


def decode_image(data: bytes, *, max_pixels: int = 50_000_000, min_side: int = 16,
                 max_bytes: int = DEFAULT_MAX_BYTES) -> np.ndarray:
    """Decode image bytes to a float64 RGB array of shape (H, W, 3) in [0, 1].

    Accepts greyscale, grey + alpha, RGBA and transparent palettes (composited on white),
    palette, CMYK JPEG, 8- and 16-bit PNG, animated GIF/PNG (first frame), EXIF-rotated
    JPEG (turned upright), BMP, TIFF and WebP.

    Parameters
    ----------
    data : bytes
        The file's bytes (``bytes``, ``bytearray`` or ``memoryview``).
    max_pixels : int, optional
        Refuse images with more pixels than this, read from the header before any pixel
        is decoded (decompression bombs). Pillow's own ceiling (twice
        ``PIL.Image.MAX_IMAGE_PIXELS``, ~179 MP) applies on top of it.
    min_side : int, optional
        Refuse images whose width or height is smaller.
    max_bytes : int, optional
        Refuse images whose decode to float RGB would hold more memory than this (see
        :func:`~posterlab.imaging.budget.decode_cost`), read from the header first.

    Returns
    -------
    numpy.ndarray
        float64 array of shape (H, W, 3), values in [0, 1], upright.

    Raises
    ------
    ImageError
        With ``code`` one of image-empty, image-not-an-image, image-truncated,
        image-too-large, image-too-small, image-unreadable.
    ValueError
        If ``max_pixels`` or ``min_side`` is not a positive integer.

    Examples
    --------
    >>> import io
    >>> from PIL import Image
    >>> buf = io.BytesIO()
    >>> Image.new("L", (20, 16), 255).save(buf, "PNG")
    >>> decode_image(buf.getvalue()).shape
    (16, 20, 3)
    """
    return decode_poster(data, max_pixels=max_pixels, min_side=min_side,
                         max_bytes=max_bytes).rgb


def decode_poster(data: bytes, *, need: Need | None = None, max_pixels: int = 50_000_000,
                  min_side: int = 16, max_bytes: int = DEFAULT_MAX_BYTES) -> Decoded:
    """:func:`decode_image` for a caller that needs only ``need(size)`` pixels.

    The image is reduced by the largest whole factor that keeps it at least ``need``
    (JPEGs while decoding, in draft mode; other formats with ``Image.reduce`` before any
    conversion to float), and the memory budget ``max_bytes`` is charged for that
    reduced decode. A 7000x7000 PNG analysed at 128 rows takes ~100 MB, not 3 GB.

    Examples
    --------
    >>> buf = io.BytesIO()
    >>> Image.new("L", (2000, 3000), 128).save(buf, "PNG")
    >>> out = decode_poster(buf.getvalue(), need=lambda size: (200, 300))
    >>> out.rgb.shape, (out.width, out.height)
    ((300, 200, 3), (2000, 3000))
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ValueError(f"data must be bytes, got {type(data).__name__}")
    for name, value in (("max_pixels", max_pixels), ("min_side", min_side),
                        ("max_bytes", max_bytes)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    data = bytes(data)
    if not data:
        raise ImageError("the file is empty (0 bytes)", code="image-empty")
    # Pillow reports bombs, corrupt EXIF and odd chunks as warnings; this function is the
    # boundary that turns problems into ImageError, so none of them may leak out (and a
    # DecompressionBombWarning is moot: max_pixels is enforced below).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with _open(data) as im:
            _check_size(im.size, max_pixels=max_pixels, min_side=min_side)
            turn = _orientation(im)
            width, height = im.size
            factor = _plan(im, need, max_bytes)
            pixels = _to_rgb(_upright(_reduce(_load(im, data), factor), turn))
    if turn in (Image.Transpose.TRANSPOSE, Image.Transpose.TRANSVERSE,
                Image.Transpose.ROTATE_90, Image.Transpose.ROTATE_270):
        width, height = height, width
    return Decoded(pixels, width, height)


def _plan(im: Image.Image, need: Need | None, max_bytes: int) -> int:
    """Draft a JPEG down to what is needed, check the budget; the factor left to reduce."""
    wanted = im.size
    if need is not None:
        wanted = reduced_size(im.size, reduction_for(im.size, need(im.size)))
    if wanted != im.size and im.format in _DRAFTABLE:
        im.draft(im.mode, wanted)  # the decoder scales by 1/2, 1/4 or 1/8 (never below)
    factor = reduction_for(im.size, wanted)
    out = reduced_size(im.size, factor)
    progressive = im.format in _DRAFTABLE and bool(
        im.info.get("progressive") or im.info.get("progression"))
    cost = decode_cost(im.size, im.mode, reduced=out, transparency="transparency" in im.info,
                       progressive_jpeg=progressive)
    if cost > max_bytes:
        raise ImageError(
            f"decoding this {im.size[0]}x{im.size[1]} {im.mode} image would take about "
            f"{cost / MIB:,.0f} MiB of memory, more than the budget of {max_bytes / MIB:,.0f}"
            " MiB per image (POSTERLAB_MAX_IMAGE_BYTES); refused before decoding",
            code="image-too-large")
    return factor


def sniff_format(data: bytes) -> str | None:
    """The image format the leading bytes announce, or ``None``.

    posterlab's one format sniffer, in Pillow's upper-case names: decoding uses it to tell
    a truncated image from no image, the face API (:mod:`posterlab.faces.images`) to check
    a format against the ones Azure accepts.

    Parameters
    ----------
    data : bytes
        At least the first 12 bytes of a file.

    Returns
    -------
    str or None
        ``"JPEG"``, ``"PNG"``, ``"GIF"``, ``"BMP"``, ``"TIFF"``, ``"WEBP"`` or ``None``.

    Examples
    --------
    >>> sniff_format(b"GIF89a....")
    'GIF'
    >>> sniff_format(b"<html>") is None
    True
    """
    head = bytes(data[:12])
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    for signature, name in _SIGNATURES:
        if head.startswith(signature):
            return name
    return None


def _open(data: bytes) -> Image.Image:
    """Open lazily (header only) or raise the ImageError that explains why not."""
    Image.init()  # registers the plugins once; needed to filter RASTER_FORMATS
    formats = [name for name in RASTER_FORMATS if name in Image.OPEN]
    try:
        return Image.open(io.BytesIO(data), formats=formats)
    except Image.DecompressionBombError as exc:
        raise ImageError(f"image refused as a decompression bomb: {exc}",
                         code="image-too-large") from None
    except UnidentifiedImageError:
        announced = sniff_format(data)
        if announced is not None:
            raise ImageError(
                f"the data starts like a {announced} file but its header is incomplete or "
                f"corrupt ({len(data)} bytes)",
                code="image-truncated",
            ) from None
        raise ImageError(f"not an image: {_describe_non_image(data)}",
                         code="image-not-an-image") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise _decode_error(exc, data) from None


def _check_size(size: tuple[int, int], *, max_pixels: int, min_side: int) -> None:
    width, height = size
    if width * height > max_pixels:
        raise ImageError(
            f"image is {width}x{height} = {width * height:,} pixels, more than the limit of "
            f"{max_pixels:,} (POSTERLAB_MAX_PIXELS); refused before decoding",
            code="image-too-large",
        )
    if min(width, height) < min_side:
        raise ImageError(
            f"image is {width}x{height} pixels; both sides must be at least {min_side}",
            code="image-too-small",
        )


def _load(im: Image.Image, data: bytes) -> Image.Image:
    """Decode the first frame."""
    try:
        im.seek(0)
        im.load()
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise _decode_error(exc, data) from None
    except Image.DecompressionBombError as exc:  # a later frame or tile claiming more
        raise ImageError(str(exc), code="image-too-large") from None
    return im


def _reduce(im: Image.Image, factor: int) -> Image.Image:
    """Box-average by a whole ``factor``, converting first the modes reduce cannot take."""
    if factor == 1:
        return im
    mode = REDUCIBLE_AS.get(im.mode)
    if mode == "RGBA" and "transparency" not in im.info:
        mode = "RGB"
    try:
        return (im.convert(mode) if mode else im).reduce(factor)
    except (OSError, ValueError) as exc:
        raise ImageError(f"cannot reduce a {im.mode!r} image: {exc}",
                         code="image-unreadable") from None


def _orientation(im: Image.Image) -> Image.Transpose | None:
    """The transpose the EXIF orientation asks for; None when upright or unreadable."""
    try:
        return _UPRIGHT.get(int(im.getexif().get(0x0112, 1)))
    except Exception:  # noqa: BLE001 - a broken EXIF block must not cost the picture
        return None


def _upright(im: Image.Image, turn: Image.Transpose | None) -> Image.Image:
    return im if turn is None else im.transpose(turn)


def _to_rgb(im: Image.Image) -> np.ndarray:
    """Pillow image of any mode -> float64 RGB in [0, 1], transparency over white."""
    if im.mode in _SIXTEEN_BIT_MODES:
        # convert("RGB") would clip 16-bit values at 255 and turn the picture white.
        grey = np.clip(np.asarray(im, dtype=np.float64), 0.0, 65535.0) / 65535.0
        return np.repeat(grey[:, :, np.newaxis], 3, axis=2)
    if im.mode == "F":
        grey = np.clip(np.nan_to_num(np.asarray(im, dtype=np.float64)), 0.0, 1.0)
        return np.repeat(grey[:, :, np.newaxis], 3, axis=2)
    try:
        if "A" in im.getbands() or "a" in im.getbands() or "transparency" in im.info:
            rgba = np.asarray(im.convert("RGBA"), dtype=np.float64) / 255.0
            alpha = rgba[:, :, 3:]
            return rgba[:, :, :3] * alpha + (1.0 - alpha)
        return np.asarray(im.convert("RGB"), dtype=np.float64) / 255.0
    except (OSError, ValueError) as exc:
        raise ImageError(f"cannot convert a {im.mode!r} image to RGB: {exc}",
                         code="image-unreadable") from None


def _decode_error(exc: BaseException, data: bytes) -> ImageError:
    message = str(exc) or type(exc).__name__
    announced = sniff_format(data) or "image"
    lowered = message.lower()
    if isinstance(exc, EOFError) or any(hint in lowered for hint in _TRUNCATION_HINTS):
        return ImageError(
            f"the {announced} data stops early ({len(data)} bytes): {message}",
            code="image-truncated",
        )
    return ImageError(f"the {announced} data cannot be decoded: {message}",
                      code="image-unreadable")


def _describe_non_image(data: bytes) -> str:
    """A short guess at what the bytes are, for the error message."""
    head = data[:512].lstrip().lower()
    if head.startswith((b"<svg", b"<?xml")) and b"<svg" in data[:4096].lower():
        return "an SVG drawing (vector images are not supported; export it as PNG)"
    if head.startswith((b"<!doctype html", b"<html", b"<head", b"<body")):
        return "an HTML page (a URL that answers with a web page instead of the picture?)"
    if head.startswith(b"<"):
        return "XML or HTML markup"
    try:
        text = data[:512].decode("utf-8")
    except UnicodeDecodeError:
        return (f"unknown or unsupported format (supported: "
                f"{', '.join(RASTER_FORMATS)}); starts with {data[:8]!r}")
    if all(ch.isprintable() or ch.isspace() for ch in text):
        return f"plain text starting with {text[:40]!r}"
    return f"unknown binary format starting with {data[:8]!r}"
