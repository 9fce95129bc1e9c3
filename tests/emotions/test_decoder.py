from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageFile, ImageOps

from emotions.decoder import REJECTION_CODES, DecodedImage, ImageRejected, declared_pixels, decode_image
from tests.emotions.conftest import encode

LIMITS = {"max_bytes": 4 * 1024 * 1024, "max_pixels": 4096 * 4096}


def rejection(data: bytes, **limits: int) -> str:
    with pytest.raises(ImageRejected) as caught:
        decode_image(data, **{**LIMITS, **limits})
    return caught.value.code


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def gray_png(width: int, height: int, idat: bytes) -> bytes:
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")
    )


def pillow_bytes(image: Image.Image, image_format: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=image_format)
    return buffer.getvalue()


def with_jpeg_size(jpeg: bytes, width: int, height: int) -> bytes:
    """Return ``jpeg`` with the size in its baseline frame header replaced."""
    at = jpeg.index(b"\xff\xc0") + 5  # marker, length, precision
    return jpeg[:at] + struct.pack(">HH", height, width) + jpeg[at + 4 :]


@pytest.fixture(scope="module")
def small_gray() -> np.ndarray:
    return np.random.default_rng(3).integers(0, 256, (60, 80), dtype=np.uint8)


def test_it_decodes_a_jpeg_to_grayscale_with_its_size(astronaut_jpeg):
    image = decode_image(astronaut_jpeg, **LIMITS)

    assert isinstance(image, DecodedImage)
    assert (image.format, image.width, image.height) == ("jpeg", 640, 480)
    assert image.gray.shape == (480, 640)
    assert image.gray.dtype == np.uint8


def test_it_decodes_a_png_exactly(small_gray):
    image = decode_image(encode(small_gray, ".png"), **LIMITS)

    assert (image.format, image.width, image.height) == ("png", 80, 60)
    np.testing.assert_array_equal(image.gray, small_gray)


def test_it_converts_colour_images_to_grayscale(astronaut_gray):
    colour = np.dstack([astronaut_gray] * 3)

    image = decode_image(encode(colour, ".png"), **LIMITS)

    np.testing.assert_array_equal(image.gray, astronaut_gray)


@pytest.mark.parametrize("keep", [0.5, 0.9, -2, -1])
def test_it_refuses_a_truncated_jpeg(astronaut_jpeg, keep):
    end = int(len(astronaut_jpeg) * keep) if keep > 0 else len(astronaut_jpeg) + keep

    assert rejection(astronaut_jpeg[:end]) == "undecodable"


def test_it_refuses_a_jpeg_cut_before_its_image_data(astronaut_jpeg):
    header_only = astronaut_jpeg[: astronaut_jpeg.index(b"\xff\xda")]

    assert rejection(header_only) == "undecodable"


@pytest.mark.parametrize("keep", [0.5, 0.95])
def test_it_refuses_a_truncated_png(small_gray, keep):
    png = encode(small_gray, ".png")

    assert rejection(png[: int(len(png) * keep)]) == "undecodable"


def test_it_refuses_a_png_decompression_bomb():
    width = height = 6000  # 36 megapixels of zeros compress to a few tens of kilobytes
    packer = zlib.compressobj(9)
    row = bytes(width + 1)
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    bomb = gray_png(width, height, idat)
    assert len(bomb) < 100_000

    assert rejection(bomb, max_pixels=4096 * 4096) == "too_many_pixels"


@pytest.mark.parametrize("image_format", ["jpeg", "png"])
def test_it_refuses_a_20000_by_20000_header_before_decoding(astronaut_jpeg, image_format):
    if image_format == "jpeg":
        huge = with_jpeg_size(astronaut_jpeg, 20000, 20000)
    else:
        huge = gray_png(20000, 20000, zlib.compress(bytes(20001)))

    assert rejection(huge) == "too_many_pixels"


def test_it_refuses_a_header_just_over_the_pixel_limit(small_gray):
    assert rejection(encode(small_gray, ".png"), max_pixels=80 * 60 - 1) == "too_many_pixels"


@pytest.mark.parametrize("image_format", [".jpg", ".png"])
def test_it_reads_the_declared_pixel_count_from_the_header_alone(image_format):
    data = encode(np.zeros((37, 53), dtype=np.uint8), image_format)

    assert declared_pixels(data) == 37 * 53


def test_the_declared_pixel_count_is_the_headers_not_the_datas(astronaut_jpeg):
    # What the header claims, before any decoding: how large a frame says it is decides where it is decoded.
    assert declared_pixels(with_jpeg_size(astronaut_jpeg, 4000, 3000)) == 12_000_000


@pytest.mark.parametrize("data", [b"", b"hello", b"\xff\xd8\xff broken", b"\x89PNG\r\n\x1a\n short"])
def test_an_unreadable_header_declares_no_pixel_count(data):
    assert declared_pixels(data) is None


def test_it_refuses_more_bytes_than_the_limit(astronaut_jpeg):
    assert rejection(astronaut_jpeg, max_bytes=len(astronaut_jpeg) - 1) == "too_large"


def test_it_checks_the_byte_limit_before_the_format():
    assert rejection(b"GIF89a" + bytes(5000), max_bytes=1000) == "too_large"


