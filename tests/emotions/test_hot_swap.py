"""The served model follows the registry: activation reaches a running engine without a restart."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from emotions import services
from emotions.classifier import ModelUnavailable
from emotions.models import ModelVersion
from emotions.services import (
    emotion_engine,
    emotion_engine_reload,
    emotion_model_status,
    mood_tracker_create,
)

REPO = Path(__file__).resolve().parents[2]
FACES = np.random.default_rng(11).random((3, 48, 48, 1), dtype=np.float32)


def register(name: str, model, **fields) -> ModelVersion:
    values = {"file_path": model.path.name, "sha256": model.sha256, **fields}
    return ModelVersion.objects.create(name=name, architecture="tiny", **values)


def expected(model) -> np.ndarray:
    return np.asarray(model.model(FACES, training=False))


def classify() -> tuple[np.ndarray, str]:
    engine = emotion_engine()
    probabilities = engine.batcher.classify_sync(FACES, timeout=60)
    return probabilities, engine.classifier.version


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_model_activated_while_running_is_used_for_the_next_batch(keras_engine, tiny_models):
    register("a", tiny_models["a"]).activate()
    before, version = classify()
    assert version == "a"
    np.testing.assert_allclose(before, expected(tiny_models["a"]), rtol=1e-5, atol=1e-6)

    register("b", tiny_models["b"]).activate()
    # The first batch after activation asks the registry beside it and starts loading "b"; "a" serves
    # meanwhile.
    classify()
    emotion_engine().classifier.settle(timeout_s=30)
    after, version = classify()

    assert version == "b"
    np.testing.assert_allclose(after, expected(tiny_models["b"]), rtol=1e-5, atol=1e-6)
    assert not np.allclose(before, after)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_an_explicit_reload_switches_before_the_very_next_batch(keras_engine, tiny_models, monkeypatch):
    monkeypatch.setattr(services, "MODEL_CHECK_INTERVAL_S", 3600.0)
    register("a", tiny_models["a"]).activate()
    classify()
    register("b", tiny_models["b"]).activate()

    state = emotion_engine_reload()
    after, version = classify()

    assert state["version"] == "b" and state["state"] == "ready"
    assert version == "b"
    np.testing.assert_allclose(after, expected(tiny_models["b"]), rtol=1e-5, atol=1e-6)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_it_keeps_serving_the_old_model_when_the_new_file_was_altered(keras_engine, tiny_models):
    register("a", tiny_models["a"]).activate()
    classify()
    register("tampered", tiny_models["b"], sha256="0" * 64).activate()

    emotion_engine_reload()
    probabilities, version = classify()

    assert version == "a"
    np.testing.assert_allclose(probabilities, expected(tiny_models["a"]), rtol=1e-5, atol=1e-6)
    status = emotion_model_status()
    # The old model still answers, but health is degraded: the active version is not the one served.
    assert status["ok"] is False
    assert "SHA-256" in status["problem"]
    assert status["engine"]["version"] == "a"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_it_serves_the_default_model_while_the_registry_is_empty(keras_engine, tiny_models):
    keras_engine.EMOTIONS_DEFAULT_MODEL = tiny_models["b"].path

    probabilities, version = classify()

    assert version == "default"
    np.testing.assert_allclose(probabilities, expected(tiny_models["b"]), rtol=1e-5, atol=1e-6)
    assert emotion_model_status()["ok"] is True


@pytest.mark.django_db(transaction=True)
def test_it_says_clearly_that_the_default_model_is_missing(settings, tmp_path):
    settings.EMOTIONS_BACKEND = "emotions.classifier.KerasClassifier"
    settings.EMOTIONS_DEFAULT_MODEL = tmp_path / "attune_default.keras"

    status = emotion_model_status()
    with pytest.raises(ModelUnavailable, match="does not exist"):
        emotion_engine().batcher.classify_sync(FACES, timeout=30)

    assert status["ok"] is False
    assert status["source"] == "default"
    assert "attune_default.keras does not exist" in status["problem"]
    assert "not been trained" in status["problem"]
    assert emotion_model_status()["engine"]["state"] == "unavailable"


@pytest.mark.django_db
def test_the_fake_backend_needs_no_model_file(fake_emotions, tmp_path):
    fake_emotions.EMOTIONS_DEFAULT_MODEL = tmp_path / "missing.keras"

    status = emotion_model_status()

    assert status["ok"] is True
    assert status["backend"] == "FakeClassifier"


@pytest.mark.django_db
def test_it_builds_one_engine_per_process_from_settings(fake_emotions, astronaut_jpeg):
    fake_emotions.EMOTIONS_BATCH_MAX_SIZE = 4

    engine = emotion_engine()
    result = engine.pipeline.analyze_sync(astronaut_jpeg, mood_tracker_create())

    assert emotion_engine() is engine
    assert engine.batcher.max_batch == 4
    assert len(result.faces) == 1
    assert result.mood.mood != "no_face"


@pytest.mark.django_db
def test_it_forgets_the_engine_when_its_settings_change(settings, fake_emotions):
    engine = emotion_engine()

    settings.EMOTIONS_BATCH_MAX_WAIT_MS = 1.0

    assert emotion_engine() is not engine


def test_its_health_status_imports_no_tensorflow(tmp_path):
    code = (
        "import sys, django\n"
        "django.setup()\n"
        "from django.core.management import call_command\n"
        "call_command('migrate', verbosity=0)\n"
        "from emotions.services import emotion_model_status\n"
        "status = emotion_model_status()\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'imported'\n"
        "assert {'ok', 'problem', 'backend', 'version'} <= set(status), status\n"
    )
    # A throwaway SQLite database, whatever DATABASE_URL the test run was given.
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    env.update(DJANGO_SETTINGS_MODULE="fer_site.settings", ATTUNE_VAR_DIR=str(tmp_path))

    subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, check=True, timeout=60)
