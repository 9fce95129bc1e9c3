"""Demo content: loaded on a first start, idempotent, calm for negative moods, pictures drawn by Attune."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command

from adaptation.demo import DEMO_STATIC_DIR, demo_svgs
from adaptation.engine import NEGATIVE_MOODS
from adaptation.models import ContentItem, Rule, RuleItem, Theme
from adaptation.services import content_decide
from emotions.labels import EMOTIONS

pytestmark = pytest.mark.django_db


def _counts() -> tuple[int, int, int, int]:
    return Theme.objects.count(), ContentItem.objects.count(), Rule.objects.count(), RuleItem.objects.count()


def test_it_loads_the_demo_content_once():
    call_command("load_demo_content")
    first = _counts()

    call_command("load_demo_content")
    call_command("load_demo_content", "--force")

    assert _counts() == first
    assert first[0] >= len(EMOTIONS) and first[1] >= 12


def test_it_leaves_operators_content_alone_unless_forced(make_theme):
    make_theme("Mine")

    call_command("load_demo_content")
    assert _counts() == (1, 0, 0, 0)

    call_command("load_demo_content", "--force")
    assert Rule.objects.filter(is_default=True).exists()


def test_it_gives_every_expression_a_rule_and_a_theme():
    call_command("load_demo_content")

    for mood in EMOTIONS:
        decision = content_decide(mood=mood, confidence=0.9)
        assert not decision.is_default, mood
        assert decision.theme.css, mood
        assert decision.items, mood
    assert content_decide(mood="uncertain", confidence=0.2).rule_name == "Attune default"
    assert content_decide(mood=None, confidence=0.0).rule_name == "Attune default"


def test_it_keeps_ads_out_of_the_demo_rules_for_negative_moods():
    call_command("load_demo_content")

    for rule in Rule.objects.all():
        if set(rule.moods) & NEGATIVE_MOODS:
            kinds = set(rule.rule_items.values_list("item__kind", flat=True))
            assert "ad" not in kinds, rule.name
            assert rule.theme.motion in ("none", "calm"), rule.name


def test_it_points_items_and_themes_at_committed_pictures_that_match_the_code():
    call_command("load_demo_content")
    folder = Path(settings.BASE_DIR) / "static" / DEMO_STATIC_DIR

    for name, text in demo_svgs().items():
        assert (folder / name).read_text(encoding="utf-8") == text, (
            f"regenerate with load_demo_content --write-svg: {name}"
        )
        assert "<script" not in text and "href=" not in text
    urls = [i.media_url for i in ContentItem.objects.exclude(media_url="")]
    urls += [t.background_url for t in Theme.objects.exclude(background_url="")]
    for url in urls:
        assert url.startswith(f"/static/{DEMO_STATIC_DIR}/")
        assert (folder / url.rsplit("/", 1)[1]).is_file()
    for model in (*ContentItem.objects.all(), *Theme.objects.all(), *Rule.objects.all()):
        model.full_clean()
