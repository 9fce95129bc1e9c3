from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_the_theme_preview_shows_the_themes_own_button_colours(admin_client, make_theme):
    theme = make_theme(accent="#112233", accent_text="#fafafa")

    response = admin_client.get(reverse("admin:adaptation_theme_change", args=[theme.pk]))

    content = response.content.decode()
    assert "--accent: #112233" in content and "--accent-fg: #fafafa" in content
    assert "attune-preview-button" in content and "attune-preview-quiet" in content
    css = (Path(settings.BASE_DIR) / "static" / "adaptation" / "admin.css").read_text()
    # The admin's a:link colour would win over a bare class selector.
    assert ".attune-preview a.attune-preview-button:link" in css


def test_the_rules_list_keeps_its_columns_short(admin_client, make_rule):
    make_rule("Cheer up", moods=["sad"], cooldown_s=30, frequency_cap=3)

    response = admin_client.get(reverse("admin:adaptation_rule_changelist"))

    content = response.content.decode()
    assert "30 s · 3× each" in content
    assert 'title="Weighted: random by weight">weighted<' in content
    assert "Min conf." in content
