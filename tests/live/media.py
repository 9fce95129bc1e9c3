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
