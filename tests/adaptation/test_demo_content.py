"""Demo content: read from its data file, loaded once, calm for negative moods, pictures on this site."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path
from xml.etree import ElementTree

import pytest
from django.conf import settings
from django.core.management import call_command

from adaptation.demo import DEMO_STATIC_DIR, demo_content_read
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


def test_it_creates_nothing_new_when_forced_again_after_a_deletion():
    call_command("load_demo_content")
    first = _counts()
    Rule.objects.get(name="Gentle for sad").delete()

    call_command("load_demo_content", "--force")
    call_command("load_demo_content", "--force")

    assert _counts() == first  # the rule and its five items are back, nothing else is doubled


def test_it_points_items_and_themes_at_committed_pictures():
    call_command("load_demo_content")
    folder = Path(settings.BASE_DIR) / "static" / DEMO_STATIC_DIR

    urls = [i.media_url for i in ContentItem.objects.exclude(media_url="")]
    urls += [t.background_url for t in Theme.objects.exclude(background_url="")]
    names = {url.removeprefix(f"/static/{DEMO_STATIC_DIR}/") for url in urls}
    assert all(url.startswith(f"/static/{DEMO_STATIC_DIR}/") for url in urls), urls
    assert names == {path.name for path in folder.glob("*.svg")}  # each referenced, none left over
    for model in (*ContentItem.objects.all(), *Theme.objects.all(), *Rule.objects.all()):
        model.full_clean()


def test_it_names_only_pictures_that_exist():
    data = demo_content_read()
    folder = Path(settings.BASE_DIR) / "static" / DEMO_STATIC_DIR

    pictures = [row["picture"] for row in (*data["themes"], *data["items"]) if row.get("picture")]

    assert pictures
    for name in pictures:
        assert (folder / name).is_file(), name


def test_it_ships_pictures_that_are_plain_svg_with_a_title():
    paths = sorted((Path(settings.BASE_DIR) / "static" / DEMO_STATIC_DIR).glob("*.svg"))

    texts = {path.name: path.read_text(encoding="utf-8") for path in paths}

    assert texts
    for name, text in texts.items():
        root = ElementTree.fromstring(text)
        assert root.tag == "{http://www.w3.org/2000/svg}svg", name
        assert root.findtext("{http://www.w3.org/2000/svg}title"), name
        assert "<script" not in text and "href=" not in text, name


def test_it_refers_only_to_demo_rows_and_known_values():
    data = demo_content_read()
    themes = {row["name"] for row in data["themes"]}
    items = {row["key"] for row in data["items"]}

    assert len(items) == len(data["items"])
    for rule in data["rules"]:
        assert rule["theme"] in themes, rule["name"]
        assert {key for key, _ in rule["items"]} <= items, rule["name"]
        assert set(rule["moods"]) <= set(EMOTIONS), rule["name"]
        assert rule["tier"].upper() in Rule.Tier.names, rule["name"]


def test_it_switches_between_moods_after_a_few_seconds_at_most():
    data = demo_content_read()

    cooldowns = {rule["name"]: rule["cooldown_s"] for rule in data["rules"]}

    assert all(0 < seconds <= 6 for seconds in cooldowns.values()), cooldowns


def test_it_leads_every_call_to_action_somewhere_on_this_site(client):
    call_command("load_demo_content")
    links = {item.cta_url for item in ContentItem.objects.exclude(cta_url="")}

    assert links
    for link in links:
        path, _, anchor = link.partition("#")
        response = client.get(path)
        assert response.status_code == 200, link
        assert not anchor or f'id="{anchor}"' in response.content.decode(), link


def test_it_shows_weekend_offers_only_on_weekends():
    data = demo_content_read()
    weekend = {row["key"] for row in data["items"] if "weekend" in f"{row['title']} {row['body']}".lower()}

    rules = [rule for rule in data["rules"] if weekend & {key for key, _ in rule["items"]}]

    assert weekend and rules
    for rule in rules:
        assert rule["weekdays"] and set(rule["weekdays"]) <= {5, 6}, rule["name"]


def test_it_never_fills_every_slot_with_ads():
    data = demo_content_read()
    kinds = {row["key"]: (row["kind"], row["slot"]) for row in data["items"]}

    for rule in data["rules"]:
        slots: dict[str, set[str]] = {}
        for key, _ in rule["items"]:
            kind, slot = kinds[key]
            slots.setdefault(slot, set()).add(kind)
        # Some slot of every rule has no ad to pick, whatever the draw.
        assert any("ad" not in slot_kinds for slot_kinds in slots.values()), rule["name"]


@pytest.mark.parametrize(
    "day", [datetime(2026, 12, 2, 12, tzinfo=UTC), datetime(2026, 12, 5, 12, tzinfo=UTC)]
)
def test_it_shows_a_happy_visitor_something_besides_ads(day):
    call_command("load_demo_content")

    pages = [
        content_decide(mood="happy", confidence=0.9, now=day, rng=random.Random(seed)) for seed in range(60)
    ]

    for decision in pages:
        kinds = {slot: {item.kind for item in items} for slot, items in decision.items.items() if items}
        assert any(slot_kinds != {"ad"} for slot_kinds in kinds.values()), (decision.rule_name, kinds)
