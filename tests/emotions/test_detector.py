from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from emotions.detector import (
    KEYPOINTS,
    MAX_SCAN_SIDE,
    MODEL_DIR,
    BlazeFaceDetector,
    Face,
    FaceDetector,
    FaceTrack,
    HaarFaceDetector,
    _merge,
    as_face,
    glide,
    template_of,
)

REPO = Path(__file__).resolve().parents[2]

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

    assert track.full_scans + track.quick_scans == 2
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
            if track.full_scans + track.quick_scans == 2:
                rescanned_at.append(index)
                break

    assert len(rescanned_at) == len(tracks) and all(1 <= i <= 11 for i in rescanned_at)
    assert len(set(rescanned_at)) > 1


class StillFace:
    """A detector that always sees one face in the same place: which scans a track asks for is all
    that is left to see."""

    face = Face((100, 80, 120, 120), None, 0.9)

    def detect(self, gray):
        return [self.face]

    def detect_near(self, gray, box):
        return self.face

    def detect_new(self, gray, known):
        return []


def test_streams_that_start_together_spread_their_full_scans_over_the_whole_cycle():
    # A full scan, then five quick rescans, one every 10 frames: a cycle of about 60 frames. Drawn only
    # within the first 10, the phases of 60 streams that open at once put every later full scan of all of
    # them within the same 10 frames (2 s at 5 fps), once a cycle.
    random.seed(3)
    tracks = [FaceTrack(rescan_every=10, quick_rescans=5, glides=0) for _ in range(60)]
    frame = np.zeros((240, 320), dtype=np.uint8)
    full_scans_at = []
    for index in range(130):
        for track in tracks:
            before = track.full_scans
            track.detect(StillFace(), frame)
            if index and track.full_scans > before:
                full_scans_at.append(index)

    assert len(full_scans_at) >= len(tracks)  # every stream's periodic full scan, at least once
    busiest = max(full_scans_at.count(index) for index in set(full_scans_at))
    assert busiest <= 6  # a few streams' full scans per frame (drawn within 10 frames: up to 10)
    assert len(set(full_scans_at)) >= 40  # spread over the cycle (drawn within 10 frames: 20 frames)


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


def test_a_glide_follows_a_moving_face_keypoints_and_all(astronaut_gray):
    detector = BlazeFaceDetector()
    first, second = webcam_frames(astronaut_gray, 2)  # the face moved 3 px right and 2 down
    face = detector.detect(first)[0]

    moved = glide(second, face, template_of(first, face))

    assert moved is not None and moved.score == face.score
    assert abs(moved.box[0] - face.box[0] - 3) <= 1 and abs(moved.box[1] - face.box[1] - 2) <= 1
    shifts = [np.subtract(moved.keypoints[name], point) for name, point in face.keypoints.items()]
    assert all(shift == pytest.approx(shifts[0]) for shift in shifts)  # the face moved as one
    assert shifts[0] == pytest.approx((3, 2), abs=1)
    looked = detector.detect(second)[0]
    assert np.hypot(*np.subtract(moved.keypoints["left_eye"], looked.keypoints["left_eye"])) < 3


def test_a_glide_gives_up_where_the_face_is_gone_or_nothing_can_be_matched(astronaut_gray):
    detector = BlazeFaceDetector()
    frame = webcam_frames(astronaut_gray, 1)[0]
    face = detector.detect(frame)[0]
    template = template_of(frame, face)
    elsewhere = np.roll(frame, 200, axis=1)  # the scene moved on: another part of it is where the face was

    assert glide(elsewhere, face, template) is None
    assert glide(np.zeros_like(frame), face, template) is None
    assert template_of(np.full_like(frame, 90), face) is None  # flat: would match anything
    assert template_of(frame, Face((600, 400, 80, 80))) is None  # partly outside the frame


