"""Face detection on grayscale frames.

:class:`BlazeFaceDetector` (the default) runs MediaPipe's BlazeFace model
under LiteRT: it finds tilted and small faces and gives six keypoints per
face, which alignment uses to level the eyes. :class:`HaarFaceDetector` uses
the frontal-face Haar cascade shipped in the opencv-python-headless wheel: it
finds upright frontal faces only, and no keypoints. Webcam faces are large, so
both search small copies of the frame and map the boxes back to the original.
Another detector only needs to implement :class:`FaceDetector`.
"""

from __future__ import annotations

import math
import random
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

Box = tuple[int, int, int, int]  # x, y, width, height in pixels of the original image
Point = tuple[float, float]  # x, y in pixels of the original image

# BlazeFace's keypoints in the model's order: the face's own right and left, as MediaPipe names
# them, so on an unmirrored camera image the right eye is the one on the image's left.
KEYPOINTS: tuple[str, ...] = ("right_eye", "left_eye", "nose_tip", "mouth", "right_ear", "left_ear")

DEFAULT_CASCADE = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
# The cascade's own window is 24 px; smaller searches find nothing.
MIN_SEARCH_PX = 24
# A face seen in the last frame is searched for again at about this size, and with fewer
# agreeing detections, since where it was is strong evidence already: 48 px and 3 found it
# in 57 of 59 jittered frames at a tenth of a full scan's cost.
TRACK_FACE_PX = 48
TRACK_MIN_NEIGHBORS = 3

# BlazeFace's short-range model from MediaPipe (Apache-2.0, see detector_models/NOTICE), run by LiteRT.
MODEL_DIR = Path(__file__).resolve().parent / "detector_models"
# A face a full scan found is looked at again centred in a square this many times its size: the
# face then fills about half of the model's 128 px input, the scale it finds faces best at.
CONFIRM_REGION = 2.0
# A face tracked from the last frame is looked for in a tighter square, TRACK_REGION times its size
# around where it was, shrunk to TRACK_SIDE px: the face is about 53 px, two thirds of the input, as in
# a selfie, the view this model was made for. On 3,780 tracked frames of FER-2013 faces (640×480, tilted,
# dim, blurred, noisy) 80 px found 97.6 % (96 px: 97.8 %; 64 px: 97.3 %, with two thirds more frames
# that lost the face and paid for a full scan), the classifier as accurate on what it cut out, at 1.03 ms
# median against 1.39 ms.
TRACK_REGION = 1.5
TRACK_SIDE = 80
# Detections overlapping more than this (intersection over union) are one face, as in MediaPipe.
NMS_IOU = 0.3
# The model is fully convolutional: besides its own 128×128 input it runs on the whole frame at any
# size (sides rounded up to a multiple of 16), each part of the frame seen as a 128 px window would
# see it. A full scan runs it twice: on the frame shrunk to 128 px across (faces from about a
# quarter of its height up), and on the frame scaled so that a square SCAN_FRACTION of its height
# is 128 px, as if cut into such tiles, at less cost than tiles and without their seams (on 640×480:
# 352×256; a face an eighth of the frame high is then a quarter of a window, 32 px).
SCAN_FRACTION = 0.5
# The coarse look's input is this many pixels across; the fine look's at most MAX_SCAN_SIDE (very
# wide or tall frames).
COARSE_SIDE = 128
MAX_SCAN_SIDE = 512
# What the fine look (or the coarse one, weakly) finds from PROPOSAL_SCORE up is looked at again
# centred, at most MAX_PROPOSALS per frame, and kept from CONFIRM_SCORE up: zoomed-in texture
# (coins, cells, a retina) scored up to 0.78 in that look, a true face mostly above 0.8.
PROPOSAL_SCORE = 0.3
MAX_PROPOSALS = 3
CONFIRM_SCORE = 0.7
# A tracked stream's whole frame is looked at again every RESCAN_EVERY frames, for newcomers (a face that
# is lost, or two that become one, are looked for at once). While its faces are all tracked, QUICK_RESCANS
# such rescans in a row only look for newcomers with the coarse look (FaceTrack,
# BlazeFaceDetector.detect_new); the next one is a full scan. At 5 fps: newcomers a quarter of the frame
# high or more are found within 4 s, smaller ones (a visitor sitting back behind the one at the screen,
# who drives the mood only once that one leaves, and is then found at once) within 24 s. A full scan of a
# 320×240 frame costs as much as about twenty tracked frames (most of it the fine look at full size).
# Every 10 frames, rescans took a quarter of a loaded LiteRT server's time per frame (0.29 of 1.5 ms);
# every 20, half that (README, "Twice the Keras backend's visitors").
RESCAN_EVERY = 20
QUICK_RESCANS = 5
# Between two looks at a tracked face, up to GLIDES frames follow it by template matching instead: the
# face as the last look saw it, shrunk to GLIDE_SIDE px across, is matched (normalised correlation)
# within GLIDE_REACH of its size around where it was. A match of GLIDE_MIN_MATCH or more moves its box
# and keypoints by as much; anything less (it turned, came closer, was covered, left) is looked for
# as usual. A glide costs a third to a seventh of a look (measured: README, "Glides, and fewer full scans").
GLIDES = 2
GLIDE_SIDE = 32
GLIDE_REACH = 0.25
GLIDE_MIN_MATCH = 0.9


