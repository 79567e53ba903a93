"""decode_image: every kind of input the spec lists, made here with Pillow and numpy."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from posterlab.errors import ImageError
from posterlab.imaging.decode import decode_image, sniff_format


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def png_bytes(width: int, height: int, *, bit_depth: int = 8, colour_type: int = 2,
              rows: bytes | None = None) -> bytes:
    """A PNG written by hand: any header Pillow cannot or will not write for us."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(rows if rows is not None else b"\x00"))
            + chunk(b"IEND", b""))


def rgb_image(colour: tuple[int, int, int], size: tuple[int, int] = (24, 20)) -> Image.Image:
    return Image.new("RGB", size, colour)


def test_an_rgb_png_decodes_to_exact_float_values_in_0_1() -> None:
    out = decode_image(encode(rgb_image((255, 128, 0)), "PNG"))
    assert out.dtype == np.float64
    assert out.shape == (20, 24, 3)
    np.testing.assert_array_equal(out[0, 0], [1.0, 128 / 255, 0.0])


def test_a_greyscale_image_becomes_three_equal_channels() -> None:
    out = decode_image(encode(Image.new("L", (20, 20), 51), "PNG"))
    np.testing.assert_array_equal(out, np.full((20, 20, 3), 0.2))


def test_grey_with_alpha_is_composited_on_white() -> None:
    out = decode_image(encode(Image.new("LA", (20, 20), (0, 51)), "PNG"))
    np.testing.assert_allclose(out, 1 - 51 / 255)


def test_rgba_is_composited_on_white() -> None:
    image = Image.new("RGBA", (20, 20), (255, 0, 0, 255))
    image.paste((0, 0, 255, 0), (0, 0, 10, 20))  # left half fully transparent blue
    out = decode_image(encode(image, "PNG"))
    np.testing.assert_array_equal(out[:, :10], 1.0)
    np.testing.assert_array_equal(out[:, 10:], np.broadcast_to([1.0, 0.0, 0.0], (20, 10, 3)))


def test_a_palette_image_keeps_its_colours() -> None:
    image = Image.new("P", (20, 20), 1)
    image.putpalette([0, 0, 0, 10, 200, 30] + [0] * 762)
    out = decode_image(encode(image, "PNG"))
    np.testing.assert_array_equal(out[5, 5], np.array([10, 200, 30]) / 255)


def test_a_transparent_palette_gif_is_composited_on_white() -> None:
    image = Image.new("P", (20, 20), 0)
    image.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    image.paste(1, (0, 0, 20, 10))
    out = decode_image(encode(image, "GIF", transparency=1))
    np.testing.assert_array_equal(out[:10], 1.0)
    np.testing.assert_array_equal(out[10:, :, 0], 1.0)
    np.testing.assert_array_equal(out[10:, :, 1:], 0.0)


def test_a_cmyk_jpeg_becomes_rgb() -> None:
    image = Image.new("CMYK", (32, 32), (255, 0, 0, 0))  # pure cyan ink
    out = decode_image(encode(image, "JPEG", quality=95))
    np.testing.assert_allclose(out[16, 16], [0.0, 1.0, 1.0], atol=0.03)


def test_a_16_bit_grey_png_keeps_its_full_range() -> None:
    levels = np.linspace(0, 65535, 32 * 32).astype(np.uint16).reshape(32, 32)
    out = decode_image(encode(Image.fromarray(levels), "PNG"))
    np.testing.assert_allclose(out[:, :, 0], levels / 65535)
    assert 0.0 < out[0, 1, 0] < 0.01  # not clipped to white, as convert("RGB") would


def test_a_16_bit_rgb_png_decodes_to_its_colour() -> None:
    pixel = struct.pack(">HHH", 65535, 32768, 0)
    rows = b"".join(b"\x00" + pixel * 20 for _ in range(20))
    out = decode_image(png_bytes(20, 20, bit_depth=16, colour_type=2, rows=rows))
    np.testing.assert_allclose(out[3, 3], [1.0, 0.5, 0.0], atol=1 / 255)


def test_an_animated_gif_gives_its_first_frame() -> None:
    frames = [rgb_image((255, 0, 0)), rgb_image((0, 0, 255))]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)
    out = decode_image(data)
    np.testing.assert_allclose(out[5, 5], [1.0, 0.0, 0.0], atol=0.02)


def test_an_exif_rotated_jpeg_is_turned_upright() -> None:
    image = Image.new("RGB", (40, 20), (255, 0, 0))
    image.paste((0, 0, 255), (20, 0, 40, 20))  # stored: red left, blue right
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    out = decode_image(encode(image, "JPEG", quality=95, exif=exif.tobytes()))
    assert out.shape == (40, 20, 3)  # portrait once upright
    np.testing.assert_allclose(out[5, 10], [1.0, 0.0, 0.0], atol=0.05)  # left went to the top
    np.testing.assert_allclose(out[35, 10], [0.0, 0.0, 1.0], atol=0.05)


@pytest.mark.parametrize("fmt, options", [("BMP", {}), ("WEBP", {"lossless": True}),
                                          ("TIFF", {}), ("PNG", {})])
def test_lossless_formats_decode_exactly(fmt: str, options: dict[str, object]) -> None:
    out = decode_image(encode(rgb_image((10, 20, 30)), fmt, **options))
    np.testing.assert_array_equal(out[0, 0], np.array([10, 20, 30]) / 255)


def test_a_jpeg_decodes_close_to_its_colour() -> None:
    out = decode_image(encode(rgb_image((200, 100, 50)), "JPEG", quality=95))
    np.testing.assert_allclose(out.mean(axis=(0, 1)), np.array([200, 100, 50]) / 255, atol=0.02)


