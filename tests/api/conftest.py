"""Fixtures for REST API tests: keys with scopes, clients that send them, and images."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import cv2
import numpy as np
import pytest
from rest_framework.test import APIClient
from skimage import data

from emotions.services import emotion_engine_close
from fer_site.api.keys import api_key_create
from fer_site.models import ApiKey, Scope

ALL_SCOPES = list(Scope.values)


@pytest.fixture
def engine(fake_emotions) -> Iterator[None]:
    """The fake emotion backend; the engine built during the test is stopped after it."""
    emotion_engine_close()
    yield
    emotion_engine_close()


@pytest.fixture
def make_key(db) -> Callable[..., tuple[ApiKey, str]]:
    def make(
        scopes: list[str] | None = None, *, rate: str = "", name: str = "test app"
    ) -> tuple[ApiKey, str]:
        return api_key_create(name=name, scopes=ALL_SCOPES if scopes is None else scopes, throttle_rate=rate)

    return make


@pytest.fixture
def make_client(make_key) -> Callable[..., APIClient]:
    """Return an APIClient that sends a new key with ``scopes`` (all of them by default)."""

    def make(scopes: list[str] | None = None, *, rate: str = "") -> APIClient:
        _, secret = make_key(scopes, rate=rate)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Api-Key {secret}")
        return client

    return make


@pytest.fixture
def client_all(make_client) -> APIClient:
    return make_client()


def encode(image: np.ndarray, extension: str) -> bytes:
    ok, buffer = cv2.imencode(extension, image)
    assert ok
    return buffer.tobytes()


@pytest.fixture(scope="session")
def face_jpeg() -> bytes:
    """The astronaut photograph as a 640×480 JPEG: one face."""
    gray = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2GRAY)
    return encode(cv2.resize(gray[:384], (640, 480)), ".jpg")


@pytest.fixture(scope="session")
def face_png(face_jpeg) -> bytes:
    return encode(cv2.imdecode(np.frombuffer(face_jpeg, np.uint8), cv2.IMREAD_GRAYSCALE), ".png")


@pytest.fixture(scope="session")
def noise_jpeg() -> bytes:
    """A 320×240 JPEG of noise: no face."""
    return encode(np.random.default_rng(7).integers(0, 256, (240, 320), dtype=np.uint8), ".jpg")