def test_a_face_track_glides_between_looks_and_looks_when_a_glide_fails(astronaut_gray):
    detector = BlazeFaceDetector()
    frames = webcam_frames(astronaut_gray, 7)
    track = FaceTrack(rescan_every=100, phase=0, glides=2)
    looks = []
    original = detector.detect_near

    def counted(gray, box):
        looks.append(len(tracked))
        return original(gray, box)

    detector.detect_near = counted
    tracked = []
    for frame in frames:
        tracked.append(track.detect(detector, frame))

    # A coarse look (the stream's first frame), then two glides after each look.
    assert (track.full_scans, track.quick_scans) == (0, 1) and track.glided == 4 and looks == [3, 6]
    for faces, frame in zip(tracked, frames, strict=True):
        assert len(faces) == 1
        full = detector.detect(frame)[0]
        assert abs(centre(faces[0].box)[0] - centre(full.box)[0]) < 4
    # A face that turned too much to match is looked for instead.
    turn = cv2.getRotationMatrix2D(centre(tracked[-1][0].box), 30, 1.0)
    turned = track.detect(detector, cv2.warpAffine(frames[-1], turn, (640, 480)))
    assert track.glided == 4 and looks[-1] == 7 and len(turned) == 1


def test_a_face_track_without_glides_looks_every_frame(astronaut_gray):
    detector = BlazeFaceDetector()
    track = FaceTrack(rescan_every=100, phase=0, glides=0)

    for frame in webcam_frames(astronaut_gray, 4):
        track.detect(detector, frame)

    assert track.glided == 0 and (track.full_scans, track.quick_scans) == (0, 1)


def test_periodic_rescans_of_a_tracked_face_look_for_newcomers_and_every_third_is_full(astronaut_gray):
    detector = BlazeFaceDetector()
    # The astronaut's head and shoulders, the face about 130 px high: a newcomer the coarse look sees.
    face = cv2.resize(astronaut_gray[5:285, 90:370], (320, 320))
    alone = np.full((320, 640), 128, dtype=np.uint8)
    alone[:, :320] = face
    together = alone.copy()
    together[:, 320:] = face
    track = FaceTrack(rescan_every=2, phase=0, quick_rescans=2)

    scans = []
    for frame in [alone] * 3 + [together] * 7:
        faces = track.detect(detector, frame)
        scans.append((len(faces), track.full_scans, track.quick_scans))

    # The first frame's coarse look, two tracked frames, then a quick rescan that finds the newcomer (the
    # two faces are tracked from then on), and after two quick rescans a full one.
    assert scans == [
        (1, 0, 1),
        (1, 0, 1),
        (1, 0, 1),
        (2, 0, 2),
        (2, 0, 2),
        (2, 0, 2),
        (2, 0, 3),
        (2, 0, 3),
        (2, 0, 3),
        (2, 1, 3),
    ]
    assert (
        track.faces[0].box[0] < 320 <= track.faces[1].box[0]
        or track.faces[1].box[0] < 320 <= track.faces[0].box[0]
    )


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


# --- BlazeFace ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def blazeface() -> BlazeFaceDetector:
    return BlazeFaceDetector()


def tilted(gray: np.ndarray, angle: float) -> np.ndarray:
    """Return ``gray`` turned ``angle`` degrees (counter-clockwise) about the astronaut's face."""
    matrix = cv2.getRotationMatrix2D(FACE_CENTRE, angle, 1.0)
    return cv2.warpAffine(gray, matrix, gray.shape[::-1], borderMode=cv2.BORDER_REFLECT)


def assert_on_the_astronaut(face: Face, scale: float = 1.0) -> None:
    cx, cy = centre(face.box)
    assert abs(cx - FACE_CENTRE[0] * scale) < 25 * scale and abs(cy - FACE_CENTRE[1] * scale) < 25 * scale
    assert 70 * scale <= face.box[2] <= 170 * scale


@pytest.mark.parametrize("angle", [0, -30, 30])
def test_blazeface_finds_the_astronaut_upright_and_tilted(blazeface, astronaut_gray, angle):
    faces = blazeface.detect(tilted(astronaut_gray, angle))

    assert len(faces) == 1
    assert_on_the_astronaut(faces[0])
    assert 0.5 <= faces[0].score <= 1.0


