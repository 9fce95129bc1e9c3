from __future__ import annotations

import numpy as np
import pytest

from emotions.preprocessing import INPUT_SHAPE, crop_face, faces_to_model_input, to_model_input


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