@dataclass(frozen=True, slots=True)
class Face:
    """One face found: its box and, from detectors that give them, keypoints (see :data:`KEYPOINTS`)."""

    box: Box
    keypoints: dict[str, Point] | None = None
    score: float | None = None

    @property
    def eyes(self) -> tuple[Point, Point] | None:
        """Return (right eye, left eye) in pixels, or None when the detector gave no keypoints."""
        if not self.keypoints or "right_eye" not in self.keypoints or "left_eye" not in self.keypoints:
            return None
        return self.keypoints["right_eye"], self.keypoints["left_eye"]


# What detectors return: a Face, or a plain box from a detector without keypoints (Haar, fakes).
Found = Face | Box


class FaceDetector(Protocol):
    def detect(self, gray: np.ndarray) -> list[Found]:
        """Return the faces in ``gray`` ((h, w) uint8), largest first, as Faces or plain boxes."""
        ...


def as_face(found: Found) -> Face:
    """Return ``found`` as a Face (a plain box becomes a Face without keypoints)."""
    return found if isinstance(found, Face) else Face(box=tuple(int(v) for v in found))


def box_of(found: Found) -> Box:
    """Return the box of a Face or of a plain box."""
    return found.box if isinstance(found, Face) else found


def moved(found: Found, dx: float, dy: float) -> Found:
    """Return ``found`` moved by (``dx``, ``dy``) pixels, keypoints and all."""
    x, y, w, h = box_of(found)
    box = (round(x + dx), round(y + dy), w, h)
    if not isinstance(found, Face):
        return box
    points = {name: (px + dx, py + dy) for name, (px, py) in (found.keypoints or {}).items()}
    return Face(box, points or found.keypoints, found.score)


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


