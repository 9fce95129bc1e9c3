"""API keys, scopes, staff sessions and throttles, on every endpoint."""

from __future__ import annotations

import io
import logging
import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache
from django.core.management import CommandError, call_command
from django.utils import timezone
from rest_framework.test import APIClient

from fer_site.models import ApiKey, Scope

pytestmark = pytest.mark.django_db

# (method, address, scope): one request per endpoint; what it asks for does not matter here.
ENDPOINTS = [
    ("post", "/api/v1/emotions/analyze", Scope.ANALYZE),
    ("get", "/api/v1/content?mood=happy", Scope.CONTENT),
    ("post", "/api/v1/content/decide", Scope.CONTENT),
    ("post", "/api/v1/content/events", Scope.CONTENT),
    ("get", "/api/v1/models", Scope.MODELS),
    ("post", "/api/v1/models/1/activate", Scope.MODELS),
    ("get", "/api/v1/training-runs", Scope.TRAINING),
    ("post", "/api/v1/training-runs", Scope.TRAINING),
    ("get", "/api/v1/training-runs/1", Scope.TRAINING),
    ("post", "/api/v1/training-runs/1/cancel", Scope.TRAINING),
]
ENDPOINT_IDS = [f"{method} {url.split('?')[0]}" for method, url, _ in ENDPOINTS]


def call(client: APIClient, method: str, url: str):
    if method == "get":
        return client.get(url)
    return client.post(url, {"mood": "happy", "confidence": 0.9}, format="json")


@pytest.mark.parametrize(("method", "url", "scope"), ENDPOINTS, ids=ENDPOINT_IDS)
def test_it_refuses_a_request_without_credentials(method, url, scope):
    response = call(APIClient(), method, url)

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Api-Key"
    assert response.json()["error"]["code"] == "not_authenticated"


@pytest.mark.parametrize(("method", "url", "scope"), ENDPOINTS, ids=ENDPOINT_IDS)
def test_it_refuses_a_key_without_the_endpoints_scope(make_client, method, url, scope):
    client = make_client([s for s in Scope.values if s != scope])

    response = call(client, method, url)

    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "missing_scope"
    assert repr(str(scope)) in error["message"]


@pytest.mark.parametrize(("method", "url", "scope"), ENDPOINTS, ids=ENDPOINT_IDS)
def test_it_accepts_a_key_with_the_endpoints_scope(make_client, engine, method, url, scope):
    response = call(make_client([scope]), method, url)

    assert response.status_code not in (401, 403, 429), response.content


@pytest.mark.parametrize(("method", "url", "scope"), ENDPOINTS, ids=ENDPOINT_IDS)
def test_it_throttles_each_endpoint_at_the_keys_rate(make_client, engine, method, url, scope):
    client = make_client([scope], rate="2/day")
    call(client, method, url)
    call(client, method, url)

    response = call(client, method, url)

    assert response.status_code == 429
    error = response.json()["error"]
    assert error["code"] == "throttled"
    assert 1 <= int(response["Retry-After"]) <= 86400
    assert error["details"]["retry_after_s"] == int(response["Retry-After"])


def test_the_budget_belongs_to_the_key_across_endpoints_and_clients(make_key):
    _, secret = make_key(rate="3/day")
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Api-Key {secret}")
    one = APIClient()
    one.credentials(HTTP_AUTHORIZATION=f"Api-Key {secret}")

    statuses = [
        one.get("/api/v1/models").status_code,
        other.get("/api/v1/training-runs").status_code,
        one.get("/api/v1/content").status_code,
        other.get("/api/v1/models").status_code,
    ]

    assert statuses == [200, 200, 200, 429]


def test_another_key_has_its_own_budget(make_client):
    first = make_client(rate="1/day")
    second = make_client(rate="1/day")
    first.get("/api/v1/models")

    assert first.get("/api/v1/models").status_code == 429
    assert second.get("/api/v1/models").status_code == 200


def test_keys_without_their_own_rate_use_the_setting(make_client, settings):
    settings.API_THROTTLE_RATE = "2/min"
    client = make_client()

    statuses = [client.get("/api/v1/models").status_code for _ in range(3)]

    assert statuses == [200, 200, 429]


