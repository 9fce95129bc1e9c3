"""Structure-aware fuzzing of the guarded decoder: damaged JPEG and PNG files never raise anything else.

Hypothesis mutates valid encodings where the parsers look (segment and chunk
lengths, CRCs, frame and IHDR sizes, marker order) as well as at random; a
bounded number of cases per test keeps CI fast.
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from emotions.decoder import REJECTION_CODES, ImageRejected, decode_image

LIMITS = {"max_bytes": 4 * 1024 * 1024, "max_pixels": 4096 * 4096}
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def pillow_encode(mode: str, image_format: str, **options) -> bytes:
    pixels = np.random.default_rng(len(mode) + len(image_format)).integers(
        0, 256, (40, 56, 3), dtype=np.uint8
    )
    buffer = io.BytesIO()
    Image.fromarray(pixels).convert(mode).save(buffer, format=image_format, **options)
    return buffer.getvalue()


JPEGS = [
    pillow_encode("RGB", "JPEG", quality=70),
    pillow_encode("L", "JPEG", quality=90),
    pillow_encode("RGB", "JPEG", quality=50, progressive=True),
    pillow_encode("RGB", "JPEG", quality=70, exif=b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x00"),
]
PNGS = [
    pillow_encode("RGB", "PNG"),
    pillow_encode("L", "PNG"),
    pillow_encode("P", "PNG"),
    pillow_encode("RGBA", "PNG"),
    pillow_encode("RGB", "PNG", optimize=True),
]


def check(data: bytes) -> None:
    """Decode ``data``: a consistent image or the decoder's own refusal, nothing else."""
    try:
        image = decode_image(data, **LIMITS)
    except ImageRejected as rejected:
        assert rejected.code in REJECTION_CODES
    else:
        assert image.gray.dtype == np.uint8
        assert image.gray.shape == (image.height, image.width)
        assert image.width * image.height <= LIMITS["max_pixels"]


# --- JPEG ----------------------------------------------------------------------------------------


def jpeg_segments(data: bytes) -> list[int]:
    """Return the offsets of the markers before the first scan that carry a length field."""
    offsets, at = [], 2
    while at + 4 <= len(data) and data[at] == 0xFF:
        marker = data[at + 1]
        offsets.append(at)
        if marker == 0xDA:  # start of scan: entropy-coded data follows
            break
        at += 2 + struct.unpack(">H", data[at + 2 : at + 4])[0]
    return offsets


@st.composite
def jpeg_mutation(draw) -> bytes:
    data = bytearray(draw(st.sampled_from(JPEGS)))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["sof", "length", "marker", "flip", "insert", "delete", "truncate"]))
        segments = jpeg_segments(bytes(data))
        if kind == "sof":
            sof = next((at for at in segments if data[at + 1] in (0xC0, 0xC1, 0xC2)), None)
            if sof is not None:  # height, width; then the component count and its table
                height, width = draw(st.integers(0, 65535)), draw(st.integers(0, 65535))
                data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
                if draw(st.booleans()) and sof + 9 < len(data):  # an earlier cut may have ended it
                    data[sof + 9] = draw(st.integers(0, 255))
        elif kind == "length" and segments:
            at = draw(st.sampled_from(segments))
            data[at + 2 : at + 4] = struct.pack(">H", draw(st.integers(0, 65535)))
        elif kind == "marker" and segments:
            data[draw(st.sampled_from(segments)) + 1] = draw(st.integers(0, 255))
        elif kind == "flip" and data:
            data[draw(st.integers(0, len(data) - 1))] ^= 1 << draw(st.integers(0, 7))
        elif kind == "insert":
            at = draw(st.integers(0, len(data)))
            data[at:at] = draw(st.binary(min_size=1, max_size=64))
        elif kind == "delete" and len(data) > 4:
            at = draw(st.integers(2, len(data) - 1))
            del data[at : at + draw(st.integers(1, 256))]
        elif kind == "truncate":
            data = data[: draw(st.integers(0, len(data)))]
    if draw(st.booleans()) and not data.endswith(b"\xff\xd9"):
        data += b"\xff\xd9"  # passes the completeness check, so the damage reaches libjpeg
    return bytes(data)


@FUZZ
@given(data=jpeg_mutation())
def test_damaged_jpegs_raise_nothing_but_image_rejected(data):
    check(data)


# --- PNG -----------------------------------------------------------------------------------------


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    chunks, at = [], 8
    while at + 8 <= len(data):
        (size,) = struct.unpack(">I", data[at : at + 4])
        chunks.append((data[at + 4 : at + 8], data[at + 8 : at + 8 + size]))
        at += 12 + size
    return chunks


def png_join(chunks: list[tuple[bytes, bytes]], *, bad_crc: int | None = None, bad_length: int | None = None):
    out = bytearray(b"\x89PNG\r\n\x1a\n")
    for index, (kind, payload) in enumerate(chunks):
        length = len(payload) if index != bad_length else (len(payload) * 7 + 13) % 2**32
        crc = zlib.crc32(kind + payload) ^ (0xDEADBEEF if index == bad_crc else 0)
        out += struct.pack(">I", length) + kind + payload + struct.pack(">I", crc)
    return bytes(out)


@st.composite
def png_mutation(draw) -> bytes:
    chunks = png_chunks(draw(st.sampled_from(PNGS)))
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["ihdr size", "ihdr fields", "idat", "drop", "duplicate", "kind"]))
        ihdr = next((i for i, (name, body) in enumerate(chunks) if name == b"IHDR" and len(body) == 13), None)
        idat = next((i for i, (name, _) in enumerate(chunks) if name == b"IDAT"), None)
        if kind == "ihdr size" and ihdr is not None:
            header = bytearray(chunks[ihdr][1])
            header[0:8] = struct.pack(">II", draw(st.integers(0, 2**31 - 1)), draw(st.integers(0, 2**31 - 1)))
            chunks[ihdr] = (b"IHDR", bytes(header))
        elif kind == "ihdr fields" and ihdr is not None:  # depth, colour, compression, filter, interlace
            header = bytearray(chunks[ihdr][1])
            header[draw(st.integers(8, 12))] = draw(st.integers(0, 255))
            chunks[ihdr] = (b"IHDR", bytes(header))
        elif kind == "idat" and idat is not None:
            at = idat
            payload = draw(
                st.one_of(
                    st.binary(max_size=512),
                    st.builds(zlib.compress, st.binary(max_size=4096)),
                    st.just(chunks[at][1][: len(chunks[at][1]) // 2]),
                )
            )
            chunks[at] = (b"IDAT", payload)
        elif kind == "drop" and len(chunks) > 2:
            del chunks[draw(st.integers(0, len(chunks) - 2))]
        elif kind == "duplicate":
            at = draw(st.integers(0, len(chunks) - 1))
            chunks.insert(at, chunks[at])
        elif kind == "kind":
            at = draw(st.integers(0, len(chunks) - 1))
            chunks[at] = (draw(st.binary(min_size=4, max_size=4)), chunks[at][1])
    bad_crc = draw(st.none() | st.integers(0, len(chunks) - 1))
    bad_length = draw(st.none() | st.integers(0, len(chunks) - 1))
    return png_join(chunks, bad_crc=bad_crc, bad_length=bad_length)


@FUZZ
@given(data=png_mutation())
def test_damaged_pngs_raise_nothing_but_image_rejected(data):
    check(data)


@pytest.mark.parametrize("sample", JPEGS + PNGS, ids=lambda sample: f"{len(sample)}B")
def test_the_fuzzing_seeds_decode(sample):
    image = decode_image(sample, **LIMITS)

    assert (image.width, image.height) == (56, 40)
