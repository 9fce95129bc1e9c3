"""Services: deciding from the database, counting events once, mood samples and pruning."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from adaptation.engine import VisitorState
from adaptation.models import ItemDailyStat, MoodMinuteStat
from adaptation.services import (
    content_decide,
    content_event_record,
    content_show,
    content_simulate,
    decision_serialize,
    mood_sample_record,
    stats_mood,
    stats_prune,
)

pytestmark = pytest.mark.django_db


def test_it_decides_from_the_active_rules(make_theme, make_item, make_rule):
    theme = make_theme("Sunny", background="#fffaf0", accent="#d98e04", background_url="/static/sun.svg")
    hero = make_item("Hello", media_url="/static/adaptation/demo/sunrise.svg", cta_url="/#go", cta_label="Go")
    make_rule("Old", moods=["happy"], order=1, is_active=False, items=[make_item()])
    make_rule("Celebrate", moods=["happy"], order=2, theme=theme, items=[hero])

    data = decision_serialize(content_decide(mood="happy", confidence=0.9, rng=random.Random(1)))

    assert data["rule"] == "Celebrate"
    assert data["theme"]["name"] == "Sunny"
    assert data["theme"]["css"]["--bg"] == "#fffaf0"
    assert data["theme"]["css"]["--accent"] == "#d98e04"
    assert data["theme"]["css"]["--bg-image"] == 'url("/static/sun.svg")'
    assert data["theme"]["css"]["--font-scale"] == "1"
    assert data["items"]["hero"][0] == {
        "id": hero.pk,
        "kind": "text",
        "title": "Hello",
        "body": "Body",
        "media_url": "/static/adaptation/demo/sunrise.svg",
        "cta_url": "/#go",
        "cta_label": "Go",
        "alt": "",
    }
    assert len(data["decision_id"]) == 32


def test_it_takes_the_default_path_for_a_visitor_without_a_camera(make_rule, make_item):
    make_rule("House", moods=[], is_default=True, tier=3, items=[make_item("Welcome")])

    decision = content_decide(mood=None, confidence=0.0)

    assert decision.is_default
    assert decision.detail.startswith("There is no camera reading, so the default rule “House” fired")
    assert decision.reason == "Expression reading is off, so you see the usual page."


def test_it_refuses_an_unknown_mood():
    with pytest.raises(ValidationError):
        content_decide(mood="joy", confidence=0.5)


def test_it_remembers_the_decision_in_the_visitor_state_for_the_cool_down(make_rule, make_item):
    make_rule("Happy", moods=["happy"], cooldown_s=30, items=[make_item()])
    make_rule("Sad", moods=["sad"], items=[make_item()])
    state = VisitorState()
    now = timezone.now()

    first = content_decide(mood="happy", confidence=0.9, visitor_state=state, now=now)
    kept = content_decide(mood="sad", confidence=0.9, visitor_state=state, now=now + timedelta(seconds=5))
    later = content_decide(mood="sad", confidence=0.9, visitor_state=state, now=now + timedelta(seconds=31))

    assert state.current == later
    assert kept.decision_id == first.decision_id and kept.rule_name == "Happy" and kept.held
    assert later.rule_name == "Sad"
    assert state.last_switch_at == now + timedelta(seconds=31)


def test_it_counts_clicks_on_content_kept_for_a_new_reading_under_the_mood_it_was_shown_for(
    make_rule, make_item
):
    item = make_item("Welcome")
    make_rule("House", moods=[], is_default=True, tier=3, items=[item])
    state = VisitorState()
    now = timezone.now()
    shown = content_decide(mood="uncertain", confidence=0.2, visitor_state=state, now=now)
    content_event_record(kind="impression", item_id=item.pk, mood="uncertain", decision_id=shown.decision_id)

    kept = content_decide(mood="no_face", confidence=0.0, visitor_state=state, now=now + timedelta(seconds=3))
    counted = content_event_record(
        kind="click", item_id=item.pk, mood="uncertain", decision_id=kept.decision_id
    )

    assert kept.decision_id == shown.decision_id and kept.mood == "no_face"
    assert counted
    assert ItemDailyStat.objects.get(item=item, mood="uncertain").clicks == 1


def test_it_learns_from_recorded_clicks_in_optimize_mode(make_rule, make_item):
    good, poor = make_item("Good"), make_item("Poor")
    make_rule("Learn", moods=["happy"], mode="optimize", items=[good, poor])
    today = timezone.localdate()
    ItemDailyStat.objects.create(item=good, mood="happy", day=today, impressions=400, clicks=80)
    ItemDailyStat.objects.create(item=poor, mood="happy", day=today, impressions=400, clicks=4)
    # Evidence for another mood must not leak into this one.
    ItemDailyStat.objects.create(item=poor, mood="sad", day=today, impressions=400, clicks=400)
    rng = random.Random(5)

    picks = [
        content_simulate(mood="happy", confidence=0.9, seed=rng.randrange(10**6)).items["hero"][0].title
        for _ in range(200)
    ]

    assert picks.count("Good") > 170


def test_it_simulates_without_remembering_anything(make_rule, make_item):
    item = make_item()
    make_rule("Happy", moods=["happy"], items=[item])
    decision = content_simulate(mood="happy", confidence=0.9, seed=3)

    with pytest.raises(ValidationError, match="Unknown or expired decision"):
        content_event_record(
            kind="impression",
            item_id=item.pk,
            mood="happy",
            decision_id=decision.decision_id,
        )


def _served(make_rule, make_item, mood: str = "happy"):
    item = make_item()
    make_rule("Happy", moods=[mood], items=[item])
    return item, content_decide(mood=mood, confidence=0.9)


def test_it_counts_an_impression_once_per_item_and_decision(make_rule, make_item):
    item, decision = _served(make_rule, make_item)
    event = dict(kind="impression", item_id=item.pk, mood="happy", decision_id=decision.decision_id)

    first = content_event_record(**event)
    again = content_event_record(**event)
    next_decision = content_decide(mood="happy", confidence=0.9)
    next_time = content_event_record(**{**event, "decision_id": next_decision.decision_id})

    assert (first, again, next_time) == (True, False, True)
    row = ItemDailyStat.objects.get()
    assert (row.item, row.mood, row.day, row.impressions, row.clicks) == (
        item,
        "happy",
        timezone.localdate(),
        2,
        0,
    )


def test_it_counts_a_click_once_and_only_after_an_impression(make_rule, make_item):
    item, decision = _served(make_rule, make_item)
    event = dict(item_id=item.pk, mood="happy", decision_id=decision.decision_id)

    with pytest.raises(ValidationError, match="needs an impression"):
        content_event_record(kind="click", **event)
    content_event_record(kind="impression", **event)
    assert content_event_record(kind="click", **event) is True
    assert content_event_record(kind="click", **event) is False

    row = ItemDailyStat.objects.get()
    assert (row.impressions, row.clicks) == (1, 1)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"kind": "view"}, "Unknown event kind"),
        ({"mood": "joy"}, "Unknown mood"),
        ({"mood": "sad"}, "made for happy, not sad"),
        ({"decision_id": "nope"}, "Unknown or expired decision"),
        ({"item_id": 999_999}, "not part of this decision"),
        ({"item_id": "1"}, "must be an integer"),
        ({"decision_id": ""}, "decision_id must be"),
        ({"decision_id": "x" * 201}, "decision_id must be"),
    ],
)
def test_it_refuses_events_that_do_not_match_a_decision(make_rule, make_item, change, message):
    item, decision = _served(make_rule, make_item)
    event = dict(kind="impression", item_id=item.pk, mood="happy", decision_id=decision.decision_id)

    with pytest.raises(ValidationError, match=message):
        content_event_record(**{**event, **change})

    assert not ItemDailyStat.objects.exists()


def test_it_counts_a_visitor_without_a_camera_under_no_camera(make_rule, make_item):
    item = make_item()
    make_rule("House", moods=[], is_default=True, items=[item])
    decision = content_decide(mood=None, confidence=0.0)

    counted = content_event_record(
        kind="impression", item_id=item.pk, mood=stats_mood(decision.mood), decision_id=decision.decision_id
    )

    assert counted
    assert stats_mood(None) == "no_camera"
    assert ItemDailyStat.objects.get().mood == "no_camera"
    # "No face" is another reading (the camera is on): a no-camera decision does not take it.
    with pytest.raises(ValidationError, match="made for no_camera, not no_face"):
        content_event_record(kind="click", item_id=item.pk, mood="no_face", decision_id=decision.decision_id)


def test_it_counts_a_visitor_with_a_camera_but_no_face_under_no_face(make_rule, make_item):
    item = make_item()
    make_rule("House", moods=[], is_default=True, items=[item])
    decision = content_decide(mood="no_face", confidence=0.0)

    content_event_record(kind="impression", item_id=item.pk, mood="no_face", decision_id=decision.decision_id)
    content_event_record(kind="click", item_id=item.pk, mood="no_face", decision_id=decision.decision_id)

    assert list(ItemDailyStat.objects.values_list("mood", "impressions", "clicks")) == [("no_face", 1, 1)]


def test_a_live_visitor_is_counted_under_no_camera_then_under_no_face(make_rule, make_item):
    off, empty = make_item("Turn the camera on"), make_item("Come back")
    make_rule("No camera", moods=["no_camera"], items=[off])
    make_rule("Nobody there", moods=["no_face"], items=[empty])
    visitor = VisitorState()

    shown = content_show(visitor=visitor, mood=None, confidence=0.0, shown_id=None)
    faceless = content_show(visitor=visitor, mood="no_face", confidence=0.0, shown_id=shown.decision_id)

    assert (shown.rule_name, faceless.rule_name) == ("No camera", "Nobody there")
    assert sorted(ItemDailyStat.objects.values_list("item__title", "mood", "impressions")) == [
        ("Come back", "no_face", 1),
        ("Turn the camera on", "no_camera", 1),
    ]


def test_optimize_rules_for_no_camera_learn_from_no_camera_clicks_only(make_rule, make_item):
    good, bad = make_item("Good"), make_item("Bad")
    make_rule("Learn", moods=["no_camera"], mode="optimize", items=[good, bad])
    today = timezone.localdate()
    ItemDailyStat.objects.create(item=good, mood="no_camera", day=today, impressions=1000, clicks=500)
    ItemDailyStat.objects.create(item=bad, mood="no_camera", day=today, impressions=1000, clicks=0)
    ItemDailyStat.objects.create(item=bad, mood="no_face", day=today, impressions=1000, clicks=1000)

    picks = [
        content_decide(mood=None, confidence=0.0, rng=random.Random(seed)).items["hero"][0].title
        for seed in range(40)
    ]

    assert picks.count("Good") > 30


def test_it_adds_mood_samples_to_a_per_minute_count():
    at = datetime(2026, 11, 18, 14, 30, 5, tzinfo=UTC)

    mood_sample_record(mood="happy", now=at)
    mood_sample_record(mood="happy", now=at + timedelta(seconds=50))
    mood_sample_record(mood="sad", now=at)
    mood_sample_record(mood="happy", now=at + timedelta(minutes=1))

    counts = {(r.minute.minute, r.mood): r.count for r in MoodMinuteStat.objects.all()}
    assert counts == {(30, "happy"): 2, (30, "sad"): 1, (31, "happy"): 1}
    with pytest.raises(ValidationError):
        mood_sample_record(mood="joy")


def test_it_prunes_statistics_older_than_the_retention(settings, make_item):
    settings.ADAPTATION_STATS_RETENTION_DAYS = 30
    now = timezone.now()
    item = make_item()
    ItemDailyStat.objects.create(item=item, mood="happy", day=timezone.localdate(now) - timedelta(days=40))
    ItemDailyStat.objects.create(item=item, mood="happy", day=timezone.localdate(now) - timedelta(days=3))
    MoodMinuteStat.objects.create(minute=now - timedelta(days=31), mood="sad", count=1)
    MoodMinuteStat.objects.create(minute=now - timedelta(days=1), mood="sad", count=1)

    assert stats_prune(now=now) == (1, 1)
    assert ItemDailyStat.objects.count() == 1
    assert MoodMinuteStat.objects.count() == 1
