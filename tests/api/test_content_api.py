"""Content decisions and their impression and click events through the API."""

from __future__ import annotations

import pytest

from adaptation.models import ContentItem, ItemDailyStat, Rule, RuleItem

pytestmark = pytest.mark.django_db


@pytest.fixture
def happy_item() -> ContentItem:
    """An item that a rule for happy visitors at 60 % or more shows in the hero slot."""
    item = ContentItem.objects.create(
        title="Make the most of a good day",
        kind="image",
        slot="hero",
        media_url="/static/adaptation/demo/sunrise.svg",
        cta_url="/offers/",
    )
    rule = Rule.objects.create(name="Happy visitors", moods=["happy"], min_confidence=0.6, cooldown_s=0)
    RuleItem.objects.create(rule=rule, item=item, weight=1, position=0)
    return item


def decide(client, **data):
    response = client.post("/api/v1/content/decide", data, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def test_it_decides_the_content_for_a_mood(client_all, happy_item):
    decision = decide(client_all, mood="happy", confidence=0.9, visitor_id="v1")

    assert decision["mood"] == "happy"
    assert decision["rule"] == "Happy visitors"
    assert decision["is_default"] is False
    [item] = decision["items"]["hero"]
    assert item["id"] == happy_item.pk
    assert item["media_url"] == "http://testserver/static/adaptation/demo/sunrise.svg"
    assert len(decision["decision_id"]) == 32


def test_below_the_rules_confidence_it_falls_back_to_the_default(client_all, happy_item):
    decision = decide(client_all, mood="happy", confidence=0.3)

    assert decision["is_default"] is True
    assert decision["items"].get("hero", []) == []


def test_without_a_camera_reading_the_mood_is_null(client_all, happy_item):
    decision = decide(client_all, mood=None)

    assert decision["mood"] is None
    assert decision["is_default"] is True


def test_get_content_gives_the_same_decision(client_all, happy_item):
    response = client_all.get("/api/v1/content", {"mood": "happy", "confidence": "0.8"})

    assert response.status_code == 200
    assert response.json()["items"]["hero"][0]["id"] == happy_item.pk


def test_get_content_without_a_mood_means_no_camera(client_all, happy_item):
    response = client_all.get("/api/v1/content")

    assert response.status_code == 200
    assert response.json()["mood"] is None


@pytest.mark.parametrize(
    "data, field",
    [
        ({"mood": "ecstatic", "confidence": 0.5}, "mood"),
        ({"confidence": 0.5}, "mood"),
        ({"mood": "happy", "confidence": 1.5}, "confidence"),
        ({"mood": "happy", "confidence": "lots"}, "confidence"),
        ({"mood": None, "confidence": False}, "confidence"),
        ({"mood": "happy", "confidence": "0.5"}, "confidence"),
        ({"mood": "happy", "visitor_id": "x" * 101}, "visitor_id"),
        ({"mood": "happy", "visitor_id": ""}, "visitor_id"),
        ({"mood": "happy", "visitor_id": 12}, "visitor_id"),
    ],
)
def test_it_refuses_a_decision_request_that_is_not_valid(client_all, data, field):
    response = client_all.post("/api/v1/content/decide", data, format="json")

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert field in error["details"]


@pytest.mark.parametrize("query", ["mood=ecstatic", "confidence=nan", "confidence=-1"])
def test_it_refuses_a_content_query_that_is_not_valid(client_all, query):
    response = client_all.get(f"/api/v1/content?{query}")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"


@pytest.mark.parametrize(
    "body, content_type, status, code",
    [
        (b'{"mood": "happy"', "application/json", 400, "parse_error"),
        (b'{"confidence": NaN, "mood": "happy"}', "application/json", 400, "parse_error"),
        (b"[" * 30_000 + b"]" * 30_000, "application/json", 400, "parse_error"),
        (b"\xff\xfe not utf-8", "application/json", 400, "parse_error"),
        (b"[1, 2]", "application/json", 400, "invalid"),
        (b"mood=happy", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
        (b'{"mood": "happy"}', "application/json; charset=bz2_codec", 400, "parse_error"),
    ],
    ids=["truncated", "nan", "deeply-nested", "not-utf8", "a-list", "a-form", "compressed-charset"],
)
def test_it_refuses_json_that_is_broken_or_not_json(client_all, body, content_type, status, code):
    response = client_all.generic("POST", "/api/v1/content/decide", body, content_type=content_type)

    assert response.status_code == status
    assert response.json()["error"]["code"] == code


def test_it_refuses_a_json_body_over_64_kib(client_all):
    body = b'{"mood": "happy", "visitor_id": "' + b"x" * 70_000 + b'"}'

    response = client_all.generic("POST", "/api/v1/content/decide", body, content_type="application/json")

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"


# --- Events -----------------------------------------------------------------------------------


def event(client, decision, item_id, kind="impression", **extra):
    data = {
        "kind": kind,
        "decision_id": decision["decision_id"],
        "item_id": item_id,
        "mood": decision["mood"],
        **extra,
    }
    return client.post("/api/v1/content/events", data, format="json")


def test_it_counts_an_impression_and_a_click_once(client_all, happy_item):
    decision = decide(client_all, mood="happy", confidence=0.9)

    first = event(client_all, decision, happy_item.pk, visitor_id="v1")
    repeat = event(client_all, decision, happy_item.pk, visitor_id="v1")
    click = event(client_all, decision, happy_item.pk, "click", visitor_id="v1")

    assert (first.status_code, first.json()) == (201, {"counted": True})
    assert (repeat.status_code, repeat.json()) == (200, {"counted": False})
    assert click.status_code == 201
    stat = ItemDailyStat.objects.get(item=happy_item, mood="happy")
    assert (stat.impressions, stat.clicks) == (1, 1)


def test_one_decision_counts_once_however_the_visitor_is_named(client_all, happy_item):
    decision = decide(client_all, mood="happy", confidence=0.9)

    answers = [event(client_all, decision, happy_item.pk, visitor_id=f"v{i}") for i in range(40)]
    clicks = [event(client_all, decision, happy_item.pk, "click", visitor_id=f"v{i}") for i in range(40)]

    assert [a.status_code for a in answers] == [201] + [200] * 39
    assert [c.status_code for c in clicks] == [201] + [200] * 39
    stat = ItemDailyStat.objects.get(item=happy_item)
    assert (stat.impressions, stat.clicks) == (1, 1)


def test_a_click_without_an_impression_is_a_conflict(client_all, happy_item):
    decision = decide(client_all, mood="happy", confidence=0.9)

    response = event(client_all, decision, happy_item.pk, "click")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "impression_missing"
    assert not ItemDailyStat.objects.exists()


@pytest.mark.parametrize("change", [{"item": 1000}, {"mood": "sad"}], ids=["item-not-shown", "other-mood"])
def test_an_event_that_does_not_fit_its_decision_is_a_conflict(client_all, happy_item, change):
    decision = decide(client_all, mood="happy", confidence=0.9)

    response = event(
        client_all, {**decision, "mood": change.get("mood", "happy")}, happy_item.pk + change.get("item", 0)
    )

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "decision_mismatch"
    assert not ItemDailyStat.objects.exists()


def test_an_event_for_a_decision_attune_never_issued_is_a_404(client_all, happy_item):
    response = client_all.post(
        "/api/v1/content/events",
        {"kind": "impression", "decision_id": "0" * 32, "item_id": happy_item.pk, "mood": "happy"},
        format="json",
    )

    assert response.status_code == 404
    error = response.json()["error"]
    assert (error["code"], error["message"], error["details"]) == (
        "decision_not_found",
        "Unknown or expired decision.",
        None,
    )
    assert not ItemDailyStat.objects.exists()


@pytest.mark.parametrize(
    "data",
    [
        {"decision_id": "not-hex"},
        {"decision_id": " " + "0" * 32},
        {"kind": "hover"},
        {"item_id": -1},
        {"item_id": 2**64},
        {"mood": "ecstatic"},
    ],
)
def test_it_refuses_events_that_are_not_valid(client_all, happy_item, data):
    decision = decide(client_all, mood="happy", confidence=0.9)
    body = {
        "kind": "impression",
        "decision_id": decision["decision_id"],
        "item_id": happy_item.pk,
        "mood": "happy",
    }

    response = client_all.post("/api/v1/content/events", body | data, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
    assert not ItemDailyStat.objects.exists()


def test_a_decision_without_a_camera_takes_events_with_a_null_mood(client_all, happy_item):
    Rule.objects.create(name="Default", moods=[], is_default=True, cooldown_s=0).rule_items.create(
        item=happy_item, weight=1, position=0
    )
    decision = decide(client_all, mood=None)

    response = event(client_all, decision, happy_item.pk)
    as_no_face = event(client_all, decision, happy_item.pk, kind="click", mood="no_face")

    assert response.status_code == 201, response.content
    # Counted under no camera, not under no face (a camera-on reading without a face in view).
    stat = ItemDailyStat.objects.get(item=happy_item)
    assert (stat.mood, stat.impressions, stat.clicks) == ("no_camera", 1, 0)
    assert not as_no_face.status_code < 400  # refused: the decision was made without a camera
    assert "made for no_camera, not no_face" in as_no_face.content.decode()


def test_a_decision_for_a_camera_without_a_face_is_counted_under_no_face(client_all, happy_item):
    Rule.objects.create(name="Default", moods=[], is_default=True, cooldown_s=0).rule_items.create(
        item=happy_item, weight=1, position=0
    )
    decision = decide(client_all, mood="no_face", confidence=0.0)

    response = event(client_all, decision, happy_item.pk)

    assert response.status_code == 201, response.content
    assert decision["mood"] == "no_face"
    assert ItemDailyStat.objects.get(item=happy_item).mood == "no_face"


def test_it_answers_503_with_retry_after_while_the_shared_cache_is_down(client_all, happy_item, settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens there
        }
    }

    response = client_all.post("/api/v1/content/decide", {"mood": "happy", "confidence": 0.9}, format="json")

    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response.json()["error"]["code"] == "service_unavailable"
    assert "127.0.0.1" not in response.content.decode()
