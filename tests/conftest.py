"""Fixtures shared by every test: real services when configured, skipped with a reason otherwise."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"
FER2013 = SHARED_DATA / "fer2013"
REQUIRE_SERVICES = os.environ.get("ATTUNE_REQUIRE_SERVICES") == "1"


def database_url() -> str:
    """Return a DATABASE_URL for the database this test uses, for processes the test starts."""
    from django.db import connection

    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    host, port = db["HOST"] or "localhost", db["PORT"] or 5432
    return f"postgres://{db['USER']}:{db['PASSWORD']}@{host}:{port}/{db['NAME']}"


def model_archive_write(path: Path) -> str:
    """Write a stand-in ``.keras`` archive (Keras's members, no real model) at ``path``; return its SHA-256.

    Activation checks the archive's shape and checksum without loading it, so tests that only move the
    registry can use this instead of a real Keras model.
    """
    import hashlib
    import zipfile

    with zipfile.ZipFile(path, "w") as archive:
        for name in ("metadata.json", "config.json", "model.weights.h5"):
            archive.writestr(name, f"stand-in {name}")
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _missing(reason: str) -> None:
    # In CI the services must be there: a skip would hide that the real path went untested.
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason}, but ATTUNE_REQUIRE_SERVICES=1")
    pytest.skip(reason)


@pytest.fixture
def redis_url() -> str:
    """The real Redis of REDIS_URL; skips the test when it is not set."""
    url = os.environ.get("REDIS_URL")
    if not url:
        _missing("needs a real Redis: set REDIS_URL")
    return url


@pytest.fixture
def postgres_url() -> str:
    """The real PostgreSQL of DATABASE_URL; skips the test when it is not set."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        _missing("needs a real PostgreSQL: set DATABASE_URL=postgres://...")
    return url


@pytest.fixture
def fer2013_dir() -> Path:
    """The FER-2013 folder beside the project; skips when absent (the dataset is never in the repo)."""
    if not (FER2013 / "val").is_dir():
        pytest.skip("FER-2013 not found at ../shared/data/fer2013 (download it from Kaggle, see README)")
    return FER2013


@pytest.fixture
def fake_emotions(settings):
    """Use the fake emotion backend: no TensorFlow, deterministic output."""
    settings.EMOTIONS_BACKEND = "emotions.fake.FakeClassifier"
    return settings


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    """Start and end each test with an empty cache: decisions, duplicate markers and throttles live there."""
    from django.core.cache import cache
    from redis.exceptions import ConnectionError as RedisConnectionError

    cache.clear()
    yield
    try:
        cache.clear()
    except RedisConnectionError:  # the test pointed the cache at a server it wanted unreachable
        pass


@pytest.fixture(autouse=True)
def _fast_passwords(settings) -> None:
    # Tests log users in often; PBKDF2 on two busy cores costs seconds each time.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
