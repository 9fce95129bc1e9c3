"""The OpenAPI schema, the offline docs, and schemathesis against the live schema in-process."""

from __future__ import annotations

import re

import pytest
import schemathesis
from django.contrib.staticfiles import finders
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, settings
from rest_framework.test import APIClient
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from fer_site.api.keys import api_key_create
from fer_site.models import Scope

OPERATIONS = {
    ("post", "/api/v1/emotions/analyze"),
    ("get", "/api/v1/content"),
    ("post", "/api/v1/content/decide"),
    ("post", "/api/v1/content/events"),
    ("get", "/api/v1/models"),
    ("post", "/api/v1/models/{version_id}/activate"),
    ("get", "/api/v1/training-runs"),
    ("post", "/api/v1/training-runs"),
    ("get", "/api/v1/training-runs/{run_id}"),
    ("post", "/api/v1/training-runs/{run_id}/cancel"),
}


@pytest.fixture(scope="module")
def openapi() -> dict:
    response = APIClient().get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    return response.json()


def test_the_schema_describes_every_operation_with_its_errors(openapi):
    operations = {
        (method, path) for path, item in openapi["paths"].items() for method in item if method != "parameters"
    }

    assert openapi["openapi"].startswith("3.")
    assert operations == OPERATIONS
    for method, path in OPERATIONS:
        responses = openapi["paths"][path][method]["responses"]
        assert {"400", "401", "403", "429"} <= set(responses), (method, path)
        assert openapi["paths"][path][method]["security"][0] == {"ApiKey": []}
    assert openapi["components"]["securitySchemes"]["ApiKey"]["in"] == "header"


def test_the_schema_shows_request_and_response_examples(openapi):
    analyze = openapi["paths"]["/api/v1/emotions/analyze"]["post"]
    decide = openapi["paths"]["/api/v1/content/decide"]["post"]

    assert set(analyze["requestBody"]["content"]) == {"multipart/form-data", "image/jpeg", "image/png"}
    assert analyze["responses"]["200"]["content"]["application/json"]["examples"]
    assert decide["requestBody"]["content"]["application/json"]["examples"]
    assert decide["responses"]["200"]["content"]["application/json"]["examples"]


def test_the_docs_work_offline():
    response = APIClient().get("/api/docs/")

    assert response.status_code == 200
    html = response.content.decode()
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets
    assert not re.search(r"https?://", html)
    for asset in assets:
        if asset.startswith("/api/docs/?script="):
            # The page's own start-up script, served apart so the page needs no inline script (CSP).
            script = APIClient().get(asset)
            assert script.status_code == 200 and not re.search(r"https?://", script.content.decode())
            continue
        # Served by this site from the drf-spectacular-sidecar package.
        assert asset.startswith("/static/drf_spectacular_sidecar/")
        assert finders.find(asset.removeprefix("/static/")), asset


# --- schemathesis ------------------------------------------------------------------------------


# Loaded at collection through the WSGI application, as a client would (no database involved).
# (schemathesis.pytest.from_fixture would load it lazily, but needs pytest < 9.)
schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application())


@pytest.fixture
def api_headers(transactional_db) -> dict[str, str]:
    _, secret = api_key_create(name="schemathesis", scopes=list(Scope.values), throttle_rate="1000000/day")
    return {"Authorization": f"Api-Key {secret}"}


@pytest.mark.slow
@schema.parametrize()
@settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
@pytest.mark.django_db(transaction=True)
def test_every_response_matches_the_schema_and_none_is_a_server_error(case, api_headers, engine):
    case.call_and_validate(
        headers=api_headers,
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
            response_headers_conformance,
        ],
    )