@pytest.mark.parametrize("angle", [-30, 30])
def test_blazeface_sees_the_tilt_in_the_eyes(blazeface, astronaut_gray, angle):
    (right_x, right_y), (left_x, left_y) = blazeface.detect(tilted(astronaut_gray, angle))[0].eyes

    measured = np.degrees(np.arctan2(left_y - right_y, left_x - right_x))

    # The astronaut's eyes are about 3° off level to begin with; warpAffine turns counter-clockwise.
    assert abs(measured - (3.3 - angle)) < 8


def test_blazeface_returns_keypoints_inside_the_box(blazeface, astronaut_gray):
    face = blazeface.detect(astronaut_gray)[0]
    x, y, w, h = face.box

    assert set(face.keypoints) == set(KEYPOINTS)
    for name in ("right_eye", "left_eye", "nose_tip", "mouth"):
        px, py = face.keypoints[name]
        assert x <= px <= x + w and y <= py <= y + h, name
    # MediaPipe's names are the face's own sides: on this unmirrored photo the right eye is on the left.
    assert face.keypoints["right_eye"][0] < face.keypoints["nose_tip"][0] < face.keypoints["left_eye"][0]
    assert face.keypoints["nose_tip"][1] < face.keypoints["mouth"][1]


@pytest.mark.parametrize("size", [(640, 480), (320, 240), (1280, 960)])
def test_blazeface_maps_boxes_and_keypoints_back_to_the_original_frame(blazeface, astronaut_gray, size):
    width, height = size
    frame = cv2.resize(astronaut_gray, (height, height))
    frame = cv2.copyMakeBorder(frame, 0, 0, 0, width - height, cv2.BORDER_CONSTANT, value=0)
    scale = height / 512

    faces = blazeface.detect(frame)

    assert len(faces) == 1
    assert_on_the_astronaut(faces[0], scale)
    x, y, w, h = faces[0].box
    assert 0 <= x and 0 <= y and x + w <= width and y + h <= height
    eye_x, eye_y = faces[0].keypoints["right_eye"]
    assert abs(eye_x - 203 * scale) < 12 * scale and abs(eye_y - 103 * scale) < 12 * scale


def test_blazeface_finds_a_face_an_eighth_of_the_frame_high(blazeface, astronaut_gray):
    frame = np.full((480, 640), 90, dtype=np.uint8)
    # The face box is about 100 px of the 512 px photo: at 0.6 the face is about 60 px, 1/8 of 480.
    small = cv2.resize(astronaut_gray, (307, 307), interpolation=cv2.INTER_AREA)
    frame[100:407, 250:557] = small

    faces = blazeface.detect(frame)

    assert len(faces) == 1
    cx, cy = centre(faces[0].box)
    assert abs(cx - (250 + FACE_CENTRE[0] * 0.6)) < 15 and abs(cy - (100 + FACE_CENTRE[1] * 0.6)) < 15


def test_blazeface_returns_every_face_largest_first(blazeface, astronaut_gray):
    frame = np.zeros((480, 920), dtype=np.uint8)
    frame[:, :480] = cv2.resize(astronaut_gray, (480, 480))
    frame[:420, 500:920] = cv2.resize(astronaut_gray, (420, 420))

    faces = blazeface.detect(frame)

    assert len(faces) == 2
    assert faces[0].box[2] * faces[0].box[3] > faces[1].box[2] * faces[1].box[3]
    assert centre(faces[0].box)[0] < 480 < centre(faces[1].box)[0]


