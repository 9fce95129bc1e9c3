"""Operators' pages: lists, forms with previews and validation, the simulator and the statistics."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.utils import timezone

from adaptation.models import ContentItem, ItemDailyStat, MoodMinuteStat, Rule, RuleItem, Theme
from adaptation.services import content_decide, content_event_record, stats_mood
from tests.adaptation.helpers import rule_form, theme_form

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("model", ["theme", "contentitem", "rule"])
def test_it_renders_the_lists_and_empty_forms(admin_client, model, make_theme, make_item, make_rule):
    make_rule(
        "Happy",
        theme=make_theme(),
        items=[make_item(media_url="/static/adaptation/demo/sunrise.svg", kind="image")],
    )

    listing = admin_client.get(f"/admin/adaptation/{model}/")
    add = admin_client.get(f"/admin/adaptation/{model}/add/")

    assert listing.status_code == 200
    assert add.status_code == 200


def test_it_links_the_simulator_and_statistics_from_the_rule_list(admin_client):
    response = admin_client.get("/admin/adaptation/rule/")

    assert b'href="/admin/adaptation/rule/simulate/"' in response.content
    assert b'href="/admin/adaptation/rule/statistics/"' in response.content
    assert b"Ad guardrail is <strong>on</strong>" in response.content


def test_it_creates_a_theme_and_previews_it(admin_client):
    response = admin_client.post("/admin/adaptation/theme/add/", theme_form())

    assert response.status_code == 302
    theme = Theme.objects.get(name="Calm")
    assert theme.css_variables()["--font-scale"] == "1.1"
    assert theme.css_variables()["--motion"] == "0"
    page = admin_client.get(f"/admin/adaptation/theme/{theme.pk}/change/").content.decode()
    assert 'id="attune-theme-preview"' in page
    assert "--bg: #eef5f7" in page
    assert "adaptation/theme_preview.js" in page
    assert 'type="color"' in page


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("accent", "red; color: red"),
        ("background_url", "https://elsewhere.example/x.png"),
        ("background_url", '/x")'),
    ],
)
def test_it_refuses_unsafe_theme_values(admin_client, field, value):
    response = admin_client.post("/admin/adaptation/theme/add/", theme_form(**{field: value}))

    assert response.status_code == 200
    assert not Theme.objects.exists()


def test_it_creates_an_item_and_previews_its_media(admin_client):
    data = {
        "kind": "image",
        "slot": "hero",
        "title": "Sunrise",
        "body": "",
        "tags": "happy",
        "media_url": "/static/adaptation/demo/sunrise.svg",
        "alt": "A sun",
        "cta_url": "https://example.com/offer",
        "cta_label": "",
    }

    response = admin_client.post("/admin/adaptation/contentitem/add/", data)

    assert response.status_code == 302
    item = ContentItem.objects.get(title="Sunrise")
    page = admin_client.get(f"/admin/adaptation/contentitem/{item.pk}/change/").content.decode()
    assert '<img class="attune-media-preview" src="/static/adaptation/demo/sunrise.svg" alt="A sun">' in page
    assert item.snapshot().cta_label == "Learn more"


@pytest.mark.parametrize(
    "change",
    [
        {"cta_url": "javascript:alert(1)"},
        {"media_url": "//evil.example/x.png"},
        {"kind": "image", "media_url": ""},
    ],
)
def test_it_refuses_unsafe_or_incomplete_items(admin_client, change):
    data = {
        "kind": "text",
        "slot": "hero",
        "title": "T",
        "body": "",
        "tags": "",
        "media_url": "",
        "alt": "",
        "cta_url": "",
        "cta_label": "",
        **change,
    }

    response = admin_client.post("/admin/adaptation/contentitem/add/", data)

    assert response.status_code == 200
    assert not ContentItem.objects.exists()


def test_it_creates_a_rule_with_weighted_items(admin_client, make_item, make_theme):
    calm = make_theme()
    first, second = make_item("Breathe"), make_item("Help", slot="sidebar")

    response = admin_client.post(
        "/admin/adaptation/rule/add/",
        rule_form(items=[(first, 2), (second, 1)], theme=str(calm.pk), weekdays=["5", "6"]),
    )

    assert response.status_code == 302
    rule = Rule.objects.get(name="Calm for sad")
    assert rule.moods == ["sad"]
    assert rule.weekdays == [5, 6]
    assert rule.theme == calm
    assert {(ri.item.title, float(ri.weight)) for ri in rule.rule_items.all()} == {
        ("Breathe", 2.0),
        ("Help", 1.0),
    }


def test_it_creates_rules_for_no_camera_and_for_no_face_apart(admin_client, make_item):
    form = admin_client.get("/admin/adaptation/rule/add/").content.decode()

    off = admin_client.post(
        "/admin/adaptation/rule/add/", rule_form("Camera off", moods=["no_camera"], items=[(make_item(), 1)])
    )
    empty = admin_client.post("/admin/adaptation/rule/add/", rule_form("Nobody there", moods=["no_face"]))
    listing = admin_client.get("/admin/adaptation/rule/").content.decode()

    assert 'value="no_camera"' in form and "No camera" in form and "No face (camera on)" in form
    assert off.status_code == empty.status_code == 302
    assert Rule.objects.get(name="Camera off").moods == ["no_camera"]
    assert Rule.objects.get(name="Nobody there").moods == ["no_face"]
    assert "No camera" in listing and "No face (camera on)" in listing
    simulated = admin_client.get("/admin/adaptation/rule/simulate/", {"mood": "__none__", "confidence": "0"})
    assert (
        "Rule “Camera off” (Standard, order 10) fired: there is no camera reading"
        in simulated.content.decode()
    )


def test_it_refuses_a_weight_of_zero(admin_client, make_item):
    response = admin_client.post("/admin/adaptation/rule/add/", rule_form(items=[(make_item(), 0)]))

    assert response.status_code == 200
    assert not Rule.objects.exists()
    assert not RuleItem.objects.exists()


def test_it_refuses_a_mood_rule_without_moods(admin_client):
    response = admin_client.post("/admin/adaptation/rule/add/", rule_form(moods=()))

    assert response.status_code == 200
    assert "Choose at least one mood, or make this a default rule." in response.content.decode()
    assert not Rule.objects.exists()


def test_it_flags_overlapping_rules_at_the_same_tier(admin_client, make_rule):
    make_rule("Sad afternoons", moods=["sad", "fear"], tier=2, order=10)
    make_rule("Sad sponsorship", moods=["sad"], tier=1, order=10)

    response = admin_client.post("/admin/adaptation/rule/add/", rule_form("Calm for sad"), follow=True)

    warnings = [str(m) for m in get_messages(response.wsgi_request) if m.level_tag == "warning"]
    assert warnings == [
        "“Calm for sad” overlaps “Sad afternoons” in the Standard tier: both serve sad at overlapping times; "
        "they share order 10, so the older one wins; give them different orders."
    ]
    assert Rule.objects.filter(name="Calm for sad").exists()
    listing = admin_client.get("/admin/adaptation/rule/").content.decode()
    assert "⚠ Sad afternoons" in listing


def test_it_simulates_a_visitor(admin_client, make_rule, make_item, make_theme):
    make_rule(
        "Calm for sad",
        moods=["sad"],
        min_confidence=0.5,
        theme=make_theme("Gentle"),
        items=[make_item("Breathe")],
    )
    make_rule("House", moods=[], is_default=True, tier=3)

    sad = admin_client.get(
        "/admin/adaptation/rule/simulate/", {"mood": "sad", "confidence": "0.9"}
    ).content.decode()
    unsure = admin_client.get(
        "/admin/adaptation/rule/simulate/", {"mood": "sad", "confidence": "0.2"}
    ).content.decode()
    no_camera = admin_client.get("/admin/adaptation/rule/simulate/", {"mood": "__none__", "confidence": "0"})

    assert "Rule “Calm for sad” (Standard, order 100) fired: the mood is sad at 90% confidence" in sad
    assert "Breathe" in sad and "Gentle" in sad
    assert "No rule matched sad at 20% confidence, so the default rule “House” fired" in unsure
    assert "confidence 20% is below its minimum 50%" in unsure
    assert "There is no camera reading" in no_camera.content.decode()
    # Beside the operators' terms, the sentence the visitor reads.
    assert (
        "The visitor reads:</strong> “You looked sad, so the page shows colours and content chosen to suit.”"
        in sad
    )
    assert "You looked sad, but not clearly enough to change the page" in unsure
    assert not ItemDailyStat.objects.exists()


def test_it_shows_simulator_errors_for_bad_input(admin_client):
    response = admin_client.get("/admin/adaptation/rule/simulate/", {"mood": "joy", "confidence": "2"})

    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert "Why:" not in response.content.decode()


def test_it_shows_statistics_per_mood_and_item_with_a_mood_chart(admin_client, make_item):
    item = make_item("Sunrise")
    today = timezone.localdate()
    ItemDailyStat.objects.create(item=item, mood="happy", day=today, impressions=200, clicks=30)
    ItemDailyStat.objects.create(
        item=item, mood="sad", day=today - timedelta(days=2), impressions=50, clicks=0
    )
    ItemDailyStat.objects.create(
        item=item, mood="happy", day=today - timedelta(days=60), impressions=999, clicks=9
    )  # out of period
    now = timezone.now().replace(second=0, microsecond=0)
    MoodMinuteStat.objects.create(minute=now - timedelta(hours=2), mood="happy", count=7)
    MoodMinuteStat.objects.create(minute=now - timedelta(hours=1), mood="sad", count=3)

    page = admin_client.get(
        "/admin/adaptation/rule/statistics/", {"days": "30", "hours": "24"}
    ).content.decode()

    assert "<td>happy</td><td>200</td><td>30</td><td>15.0 %</td>" in page.replace("\n", "").replace("  ", "")
    assert "Sunrise" in page
    assert "<td>999</td>" not in page
    assert "<svg" in page and "happy (7)" in page and "sad (3)" in page


def test_it_shows_no_camera_and_no_face_as_separate_statistics(admin_client, make_rule, make_item):
    off, empty = make_item("Turn the camera on"), make_item("Come back")
    make_rule("No camera", moods=["no_camera"], items=[off])
    make_rule("Nobody there", moods=["no_face"], items=[empty])
    # One visitor without a camera, one with the camera on but no face in view, each shown and clicking.
    for mood, item in ((None, off), ("no_face", empty)):
        decision = content_decide(mood=mood, confidence=0.0)
        for kind in ("impression", "click"):
            content_event_record(
                kind=kind, item_id=item.pk, mood=stats_mood(mood), decision_id=decision.decision_id
            )
    content_event_record(
        kind="impression",
        item_id=off.pk,
        mood="no_camera",
        decision_id=content_decide(mood=None, confidence=0.0).decision_id,
    )
    now = timezone.now().replace(second=0, microsecond=0)
    MoodMinuteStat.objects.create(minute=now - timedelta(hours=1), mood="no_face", count=4)

    page = admin_client.get(
        "/admin/adaptation/rule/statistics/", {"days": "7", "hours": "24"}
    ).content.decode()

    flat = page.replace("\n", "").replace("  ", "")
    assert "<td>No camera</td><td>2</td><td>1</td><td>50.0 %</td>" in flat
    assert "<td>No face (camera on)</td><td>1</td><td>1</td><td>100.0 %</td>" in flat
    assert "<td>No camera</td><td><a href" in flat and "Turn the camera on" in flat
    assert "<td>No face (camera on)</td><td><a href" in flat and "Come back" in flat
    assert "No face (camera on) (4)" in page  # the mood chart's legend


def test_it_keeps_the_custom_pages_for_staff(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("visitor", password="a-long-password-123"))

    for page in ("simulate", "statistics"):
        response = client.get(f"/admin/adaptation/rule/{page}/")
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/")


def test_it_forbids_the_custom_pages_to_staff_without_rule_permission(client, django_user_model):
    user = django_user_model.objects.create_user("clerk", password="a-long-password-123", is_staff=True)
    client.force_login(user)

    assert client.get("/admin/adaptation/rule/simulate/").status_code == 403
    assert client.get("/admin/adaptation/rule/statistics/").status_code == 403