@dataclass(frozen=True)
class _SsdLayout:
    """Where one BlazeFace model's anchors are: MediaPipe's SSD anchor scheme, trimmed to what it uses."""

    filename: str
    size: int  # the model's own input is size × size × 3
    layers: tuple[tuple[int, int], ...]  # (stride in input pixels, anchors per cell)

    def anchors(self, height: int | None = None, width: int | None = None) -> np.ndarray:
        """Return the anchor centres on an input ``height`` × ``width`` (default: the model's own),
        (n, 2) float32 x, y in input pixels, in the model's order."""
        height, width = height or self.size, width or self.size
        centres = []
        for stride, per_cell in self.layers:
            ys, xs = np.mgrid[0 : height // stride, 0 : width // stride]
            grid = np.stack([(xs + 0.5) * stride, (ys + 0.5) * stride], axis=-1).reshape(-1, 1, 2)
            # MediaPipe's fixed_anchor_size: every anchor of a cell is the same box.
            centres.append(np.repeat(grid, per_cell, axis=1).reshape(-1, 2))
        return np.concatenate(centres).astype(np.float32)

    @property
    def multiple(self) -> int:
        """The input's sides must be a multiple of this (the coarsest stride)."""
        return max(stride for stride, _ in self.layers)


# Four layers of strides 8, 16, 16, 16 with two anchors each, same-stride layers merged.
SHORT_RANGE = _SsdLayout("face_detection_short_range.tflite", 128, ((8, 2), (16, 6)))


class _SsdInput:
    """One LiteRT interpreter of a model with its input resized to ``height`` × ``width``."""

    def __init__(self, layout: _SsdLayout, path: Path, threads: int, height: int, width: int) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.height, self.width = height, width
        self.anchors = layout.anchors(height, width)
        self.interpreter = Interpreter(model_path=str(path), num_threads=threads)
        self.input_index = self.interpreter.get_input_details()[0]["index"]
        if (height, width) != (layout.size, layout.size):
            self.interpreter.resize_tensor_input(self.input_index, [1, height, width, 3])
        self.interpreter.allocate_tensors()
        outputs = sorted(self.interpreter.get_output_details(), key=lambda d: d["shape"][-1], reverse=True)
        self.regressors_index, self.scores_index = outputs[0]["index"], outputs[1]["index"]
        if outputs[0]["shape"][1] != len(self.anchors):
            raise ValueError(f"{path.name} does not have the {len(self.anchors)} anchors of {layout}")
        self.canvas = np.empty((height, width), dtype=np.uint8)
        self.tensor = np.empty((1, height, width, 3), dtype=np.float32)

    def candidates(
        self, gray: np.ndarray, scale: float, offset: tuple[int, int], min_score: float
    ) -> _Candidates:
        """Return every anchor's face in ``gray`` ((h, w) uint8) scaled by ``scale`` into the input's
        top left corner, scoring at least ``min_score``, unmerged, in pixels of the frame ``gray``
        was cut from at ``offset``."""
        height, width = gray.shape[:2]
        small_w = max(1, min(self.width, round(width * scale)))
        small_h = max(1, min(self.height, round(height * scale)))
        interpolation = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LINEAR
        # The rest of the input is mid-gray (0 once scaled).
        self.canvas.fill(128)
        self.canvas[:small_h, :small_w] = cv2.resize(gray, (small_w, small_h), interpolation=interpolation)
        # The models take RGB in [-1, 1]; a gray frame is the same value in all three channels.
        self.tensor[0] = (self.canvas * np.float32(1 / 127.5) - np.float32(1.0))[..., np.newaxis]
        self.interpreter.set_tensor(self.input_index, self.tensor)
        self.interpreter.invoke()
        logits = self.interpreter.get_tensor(self.scores_index).reshape(-1)
        keep = np.flatnonzero(logits > math.log(min_score / (1.0 - min_score)))
        regressors = self.interpreter.get_tensor(self.regressors_index).reshape(-1, 16)[keep]
        scores = 1.0 / (1.0 + np.exp(-np.clip(logits[keep], -80.0, 80.0)))
        centres = self.anchors[keep]
        # Each row: box centre offset, box width and height, then six keypoint offsets, in input pixels.
        cx, cy = centres[:, 0] + regressors[:, 0], centres[:, 1] + regressors[:, 1]
        half_w, half_h = regressors[:, 2] / 2, regressors[:, 3] / 2
        boxes = np.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], axis=1)
        points = regressors[:, 4:].reshape(-1, len(KEYPOINTS), 2) + centres[:, np.newaxis, :]
        valid = (half_w > 0) & (half_h > 0)
        to_pixels, shift = np.float32(1.0 / scale), np.array(offset, dtype=np.float32)
        return _Candidates(
            boxes[valid] * to_pixels + np.tile(shift, 2), points[valid] * to_pixels + shift, scores[valid]
        )