def test_the_budget_is_kept_in_the_shared_cache(make_client):
    client = make_client(rate="1/day")
    client.get("/api/v1/models")
    assert client.get("/api/v1/models").status_code == 429

    cache.clear()  # what another process would see if the count were per process

    assert client.get("/api/v1/models").status_code == 200


@pytest.mark.redis
def test_the_throttle_works_on_redis(redis_url, settings, make_client):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": redis_url,
            "KEY_PREFIX": "attune-test-api",
        }
    }
    from django.core.cache import caches

    caches["default"].clear()
    client = make_client(rate="2/day")

    statuses = [client.get("/api/v1/models").status_code for _ in range(3)]

    assert statuses == [200, 200, 429]
    caches["default"].clear()


# --- Keys that are not valid -------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        "Api-Key",
        "Api-Key a b",
        "Api-Key nope",
        "Api-Key AAAAAAAA.BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB",
        "Api-Key \x00\x01",
        "Api-Key " + "x" * 10_000,
    ],
    ids=["empty", "two-words", "short", "unknown", "control-characters", "huge"],
)
def test_it_refuses_a_key_that_is_not_valid(header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)

    response = client.get("/api/v1/models")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"


def test_it_refuses_a_key_with_the_right_prefix_and_a_wrong_secret(make_key):
    api_key, secret = make_key()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {api_key.prefix}.{'x' * 32}")

    assert client.get("/api/v1/models").status_code == 401


def test_it_refuses_a_revoked_key(make_key):
    api_key, secret = make_key()
    api_key.revoked = True
    api_key.save()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {secret}")

    assert client.get("/api/v1/models").status_code == 401


def test_it_refuses_an_expired_key(make_key):
    api_key, secret = make_key()
    api_key.expiry_date = timezone.now() - timedelta(seconds=1)
    api_key.save()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {secret}")

    assert client.get("/api/v1/models").status_code == 401


# --- Staff sessions ----------------------------------------------------------------------------


def test_a_signed_in_staff_user_may_use_every_endpoint(engine):
    staff = User.objects.create_user("operator", password="pw", is_staff=True)
    client = APIClient()
    client.force_login(staff)

    assert client.get("/api/v1/models").status_code == 200
    assert client.post("/api/v1/content/decide", {"mood": "sad"}, format="json").status_code == 200


def test_a_signed_in_user_who_is_not_staff_is_refused():
    client = APIClient()
    client.force_login(User.objects.create_user("visitor", password="pw"))

    response = client.get("/api/v1/models")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"


def test_a_staff_session_needs_the_csrf_token_to_change_anything():
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(User.objects.create_user("operator", password="pw", is_staff=True))

    response = client.post("/api/v1/content/decide", {"mood": "sad"}, format="json")

    assert response.status_code == 403
    assert "CSRF" in response.json()["error"]["message"]


# --- Creating keys, and keeping their secrets ---------------------------------------------------


def test_the_command_prints_a_working_key_once_and_stores_only_its_hash():
    out, err = io.StringIO(), io.StringIO()

    call_command(
        "create_api_key", "kiosk", "--scopes", "analyze,content", "--rate", "10/s", stdout=out, stderr=err
    )

    secret = out.getvalue().strip()
    api_key = ApiKey.objects.get()
    assert (api_key.name, api_key.scopes, api_key.throttle_rate) == ("kiosk", ["analyze", "content"], "10/s")
    assert secret not in err.getvalue()
    assert secret.split(".")[1] not in str(ApiKey.objects.values().get())
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {secret}")
    assert client.get("/api/v1/content").status_code == 200
    assert client.get("/api/v1/models").status_code == 403


