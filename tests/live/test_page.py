"""The live page as served: useful without a camera, the camera off, nothing loaded from elsewhere."""

from __future__ import annotations

import json
import re
from pathlib import Path
from xml.etree import ElementTree

import pytest
from django.conf import settings
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
    assert "Expression reading is off, so you see the usual page." in html  # and why, in plain words
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
    settings.LIVE_OFFLINE_CAMERA_STOP_S = 12.0

    html = client.get("/").content.decode()

    assert 'data-ws-path="/ws/live/"' in html
    assert 'data-max-fps="3"' in html
    assert 'data-frame-width="256" data-frame-height="192"' in html
    assert 'data-jpeg-quality="0.6"' in html
    assert 'data-offline-camera-stop-s="12"' in html
    assert re.search(r"about 3\s+small pictures a second", html) and "256×192 pixels" in html
    assert re.search(r"loses the server for 12\s+seconds", html)  # the consent dialog says so


def test_it_hands_the_page_the_engines_words_for_each_reading(client):
    html = client.get("/").content.decode()

    words = json.loads(re.search(r'id="live-reading-words"[^>]*>(.*?)</script>', html, re.S).group(1))

    assert words["happy"] == {"was": "You looked happy", "now": "you look happy"}
    assert words["surprise"]["now"] == "you look surprised"
    assert words["off"]["was"] == "Expression reading is off"
    assert {"no_face", "uncertain"} <= set(words)


def test_it_puts_the_badge_in_the_header_beside_the_navigation_and_links_a_favicon(client):
    html = client.get("/").content.decode()

    header = re.search(r'<header class="site-header">.*?</header>', html, re.S).group(0)
    assert 'id="live-badge"' in header and "<nav>" in header
    assert re.search(r'<link rel="icon" href="/static/attune/favicon\.svg" type="image/svg\+xml">', html)
    icon = ElementTree.parse(Path(settings.BASE_DIR) / "static" / "attune" / "favicon.svg").getroot()
    assert icon.tag == "{http://www.w3.org/2000/svg}svg"


def test_it_loads_nothing_from_another_site(client, demo_content):
    html = client.get("/").content.decode()

    urls = re.findall(r'(?:src|href)="([^"]*)"', html)
    assert any(url.endswith("emotions/live.js") for url in urls)
    assert all(url.startswith(("/", "#")) and not url.startswith("//") for url in urls), urls


def test_the_page_works_without_any_rule(client):
    response = client.get("/")

    assert response.status_code == 200
    assert 'data-rule=""' in response.content.decode()