@pytest.mark.parametrize("height", [240, 360, 480, 512, 720, 960])
def test_blazeface_finds_the_astronaut_alone_at_every_frame_size(blazeface, astronaut_gray, height):
    # The neck ring of her suit scores about 0.7 as a small face at some scales: the mirrored look
    # and never enlarging the frame keep it out.
    frame = cv2.resize(astronaut_gray, (height, height), interpolation=cv2.INTER_AREA)
    frame = cv2.copyMakeBorder(frame, 0, 0, 0, height // 3, cv2.BORDER_CONSTANT, value=0)

    faces = blazeface.detect(frame)

    assert len(faces) == 1
    assert_on_the_astronaut(faces[0], height / 512)


def test_blazeface_looks_at_the_whole_frame_at_once_as_its_window_would(blazeface, astronaut_gray):
    # The model is fully convolutional: run on a frame larger than its 128×128 input, it finds a
    # face where its own input, cut around the face, finds it.
    frame = np.full((480, 640), 100, dtype=np.uint8)
    frame[120:376, 300:556] = cv2.resize(astronaut_gray, (256, 256), interpolation=cv2.INTER_AREA)
    model = blazeface._model()

    scanned = _merge([model.scan(frame, 0.5, 0.5)], frame.shape)
    window = _merge([model.candidates(frame[120:376, 300:556], (300, 120), 0.5)], frame.shape)

    assert len(scanned) == 1 and len(window) == 1
    assert max(abs(a - b) for a, b in zip(scanned[0].box, window[0].box, strict=True)) <= 6
    right, left = scanned[0].eyes
    assert right[0] < left[0] and abs(right[0] - window[0].eyes[0][0]) <= 4


@pytest.mark.parametrize(
    ("shape", "fine"),
    [((480, 640), 128 / 240), ((960, 1280), 128 / 480), ((240, 320), 1.0), ((100, 100), None)],
)
def test_blazeface_scans_coarse_then_fine_never_enlarging_the_frame(blazeface, shape, fine):
    coarse_scale, fine_scale = blazeface.scales(shape)

    assert coarse_scale == pytest.approx(128 / max(shape))
    assert fine_scale == (pytest.approx(fine) if fine else None)


def test_blazeface_scans_a_very_wide_frame_within_bounds(blazeface):
    frame = np.random.default_rng(0).integers(0, 256, (40, 3000), dtype=np.uint8)

    _, fine_scale = blazeface.scales(frame.shape)

    assert fine_scale is None or round(3000 * fine_scale) <= MAX_SCAN_SIDE
    assert blazeface.detect(frame) == []


def test_blazeface_keeps_a_bounded_number_of_interpreters(blazeface):
    model = blazeface._model()
    for height in range(60, 1000, 40):
        blazeface.detect(np.full((height, 640), 128, np.uint8))

    assert len(model._inputs) <= model.MAX_INPUTS


def test_blazeface_needs_a_weak_face_to_score_mirrored_too(blazeface, astronaut_gray):
    face = blazeface.detect(astronaut_gray)[0]

    # The fine look's faces (confirm score 0.7) are held to the mean of the look and its mirror;
    # the coarse look's (min_score) are not looked at mirrored.
    confirmed = blazeface._confirm(astronaut_gray, face.box, 0.7)
    plain = blazeface._confirm(astronaut_gray, face.box, blazeface.min_score)
    mirrored = blazeface._look(astronaut_gray, plain.box, mirrored=True)

    assert mirrored is not None and mirrored.score > 0.7
    assert confirmed.score == pytest.approx(min(plain.score, (plain.score + mirrored.score) / 2))
    assert confirmed.box == plain.box


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_blazeface_finds_nothing_on_noise(blazeface, seed):
    noise = np.random.default_rng(seed).integers(0, 256, (480, 640), dtype=np.uint8)

    assert blazeface.detect(noise) == []


@pytest.mark.parametrize("frame", [np.full((240, 320), 128, np.uint8), np.zeros((48, 48), np.uint8)])
def test_blazeface_finds_nothing_on_a_blank_frame(blazeface, frame):
    assert blazeface.detect(frame) == []


def test_blazeface_finds_a_known_face_near_where_it_was(blazeface, astronaut_gray):
    frames = webcam_frames(astronaut_gray, 2)
    last = blazeface.detect(frames[0])[0]

    near = blazeface.detect_near(frames[1], last.box)

    assert near is not None and near.keypoints
    assert abs(centre(near.box)[0] - centre(last.box)[0] - 3) < 8
    assert blazeface.detect_near(np.zeros((480, 640), np.uint8), last.box) is None


def test_a_face_track_follows_a_face_with_blazeface(blazeface, astronaut_gray):
    track = FaceTrack(rescan_every=10, phase=0)
    frames = webcam_frames(astronaut_gray, 12)

    tracked = [track.detect(blazeface, frame) for frame in frames]

    assert (track.full_scans, track.quick_scans) == (0, 2)  # the first frame's coarse look, a rescan
    for faces, frame in zip(tracked, frames, strict=True):
        assert len(faces) == 1 and faces[0].keypoints
        full = blazeface.detect(frame)[0]
        assert abs(centre(faces[0].box)[0] - centre(full.box)[0]) < 10


def test_a_streams_first_frame_is_scanned_in_full_only_when_the_coarse_look_finds_no_face(
    blazeface, astronaut_gray
):
    near = FaceTrack(phase=0)
    sitting_back = FaceTrack(phase=0)
    frame = np.full((480, 640), 90, dtype=np.uint8)
    frame[100:407, 250:557] = cv2.resize(astronaut_gray, (307, 307), interpolation=cv2.INTER_AREA)

    at_the_screen = near.detect(blazeface, webcam_frames(astronaut_gray, 1)[0])
    an_eighth_high = sitting_back.detect(blazeface, frame)  # a face the coarse look cannot see

    assert len(at_the_screen) == 1 and (near.full_scans, near.quick_scans) == (0, 1)
    assert len(an_eighth_high) == 1 and (sitting_back.full_scans, sitting_back.quick_scans) == (1, 0)


def test_blazeface_works_from_several_threads_at_once(blazeface, astronaut_gray):
    from concurrent.futures import ThreadPoolExecutor

    frames = [tilted(astronaut_gray, angle) for angle in (-20, 0, 20)] * 4

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(blazeface.detect, frames))

    assert results == [blazeface.detect(frame) for frame in frames]