class _SsdModel:
    """One BlazeFace model under LiteRT, an interpreter per input size (each serves one thread at a time)."""

    # Input sizes kept at once: one square, and two per frame shape (its aspect ratio, in fact).
    MAX_INPUTS = 8

    def __init__(self, layout: _SsdLayout, model_dir: Path, threads: int) -> None:
        self.layout = layout
        self.path = model_dir / layout.filename
        if not self.path.is_file():
            raise FileNotFoundError(f"no BlazeFace model at {self.path}")
        self.threads = threads
        self.size = layout.size
        self._inputs: dict[tuple[int, int], _SsdInput] = {}
        self._input(self.size, self.size)

    def _input(self, height: int, width: int) -> _SsdInput:
        key = (height, width)
        found = self._inputs.pop(key, None)
        if found is None:
            found = _SsdInput(self.layout, self.path, self.threads, height, width)
            if len(self._inputs) >= self.MAX_INPUTS:  # drop the least recently used
                del self._inputs[next(iter(self._inputs))]
        self._inputs[key] = found
        return found

    def candidates(
        self, gray: np.ndarray, offset: tuple[int, int], min_score: float, side: int | None = None
    ) -> _Candidates:
        """Return every anchor's face in ``gray`` ((h, w) uint8) seen in a square input ``side`` px
        across (default: the model's own; a multiple of 16), the longer side scaled to it, scoring at
        least ``min_score``, unmerged.

        Coordinates are pixels of the frame ``gray`` was cut from at ``offset``.
        """
        side = side or self.size
        scale = side / max(gray.shape[:2])
        return self._input(side, side).candidates(gray, scale, offset, min_score)

    def scan(self, gray: np.ndarray, scale: float, min_score: float) -> _Candidates:
        """Return every anchor's face in the whole of ``gray`` scaled by ``scale``, in one input of
        that size (sides rounded up to the model's multiple), scoring at least ``min_score``."""
        height, width = gray.shape[:2]
        multiple = self.layout.multiple
        input_h = max(multiple, math.ceil(round(height * scale) / multiple) * multiple)
        input_w = max(multiple, math.ceil(round(width * scale) / multiple) * multiple)
        return self._input(input_h, input_w).candidates(gray, scale, (0, 0), min_score)


@dataclass(frozen=True)
class _Candidates:
    boxes: np.ndarray  # (n, 4) float32 left, top, right, bottom in frame pixels
    points: np.ndarray  # (n, 6, 2) float32 keypoints in frame pixels
    scores: np.ndarray  # (n,) float32 in [0, 1]


def _merge(found: list[_Candidates], shape: tuple[int, ...]) -> list[Face]:
    """Return the faces of one or more passes over a frame of ``shape``, overlapping ones merged, best first.

    Boxes are clipped to the frame; keypoints are not (an ear may lie outside it).
    """
    boxes = np.concatenate([c.boxes for c in found])
    if not len(boxes):
        return []
    points = np.concatenate([c.points for c in found])
    scores = np.concatenate([c.scores for c in found])
    height, width = shape[:2]
    faces = []
    for box, face_points, score in _weighted_nms(boxes, points, scores):
        left, top = max(0, round(float(box[0]))), max(0, round(float(box[1])))
        right, bottom = min(width, round(float(box[2]))), min(height, round(float(box[3])))
        if right <= left or bottom <= top:
            continue
        keypoints = {name: (float(x), float(y)) for name, (x, y) in zip(KEYPOINTS, face_points, strict=True)}
        faces.append(Face((left, top, right - left, bottom - top), keypoints, score))
    return faces


def _weighted_nms(
    boxes: np.ndarray, points: np.ndarray, scores: np.ndarray
) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """Merge overlapping detections as MediaPipe does: a score-weighted mean of each cluster.

    ``boxes``: (n, 4) left, top, right, bottom; ``points``: (n, k, 2); ``scores``: (n,).
    Returns (box, points, best score) per face, best first.
    """
    merged = []
    order = np.argsort(-scores)
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    while order.size:
        best = order[0]
        width = np.minimum(boxes[best, 2], boxes[order, 2]) - np.maximum(boxes[best, 0], boxes[order, 0])
        height = np.minimum(boxes[best, 3], boxes[order, 3]) - np.maximum(boxes[best, 1], boxes[order, 1])
        inter = np.clip(width, 0, None) * np.clip(height, 0, None)
        iou = inter / (areas[best] + areas[order] - inter)
        cluster, order = order[iou > NMS_IOU], order[iou <= NMS_IOU]
        if best not in cluster:  # a degenerate box has no overlap even with itself
            cluster = np.append(cluster, best)
        weights = scores[cluster] / scores[cluster].sum()
        merged.append(
            (
                (boxes[cluster] * weights[:, np.newaxis]).sum(axis=0),
                (points[cluster] * weights[:, np.newaxis, np.newaxis]).sum(axis=0),
                float(scores[best]),
            )
        )
    return merged


