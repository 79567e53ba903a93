"""Which image bytes the Azure detect contract accepts: JPEG, PNG, GIF or BMP, 1 KB to 6 MB.

Shared by the client (check before paying for a call) and the server (answer like Azure).
"""

from __future__ import annotations

import io

from PIL import Image, UnidentifiedImageError

from posterlab.errors import FaceApiInputError, ImageError
from posterlab.imaging.decode import sniff_format

MIN_BYTES = 1024
MAX_BYTES = 6 * 1024 * 1024
ACCEPTED = ("JPEG", "PNG", "GIF", "BMP")  # as posterlab.imaging.decode.sniff_format names them


def accepted_format(data: bytes) -> str | None:
    """The format ``data`` starts like if the API accepts it (``"JPEG"``, ...), else ``None``.

    >>> accepted_format(b"\\x89PNG\\r\\n\\x1a\\n..."), accepted_format(b"RIFF....WEBP")
    ('PNG', None)
    """
    announced = sniff_format(data)
    return announced if announced in ACCEPTED else None


def size_problem(size: int) -> str | None:
    """Azure's message for a body of ``size`` bytes outside 1 KB..6 MB, else ``None``."""
    if size < MIN_BYTES:
        return f"Image size is too small ({size} bytes; at least {MIN_BYTES})."
    if size > MAX_BYTES:
        return f"Image size is too big ({size} bytes; at most {MAX_BYTES})."
    return None


def image_height(data: bytes) -> int | None:
    """The height in pixels of the image in ``data`` (its header only), or ``None``."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return int(image.size[1])
    except (UnidentifiedImageError, OSError, ValueError):
        return None


def api_ready_bytes(data: bytes) -> tuple[bytes, str]:
    """``data`` as the API will take it, with its content type.

    Accepted formats pass unchanged. Other images Pillow can read (WebP posters, TIFF)
    are re-encoded as PNG, losslessly, rather than paying for a call the API would
    refuse. Raise ``ImageError`` if ``data`` is no image, ``FaceApiInputError`` if its
    size is outside what the API accepts.
    """
    if accepted_format(data) is None:
        try:
            with Image.open(io.BytesIO(data)) as image:
                out = io.BytesIO()
                image.convert("RGB").save(out, format="PNG")
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            raise ImageError(f"not an image the face API can read: {exc}",
                             code="image-unreadable") from None
        data = out.getvalue()
    problem = size_problem(len(data))
    if problem:
        raise FaceApiInputError(f"not sent to the face API (InvalidImageSize): {problem}")
    return data, "application/octet-stream"
