"""The adapted home page names the expressions from emotions.labels, for readers and for live.js alike."""

from __future__ import annotations

import json
import re

import pytest

from emotions.labels import EMOTIONS

pytestmark = pytest.mark.django_db


def test_it_lists_the_expressions_from_the_labels(client):
    html = client.get("/").content.decode()

    assert f"seven expressions ({', '.join(EMOTIONS)})" in html
    assert f"({', '.join(EMOTIONS[:-1])} or {EMOTIONS[-1]})" in html  # in the consent dialog
    assert len(EMOTIONS) == 7


def test_it_hands_the_expressions_to_the_script_as_json_data(client):
    html = client.get("/").content.decode()

    data = re.search(r'<script id="live-expressions" type="application/json">(.*?)</script>', html, re.S)

    assert json.loads(data.group(1)) == list(EMOTIONS)


def test_it_runs_no_inline_script(client):
    html = client.get("/").content.decode()

    scripts = re.findall(r"<script\b([^>]*)>", html)

    assert scripts
    for attributes in scripts:
        assert 'type="application/json"' in attributes or "src=" in attributes, attributes
