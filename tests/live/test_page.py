"""The live page as served: useful without a camera, the camera off, nothing loaded from elsewhere."""

from __future__ import annotations

import json
import re

import pytest
from django.core.management import call_command

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo_content():
    call_command("load_demo_content", verbosity=0)


def test_it_shows_the_no_camera_content_with_its_theme_before_any_script_runs(client, demo_content):
    response = client.get("/")

    html = response.content.decode()
    assert response.status_code == 200
    assert 'data-theme="Attune default"' in html
    assert re.search(r'<html lang="en"[^>]* style="[^"]*--bg: #f7f7f5;', html)
    assert 'data-rule="Attune default"' in html
    assert "Welcome to Attune" in html  # the default rule's hero item
    assert "There is no camera reading" in html  # and why it is shown
    decision = json.loads(re.search(r'id="live-decision"[^>]*>(.*?)</script>', html, re.S).group(1))
    assert decision["rule"] == "Attune default" and decision["mood"] is None


def test_it_keeps_the_camera_off_and_explains_before_asking(client, demo_content):
    html = client.get("/").content.decode()

    assert re.search(r'<div id="live-badge"[^>]*\bhidden\b', html)
    assert re.search(r'<aside id="self-view"[^>]*\bhidden\b', html)
    consent = re.search(r'<dialog id="consent".*?</dialog>', html, re.S).group(0)
    for words in (
        "What is analysed",
        "Frames are never stored",
        "How to stop",
        "Turn on the camera",
        "Not now",
    ):
        assert words in consent


def test_it_passes_the_frame_settings_to_the_page(client, demo_content, settings):
    settings.LIVE_MAX_FPS = 3.0
    settings.LIVE_FRAME_WIDTH, settings.LIVE_FRAME_HEIGHT = 256, 192
    settings.LIVE_JPEG_QUALITY = 0.6

    html = client.get("/").content.decode()

    assert 'data-ws-path="/ws/live/"' in html
    assert 'data-max-fps="3"' in html
    assert 'data-frame-width="256" data-frame-height="192"' in html
    assert 'data-jpeg-quality="0.6"' in html
    assert re.search(r"about 3\s+small pictures a second", html) and "256×192 pixels" in html


def test_it_loads_nothing_from_another_site(client, demo_content):
    html = client.get("/").content.decode()

    urls = re.findall(r'(?:src|href)="([^"]*)"', html)
    assert any(url.endswith("emotions/live.js") for url in urls)
    assert all(url.startswith(("/", "#")) and not url.startswith("//") for url in urls), urls


def test_the_page_works_without_any_rule(client):
    response = client.get("/")

    assert response.status_code == 200
    assert 'data-rule=""' in response.content.decode()
