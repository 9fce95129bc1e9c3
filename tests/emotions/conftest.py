"""Fixtures for the emotion engine: real frames with a face, and tiny real Keras models compiled to LiteRT."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage import data

from emotions import services
from emotions.classifier import file_sha256
from emotions.services import emotion_engine_close


@pytest.fixture(scope="session")
def astronaut_gray() -> np.ndarray:
    """Return the astronaut photograph, (512, 512) uint8 grayscale, one face near (230, 120)."""
    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2GRAY)


@pytest.fixture(scope="session")
def astronaut_jpeg(astronaut_gray: np.ndarray) -> bytes:
    """Return the astronaut as a 640×480 webcam-like JPEG."""
    return encode(cv2.resize(astronaut_gray[:384], (640, 480)), ".jpg")


@pytest.fixture(scope="session")
def noise_jpeg() -> bytes:
    """Return a 320×240 JPEG of random noise: no face in it."""
    return encode(np.random.default_rng(7).integers(0, 256, (240, 320), dtype=np.uint8), ".jpg")


def encode(image: np.ndarray, extension: str) -> bytes:
    """Return ``image`` encoded by OpenCV as ``extension`` (".jpg", ".png", ...)."""
    ok, buffer = cv2.imencode(extension, image)
    assert ok
    return buffer.tobytes()


@dataclass(frozen=True)
class SavedModel:
    path: Path
    sha256: str
    model: object  # the keras.Model, to compare outputs with


@dataclass(frozen=True)
class CompiledModel:
    keras: SavedModel
    path: Path  # the .tflite file beside the .keras one
    sha256: str
    max_abs_diff: float


def litert_stand_in_write(path: Path) -> str:
    """Write a stand-in ``.tflite`` file (LiteRT's "TFL3" identifier, no model); return its SHA-256.

    For tests that move the registry: activation checks the file's identifier and checksum without loading it.
    """
    import hashlib

    path.write_bytes(b"\x1c\x00\x00\x00TFL3" + b"stand-in model" * 8)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build_tiny_model(seed: int, *, input_shape: tuple[int, ...] = (48, 48, 1), classes: int = 7):
    """Return a tiny untrained Keras model; the seed makes its weights, hence its outputs, differ."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)
    inputs = keras.Input(input_shape)
    x = layers.Conv2D(4, 3, strides=4, activation="relu")(inputs)
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(classes, activation="softmax")(x)
    return keras.Model(inputs, outputs, name=f"tiny_{seed}")


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SavedModel]:
    """Save two tiny real Keras models, "a" and "b", whose outputs differ."""
    folder = tmp_path_factory.mktemp("models")
    saved = {}
    for name, seed in (("a", 1), ("b", 2)):
        model = build_tiny_model(seed)
        path = folder / f"{name}.keras"
        model.save(path)
        saved[name] = SavedModel(path, file_sha256(path), model)
    return saved


@pytest.fixture(scope="session")
def tiny_compiled(tiny_models: dict[str, SavedModel]) -> dict[str, CompiledModel]:
    """Compile the tiny models to LiteRT beside them (``a.tflite``, ``b.tflite``), checked against Keras."""
    from emotions.compile import compile_model

    compiled = {}
    for name, saved in tiny_models.items():
        result = compile_model(saved.path)
        compiled[name] = CompiledModel(saved, result.path, result.sha256, result.max_abs_diff)
    return compiled


@pytest.fixture(autouse=True)
def fresh_engine():
    """Give each test a process without an engine, and leave none behind."""
    emotion_engine_close()
    yield
    emotion_engine_close()


@pytest.fixture
def keras_engine(settings, tmp_path, monkeypatch, tiny_models):
    """Settings for the real Keras engine, reading the registry on every batch; no default model."""
    settings.EMOTIONS_BACKEND = "emotions.classifier.KerasClassifier"
    settings.TRAINING_ARTIFACTS_DIR = tiny_models["a"].path.parent
    settings.EMOTIONS_DEFAULT_MODEL = tmp_path / "no_default.keras"
    monkeypatch.setattr(services, "MODEL_CHECK_INTERVAL_S", 0.0)
    return settings


@pytest.fixture
def litert_engine(settings, tmp_path, monkeypatch, tiny_compiled):
    """Settings for the real LiteRT engine, reading the registry on every batch; no default model."""
    settings.EMOTIONS_BACKEND = "emotions.classifier.LiteRTClassifier"
    settings.TRAINING_ARTIFACTS_DIR = tiny_compiled["a"].path.parent
    settings.EMOTIONS_DEFAULT_MODEL = tmp_path / "no_default.keras"
    monkeypatch.setattr(services, "MODEL_CHECK_INTERVAL_S", 0.0)
    return settings