def test_empty_bytes_are_refused_as_empty() -> None:
    with pytest.raises(ImageError, match="empty") as caught:
        decode_image(b"")
    assert caught.value.code == "image-empty"


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "BMP"])
def test_an_image_cut_in_half_is_refused_as_truncated(fmt: str) -> None:
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    data = encode(Image.fromarray(noise), fmt)
    with pytest.raises(ImageError, match="stops early") as caught:
        decode_image(data[: len(data) // 2])
    assert caught.value.code == "image-truncated"


def test_an_image_cut_inside_its_header_is_refused_as_truncated() -> None:
    data = encode(rgb_image((0, 0, 0)), "PNG")
    with pytest.raises(ImageError) as caught:
        decode_image(data[:20])
    assert caught.value.code == "image-truncated"


@pytest.mark.parametrize("data, words", [
    (b"<!DOCTYPE html><html><body>Not found</body></html>", "HTML page"),
    (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"></svg>', "SVG"),
    (b"<svg width='10' height='10'></svg>", "SVG"),
    (b"imdbId,Title\n1,Toy Story\n", "plain text"),
    (bytes(range(256)) * 4, "unknown"),
])
def test_non_images_are_refused_and_the_message_says_what_they_are(data: bytes,
                                                                  words: str) -> None:
    with pytest.raises(ImageError, match=words) as caught:
        decode_image(data)
    assert caught.value.code == "image-not-an-image"


def test_too_many_pixels_are_refused_from_the_header_before_decoding() -> None:
    # The pixel data is garbage: only a check made before decoding can say "too large".
    data = png_bytes(3000, 2000, rows=b"garbage")
    with pytest.raises(ImageError, match="6,000,000 pixels") as caught:
        decode_image(data, max_pixels=5_000_000)
    assert caught.value.code == "image-too-large"


@pytest.mark.parametrize("width, height, code", [
    (9_500, 9_500, "image-truncated"),  # Pillow warns, then decodes the (missing) rows
    (20_000, 20_000, "image-too-large"),  # Pillow raises DecompressionBombError
])
def test_pillows_own_bomb_warning_and_error_never_escape(width: int, height: int,
                                                         code: str) -> None:
    # A limit above Pillow's lets its own checks run; warnings are errors in this suite,
    # so a DecompressionBombWarning escaping would fail here as an exception.
    with pytest.raises(ImageError) as caught:
        decode_image(png_bytes(width, height, colour_type=0), max_pixels=10**9,
                     max_bytes=2**40)  # the memory budget off: Pillow's checks alone
    assert caught.value.code == code


def test_the_default_limit_is_50_megapixels() -> None:
    with pytest.raises(ImageError) as caught:
        decode_image(png_bytes(10_000, 5_001))
    assert caught.value.code == "image-too-large"


@pytest.mark.parametrize("size", [(15, 40), (40, 15), (1, 1)])
def test_images_under_16_pixels_on_a_side_are_refused(size: tuple[int, int]) -> None:
    with pytest.raises(ImageError, match="at least 16") as caught:
        decode_image(encode(rgb_image((0, 0, 0), size), "PNG"))
    assert caught.value.code == "image-too-small"


def test_a_16_by_16_image_is_accepted() -> None:
    assert decode_image(encode(rgb_image((0, 0, 0), (16, 16)), "PNG")).shape == (16, 16, 3)


def test_a_corrupt_body_is_an_image_error_not_a_crash() -> None:
    data = png_bytes(32, 32, rows=b"\x00" * 10)  # too few rows: the stream ends early
    with pytest.raises(ImageError) as caught:
        decode_image(data)
    assert caught.value.code in {"image-truncated", "image-unreadable"}
    assert caught.value.reason.startswith(caught.value.code + ": ")


@pytest.mark.parametrize("kwargs, name", [({"max_pixels": 0}, "max_pixels"),
                                          ({"min_side": -1}, "min_side"),
                                          ({"min_side": True}, "min_side")])
def test_invalid_limits_raise_value_error_naming_them(kwargs: dict[str, int],
                                                      name: str) -> None:
    with pytest.raises(ValueError, match=name):
        decode_image(b"x", **kwargs)


def test_data_that_is_not_bytes_raises_value_error() -> None:
    with pytest.raises(ValueError, match="data must be bytes"):
        decode_image("a path.jpg")  # type: ignore[arg-type]


def test_bytearray_and_memoryview_are_accepted() -> None:
    data = encode(rgb_image((0, 0, 0)), "PNG")
    assert decode_image(bytearray(data)).shape == decode_image(memoryview(data)).shape


def test_sniff_format_recognises_signatures() -> None:
    assert sniff_format(encode(rgb_image((0, 0, 0)), "WEBP")) == "WEBP"
    assert sniff_format(b"\xff\xd8\xff\xe0") == "JPEG"
    assert sniff_format(b"hello") is None


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "BMP", "TIFF", "WEBP"])
def test_sniff_format_names_each_format_as_pillow_does(fmt: str) -> None:
    # one convention for every caller (decoding here, the face API's format check):
    # Pillow's upper-case format names
    assert sniff_format(encode(rgb_image((10, 20, 30)), fmt)) == fmt


def test_sniff_format_reads_only_the_leading_bytes_of_any_buffer() -> None:
    data = encode(rgb_image((0, 0, 0)), "PNG")
    assert sniff_format(memoryview(data)[:12]) == sniff_format(bytearray(data)) == "PNG"
