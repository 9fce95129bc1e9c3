"""Browser policies on every page, and admin sign-in that stops guessing."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model

pytestmark = pytest.mark.django_db

INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>", re.IGNORECASE)


def directives(header: str) -> dict[str, list[str]]:
    parsed = {}
    for part in header.split(";"):
        name, *values = part.split()
        parsed[name] = values
    return parsed


@pytest.mark.parametrize("path", ["/", "/admin/login/", "/api/docs/"])
def test_every_page_runs_only_the_sites_own_scripts(client, fake_emotions, path):
    response = client.get(path)

    assert response.status_code == 200
    policy = directives(response["Content-Security-Policy"])
    assert policy["script-src"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"] and policy["object-src"] == ["'none'"]
    assert not INLINE_SCRIPT.search(response.content.decode()), "an inline script would be blocked"


def test_only_this_site_may_ask_for_the_camera(client, fake_emotions):
    response = client.get("/")

    policy = response["Permissions-Policy"]
    assert "camera=(self)" in policy
    assert "microphone=()" in policy and "geolocation=()" in policy


def test_admin_sign_in_locks_out_a_guesser_even_when_they_find_the_password(client, settings):
    get_user_model().objects.create_user("operator", password="the-right-password-42", is_staff=True)
    guesses = [
        client.post("/admin/login/", {"username": "operator", "password": f"wrong-{i}"})
        for i in range(settings.AXES_FAILURE_LIMIT)
    ]

    response = client.post("/admin/login/", {"username": "operator", "password": "the-right-password-42"})

    assert [guess.status_code for guess in guesses[:-1]] == [200] * (settings.AXES_FAILURE_LIMIT - 1)
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session


def test_admin_sign_in_still_works_after_a_typo(client):
    get_user_model().objects.create_user("operator", password="the-right-password-42", is_staff=True)
    client.post("/admin/login/", {"username": "operator", "password": "typo"})

    response = client.post("/admin/login/", {"username": "operator", "password": "the-right-password-42"})

    assert response.status_code == 302
    assert "_auth_user_id" in client.session
