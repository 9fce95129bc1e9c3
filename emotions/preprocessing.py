"""The one preprocessing path shared by training and inference.

A mismatch between how training data and live faces are prepared is the classic
silent bug of expression models, so both go through :func:`to_model_input`.
"""

from __future__ import annotations

import cv2
import numpy as np

FACE_SIZE = 48
INPUT_SHAPE = (FACE_SIZE, FACE_SIZE, 1)


def to_model_input(faces: np.ndarray) -> np.ndarray:
    """Scale 48×48 grayscale faces for the model.

    ``faces``: (n, 48, 48) or (n, 48, 48, 1) uint8 in [0, 255].
    Returns (n, 48, 48, 1) float32 in [0, 1].
    """
    faces = np.asarray(faces)
    if faces.ndim == 3:
        faces = faces[..., np.newaxis]
    if faces.shape[1:] != INPUT_SHAPE:
        raise ValueError(f"expected faces of shape (n, 48, 48[, 1]), got {faces.shape}")
    return faces.astype(np.float32) / np.float32(255.0)


def crop_face(gray: np.ndarray, box: tuple[int, int, int, int], *, margin: float = 0.0) -> np.ndarray:
    """Cut one face out of a grayscale image and resize it to 48×48.

    ``gray``: (h, w) uint8. ``box``: (x, y, w, h) in pixels; ``margin`` widens it by
    that fraction of its size on each side, clipped to the image.
    Returns (48, 48) uint8.
    """
    x, y, w, h = box
    dx, dy = int(round(w * margin)), int(round(h * margin))
    top, bottom = max(0, y - dy), min(gray.shape[0], y + h + dy)
    left, right = max(0, x - dx), min(gray.shape[1], x + w + dx)
    if bottom <= top or right <= left:
        raise ValueError(f"box {box} lies outside the {gray.shape[1]}×{gray.shape[0]} image")
    face = gray[top:bottom, left:right]
    # INTER_AREA is the right filter for shrinking; faces are nearly always larger than 48 px.
    interpolation = cv2.INTER_AREA if face.shape[0] >= FACE_SIZE else cv2.INTER_LINEAR
    return cv2.resize(face, (FACE_SIZE, FACE_SIZE), interpolation=interpolation)


def faces_to_model_input(
    gray: np.ndarray, boxes: list[tuple[int, int, int, int]], *, margin: float = 0.0
) -> np.ndarray:
    """Crop every box from ``gray`` and scale them. Returns (n, 48, 48, 1) float32 in [0, 1]."""
    if not boxes:
        return np.zeros((0, *INPUT_SHAPE), dtype=np.float32)
    return to_model_input(np.stack([crop_face(gray, box, margin=margin) for box in boxes]))