def test_the_command_gives_every_scope_for_all_and_may_set_an_expiry():
    call_command(
        "create_api_key",
        "ops",
        "--scopes",
        "all",
        "--expires-in-days",
        "30",
        stdout=io.StringIO(),
        stderr=io.StringIO(),
    )

    api_key = ApiKey.objects.get()
    assert api_key.scopes == list(Scope.values)
    assert timedelta(days=29) < api_key.expiry_date - timezone.now() <= timedelta(days=30)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--scopes", "analyze,everything"], "Unknown scope(s) everything"),
        (["--scopes", "analyze", "--rate", "lots"], "is not a rate"),
        (["--scopes", "analyze", "--expires-in-days", "0"], "at least 1"),
    ],
)
def test_the_command_refuses_bad_options(args, message):
    with pytest.raises(CommandError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call_command("create_api_key", "app", *args, stdout=io.StringIO(), stderr=io.StringIO())

    assert not ApiKey.objects.exists()


def test_the_admin_creates_a_key_with_scopes_and_shows_it_once(client):
    client.force_login(User.objects.create_superuser("admin", password="pw"))

    response = client.post(
        "/admin/fer_site/apikey/add/",
        {"name": "partner", "scopes": ["content", "models"], "throttle_rate": "60/day"},
    )

    assert response.status_code == 200  # the key is on the page that answers the form, not behind a redirect
    api_key = ApiKey.objects.get()
    assert (api_key.scopes, api_key.throttle_rate) == (["content", "models"], "60/day")
    [secret] = re.findall(r'value="([^"]+)"', response.content.decode().split('aria-label="API key"')[0])[-1:]
    assert secret.startswith(api_key.prefix + ".") and ApiKey.objects.is_valid(secret)
    assert "no-store" in response["Cache-Control"]
    secret_part = secret.split(".")[1]
    # Not in a message (the default message storage is a signed, readable cookie), not on any later page.
    assert all(secret_part not in morsel.value for morsel in response.cookies.values())
    later = [
        client.get("/admin/fer_site/apikey/"),
        client.get(f"/admin/fer_site/apikey/{api_key.pk}/change/"),
    ]
    assert all(secret_part not in page.content.decode() for page in later)


def test_the_admin_refuses_an_unknown_rate(client):
    client.force_login(User.objects.create_superuser("admin", password="pw"))

    response = client.post("/admin/fer_site/apikey/add/", {"name": "partner", "throttle_rate": "often"})

    assert response.status_code == 200
    assert "is not a rate" in response.content.decode()
    assert not ApiKey.objects.exists()


def test_a_keys_secret_never_appears_in_a_response_or_a_log_after_creation(
    make_key, engine, caplog, face_jpeg
):
    api_key, secret = make_key([Scope.CONTENT, Scope.ANALYZE], rate="3/day")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {secret}")
    wrong = APIClient()
    # Another last character (a fixed "x" would be no change at all for one secret in 62).
    wrong.credentials(HTTP_AUTHORIZATION=f"Api-Key {secret[:-1]}{'y' if secret.endswith('x') else 'x'}")
    mangled = APIClient()
    mangled.credentials(HTTP_AUTHORIZATION=f"Api-Key {secret} {secret}")

    with caplog.at_level(logging.DEBUG):
        responses = [
            client.post("/api/v1/emotions/analyze", face_jpeg, content_type="image/jpeg"),
            client.post("/api/v1/content/decide", {"mood": "nonsense"}, format="json"),
            client.get("/api/v1/models"),  # no scope
            client.get("/api/v1/content"),
            client.get("/api/v1/content"),  # throttled
            wrong.get("/api/v1/content"),
            mangled.get("/api/v1/content"),
            client.get("/api/v1/nowhere"),
        ]

    assert [r.status_code for r in responses] == [200, 400, 403, 200, 429, 401, 401, 404]
    secret_part = secret.split(".")[1]
    for response in responses:
        assert secret_part not in response.content.decode()
        assert all(secret_part not in value for _, value in response.items())
    assert caplog.records  # something was logged, and none of it holds the secret
    assert secret_part not in caplog.text
    assert all(secret_part not in str(record.args) for record in caplog.records)


@pytest.mark.parametrize(
    "address", ["/api/v1/nothing/here", "/api/v1/training-runs/1%0A2", "/api/v1/models/x%0A/activate"]
)
def test_unknown_api_addresses_answer_in_the_error_shape(address):
    response = APIClient().get(address)

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