class BlazeFaceDetector:
    """MediaPipe's BlazeFace (short range) under LiteRT: the whole frame coarse, then fine for small faces.

    The model (128×128 input) finds faces that fill a fair part of what it sees, tilted
    ones too, and gives six keypoints each (:data:`KEYPOINTS`). A full scan runs it on
    the whole frame twice (the model is fully convolutional): shrunk to 128 px across,
    which finds faces from about a quarter of its height up, and scaled as if cut into
    square tiles ``scan_fraction`` of its height, which finds faces down to about an
    eighth. Each face found is then looked at centred on it, the face half the model's
    input, which sharpens its box and keypoints; zoomed in on texture the model now and
    then sees a face, so what only the fine look, or the coarse one with a low score,
    found must score :data:`CONFIRM_SCORE` in that look and, on average, in that look
    mirrored (a face is a face mirrored too; texture that looks like one less often so).
    What the coarse look found from ``min_score`` up is kept even when the look centred on
    it scores less (on blurred and noisy frames that look lost some faces the whole frame
    had seen). A tracked face is looked for the same way, around its last box. No
    TensorFlow: LiteRT runs the ``.tflite`` file shipped in ``detector_models/``, offline;
    each thread gets its own interpreters.
    """

    def __init__(
        self,
        *,
        min_score: float = 0.5,
        min_face_fraction: float = 0.04,
        scan_fraction: float | None = SCAN_FRACTION,
        threads: int = 1,
        model_dir: str | Path = MODEL_DIR,
    ) -> None:
        if not 0.0 < min_score < 1.0:
            raise ValueError(f"min_score must be between 0 and 1, got {min_score}")
        if scan_fraction is not None and not 0.0 < scan_fraction <= 1.0:
            raise ValueError(f"scan_fraction must be between 0 and 1, got {scan_fraction}")
        self.min_score = min_score
        self.min_face_fraction = min_face_fraction
        self.scan_fraction = scan_fraction
        self.threads = threads
        self.model_dir = Path(model_dir)
        self._local = threading.local()
        # Fail at construction, not on the first frame, when the model file is missing.
        self._model()

    def _model(self) -> _SsdModel:
        # A LiteRT interpreter is not safe to share between threads, so each thread gets its own.
        model = getattr(self._local, "model", None)
        if model is None:
            model = self._local.model = _SsdModel(SHORT_RANGE, self.model_dir, self.threads)
        return model

    def scales(self, shape: tuple[int, ...]) -> tuple[float, float | None]:
        """Return the scales of a full scan's two looks at a frame of ``shape``: coarse, fine (or None)."""
        height, width = shape[:2]
        coarse = COARSE_SIDE / max(height, width)
        if not self.scan_fraction:
            return coarse, None
        # Never enlarged (that adds no detail: a small frame's small faces are too few pixels to tell
        # from texture), nor more than MAX_SCAN_SIDE across.
        fine = min(
            SHORT_RANGE.size / (self.scan_fraction * min(height, width)),
            1.0,
            MAX_SCAN_SIDE / max(height, width),
        )
        return coarse, fine if fine > coarse * 1.1 else None

    def detect(self, gray: np.ndarray) -> list[Face]:
        """Return the faces in ``gray`` ((h, w) uint8) with keypoints, in its coordinates, largest first."""
        model = self._model()
        coarse_scale, fine_scale = self.scales(gray.shape)
        coarse = model.scan(gray, coarse_scale, PROPOSAL_SCORE)
        looks = [coarse] if fine_scale is None else [coarse, model.scan(gray, fine_scale, PROPOSAL_SCORE)]
        strong = [face for face in _merge([coarse], gray.shape) if face.score >= self.min_score]
        weak = [face for face in _merge(looks, gray.shape) if not _overlaps(face, strong)]
        # Every face is looked at again centred on it, the face half the model's input: the scale at
        # which its keypoints are sharpest (from the whole frame an eye was off by a sixth of the eyes'
        # distance), and the test that what the fine look or a weak coarse score saw is a face.
        faces: list[Face] = []
        confirm = max(self.min_score, CONFIRM_SCORE)
        for candidate, needed, is_strong in [(face, self.min_score, True) for face in strong] + [
            (face, confirm, False) for face in weak[:MAX_PROPOSALS]
        ]:
            if _overlaps(candidate, faces):
                continue
            face = self._confirm(gray, candidate.box, needed)
            if face is not None and face.score >= needed and not _overlaps(face, faces):
                faces.append(face)
            elif is_strong:
                faces.append(candidate)
        min_side = self.min_face_fraction * gray.shape[0]
        faces = [face for face in _drop_nested(faces) if max(face.box[2:]) >= min_side]
        return sorted(faces, key=_area, reverse=True)

    def _confirm(self, gray: np.ndarray, box: Box, needed: float) -> Face | None:
        """Return the face found looking centred on ``box``, or None.

        Held to more than ``min_score`` (a weak face), its score is at most the mean of that look's
        and of the same look mirrored: a face is a face mirrored too, texture that looks like one less
        often so (the neck ring of the astronaut's suit: 0.735, mirrored 0.63).
        """
        face = self._look(gray, box)
        if face is None or face.score < needed or needed <= self.min_score:
            return face
        mirrored = self._look(gray, face.box, mirrored=True)
        score = (face.score + (mirrored.score if mirrored is not None else 0.0)) / 2
        return Face(face.box, face.keypoints, min(face.score, score))

    def detect_new(self, gray: np.ndarray, known: list[Face]) -> list[Face]:
        """Return the faces in ``gray`` that ``known`` does not hold, from the coarse look alone.

        For a stream whose faces are all tracked: newcomers from about a quarter of the frame's
        height up, kept as :meth:`detect` keeps what that look finds from ``min_score`` up.
        """
        coarse_scale, _ = self.scales(gray.shape)
        coarse = self._model().scan(gray, coarse_scale, self.min_score)
        faces: list[Face] = []
        for candidate in _merge([coarse], gray.shape):
            if _overlaps(candidate, known) or _overlaps(candidate, faces):
                continue
            face = self._confirm(gray, candidate.box, self.min_score)
            usable = face is not None and face.score >= self.min_score and not _overlaps(face, known + faces)
            faces.append(face if usable else candidate)
        min_side = self.min_face_fraction * gray.shape[0]
        return [face for face in faces if max(face.box[2:]) >= min_side]

    def detect_near(self, gray: np.ndarray, box: Box) -> Face | None:
        """Return the face found near ``box`` at about its size (a face seen in the last frame), or None."""
        return self._look(gray, box, region=TRACK_REGION, input_side=TRACK_SIDE)

    def _look(
        self,
        gray: np.ndarray,
        box: Box,
        *,
        region: float = CONFIRM_REGION,
        input_side: int | None = None,
        mirrored: bool = False,
    ) -> Face | None:
        """Return the face nearest ``box`` at about its size, looking at a square around it, or None.

        The square is ``region`` times the box's size, seen at ``input_side`` px (default 128).
        ``mirrored``: look at the square mirrored left to right; the face returned is then in
        the mirrored square's pixels, only its score is of use.
        """
        x, y, w, h = box
        height, width = gray.shape[:2]
        cx, cy, reach = x + w / 2, y + h / 2, region * max(w, h) / 2
        left, top = max(0, round(cx - reach)), max(0, round(cy - reach))
        right, bottom = min(width, round(cx + reach)), min(height, round(cy + reach))
        if right - left < 8 or bottom - top < 8:
            return None
        square = gray[top:bottom, left:right]
        if mirrored:
            square, (left, cx) = np.ascontiguousarray(square[:, ::-1]), (0, right - cx)
        seen = self._model().candidates(square, (left, top), self.min_score, input_side)
        side = max(w, h)
        near = [
            face
            for face in _merge([seen], gray.shape)
            if side / 1.5 <= max(face.box[2:]) <= side * 1.5
            and math.dist(_centre(face.box), (cx, cy)) <= side / 2
        ]
        return min(near, key=lambda face: math.dist(_centre(face.box), (cx, cy))) if near else None