def test_blazeface_refuses_a_folder_without_its_model(tmp_path):
    with pytest.raises(FileNotFoundError):
        BlazeFaceDetector(model_dir=tmp_path)


def test_blazeface_ships_its_model_with_its_licence():
    files = {path.name for path in MODEL_DIR.iterdir()}

    assert {"face_detection_short_range.tflite", "LICENSE", "NOTICE"} <= files
    assert "Apache License" in (MODEL_DIR / "LICENSE").read_text()


def test_blazeface_runs_offline_without_tensorflow(astronaut_jpeg, tmp_path):
    image = tmp_path / "astronaut.jpg"
    image.write_bytes(astronaut_jpeg)
    code = (
        "import socket, sys\n"
        "def refuse(*args, **kwargs):\n"
        "    raise OSError('no network in this test')\n"
        "socket.socket = socket.create_connection = socket.getaddrinfo = refuse\n"
        "import cv2\n"
        "from emotions.detector import BlazeFaceDetector\n"
        f"faces = BlazeFaceDetector().detect(cv2.imread({str(image)!r}, cv2.IMREAD_GRAYSCALE))\n"
        "assert len(faces) == 1 and faces[0].keypoints, faces\n"
        "assert 'tensorflow' not in sys.modules and 'django' not in sys.modules\n"
    )

    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=120)


def test_it_turns_plain_boxes_into_faces_without_keypoints():
    face = as_face((1, 2, 30, 40))

    assert face == Face(box=(1, 2, 30, 40)) and face.eyes is None
    assert as_face(face) is face


# --- The setting ---------------------------------------------------------------------------------


def test_the_setting_chooses_the_detector(settings):
    from emotions.services import face_detector_build

    settings.EMOTIONS_DETECTOR = "haar"
    assert isinstance(face_detector_build(), HaarFaceDetector)

    settings.EMOTIONS_DETECTOR = "blazeface"
    settings.EMOTIONS_DETECTOR_MIN_SCORE = 0.6
    detector = face_detector_build()
    assert isinstance(detector, BlazeFaceDetector) and detector.min_score == 0.6


def test_blazeface_is_the_default_detector():
    from django.conf import settings

    assert settings.EMOTIONS_DETECTOR == "blazeface"


def test_the_engine_serves_the_detector_the_setting_names(settings):
    from emotions.services import emotion_engine

    settings.EMOTIONS_BACKEND = "emotions.fake.FakeClassifier"
    settings.EMOTIONS_DETECTOR = "haar"

    assert isinstance(emotion_engine().pipeline.detector, HaarFaceDetector)
