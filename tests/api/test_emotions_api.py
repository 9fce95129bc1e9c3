"""POST /api/v1/emotions/analyze: normal use and hostile input."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings

from emotions.batcher import Overloaded
from emotions.classifier import ModelUnavailable
from emotions.labels import EMOTIONS
from emotions.pipeline import EmotionPipeline
from emotions.services import emotion_engine
from tests.api.conftest import encode

URL = "/api/v1/emotions/analyze"

pytestmark = pytest.mark.django_db


def upload(content: bytes, name: str = "face.jpg", content_type: str = "image/jpeg") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type=content_type)


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert "Traceback" not in response.content.decode()
    return body["error"]


def test_it_reads_the_face_in_one_uploaded_image(engine, client_all, face_jpeg):
    response = client_all.post(URL, {"image": upload(face_jpeg)}, format="multipart")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["model_version"] == emotion_engine().pipeline.model_version
    assert body["timings_ms"]["total"] > 0
    [image] = body["images"]
    assert (image["index"], image["width"], image["height"]) == (0, 640, 480)
    [face] = image["faces"]
    assert len(face["box"]) == 4 and all(isinstance(v, int) for v in face["box"])  # [x, y, w, h]
    assert set(face["probabilities"]) == set(EMOTIONS)
    assert sum(face["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)
    assert face["dominant"] == max(face["probabilities"], key=face["probabilities"].get)
    assert face["confidence"] == face["probabilities"][face["dominant"]]
    assert set(image["timings_ms"]) == {"decode", "detect", "preprocess", "classify", "total"}


@pytest.mark.parametrize("fixture, content_type", [("face_jpeg", "image/jpeg"), ("face_png", "image/png")])
def test_it_reads_a_raw_image_body(engine, client_all, request, fixture, content_type):
    response = client_all.post(URL, request.getfixturevalue(fixture), content_type=content_type)

    assert response.status_code == 200, response.content
    assert len(response.json()["images"][0]["faces"]) == 1


def test_it_classifies_the_faces_of_all_images_in_one_batch(engine, client_all, face_jpeg, noise_jpeg):
    images = [upload(face_jpeg, "a.jpg"), upload(noise_jpeg, "b.jpg"), upload(face_jpeg, "c.jpg")]

    response = client_all.post(URL, {"images": images}, format="multipart")

    assert response.status_code == 200, response.content
    assert [len(image["faces"]) for image in response.json()["images"]] == [1, 0, 1]
    assert emotion_engine().classifier.backend.batch_sizes == [2]


def test_an_image_without_a_face_is_an_empty_list_not_an_error(engine, client_all, noise_jpeg):
    response = client_all.post(URL, noise_jpeg, content_type="image/jpeg")

    assert response.status_code == 200
    assert response.json()["images"][0]["faces"] == []


# --- The decoder's refusals -----------------------------------------------------------------


def test_it_refuses_an_image_that_is_not_jpeg_or_png_with_415(engine, client_all):
    gif = b"GIF89a\x01\x00\x01\x00\x00\x00\x00;"

    response = client_all.post(URL, {"image": upload(gif, "a.gif", "image/gif")}, format="multipart")

    error = assert_error(response, 415, "unsupported_format")
    assert error["details"] == {
        "field": "image",
        "index": 0,
        "rejected": [
            {"index": 0, "code": "unsupported_format", "message": error["details"]["rejected"][0]["message"]}
        ],
    }


def test_it_refuses_a_truncated_jpeg_as_undecodable(engine, client_all, face_jpeg):
    response = client_all.post(URL, face_jpeg[: len(face_jpeg) // 2], content_type="image/jpeg")

    assert_error(response, 400, "undecodable")


def test_it_refuses_an_image_with_too_many_pixels_with_413(engine, client_all, settings):
    settings.EMOTIONS_MAX_IMAGE_PIXELS = 64 * 64
    big = encode(np.zeros((100, 100), dtype=np.uint8), ".png")

    response = client_all.post(URL, big, content_type="image/png")

    assert_error(response, 413, "too_many_pixels")


def test_it_refuses_an_uploaded_image_over_the_byte_limit_while_it_streams_in(engine, client_all, settings):
    settings.EMOTIONS_MAX_IMAGE_BYTES = 1024
    big = b"\xff\xd8\xff" + b"\0" * 5000

    response = client_all.post(URL, {"images": [upload(b"\xff\xd8\xff"), upload(big)]}, format="multipart")

    error = assert_error(response, 413, "too_large")
    assert error["details"] == {"field": "images", "index": 1, "limit_bytes": 1024}


def test_it_refuses_a_raw_body_over_the_byte_limit_before_reading_it(engine, client_all, settings):
    settings.EMOTIONS_MAX_IMAGE_BYTES = 1024

    response = client_all.post(URL, b"\xff\xd8\xff" + b"\0" * 5000, content_type="image/jpeg")

    assert_error(response, 413, "too_large")


def test_it_refuses_a_body_over_the_request_limit(engine, client_all, settings, face_jpeg):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2048

    response = client_all.post(URL, {"image": upload(face_jpeg)}, format="multipart")

    assert_error(response, 413, "request_too_large")


def test_it_names_the_refused_image_among_several(engine, client_all, face_jpeg):
    images = [upload(face_jpeg), upload(b"not an image", "b.txt", "text/plain")]

    response = client_all.post(URL, {"images": images}, format="multipart")

    error = assert_error(response, 415, "unsupported_format")
    assert (error["details"]["field"], error["details"]["index"]) == ("images", 1)


def test_it_refuses_more_images_than_the_limit(engine, client_all, settings, face_jpeg):
    settings.API_ANALYZE_MAX_IMAGES = 2

    response = client_all.post(URL, {"images": [upload(face_jpeg) for _ in range(3)]}, format="multipart")

    error = assert_error(response, 400, "too_many_images")
    assert error["details"] == {"limit": 2}


# --- Wrong shapes of request ----------------------------------------------------------------


@pytest.mark.parametrize("content_type", ["text/plain", "image/gif", "application/octet-stream"])
def test_it_refuses_other_content_types_with_415(engine, client_all, content_type, face_jpeg):
    response = client_all.post(URL, face_jpeg, content_type=content_type)

    assert_error(response, 415, "unsupported_media_type")


def test_it_refuses_json_where_image_bytes_are_expected(engine, client_all):
    response = client_all.post(URL, {"image": "aGVsbG8="}, format="json")

    assert_error(response, 415, "unsupported_media_type")


def test_it_refuses_json_sent_as_an_image(engine, client_all):
    response = client_all.post(URL, json.dumps({"image": "x"}), content_type="image/jpeg")

    assert_error(response, 415, "unsupported_format")


def test_it_refuses_multipart_with_oversized_part_headers(engine, client_all):
    body = b"--B\r\nX-Padding: " + b"a" * 20_000 + b"\r\n\r\nx\r\n--B--\r\n"

    response = client_all.post(URL, body, content_type="multipart/form-data; boundary=B")

    assert_error(response, 400, "parse_error")


def test_it_refuses_multipart_without_a_boundary(engine, client_all):
    response = client_all.post(URL, b"--x\r\n\r\n", content_type="multipart/form-data")

    assert_error(response, 400, "parse_error")


def test_it_refuses_a_broken_multipart_body(engine, client_all):
    body = b'--B\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n\r\n\xff\xd8\xff'

    response = client_all.post(URL, body, content_type="multipart/form-data; boundary=B")

    # The part never ends, so it is no upload at all.
    error = assert_error(response, 400, "invalid")
    assert "non_field_errors" in error["details"]


def test_it_refuses_an_image_sent_as_a_text_field(engine, client_all):
    response = client_all.post(URL, {"image": "not a file"}, format="multipart")

    error = assert_error(response, 400, "invalid")
    assert "image" in error["details"]


def test_it_wants_an_image(engine, client_all):
    response = client_all.post(URL, {}, format="multipart")

    error = assert_error(response, 400, "invalid")
    assert "non_field_errors" in error["details"]


def test_it_analyses_image_and_images_together_in_the_order_sent(engine, client_all, face_jpeg, noise_jpeg):
    boundary = "B"
    parts = [("images", noise_jpeg), ("image", face_jpeg), ("images", noise_jpeg)]
    body = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{index}.jpg"\r\n'
        f"Content-Type: image/jpeg\r\n\r\n".encode()
        + content
        + b"\r\n"
        for index, (name, content) in enumerate(parts)
    )
    body += f"--{boundary}--\r\n".encode()

    response = client_all.post(URL, body, content_type=f"multipart/form-data; boundary={boundary}")

    assert response.status_code == 200, response.content
    assert [len(image["faces"]) for image in response.json()["images"]] == [0, 1, 0]


def test_it_names_the_part_of_a_refused_image_when_both_are_sent(engine, client_all, face_jpeg):
    data = {"image": upload(face_jpeg), "images": [upload(b"not an image", "b.txt", "text/plain")]}

    response = client_all.post(URL, data, format="multipart")

    error = assert_error(response, 415, "unsupported_format")
    assert (error["details"]["field"], error["details"]["index"]) == ("images", 1)


@pytest.mark.parametrize(
    "name, count, code",
    [("image", 2, "too_many_images"), ("file", 1, "invalid")],
    ids=["two-image-parts", "a-file-under-another-name"],
)
def test_it_refuses_image_parts_it_does_not_take(engine, client_all, face_jpeg, name, count, code):
    files = {name: [upload(face_jpeg) for _ in range(count)]}

    response = client_all.post(URL, files, format="multipart")

    assert_error(response, 400, code)


def test_an_empty_raw_body_is_a_missing_image(engine, client_all):
    response = client_all.post(URL, b"", content_type="image/jpeg")

    assert_error(response, 400, "invalid")


# --- The engine's own troubles --------------------------------------------------------------


def test_it_answers_503_with_retry_after_when_the_model_is_overloaded(
    engine, client_all, face_jpeg, monkeypatch
):
    def overloaded(self, images):
        raise Overloaded("256 requests are already waiting")

    monkeypatch.setattr(EmotionPipeline, "analyze_many_sync", overloaded)

    response = client_all.post(URL, face_jpeg, content_type="image/jpeg")

    assert_error(response, 503, "overloaded")
    assert response["Retry-After"] == "1"


def test_it_answers_503_without_the_reason_when_no_model_can_be_served(
    engine, client_all, face_jpeg, monkeypatch
):
    def unavailable(self, images):
        raise ModelUnavailable("could not load /srv/attune/var/training/run-3/model.keras")

    monkeypatch.setattr(EmotionPipeline, "analyze_many_sync", unavailable)

    response = client_all.post(URL, face_jpeg, content_type="image/jpeg")

    assert_error(response, 503, "model_unavailable")
    assert response["Retry-After"] == "30"
    assert b"/srv/attune" not in response.content


def test_an_unexpected_failure_is_a_plain_500_without_a_traceback(
    engine, client_all, face_jpeg, monkeypatch, caplog
):
    def broken(self, images):
        raise RuntimeError("internal detail /srv/secret/path")

    monkeypatch.setattr(EmotionPipeline, "analyze_many_sync", broken)

    with caplog.at_level(logging.ERROR, logger="fer_site.api.errors"):
        response = client_all.post(URL, face_jpeg, content_type="image/jpeg")

    assert_error(response, 500, "server_error")
    assert b"/srv/secret/path" not in response.content
    assert any(record.exc_info for record in caplog.records)  # the operators still get the traceback


def test_uploads_stay_in_memory(engine, client_all, face_jpeg, monkeypatch):
    from django.core.files.uploadhandler import TemporaryFileUploadHandler

    def forbidden(*args, **kwargs):
        raise AssertionError("an upload was written to a temporary file")

    monkeypatch.setattr(TemporaryFileUploadHandler, "new_file", forbidden)

    with override_settings(
        FILE_UPLOAD_HANDLERS=["django.core.files.uploadhandler.TemporaryFileUploadHandler"]
    ):
        response = client_all.post(URL, {"image": upload(face_jpeg)}, format="multipart")

    assert response.status_code == 200, response.content
