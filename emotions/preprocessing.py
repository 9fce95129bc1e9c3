"""The one preprocessing path shared by training and inference.

A mismatch between how training data and live faces are prepared is the classic
silent bug of expression models, so both go through :func:`to_model_input`.
Live faces are first cut out of the frame: levelled by their eyes when the
detector gives them (:func:`align_face`), so that a tilted head reaches the
model upright and framed like the FER-2013 faces it learned from, or as their
box (:func:`crop_face`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

FACE_SIZE = 48
INPUT_SHAPE = (FACE_SIZE, FACE_SIZE, 1)

Point = tuple[float, float]  # x, y in pixels
# How BlazeFace sees a FER-2013 face in its 48×48 image (medians over 566 validation faces): the
# point between the eyes at (23.8, 18.9), a box 42.5 px wide. Aligned faces are framed the same way.
# The box, not the eyes' distance (17.1 px, quartiles 15.4 and 18.6), sets the scale, as a box did
# when the dataset's faces were cut out; the eyes vary more from face to face (a face turned aside
# has them closer), and scaling by them cost the classifier 2 points on upright val faces.
EYE_CENTRE: Point = (24.0, 19.0)
FACE_WIDTH = 42.5


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


def align_face(gray: np.ndarray, eyes: tuple[Point, Point], width: float) -> np.ndarray:
    """Cut one face out of a grayscale image with its eyes level, resized to 48×48.

    ``gray``: (h, w) uint8. ``eyes``: the two eye centres in its pixels, in either order.
    ``width``: the width of the face's box (BlazeFace's) in its pixels. The face is turned
    about the point between the eyes until they are level, put at :data:`EYE_CENTRE`, and
    scaled so that the box is :data:`FACE_WIDTH` wide; what lies outside the image repeats
    its edge. Returns (48, 48) uint8.
    """
    (x1, y1), (x2, y2) = eyes
    if x2 < x1:  # the eye on the image's left comes first, so the face is never turned upside down
        x1, y1, x2, y2 = x2, y2, x1, y1
    if not width >= 1.0:
        raise ValueError(f"a face {width} px wide cannot be aligned")
    if math.hypot(x2 - x1, y2 - y1) < 1.0:
        raise ValueError(f"eyes {eyes} are less than a pixel apart")
    scale = FACE_WIDTH / width
    angle = math.atan2(y2 - y1, x2 - x1)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2

    # Shrinking by warpAffine alone aliases (it samples, it does not average), so the part of the
    # image the face comes from is first shrunk with INTER_AREA, as crop_face does, and then turned.
    # The output's farthest corner from EYE_CENTRE, in source pixels, and two more for the filters: the
    # rotated 48×48 square lies within it, whatever the angle (a region any larger is work for nothing).
    reach = math.hypot(
        max(EYE_CENTRE[0], FACE_SIZE - EYE_CENTRE[0]), max(EYE_CENTRE[1], FACE_SIZE - EYE_CENTRE[1])
    )
    reach = (reach + 2) / scale
    left, top = max(0, math.floor(cx - reach)), max(0, math.floor(cy - reach))
    right, bottom = min(gray.shape[1], math.ceil(cx + reach)), min(gray.shape[0], math.ceil(cy + reach))
    if right <= left or bottom <= top:
        raise ValueError(f"eyes {eyes} lie outside the {gray.shape[1]}×{gray.shape[0]} image")
    region = gray[top:bottom, left:right]
    if scale < 1.0:
        size = (max(1, round(region.shape[1] * scale)), max(1, round(region.shape[0] * scale)))
        region = cv2.resize(region, size, interpolation=cv2.INTER_AREA)
    fx, fy = region.shape[1] / (right - left), region.shape[0] / (bottom - top)

    # Output = rotate(-angle) · scale · (source - eye centre) + EYE_CENTRE, with source = region / f + origin.
    cos, sin = math.cos(angle) * scale, math.sin(angle) * scale
    rotate = np.array([[cos, sin], [-sin, cos]])
    to_source = np.diag([1 / fx, 1 / fy])
    linear = rotate @ to_source
    shift = np.array(EYE_CENTRE) - rotate @ np.array([cx - left, cy - top])
    # Points are continuous (a pixel's centre is at +0.5); warpAffine indexes pixel centres.
    shift += linear @ np.array([0.5, 0.5]) - 0.5
    matrix = np.hstack([linear, shift[:, np.newaxis]])
    return cv2.warpAffine(
        region, matrix, (FACE_SIZE, FACE_SIZE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )


def faces_to_model_input(
    gray: np.ndarray,
    boxes: Sequence[tuple[int, int, int, int]],
    *,
    margin: float = 0.0,
    eyes: Sequence[tuple[Point, Point] | None] | None = None,
) -> np.ndarray:
    """Cut every face from ``gray`` and scale them. Returns (n, 48, 48, 1) float32 in [0, 1].

    A face whose ``eyes`` are given (one entry per box, None for none) is aligned by them;
    the others are cropped as their box (a face's box sets the scale either way).
    """
    if not boxes:
        return np.zeros((0, *INPUT_SHAPE), dtype=np.float32)
    eyes = eyes or [None] * len(boxes)
    if len(eyes) != len(boxes):
        raise ValueError(f"{len(boxes)} boxes but {len(eyes)} pairs of eyes")
    faces = [
        align_face(gray, pair, max(box[2:])) if pair is not None else crop_face(gray, box, margin=margin)
        for box, pair in zip(boxes, eyes, strict=True)
    ]
    return to_model_input(np.stack(faces))