class FaceTrack:
    """One stream's faces from frame to frame: look near the last ones first, rescan the whole frame often.

    Between webcam frames a face moves little, so searching only around where
    it was, at about its size, is several times cheaper than a full scan. The
    full frame is scanned again when a face is lost, when two tracked faces
    become one, when the frame size changes, and every ``rescan_every`` frames
    (:data:`RESCAN_EVERY`), so that new faces are found. With a detector that can look for newcomers
    alone (``detect_new``), ``quick_rescans`` (:data:`QUICK_RESCANS`) such periodic rescans in a
    row only do that while every face is still tracked (a tenth of a full
    scan's cost, for newcomers a quarter of the frame high or more), then one
    is full.

    A stream's first frame is looked at coarsely, as a quick rescan does, when
    the detector can (a visitor at the screen is found at a fifth of a full
    scan's cost); only when that finds no face is it scanned in full.

    ``phase`` frames of the first cycle of rescans (a full scan, then
    ``quick_rescans`` quick ones: ``rescan_every * (quick_rescans + 1)``
    frames) count as done, random by default, so that streams which start
    together, as when many pages open at once, do not all pay for their full
    scans on the same frames: with the phase drawn only within the first
    ``rescan_every`` frames, 80 streams started together made their next full
    scans within the same 2 s, every 12 s (rescans then came every 10 frames),
    and a server that held them between those seconds fell up to 0.2 s behind
    during them.

    After each look, ``glides`` frames (:data:`GLIDES`) may follow the faces by
    template matching alone (:func:`glide`), when each one matches well where
    it was; otherwise, and on every rescan, the detector looks.
    """

    def __init__(
        self,
        rescan_every: int = RESCAN_EVERY,
        *,
        phase: int | None = None,
        glides: int = GLIDES,
        quick_rescans: int = QUICK_RESCANS,
    ) -> None:
        self.rescan_every = rescan_every
        self.glides = glides
        self.quick_rescans = quick_rescans
        self.faces: list[Found] = []
        self.frames = 0  # frames seen, counting this one once detect has run
        self.full_scans = 0
        self.quick_scans = 0
        self.glided = 0  # frames whose faces were followed by template matching alone
        self._since_scan = 0
        self._quick_in_a_row = 0
        self._templates: list[Template | None] = []
        self._glides_in_a_row = 0
        cycle = rescan_every * (quick_rescans + 1)
        self._phase = random.randrange(cycle) if phase is None else phase
        self._shape: tuple[int, ...] | None = None

    def detect(self, detector: FaceDetector, gray: np.ndarray) -> list[Found]:
        """Return the faces in ``gray`` ((h, w) uint8), largest first, using what the last frames showed."""
        self.frames += 1
        detect_near = getattr(detector, "detect_near", None)
        detect_new = getattr(detector, "detect_new", None)
        due = self._since_scan >= self.rescan_every
        quick = detect_new is not None and self._quick_in_a_row < self.quick_rescans
        if detect_near and self.faces and self._shape == gray.shape and (not due or quick):
            if not due and self._glides_in_a_row < self.glides:
                glided = [
                    glide(gray, face, template) if template else None
                    for face, template in zip(self.faces, self._templates, strict=True)
                ]
                if all(face is not None for face in glided) and not _any_overlap([box_of(f) for f in glided]):
                    self.faces = glided
                    self.glided += 1
                    self._glides_in_a_row += 1
                    self._since_scan += 1
                    return list(self.faces)
            found = [detect_near(gray, box_of(face)) for face in self.faces]
            if all(face is not None for face in found) and not _any_overlap([box_of(f) for f in found]):
                if due:
                    found += detect_new(gray, found)
                    self.quick_scans += 1
                    self._quick_in_a_row += 1
                    self._since_scan = 0
                else:
                    self._since_scan += 1
                return self._looked(gray, sorted(found, key=_area, reverse=True))
        if self.frames == 1 and detect_new is not None:
            # A stream's first frame: the coarse look alone, a fifth of a full scan's cost, finds the visitor
            # at the screen; smaller faces wait for the cycle's full scan. Many streams open at once (a
            # page shared, a load test) otherwise queue their first answers behind as many full scans.
            found = detect_new(gray, [])
            if found:
                self.quick_scans += 1
                self._start_cycle(gray)
                return self._looked(gray, sorted(found, key=_area, reverse=True))
        self.full_scans += 1
        self._since_scan = self._quick_in_a_row = 0
        self._start_cycle(gray)
        return self._looked(gray, detector.detect(gray))

    def _start_cycle(self, gray: np.ndarray) -> None:
        """Note the frame size scanned; on the stream's first frame, start the cycle ``phase`` frames in."""
        self._shape = gray.shape
        if self.frames == 1:
            self._quick_in_a_row, self._since_scan = divmod(self._phase, self.rescan_every)

    def _looked(self, gray: np.ndarray, faces: list[Found]) -> list[Found]:
        """Keep ``faces``, which the detector has just seen, and their templates; return them."""
        self.faces = faces
        self._templates = [template_of(gray, face) for face in faces] if self.glides else []
        self._glides_in_a_row = 0
        return list(faces)


