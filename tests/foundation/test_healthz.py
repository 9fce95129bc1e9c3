from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model


@pytest.fixture
def staff_client(client, db):
    staff = get_user_model().objects.create_user("operator", password="x-9-long-enough", is_staff=True)
    client.force_login(staff)
    return client


@pytest.mark.django_db
def test_it_tells_anyone_only_the_status(client, fake_emotions):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_it_tells_the_public_nothing_of_a_failing_services_address(client, settings, fake_emotions):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
        }
    }

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json() == {"status": "degraded"}
    assert b"127.0.0.1" not in response.content


@pytest.mark.django_db
def test_it_answers_head_requests_of_monitors(client, fake_emotions):
    assert client.head("/healthz").status_code == 200
    assert client.head("/").status_code == 200


@pytest.mark.django_db
def test_it_reports_every_service_healthy(staff_client, fake_emotions):
    client = staff_client
    response = client.get("/healthz")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "cache", "channel_layer", "broker", "emotion_model"}
    assert all(check["ok"] for check in body["checks"].values())


@pytest.mark.django_db
def test_it_answers_503_naming_an_unreachable_redis(staff_client, settings, fake_emotions):
    client = staff_client
    dead = "redis://127.0.0.1:1/0"
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": dead}
    }
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [dead]}}
    }

    response = client.get("/healthz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded"
    assert set(body["failing"]) == {"cache", "channel_layer"}
    assert "Connection" in body["checks"]["cache"]["error"]
    assert body["checks"]["database"]["ok"]


@pytest.mark.django_db
def test_it_names_a_missing_emotion_model(staff_client, settings, tmp_path):
    client = staff_client
    settings.EMOTIONS_BACKEND = "emotions.classifier.KerasClassifier"
    settings.EMOTIONS_DEFAULT_MODEL = tmp_path / "missing.keras"

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["failing"] == ["emotion_model"]


@pytest.mark.django_db
@pytest.mark.redis
def test_it_reports_a_real_redis_healthy(staff_client, settings, redis_url, fake_emotions):
    client = staff_client
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": redis_url}
    }
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [redis_url]}}
    }

    response = client.get("/healthz")

    assert response.status_code == 200, response.json()
    assert response.json()["checks"]["channel_layer"]["backend"] == "RedisChannelLayer"


@pytest.mark.django_db
@pytest.mark.postgres
def test_it_runs_on_a_real_postgresql(staff_client, postgres_url, fake_emotions):
    client = staff_client
    response = client.get("/healthz")

    assert response.json()["checks"]["database"]["vendor"] == "postgresql"


@pytest.mark.django_db
def test_the_home_page_says_what_attune_is(client):
    response = client.get("/")

    assert response.status_code == 200
    assert b"camera stays off until you agree" in response.content
