"""The one guarded decoder for every image that enters Attune.

Only JPEG and PNG, recognised by their magic bytes, are accepted. The byte size
is checked first, then the width and height declared in the header (read by
libjpeg-turbo's header parser, or by Pillow, never allowed to decode pixels, for
PNG and for a JPEG with EXIF data, whose orientation it reads), then whether the data can
hold that many pixels at all, and only then is the image decoded, straight to
grayscale: JPEG by libjpeg-turbo (simplejpeg) in strict mode, which refuses
corrupt or truncated data instead of filling it in, PNG by OpenCV. Every
refusal is an :class:`ImageRejected` with one of :data:`REJECTION_CODES`;
nothing else escapes.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass

import cv2
import numpy as np
import simplejpeg
from PIL import Image

UNSUPPORTED_FORMAT = "unsupported_format"
TOO_LARGE = "too_large"
TOO_MANY_PIXELS = "too_many_pixels"
UNDECODABLE = "undecodable"
REJECTION_CODES: tuple[str, ...] = (UNSUPPORTED_FORMAT, TOO_LARGE, TOO_MANY_PIXELS, UNDECODABLE)

_JPEG_MAGIC = b"\xff\xd8\xff"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_SOS = b"\xff\xda"
_JPEG_EOI = b"\xff\xd9"
_PNG_IEND = b"IEND"
_EXIF_ORIENTATION = 0x0112
_EXIF_HEADER = b"Exif\x00\x00"  # opens a JPEG's APP1 block of EXIF data


class ImageRejected(Exception):
    """An image Attune refuses to decode; ``code`` is one of :data:`REJECTION_CODES`."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class DecodedImage:
    gray: np.ndarray  # (height, width) uint8
    width: int
    height: int
    format: str  # "jpeg" or "png"


def sniff_format(data: bytes) -> str | None:
    """Return "jpeg" or "png" from the magic bytes, or None for anything else."""
    if data.startswith(_JPEG_MAGIC):
        return "jpeg"
    if data.startswith(_PNG_MAGIC):
        return "png"
    return None


def declared_pixels(data: bytes) -> int | None:
    """Return width × height as a JPEG's or PNG's header declares them, None if it is neither or the
    header is unreadable; checks nothing else (:func:`decode_image` does), costs microseconds."""
    image_format = sniff_format(data)
    try:
        if image_format == "jpeg":
            height, width, _, _ = simplejpeg.decode_jpeg_header(data)
            return width * height
        if image_format == "png" and data[12:16] == b"IHDR":  # the PNG specification's first chunk
            width, height = struct.unpack(">II", data[16:24])
            return width * height
    except (ValueError, RuntimeError, struct.error):
        pass
    return None


