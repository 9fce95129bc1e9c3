"""Test media from a real face photograph (skimage's astronaut, public domain): JPEG frames, a .y4m video."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import cv2
import numpy as np
from skimage import data


@cache
def astronaut_rgb() -> np.ndarray:
    """Return the astronaut cropped to 4:3 around her face, (300, 400, 3) uint8 RGB: a webcam-like view."""
    return np.ascontiguousarray(data.astronaut()[0:300, 40:440])


def face_jpeg(width: int = 320, height: int = 240, *, quality: int = 70) -> bytes:
    """Return the astronaut as a ``width``×``height`` JPEG, as the live page sends it."""
    image = cv2.resize(astronaut_rgb(), (width, height), interpolation=cv2.INTER_AREA)
    bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, buffer = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return buffer.tobytes()


def noise_jpeg(width: int = 320, height: int = 240) -> bytes:
    """Return a JPEG of random noise: no face in it."""
    pixels = np.random.default_rng(7).integers(0, 256, (height, width), dtype=np.uint8)
    ok, buffer = cv2.imencode(".jpg", pixels)
    assert ok
    return buffer.tobytes()


def face_y4m(path: Path, *, width: int = 320, height: int = 240, frames: int = 30, fps: int = 15) -> Path:
    """Write a looping .y4m video (I420) of the astronaut moving a little, for Chromium's fake camera."""
    margin_x, margin_y = 16, 12
    size = (width + 2 * margin_x, height + 2 * margin_y)
    base = cv2.resize(astronaut_rgb(), size, interpolation=cv2.INTER_AREA)
    with open(path, "wb") as video:
        video.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode("ascii"))
        for i in range(frames):
            angle = 2 * np.pi * i / frames
            dx = margin_x + round(margin_x * 0.6 * np.sin(angle))
            dy = margin_y + round(margin_y * 0.6 * np.cos(angle))
            frame = np.ascontiguousarray(base[dy : dy + height, dx : dx + width])
            video.write(b"FRAME\n")
            video.write(cv2.cvtColor(frame, cv2.COLOR_RGB2YUV_I420).tobytes())
    return path


# --- Changing expressions: FER-2013 faces as a webcam would show them -------------------------------------


def fer_frame(
    path: Path, width: int = 320, height: int = 240, *, face: int = 170, shift=(0, 0)
) -> np.ndarray:
    """Return a 48×48 FER-2013 face as a ``width``×``height`` RGB webcam frame, (height, width, 3) uint8.

    The face is enlarged to ``face`` pixels and set on a blur of its own edges (a face detector needs some
    context around a tightly cropped face); ``shift`` moves the view by (dx, dy) pixels.
    """
    gray = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if gray is None:
        raise ValueError(f"not an image: {path}")
    big = cv2.resize(gray, (face, face), interpolation=cv2.INTER_CUBIC)
    pad = max(width, height)
    around = cv2.GaussianBlur(cv2.copyMakeBorder(big, pad, pad, pad, pad, cv2.BORDER_REPLICATE), (0, 0), 12)
    around[pad : pad + face, pad : pad + face] = big
    top = pad + face // 2 - height // 2 + 10 + shift[1]  # the face a little above the middle, as in a webcam
    left = pad + face // 2 - width // 2 + shift[0]
    return cv2.cvtColor(
        np.ascontiguousarray(around[top : top + height, left : left + width]), cv2.COLOR_GRAY2RGB
    )


def rgb_jpeg(rgb: np.ndarray, *, quality: int = 70) -> bytes:
    """Return an RGB frame as JPEG bytes, as the live page sends it."""
    ok, buffer = cv2.imencode(
        ".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality]
    )
    assert ok
    return buffer.tobytes()


SHIFTS = ((0, 0), (6, 4), (-6, -3), (4, -5))


def fer_faces_pick(folder: Path, labels, read, *, limit: int = 40, at_least: float = 0.7) -> dict[str, Path]:
    """Return, per label, the face of ``folder/<label>/`` that ``read`` reads most surely as that label.

    ``read(jpeg) -> {label: probability} | None`` is the engine under test (None: no face found); each face is
    read at a few small shifts and scored by its worst one, so a moving view keeps the same expression. Only
    the first ``limit`` files per label are tried; a label with no face read at ``at_least`` is left out.
    """
    picked = {}
    for label in labels:
        best, best_path = at_least, None
        for path in sorted((folder / label).glob("*.jpg"))[:limit]:
            scores = []
            for shift in SHIFTS:
                probabilities = read(rgb_jpeg(fer_frame(path, shift=shift)))
                scores.append(0.0 if probabilities is None else probabilities[label])
                if scores[-1] < best:
                    break
            if min(scores) >= best:
                best, best_path = min(scores), path
        if best_path is not None:
            picked[label] = best_path
    return picked


def faces_y4m(
    path: Path, faces: list[tuple[Path, float]], *, width: int = 320, height: int = 240, fps: int = 10
) -> Path:
    """Write a .y4m video (I420) showing each (face, seconds) in turn, the face moving a little."""
    with open(path, "wb") as video:
        video.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode("ascii"))
        for face, seconds in faces:
            for i in range(round(seconds * fps)):
                angle = 2 * np.pi * i / (2 * fps)
                shift = (round(5 * np.sin(angle)), round(4 * np.cos(angle)))
                frame = fer_frame(face, width, height, shift=shift)
                video.write(b"FRAME\n")
                video.write(cv2.cvtColor(frame, cv2.COLOR_RGB2YUV_I420).tobytes())
    return path
