"""Face detection on grayscale frames.

:class:`HaarFaceDetector` uses the frontal-face Haar cascade shipped in the
opencv-python-headless wheel. Webcam faces are large, so it searches a small
copy of the frame and maps the boxes back to the original. Another detector
only needs to implement :class:`FaceDetector`.
"""

from __future__ import annotations

import random
import threading
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

Box = tuple[int, int, int, int]  # x, y, width, height in pixels of the original image

DEFAULT_CASCADE = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
# The cascade's own window is 24 px; smaller searches find nothing.
MIN_SEARCH_PX = 24
# A face seen in the last frame is searched for again at about this size, and with fewer
# agreeing detections, since where it was is strong evidence already: 48 px and 3 found it
# in 57 of 59 jittered frames at a tenth of a full scan's cost.
TRACK_FACE_PX = 48
TRACK_MIN_NEIGHBORS = 3


class FaceDetector(Protocol):
    def detect(self, gray: np.ndarray) -> list[Box]:
        """Return the faces in ``gray`` ((h, w) uint8) as boxes, largest first."""
        ...


class HaarFaceDetector:
    """OpenCV's Viola-Jones detector, run on a copy ``detect_height`` pixels high."""

    def __init__(
        self,
        detect_height: int = 240,
        scale_factor: float = 1.2,
        min_neighbors: int = 5,
        min_face_fraction: float = 0.12,
        cascade_path: str | Path = DEFAULT_CASCADE,
    ) -> None:
        self.detect_height = detect_height
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors
        self.min_face_fraction = min_face_fraction
        self.cascade_path = str(cascade_path)
        self._local = threading.local()
        # Fail at construction, not on the first frame, when the cascade file is missing.
        self._cascade()

    def _cascade(self) -> cv2.CascadeClassifier:
        # A CascadeClassifier keeps scratch state, so each thread gets its own.
        cascade = getattr(self._local, "cascade", None)
        if cascade is None:
            cascade = cv2.CascadeClassifier(self.cascade_path)
            if cascade.empty():
                raise FileNotFoundError(f"no usable Haar cascade at {self.cascade_path}")
            self._local.cascade = cascade
        return cascade

    def detect(self, gray: np.ndarray) -> list[Box]:
        """Return the faces in ``gray`` ((h, w) uint8) as boxes in its coordinates, largest first."""
        scale = min(1.0, self.detect_height / gray.shape[0])
        min_side = self.min_face_fraction * min(gray.shape[0], self.detect_height)
        return self._search(gray, (0, 0), scale, min_side / scale, None, self.min_neighbors)

    def detect_near(self, gray: np.ndarray, box: Box) -> Box | None:
        """Return the face found near ``box`` at about its size (a face seen in the last frame), or None."""
        x, y, w, h = box
        height, width = gray.shape[:2]
        left, top = max(0, x - w // 2), max(0, y - h // 2)
        right, bottom = min(width, x + w + w // 2), min(height, y + h + h // 2)
        scale = min(1.0, TRACK_FACE_PX / max(w, h))
        neighbors = min(self.min_neighbors, TRACK_MIN_NEIGHBORS)
        found = self._search(gray[top:bottom, left:right], (left, top), scale, w / 1.4, w * 1.4, neighbors)
        return found[0] if found else None

    def _search(
        self,
        gray: np.ndarray,
        offset: tuple[int, int],
        scale: float,
        min_side: float,
        max_side: float | None,
        min_neighbors: int,
    ) -> list[Box]:
        height, width = gray.shape[:2]
        if scale < 1.0:
            small_size = (max(1, round(width * scale)), max(1, round(height * scale)))
            small = cv2.resize(gray, small_size, interpolation=cv2.INTER_AREA)
        else:
            small = gray
        min_px = max(MIN_SEARCH_PX, round(min_side * scale))
        max_px = round(max_side * scale) if max_side else 0
        if min(small.shape[:2]) < min_px or (max_px and max_px < min_px):
            return []
        found = self._cascade().detectMultiScale(
            cv2.equalizeHist(small),
            scaleFactor=self.scale_factor,
            minNeighbors=min_neighbors,
            minSize=(min_px, min_px),
            maxSize=(max_px, max_px),
        )
        boxes = []
        for x, y, w, h in np.asarray(found, dtype=np.float64).reshape(-1, 4) / scale:
            left, top = max(0, round(x)), max(0, round(y))
            right, bottom = min(width, round(x + w)), min(height, round(y + h))
            if right > left and bottom > top:
                boxes.append((left + offset[0], top + offset[1], right - left, bottom - top))
        return sorted(boxes, key=_area, reverse=True)


class FaceTrack:
    """One stream's faces from frame to frame: look near the last ones first, rescan the whole frame often.

    Between webcam frames a face moves little, so searching only around where
    it was, at about its size, is several times cheaper than a full scan. The
    full frame is scanned again when a face is lost, when the frame size
    changes, and every ``rescan_every`` frames, so that new faces are found.

    ``phase`` frames of the first cycle count as done (random by default), so
    that streams which start together, as when many pages open at once, do not
    all pay for their full scans on the same frames.
    """

    def __init__(self, rescan_every: int = 10, *, phase: int | None = None) -> None:
        self.rescan_every = rescan_every
        self.boxes: list[Box] = []
        self.full_scans = 0
        self._since_scan = 0
        self._phase = random.randrange(rescan_every) if phase is None else phase
        self._shape: tuple[int, ...] | None = None

    def detect(self, detector: FaceDetector, gray: np.ndarray) -> list[Box]:
        """Return the faces in ``gray`` ((h, w) uint8), largest first, using what the last frames showed."""
        detect_near = getattr(detector, "detect_near", None)
        if detect_near and self.boxes and self._since_scan < self.rescan_every and self._shape == gray.shape:
            found = [detect_near(gray, box) for box in self.boxes]
            if all(found):
                self.boxes = sorted(found, key=_area, reverse=True)
                self._since_scan += 1
                return list(self.boxes)
        self.boxes = detector.detect(gray)
        self.full_scans += 1
        self._since_scan, self._shape = (self._phase if self.full_scans == 1 else 0), gray.shape
        return list(self.boxes)


def _area(box: Box) -> int:
    return box[2] * box[3]
