"""A corrupt or altered model file is refused, and the model that serves now keeps serving.

Activation (API and admin action) checks the file's recorded SHA-256 and its
archive before the registry changes; the engine checks again when it loads, for
a file damaged after activation or a registry switched by other means.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
from django.urls import reverse

from emotions.classifier import file_sha256
from emotions.models import ModelVersion
from emotions.services import emotion_engine_reload, emotion_model_status
from tests.conftest import model_archive_write
from tests.emotions.test_hot_swap import classify, expected, register

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def serving_a(keras_engine, tiny_models, tmp_path):
    """The real Keras engine serving tiny model "a" from the registry; artifacts in a folder of the test's."""
    register("a", tiny_models["a"]).activate()
    _, version = classify()
    assert version == "a"
    return tmp_path


def corrupt_copy(source, target) -> str:
    """Write ``source``'s bytes to ``target`` with a stretch in the middle overwritten; return its SHA-256."""
    data = bytearray(source.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(64)
    target.write_bytes(bytes(data))
    return file_sha256(target)


def assert_a_still_serves(tiny_models) -> None:
    probabilities, version = classify()
    assert version == "a"
    np.testing.assert_allclose(probabilities, expected(tiny_models["a"]), rtol=1e-5, atol=1e-6)
    assert ModelVersion.objects.active().name == "a"


def test_the_api_refuses_a_corrupt_model_file_and_the_old_model_keeps_serving(
    serving_a, tiny_models, admin_client, caplog
):
    path = serving_a / "corrupt.keras"
    corrupt = ModelVersion.objects.create(
        name="corrupt",
        architecture="tiny",
        file_path=str(path),
        sha256=corrupt_copy(tiny_models["b"].path, path),
    )

    with caplog.at_level(logging.WARNING, logger="emotions.apis"):
        response = admin_client.post(f"/api/v1/models/{corrupt.pk}/activate")

    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "model_unservable"
    assert b"corrupt.keras" not in response.content  # file names stay in the operators' log
    assert "corrupt.keras" in caplog.text
    assert_a_still_serves(tiny_models)


def test_the_api_refuses_a_model_whose_sha256_does_not_match_and_the_old_model_keeps_serving(
    serving_a, tiny_models, admin_client, caplog
):
    altered = register("altered", tiny_models["b"], sha256="f" * 64)

    with caplog.at_level(logging.WARNING, logger="emotions.apis"):
        response = admin_client.post(f"/api/v1/models/{altered.pk}/activate")

    assert response.status_code == 400, response.content
    assert b"ffffffff" not in response.content and b"SHA-256" not in response.content
    assert "SHA-256" in caplog.text
    assert_a_still_serves(tiny_models)


def test_the_api_refuses_a_model_keras_safe_mode_will_not_load(
    serving_a, tiny_models, admin_client, tmp_path
):
    import keras

    inputs = keras.Input((48, 48, 1))
    outputs = keras.layers.Dense(7, activation="softmax")(
        keras.layers.Flatten()(keras.layers.Lambda(lambda x: x * 1.0)(inputs))
    )
    path = tmp_path / "lambda.keras"
    keras.Model(inputs, outputs).save(path)
    unsafe = ModelVersion.objects.create(
        name="lambda", architecture="tiny", file_path=str(path), sha256=file_sha256(path)
    )

    response = admin_client.post(f"/api/v1/models/{unsafe.pk}/activate")

    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "model_unservable"
    assert_a_still_serves(tiny_models)


@pytest.mark.parametrize("damage", ["corrupt", "truncated", "not an archive", "altered"])
def test_the_admin_action_refuses_a_damaged_model_and_the_old_model_keeps_serving(
    serving_a, tiny_models, admin_client, damage
):
    path = serving_a / f"{damage.replace(' ', '_')}.keras"
    good = tiny_models["b"].path.read_bytes()
    if damage == "corrupt":
        sha256 = corrupt_copy(tiny_models["b"].path, path)
    elif damage == "truncated":
        path.write_bytes(good[: len(good) // 2])
        sha256 = file_sha256(path)
    elif damage == "not an archive":
        path.write_bytes(b"\x00" * 4096)
        sha256 = file_sha256(path)
    else:
        path.write_bytes(good)
        sha256 = model_archive_write(serving_a / "other.keras")  # the checksum of another file
    bad = ModelVersion.objects.create(name=damage, architecture="tiny", file_path=str(path), sha256=sha256)

    page = admin_client.post(
        reverse("admin:emotions_modelversion_changelist"),
        {"action": "activate", "_selected_action": [bad.pk]},
        follow=True,
    )
    # The confirmation page already refuses it; a confirmation posted anyway is refused too.
    response = admin_client.post(
        reverse("admin:emotions_modelversion_activate", args=[bad.pk]), {"confirm": "1"}, follow=True
    )

    assert b"This model cannot be served" in page.content
    assert "cannot be served" in [str(m) for m in response.context["messages"]][0]
    assert_a_still_serves(tiny_models)


@pytest.mark.parametrize("damage", ["corrupt", "valid archive, not a model"])
def test_the_engine_keeps_the_old_model_when_the_registry_names_a_damaged_file(
    serving_a, tiny_models, damage
):
    # A registry switched without the service (a database edit, a file damaged after activation).
    path = serving_a / "damaged.keras"
    if damage == "corrupt":
        sha256 = corrupt_copy(tiny_models["b"].path, path)
    else:
        sha256 = model_archive_write(path)
    ModelVersion.objects.create(
        name="damaged", architecture="tiny", file_path=str(path), sha256=sha256
    ).activate()

    state = emotion_engine_reload()
    probabilities, version = classify()

    assert state["version"] == "a" and state["error"]
    assert version == "a"
    np.testing.assert_allclose(probabilities, expected(tiny_models["a"]), rtol=1e-5, atol=1e-6)
    status = emotion_model_status()
    # Still answering, but degraded: the registry names a model no process can load (after a restart
    # the site would serve none), and the operator sees why.
    assert status["ok"] is False
    assert "damaged.keras" in status["problem"]
