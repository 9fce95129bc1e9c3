from __future__ import annotations

import random

import cv2
import numpy as np
import pytest

from emotions.detector import FaceDetector, FaceTrack, HaarFaceDetector

# Where the astronaut's face is in the 512×512 original (x, y of its centre), by inspection.
FACE_CENTRE = (230, 125)


@pytest.fixture(scope="module")
def detector() -> HaarFaceDetector:
    return HaarFaceDetector()


def centre(box: tuple[int, int, int, int]) -> tuple[float, float]:
    x, y, w, h = box
    return x + w / 2, y + h / 2


def test_it_finds_the_astronauts_face(detector, astronaut_gray):
    boxes = detector.detect(astronaut_gray)

    assert len(boxes) == 1
    cx, cy = centre(boxes[0])
    assert abs(cx - FACE_CENTRE[0]) < 25 and abs(cy - FACE_CENTRE[1]) < 25
    assert 80 <= boxes[0][2] <= 170


@pytest.mark.parametrize("size", [(640, 480), (320, 240), (1280, 960)])
def test_it_maps_boxes_back_to_the_original_frame(detector, astronaut_gray, size):
    width, height = size
    frame = cv2.resize(astronaut_gray, (height, height))
    frame = cv2.copyMakeBorder(frame, 0, 0, 0, width - height, cv2.BORDER_CONSTANT, value=0)
    scale = height / 512

    boxes = detector.detect(frame)

    assert len(boxes) == 1
    cx, cy = centre(boxes[0])
    assert abs(cx - FACE_CENTRE[0] * scale) < 25 * scale and abs(cy - FACE_CENTRE[1] * scale) < 25 * scale
    x, y, w, h = boxes[0]
    assert 0 <= x and 0 <= y and x + w <= width and y + h <= height


def test_it_returns_every_face_largest_first(detector, astronaut_gray):
    frame = np.zeros((480, 920), dtype=np.uint8)
    frame[:, :480] = cv2.resize(astronaut_gray, (480, 480))
    frame[:420, 500:920] = cv2.resize(astronaut_gray, (420, 420))

    boxes = detector.detect(frame)

    assert len(boxes) == 2
    assert boxes[0][2] * boxes[0][3] > boxes[1][2] * boxes[1][3]
    assert centre(boxes[0])[0] < 480 < centre(boxes[1])[0]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_it_finds_nothing_on_noise(detector, seed):
    noise = np.random.default_rng(seed).integers(0, 256, (480, 640), dtype=np.uint8)

    assert detector.detect(noise) == []


def test_it_finds_nothing_on_a_blank_frame(detector):
    assert detector.detect(np.full((240, 320), 128, dtype=np.uint8)) == []


def test_it_ignores_faces_smaller_than_the_minimum_fraction(astronaut_gray):
    strict = HaarFaceDetector(min_face_fraction=0.5)

    assert strict.detect(astronaut_gray) == []


def test_it_works_from_several_threads_at_once(detector, astronaut_gray):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(detector.detect, [astronaut_gray] * 8))

    assert all(result == results[0] and len(result) == 1 for result in results)


def test_it_refuses_a_missing_cascade_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        HaarFaceDetector(cascade_path=tmp_path / "nothing.xml")


def test_it_implements_the_face_detector_interface(detector):
    def run(candidate: FaceDetector) -> list:
        return candidate.detect(np.zeros((48, 48), dtype=np.uint8))

    assert run(detector) == []


def webcam_frames(astronaut_gray, count: int) -> list[np.ndarray]:
    """Return 640×480 frames of the astronaut drifting a few pixels per frame."""
    frames = []
    for i in range(count):
        matrix = np.float32([[1.0, 0, 40 + 3 * i], [0, 1.0, -10 + 2 * i]])
        frames.append(cv2.warpAffine(cv2.resize(astronaut_gray, (480, 480)), matrix, (640, 480)))
    return frames


def test_a_face_track_follows_a_face_without_scanning_every_frame(detector, astronaut_gray):
    track = FaceTrack(rescan_every=10, phase=0)
    frames = webcam_frames(astronaut_gray, 12)

    tracked = [track.detect(detector, frame) for frame in frames]

    assert track.full_scans == 2
    for boxes, frame in zip(tracked, frames, strict=True):
        assert len(boxes) == 1
        full = detector.detect(frame)[0]
        assert abs(centre(boxes[0])[0] - centre(full)[0]) < 15 and abs(boxes[0][2] - full[2]) < 30


def test_face_tracks_that_start_together_spread_their_full_scans(detector, astronaut_gray):
    frames = webcam_frames(astronaut_gray, 12)
    random.seed(8)  # phases are random; a fixed seed keeps the test the same every run
    tracks = [FaceTrack(rescan_every=10) for _ in range(8)]
    rescanned_at = []
    for track in tracks:
        for index, frame in enumerate(frames):
            track.detect(detector, frame)
            if track.full_scans == 2:
                rescanned_at.append(index)
                break

    assert len(rescanned_at) == len(tracks) and all(1 <= i <= 11 for i in rescanned_at)
    assert len(set(rescanned_at)) > 1


def test_a_face_track_scans_the_whole_frame_when_the_face_is_lost(detector, astronaut_gray):
    track = FaceTrack()
    frames = webcam_frames(astronaut_gray, 2)
    track.detect(detector, frames[0])

    assert track.detect(detector, np.zeros((480, 640), dtype=np.uint8)) == []
    assert track.full_scans == 2
    assert len(track.detect(detector, frames[1])) == 1
    assert track.full_scans == 3


def test_a_face_track_scans_again_when_the_frame_size_changes(detector, astronaut_gray):
    track = FaceTrack()
    track.detect(detector, webcam_frames(astronaut_gray, 1)[0])

    boxes = track.detect(detector, cv2.resize(webcam_frames(astronaut_gray, 1)[0], (320, 240)))

    assert track.full_scans == 2
    assert len(boxes) == 1 and boxes[0][0] + boxes[0][2] <= 320


def test_a_face_track_works_with_a_detector_that_cannot_search_near_a_face(astronaut_gray):
    class Plain:
        calls = 0

        def detect(self, gray):
            Plain.calls += 1
            return [(1, 2, 30, 30)]

    track = FaceTrack()

    for _ in range(3):
        assert track.detect(Plain(), astronaut_gray) == [(1, 2, 30, 30)]
    assert Plain.calls == 3