@dataclass(frozen=True, slots=True)
class Template:
    """A face as a look saw it, shrunk by ``scale`` (its longer side :data:`GLIDE_SIDE` px)."""

    patch: np.ndarray
    scale: float


def template_of(gray: np.ndarray, found: Found) -> Template | None:
    """Return ``found``'s template in ``gray``, or None when it is not wholly inside or is flat."""
    x, y, w, h = box_of(found)
    if x < 0 or y < 0 or x + w > gray.shape[1] or y + h > gray.shape[0] or min(w, h) < 8:
        return None
    scale = GLIDE_SIDE / max(w, h)
    patch = cv2.resize(gray[y : y + h, x : x + w], None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    # A flat patch (a covered camera, a face in the dark) matches anything equally well.
    return Template(patch, scale) if min(patch.shape) >= 4 and float(patch.std()) >= 4.0 else None


def glide(gray: np.ndarray, found: Found, template: Template) -> Found | None:
    """Return ``found`` moved to where ``template`` matches best in ``gray`` near it, or None when that
    match is under :data:`GLIDE_MIN_MATCH` or the search would leave the frame."""
    x, y, w, h = box_of(found)
    reach = max(2, round(GLIDE_REACH * max(w, h)))
    left, top, right, bottom = x - reach, y - reach, x + w + reach, y + h + reach
    if left < 0 or top < 0 or right > gray.shape[1] or bottom > gray.shape[0]:
        return None
    scale = template.scale
    region = cv2.resize(gray[top:bottom, left:right], None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    if region.shape[0] < template.patch.shape[0] or region.shape[1] < template.patch.shape[1]:
        return None
    scores = cv2.matchTemplate(region, template.patch, cv2.TM_CCOEFF_NORMED)
    _, best, _, (bx, by) = cv2.minMaxLoc(scores)
    if not best >= GLIDE_MIN_MATCH:  # NaN on a flat region
        return None
    # To a fraction of a shrunk pixel: the peak of a parabola through the best and its neighbours.
    fx = _peak_offset(scores[by, bx - 1 : bx + 2]) if 0 < bx < scores.shape[1] - 1 else 0.0
    fy = _peak_offset(scores[by - 1 : by + 2, bx]) if 0 < by < scores.shape[0] - 1 else 0.0
    return moved(found, (bx + fx) / scale - reach, (by + fy) / scale - reach)


def _peak_offset(three: np.ndarray) -> float:
    left, middle, right = (float(v) for v in three)
    curvature = left - 2 * middle + right
    return 0.0 if curvature >= 0 else max(-0.5, min(0.5, (left - right) / (2 * curvature)))


def _centre(box: Box) -> Point:
    return box[0] + box[2] / 2, box[1] + box[3] / 2


def _drop_nested(faces: list[Face]) -> list[Face]:
    """Return ``faces`` less those nested in another: of a face and one at most half its size
    around its centre, keep the likelier. Seen from afar, a small face's surroundings can look
    like a big face to the whole-frame look."""
    dropped: set[int] = set()
    for i, outer in enumerate(faces):
        x, y, w, h = outer.box
        for j, inner in enumerate(faces):
            cx, cy = _centre(inner.box)
            if i != j and _area(inner) * 2 <= _area(outer) and x <= cx <= x + w and y <= cy <= y + h:
                dropped.add(i if (inner.score or 0) >= (outer.score or 0) else j)
    return [face for index, face in enumerate(faces) if index not in dropped]


def _overlaps(face: Face, faces: list[Face]) -> bool:
    return any(_iou(face.box, other.box) > NMS_IOU for other in faces)


def _area(found: Found) -> int:
    box = box_of(found)
    return box[2] * box[3]


def _any_overlap(boxes: list[Box], threshold: float = 0.5) -> bool:
    return any(_iou(a, b) > threshold for i, a in enumerate(boxes) for b in boxes[i + 1 :])


def _iou(a: Box, b: Box) -> float:
    width = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    height = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    inter = width * height
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)