def make_unsupported(kind: str) -> bytes:
    picture = Image.fromarray(np.random.default_rng(5).integers(0, 256, (32, 32), dtype=np.uint8))
    return {
        "gif": lambda: pillow_bytes(picture, "GIF"),
        "bmp": lambda: pillow_bytes(picture, "BMP"),
        "webp": lambda: pillow_bytes(picture, "WEBP"),
        "tiff": lambda: pillow_bytes(picture, "TIFF"),
        "svg": lambda: b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect/></svg>',
        "text": lambda: b"hello, this is not an image\n",
        "html": lambda: b"<!doctype html><img src=x onerror=alert(1)>",
        "empty": lambda: b"",
        "jpeg magic only": lambda: b"\xff\xd8",
    }[kind]()


@pytest.mark.parametrize(
    "kind", ["gif", "bmp", "webp", "tiff", "svg", "text", "html", "empty", "jpeg magic only"]
)
def test_it_refuses_anything_but_jpeg_and_png(kind):
    assert rejection(make_unsupported(kind)) == "unsupported_format"


def test_it_refuses_a_png_signature_followed_by_garbage():
    assert rejection(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20) == "undecodable"


def test_it_refuses_a_jpeg_whose_scan_is_garbage(astronaut_jpeg):
    start = astronaut_jpeg.index(b"\xff\xda") + 20
    noise = bytes(np.random.default_rng(1).integers(0, 255, 4000, dtype=np.uint8))
    damaged = astronaut_jpeg[:start] + noise.replace(b"\xff", b"\x00") + b"\xff\xd9"

    code = None
    try:
        decode_image(damaged, **LIMITS)
    except ImageRejected as rejected:
        code = rejected.code
    # libjpeg may decode damaged entropy data into a (wrong) picture; it must never raise anything else.
    assert code in (None, "undecodable")


def test_it_never_lets_pillow_decode_pixels(astronaut_jpeg, small_gray, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("Pillow was asked to decode pixels")

    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)

    assert decode_image(astronaut_jpeg, **LIMITS).width == 640
    assert decode_image(encode(small_gray, ".png"), **LIMITS).width == 80


def test_it_exposes_the_code_and_message_of_a_refusal():
    with pytest.raises(ImageRejected) as caught:
        decode_image(b"GIF89a", **LIMITS)

    assert caught.value.code == "unsupported_format"
    assert "JPEG and PNG" in caught.value.message
    assert set(REJECTION_CODES) == {"unsupported_format", "too_large", "too_many_pixels", "undecodable"}


@pytest.fixture(scope="module")
def seeds(small_gray) -> list[bytes]:
    return [encode(small_gray, ".jpg"), encode(small_gray, ".png")]


@settings(max_examples=300, deadline=None)
@given(
    which=st.integers(0, 1),
    cut=st.integers(0, 4000),
    flips=st.lists(st.tuples(st.integers(0, 4000), st.integers(0, 255)), max_size=8),
)
def test_it_raises_nothing_but_image_rejected_for_damaged_images(seeds, which, cut, flips):
    data = bytearray(seeds[which][: max(cut, 8)])
    for position, value in flips:
        if position < len(data):
            data[position] = value

    try:
        image = decode_image(bytes(data), **LIMITS)
    except ImageRejected as rejected:
        assert rejected.code in REJECTION_CODES
    else:
        assert image.gray.shape == (image.height, image.width)


@settings(max_examples=200, deadline=None)
@given(prefix=st.sampled_from([b"", b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n"]), body=st.binary(max_size=2000))
def test_it_raises_nothing_but_image_rejected_for_random_bytes(prefix, body):
    try:
        decode_image(prefix + body, **LIMITS)
    except ImageRejected as rejected:
        assert rejected.code in REJECTION_CODES


def test_it_refuses_a_truncated_jpeg_with_an_end_marker_appended(astronaut_gray):
    jpeg = pillow_bytes(Image.fromarray(astronaut_gray).resize((640, 480)), "JPEG")

    assert rejection(jpeg[: len(jpeg) // 2] + b"\xff\xd9") == "undecodable"


def test_it_refuses_a_small_jpeg_claiming_millions_of_pixels_before_decoding_them(monkeypatch):
    jpeg = pillow_bytes(Image.new("L", (4096, 4096), 128), "JPEG")
    crafted = jpeg[:12_800] + b"\xff\xd9"
    monkeypatch.setattr("simplejpeg.decode_jpeg", lambda *a, **k: pytest.fail("it decoded the pixels"))

    with pytest.raises(ImageRejected) as refused:
        decode_image(crafted, **LIMITS)

    assert refused.value.code == "undecodable"
    assert "cannot hold a 4096×4096 JPEG" in refused.value.message


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_it_turns_a_jpeg_upright_as_its_exif_orientation_says(astronaut_gray, orientation):
    image = Image.fromarray(astronaut_gray).resize((320, 200))
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=95, exif=exif.tobytes())
    upright = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(buffer.getvalue()))).convert("L"))

    decoded = decode_image(buffer.getvalue(), **LIMITS)

    assert decoded.gray.shape == upright.shape
    assert np.abs(decoded.gray.astype(int) - upright.astype(int)).mean() < 3