def decode_image(data: bytes, *, max_bytes: int, max_pixels: int) -> DecodedImage:
    """Decode a JPEG or PNG to grayscale after checking its size, format and declared pixel count."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ImageRejected(UNSUPPORTED_FORMAT, f"expected bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) > max_bytes:
        raise ImageRejected(TOO_LARGE, f"{len(data)} bytes is more than the limit of {max_bytes}")
    image_format = sniff_format(data)
    if image_format is None:
        raise ImageRejected(UNSUPPORTED_FORMAT, "only JPEG and PNG images are accepted")

    width, height, orientation = _read_header(data, image_format)
    if width <= 0 or height <= 0:
        raise ImageRejected(UNDECODABLE, f"the header declares an empty {width}×{height} image")
    if width * height > max_pixels:
        raise ImageRejected(
            TOO_MANY_PIXELS, f"{width}×{height} is more than the limit of {max_pixels} pixels"
        )
    if not _is_complete(data, image_format):
        raise ImageRejected(UNDECODABLE, f"the {image_format.upper()} data is truncated")
    if image_format == "jpeg" and len(data) < _jpeg_min_bytes(width, height):
        # A JPEG spends at least a bit on every 8×8 block; a tiny file claiming millions of pixels is
        # truncated or crafted, and refusing it here spares decoding them.
        raise ImageRejected(UNDECODABLE, f"{len(data)} bytes cannot hold a {width}×{height} JPEG")

    gray = _decode_jpeg(data) if image_format == "jpeg" else _decode_png(data)
    if gray.ndim != 2 or gray.dtype != np.uint8 or gray.shape != (height, width):
        raise ImageRejected(UNDECODABLE, "the decoded size differs from the header")
    gray = _apply_exif_orientation(gray, orientation)
    return DecodedImage(gray=gray, width=gray.shape[1], height=gray.shape[0], format=image_format)


def _jpeg_min_bytes(width: int, height: int) -> int:
    return (-(-width // 8) * -(-height // 8)) // 8


def _decode_jpeg(data: bytes) -> np.ndarray:
    try:
        # strict: libjpeg's warnings (corrupt data, a premature end) are errors, not grey filler.
        decoded = simplejpeg.decode_jpeg(data, colorspace="GRAY", strict=True)
    except (ValueError, RuntimeError) as exc:
        raise ImageRejected(UNDECODABLE, f"the JPEG data is corrupt: {str(exc)[:120]}") from None
    return decoded[:, :, 0] if decoded.ndim == 3 else decoded


def _decode_png(data: bytes) -> np.ndarray:
    try:
        gray = cv2.imdecode(
            np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_GRAYSCALE | cv2.IMREAD_IGNORE_ORIENTATION
        )
    except cv2.error as exc:
        raise ImageRejected(UNDECODABLE, f"OpenCV could not decode the image: {exc}") from None
    if gray is None:
        raise ImageRejected(UNDECODABLE, "the PNG data could not be decoded")
    return gray


def _apply_exif_orientation(gray: np.ndarray, orientation: int) -> np.ndarray:
    """Return ``gray`` turned as a camera's EXIF orientation says, so faces stand upright."""
    transpose = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1, :],
        5: lambda a: a.T,
        6: lambda a: np.rot90(a, -1),
        7: lambda a: np.rot90(a, 2).T,
        8: lambda a: np.rot90(a, 1),
    }.get(orientation)
    return gray if transpose is None else np.ascontiguousarray(transpose(gray))


def _read_header(data: bytes, image_format: str) -> tuple[int, int, int]:
    """Return the declared width, height and EXIF orientation (1-8; 1 is upright)."""
    if image_format == "jpeg" and data.find(_EXIF_HEADER, 0, max(0, data.find(_JPEG_SOS))) < 0:
        # No EXIF block before the image data (a browser's canvas never writes one): libjpeg-turbo
        # reads the size in microseconds, where Pillow's parser takes a tenth of a millisecond.
        try:
            height, width, _, _ = simplejpeg.decode_jpeg_header(data)
        except (ValueError, RuntimeError):
            raise ImageRejected(UNDECODABLE, "the JPEG header is malformed") from None
        return width, height, 1
    # Image.open only parses the header; pixel data is read by load(), which is never called.
    try:
        with Image.open(io.BytesIO(data), formats=(image_format.upper(),)) as image:
            width, height = image.size
            try:
                orientation = int(image.getexif().get(_EXIF_ORIENTATION, 1))
            except Exception:  # a malformed EXIF block: show the pixels as stored
                orientation = 1
            return width, height, orientation
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageRejected(TOO_MANY_PIXELS, str(exc)) from None
    except Exception as exc:  # Pillow raises many types for malformed headers
        raise ImageRejected(UNDECODABLE, f"the {image_format.upper()} header is malformed") from exc


def _is_complete(data: bytes, image_format: str) -> bool:
    # libjpeg and libpng fill in missing data of a truncated file with a warning only.
    if image_format == "jpeg":
        # The last scan must be followed by an end-of-image marker; entropy-coded data
        # cannot contain either marker, so an EOI from an embedded thumbnail does not count.
        return data.rfind(_JPEG_EOI) > data.rfind(_JPEG_SOS) > 0
    return data.rfind(_PNG_IEND) > len(_PNG_MAGIC)
