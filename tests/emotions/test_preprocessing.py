from __future__ import annotations

import cv2
import numpy as np
import pytest

from emotions.detector import BlazeFaceDetector
from emotions.preprocessing import (
    EYE_CENTRE,
    FACE_WIDTH,
    INPUT_SHAPE,
    align_face,
    crop_face,
    faces_to_model_input,
    to_model_input,
)


def test_it_scales_faces_to_float32_between_0_and_1():
    faces = np.array([np.zeros((48, 48)), np.full((48, 48), 255)], dtype=np.uint8)

    scaled = to_model_input(faces)

    assert scaled.shape == (2, 48, 48, 1)
    assert scaled.dtype == np.float32
    assert scaled.min() == 0.0 and scaled.max() == 1.0


def test_it_accepts_faces_with_a_channel_axis():
    faces = np.full((3, 48, 48, 1), 51, dtype=np.uint8)

    np.testing.assert_allclose(to_model_input(faces), 0.2)


def test_it_refuses_faces_of_another_size():
    with pytest.raises(ValueError):
        to_model_input(np.zeros((1, 64, 64), dtype=np.uint8))


def test_it_crops_a_box_to_48_by_48_grayscale(astronaut_gray):
    face = crop_face(astronaut_gray, (180, 70, 110, 110))

    assert face.shape == (48, 48)
    assert face.dtype == np.uint8


def test_it_clips_a_widened_box_to_the_image(astronaut_gray):
    face = crop_face(astronaut_gray, (0, 0, 100, 100), margin=0.5)

    assert face.shape == (48, 48)


def test_it_refuses_a_box_outside_the_image(astronaut_gray):
    with pytest.raises(ValueError):
        crop_face(astronaut_gray, (600, 600, 10, 10))


def test_it_prepares_every_box_in_order(astronaut_gray):
    boxes = [(180, 70, 110, 110), (0, 0, 48, 48)]

    faces = faces_to_model_input(astronaut_gray, boxes)

    assert faces.shape == (2, *INPUT_SHAPE)
    assert 0.0 <= faces.min() and faces.max() <= 1.0
    np.testing.assert_allclose(faces[1, :, :, 0], astronaut_gray[:48, :48] / 255.0, atol=1e-6)


def test_it_returns_an_empty_batch_without_boxes(astronaut_gray):
    faces = faces_to_model_input(astronaut_gray, [])

    assert faces.shape == (0, *INPUT_SHAPE)
    assert faces.dtype == np.float32


# --- Alignment -----------------------------------------------------------------------------------


def two_eyes(angle: float, distance: float, centre=(300.5, 200.5)) -> tuple[np.ndarray, tuple]:
    """Return a 640×480 image of two bright dots ("eyes") ``distance`` apart, tilted ``angle`` degrees."""
    image = np.zeros((480, 640), np.uint8)
    half = np.array([np.cos(np.radians(angle)), np.sin(np.radians(angle))]) * distance / 2
    eyes = (tuple(np.array(centre) - half), tuple(np.array(centre) + half))
    for x, y in eyes:
        # Anti-aliased discs at sub-pixel centres (shift=4: coordinates in 1/16 px).
        center = (round((x - 0.5) * 16), round((y - 0.5) * 16))
        cv2.circle(image, center, round(distance / 8 * 16), 255, -1, lineType=cv2.LINE_AA, shift=4)
    return image, eyes


def dot_centres(face: np.ndarray) -> list[tuple[float, float]]:
    """Return the brightness-weighted centre of the left and right half of a 48×48 face."""
    ys, xs = np.mgrid[0:48, 0:48] + 0.5
    weights = face.astype(np.float64)
    centres = []
    for half in (xs < 24, xs >= 24):
        w = weights * half
        centres.append(((w * xs).sum() / w.sum(), (w * ys).sum() / w.sum()))
    return centres


@pytest.mark.parametrize("angle", [-30, -20, 0, 15, 30])
@pytest.mark.parametrize("distance", [20.0, 45.0, 130.0])
def test_alignment_levels_the_eyes_and_frames_the_face_by_its_width(angle, distance):
    image, eyes = two_eyes(angle, distance)
    width = distance / 0.43  # BlazeFace's boxes are about 2.3 eye distances wide

    face = align_face(image, eyes, width)

    (x1, y1), (x2, y2) = dot_centres(face)
    apart = distance * FACE_WIDTH / width
    assert abs(y1 - EYE_CENTRE[1]) < 0.3 and abs(y2 - EYE_CENTRE[1]) < 0.3  # level, at the eye line
    assert abs((x1 + x2) / 2 - EYE_CENTRE[0]) < 0.3
    assert abs((x2 - x1) - apart) < 0.4


def test_alignment_takes_the_eyes_in_either_order():
    image, eyes = two_eyes(20, 45.0)

    np.testing.assert_array_equal(align_face(image, eyes, 100), align_face(image, eyes[::-1], 100))


def test_alignment_repeats_the_edge_for_a_face_at_the_border(astronaut_gray):
    face = align_face(astronaut_gray, ((2.0, 10.0), (40.0, 12.0)), 90)

    assert face.shape == (48, 48) and face.dtype == np.uint8


@pytest.mark.parametrize(
    ("eyes", "width"), [(((10.0, 10.0), (10.2, 10.0)), 50), (((10.0, 10.0), (40, 10)), 0)]
)
def test_alignment_refuses_eyes_or_a_box_too_small(astronaut_gray, eyes, width):
    with pytest.raises(ValueError):
        align_face(astronaut_gray, eyes, width)


def tilted(gray: np.ndarray, angle: float, centre=(230, 125)) -> np.ndarray:
    return cv2.warpAffine(gray, cv2.getRotationMatrix2D(centre, angle, 1.0), gray.shape[::-1])


def eye_angle(detector: BlazeFaceDetector, face: np.ndarray) -> float:
    """Return the angle of the eye line (degrees) the detector sees in a 48×48 face, shown large."""
    large = cv2.copyMakeBorder(cv2.resize(face, (192, 192)), 96, 96, 96, 96, cv2.BORDER_REPLICATE)
    (x1, y1), (x2, y2) = detector.detect(large)[0].eyes
    return float(np.degrees(np.arctan2(y2 - y1, x2 - x1)))


@pytest.mark.parametrize("angle", [-30, 30])
def test_a_tilted_face_reaches_the_model_upright_once_aligned(astronaut_gray, angle):
    detector = BlazeFaceDetector()
    frame = tilted(astronaut_gray, angle)
    face = detector.detect(frame)[0]

    aligned = align_face(frame, face.eyes, face.box[2])
    cropped = crop_face(frame, face.box)

    assert abs(eye_angle(detector, aligned)) < 5
    assert abs(eye_angle(detector, cropped) + angle) < 10  # without alignment the eyes keep the tilt


def test_it_aligns_the_faces_whose_eyes_it_is_given(astronaut_gray):
    boxes = [(180, 70, 110, 110), (0, 0, 48, 48)]
    eyes = [((203.0, 103.0), (247.0, 105.0)), None]

    faces = faces_to_model_input(astronaut_gray, boxes, eyes=eyes)

    np.testing.assert_allclose(faces[0, :, :, 0], align_face(astronaut_gray, eyes[0], 110) / 255.0, atol=1e-6)
    np.testing.assert_allclose(faces[1, :, :, 0], astronaut_gray[:48, :48] / 255.0, atol=1e-6)


def test_it_refuses_eyes_that_do_not_match_the_boxes(astronaut_gray):
    with pytest.raises(ValueError):
        faces_to_model_input(astronaut_gray, [(0, 0, 48, 48)], eyes=[None, None])
