"""The ad guardrail: on by default, ads stay out of rules for angry, disgust, fear and sad."""

from __future__ import annotations

import pytest
from django.conf import settings as django_settings

from adaptation.models import Rule
from adaptation.services import content_decide
from tests.adaptation.helpers import rule_form

pytestmark = pytest.mark.django_db


def test_it_is_on_by_default():
    assert django_settings.ADAPTATION_AD_GUARDRAIL is True


@pytest.mark.parametrize("mood", ["angry", "disgust", "fear", "sad"])
def test_it_refuses_an_ad_in_a_rule_for_a_negative_mood(admin_client, make_item, mood):
    ad = make_item("Spring sale", kind="ad")

    response = admin_client.post(
        "/admin/adaptation/rule/add/", rule_form(moods=(mood, "happy"), items=[(ad, 1)])
    )

    page = response.content.decode()
    assert response.status_code == 200
    assert f"Ads cannot be shown for {mood}: the ad guardrail keeps items of kind “ad” out of rules" in page
    assert "Remove “Spring sale” or those moods" in page
    assert not Rule.objects.exists()


def test_it_accepts_ads_for_positive_moods_and_calm_items_for_negative_ones(admin_client, make_item):
    ad, calm = make_item("Spring sale", kind="ad"), make_item("Breathe")

    happy = admin_client.post(
        "/admin/adaptation/rule/add/", rule_form("Happy", moods=("happy",), items=[(ad, 1)])
    )
    sad = admin_client.post(
        "/admin/adaptation/rule/add/", rule_form("Sad", moods=("sad",), items=[(calm, 1)])
    )

    assert (happy.status_code, sad.status_code) == (302, 302)


def test_it_can_be_turned_off(admin_client, make_item, settings):
    settings.ADAPTATION_AD_GUARDRAIL = False
    ad = make_item("Spring sale", kind="ad")

    response = admin_client.post("/admin/adaptation/rule/add/", rule_form(items=[(ad, 1)]))

    assert response.status_code == 302
    assert Rule.objects.filter(rule_items__item=ad).exists()
    assert b"Ad guardrail is <strong>off</strong>" in admin_client.get("/admin/adaptation/rule/").content


def test_it_refuses_turning_an_item_of_a_calm_rule_into_an_ad(admin_client, make_item, make_rule):
    item = make_item("Breathe")
    make_rule("Calm for sad", moods=["sad"], items=[item])
    data = {
        "kind": "ad",
        "slot": "hero",
        "title": "Breathe",
        "body": "",
        "tags": "",
        "media_url": "",
        "alt": "",
        "cta_url": "",
        "cta_label": "",
    }

    response = admin_client.post(f"/admin/adaptation/contentitem/{item.pk}/change/", data)

    assert response.status_code == 200
    assert "the ad guardrail keeps ads out of rules for negative moods" in response.content.decode()
    item.refresh_from_db()
    assert item.kind == "text"


def test_it_keeps_ads_of_a_default_rule_away_from_sad_visitors(make_item, make_rule):
    make_rule(
        "House",
        moods=[],
        is_default=True,
        picks_per_slot=5,
        items=[make_item("Sale", kind="ad"), make_item("Hi")],
    )

    sad = content_decide(mood="sad", confidence=0.9)
    unsure = content_decide(mood="uncertain", confidence=0.2)

    assert [i.title for i in sad.items["hero"]] == ["Hi"]
    assert {i.title for i in unsure.items["hero"]} == {"Sale", "Hi"}
