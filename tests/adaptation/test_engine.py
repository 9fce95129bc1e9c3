"""The pure engine: order, tiers, weights, schedules, caps, cool-down, the default paths and the reasons."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, time, timedelta

import pytest

from adaptation.engine import (
    BUILTIN_THEME_NAME,
    MOOD_KEYS,
    ArmStats,
    ItemSnapshot,
    RuleItemSnapshot,
    RuleSnapshot,
    Schedule,
    ThemeSnapshot,
    VisitorState,
    decide,
    mood_key,
    mood_key_label,
    reading_words,
    rules_overlap,
    schedules_overlap,
)
from emotions.labels import EMOTIONS, MOODS

# Words that belong to the operators' view of a decision, never to the visitor's.
OPERATOR_WORDS = ("tier", "order", "Thompson", "rule", "default", "confidence", "weight", "%")

# A Wednesday, 14:30.
NOW = datetime(2026, 11, 18, 14, 30, tzinfo=UTC)


def item(id: int, *, slot: str = "hero", kind: str = "text", **fields) -> ItemSnapshot:
    return ItemSnapshot(id=id, kind=kind, title=f"Item {id}", slot=slot, **fields)


def rule(id: int, *, moods=("happy",), items=(), weights=None, **fields) -> RuleSnapshot:
    weights = weights or [1.0] * len(items)
    return RuleSnapshot(
        id=id,
        name=fields.pop("name", f"Rule {id}"),
        moods=frozenset(moods),
        items=tuple(
            RuleItemSnapshot(item=i, weight=w, position=p)
            for p, (i, w) in enumerate(zip(items, weights, strict=True))
        ),
        theme=fields.pop("theme", ThemeSnapshot(id=id, name=f"Theme {id}", css={"--bg": "#ffffff"})),
        **fields,
    )


def run(rules, mood="happy", confidence=0.9, **kwargs):
    kwargs.setdefault("now", NOW)
    kwargs.setdefault("rng", random.Random(7))
    return decide(mood=mood, confidence=confidence, rules=rules, **kwargs)


def test_it_fires_the_first_matching_rule_in_order():
    rules = [rule(1, order=20), rule(2, order=10), rule(3, moods=("sad",), order=1)]

    decision = run(rules)

    assert decision.rule_id == 2
    assert not decision.is_default
    assert decision.detail.startswith(
        "Rule “Rule 2” (tier 2, order 10) fired: the mood is happy at 90% confidence"
    )
    assert decision.reason == "You looked happy, so the page shows colours chosen to suit."  # no items


def test_it_evaluates_lower_tiers_before_any_order():
    rules = [
        rule(1, tier=2, order=1),
        rule(2, tier=1, order=999, tier_label="Sponsorship"),
        rule(3, tier=3, order=0),
    ]

    decision = run(rules)

    assert decision.rule_id == 2
    assert "(Sponsorship, order 999)" in decision.detail


def test_it_breaks_ties_by_the_older_rule():
    decision = run([rule(9, order=5), rule(4, order=5)])

    assert decision.rule_id == 4


def test_it_skips_a_rule_below_its_minimum_confidence():
    rules = [rule(1, order=1, min_confidence=0.8), rule(2, order=2, min_confidence=0.3)]

    decision = run(rules, confidence=0.6)

    assert decision.rule_id == 2
    assert any("confidence 60% is below its minimum 80%" in line for line in decision.trace)


def test_it_picks_items_by_weight_with_a_seeded_random_source():
    heavy, light = item(1), item(2)
    rules = [rule(1, items=[heavy, light], weights=[3.0, 1.0])]
    rng = random.Random(42)

    picks = Counter(run(rules, rng=rng).items["hero"][0].id for _ in range(4000))

    assert 0.72 < picks[1] / 4000 < 0.78
    assert run(rules, rng=random.Random(1)).items == run(rules, rng=random.Random(1)).items


def test_it_picks_several_items_per_slot_without_repeating():
    items = [item(i) for i in range(1, 5)] + [item(9, slot="sidebar")]
    rules = [rule(1, items=items, picks_per_slot=3)]

    decision = run(rules)

    assert len(decision.items["hero"]) == 3
    assert len({i.id for i in decision.items["hero"]}) == 3
    assert [i.id for i in decision.items["sidebar"]] == [9]


def test_it_keeps_the_order_in_fixed_mode():
    items = [item(3), item(1), item(2)]
    rules = [rule(1, items=items, mode="fixed", picks_per_slot=2)]

    picks = {tuple(i.id for i in run(rules, rng=random.Random(s)).items["hero"]) for s in range(20)}

    assert picks == {(3, 1)}


def test_it_fires_a_rule_only_inside_its_schedule():
    office_hours = Schedule(weekdays=frozenset({0, 1, 2, 3, 4}), daily_start=time(9), daily_end=time(17))
    rules = [rule(1, order=1, schedule=office_hours), rule(2, order=2)]

    assert run(rules).rule_id == 1
    assert run(rules, now=NOW.replace(hour=18)).rule_id == 2
    saturday = NOW + timedelta(days=3)
    assert run(rules, now=saturday).rule_id == 2
    assert any(
        "outside its schedule (Mon, Tue, Wed, Thu, Fri 09:00–17:00)" in t
        for t in run(rules, now=saturday).trace
    )


def test_it_runs_a_daily_window_past_midnight_from_its_start_day():
    friday_night = Schedule(weekdays=frozenset({4}), daily_start=time(22), daily_end=time(2))

    assert friday_night.is_open(datetime(2026, 11, 20, 23, 0, tzinfo=UTC))  # Friday 23:00
    assert friday_night.is_open(datetime(2026, 11, 21, 1, 59, tzinfo=UTC))  # Saturday 01:59
    assert not friday_night.is_open(datetime(2026, 11, 21, 2, 0, tzinfo=UTC))
    assert not friday_night.is_open(
        datetime(2026, 11, 20, 1, 0, tzinfo=UTC)
    )  # Friday 01:00: Thursday's night


def test_it_respects_an_absolute_window():
    window = Schedule(starts_at=NOW + timedelta(hours=1), ends_at=NOW + timedelta(days=1))
    rules = [rule(1, order=1, schedule=window), rule(2, order=2)]

    assert run(rules).rule_id == 2
    assert run(rules, now=NOW + timedelta(hours=2)).rule_id == 1
    assert run(rules, now=NOW + timedelta(days=1)).rule_id == 2


def test_it_skips_items_outside_their_active_window():
    later = item(1, active_from=NOW + timedelta(days=1))
    now_live = item(2, active_until=NOW + timedelta(days=1))
    rules = [rule(1, items=[later, now_live])]

    decision = run(rules)

    assert [i.id for i in decision.items["hero"]] == [2]


def test_it_skips_capped_items_then_gives_way_when_all_are_capped():
    rules = [rule(1, order=1, items=[item(1), item(2)], frequency_cap=2), rule(2, order=2, items=[item(3)])]
    visitor = VisitorState(impressions={1: 2})

    assert [i.id for i in run(rules, visitor=visitor).items["hero"]] == [2]

    visitor.impression_add(2)
    visitor.impression_add(2)
    decision = run(rules, visitor=visitor)

    assert decision.rule_id == 2
    assert "“Rule 1”: every item reached its cap of 2 per visitor." in decision.trace


def test_it_keeps_the_content_during_the_cool_down():
    rules = [rule(1, moods=("happy",), cooldown_s=30), rule(2, moods=("sad",), cooldown_s=30)]
    visitor = VisitorState()
    first = run(rules, visitor=visitor)
    visitor.decision_remember(first, NOW)

    kept = run(rules, mood="sad", visitor=visitor, now=NOW + timedelta(seconds=10))

    assert first.hold_s == 30
    assert kept.rule_id == 1
    assert kept.decision_id == first.decision_id
    assert not kept.switched and kept.held
    assert kept.hold_s == 20
    assert kept.detail == (
        "Kept “Rule 1” for 20 s more of its 30 s cool-down "
        "before switching to “Rule 2” (the mood is now sad)."
    )
    assert kept.reason == (
        "You looked happy, so the page shows colours chosen to suit. "
        "Now you look sad: keeping this for 20 more seconds so the page doesn't flicker."
    )


def test_it_leaves_the_visitor_state_alone_while_content_is_held():
    rules = [rule(1, moods=("happy",), cooldown_s=30), rule(2, moods=("sad",))]
    visitor = VisitorState()
    first = run(rules, visitor=visitor)
    visitor.decision_remember(first, NOW)

    held = run(rules, mood="sad", visitor=visitor, now=NOW + timedelta(seconds=10))
    visitor.decision_remember(held, NOW + timedelta(seconds=10))
    held_again = run(rules, mood="angry", visitor=visitor, now=NOW + timedelta(seconds=29))

    assert visitor.current == first and visitor.last_switch_at == NOW
    assert held_again.reason == (
        "You looked happy, so the page shows colours chosen to suit. "
        "Now you look angry: keeping this for 1 more second so the page doesn't flicker."
    )


@pytest.mark.parametrize("first_mood", [None, "no_face", "uncertain"])
def test_it_adapts_at_once_to_the_first_clear_reading(first_mood):
    rules = [
        rule(1, moods=("happy",), cooldown_s=30),
        rule(2, name="House", moods=(), is_default=True, cooldown_s=30, items=[item(5)]),
    ]
    visitor = VisitorState()
    visitor.decision_remember(run(rules, mood=first_mood, confidence=0.2, visitor=visitor), NOW)

    decision = run(rules, mood="happy", visitor=visitor, now=NOW + timedelta(seconds=1))

    assert decision.rule_id == 1
    assert decision.switched and not decision.held


def test_it_never_holds_the_usual_page_shown_for_an_unclear_expression():
    rules = [
        rule(1, moods=("happy",), min_confidence=0.6, cooldown_s=30),
        rule(2, name="House", moods=(), is_default=True, cooldown_s=30),
    ]
    visitor = VisitorState()
    unclear = run(rules, confidence=0.5, visitor=visitor)
    visitor.decision_remember(unclear, NOW)

    clear = run(rules, confidence=0.8, visitor=visitor, now=NOW + timedelta(seconds=1))

    assert (
        unclear.reason
        == "You looked happy, but not clearly enough to change the page, so you see the usual page."
    )
    assert unclear.hold_s == 0 and unclear.unclear  # a clearer reading may change it: ask again
    assert clear.rule_id == 1 and clear.switched and not clear.unclear


def test_it_keeps_the_items_on_screen_when_the_same_rule_fires_again():
    rules = [
        rule(1, moods=("happy",), items=[item(i) for i in range(1, 9)], cooldown_s=5),
        rule(2, name="House", moods=(), is_default=True, items=[item(i) for i in range(11, 19)]),
    ]
    visitor = VisitorState()
    happy = run(rules, visitor=visitor, rng=random.Random(1))
    visitor.decision_remember(happy, NOW)
    off = VisitorState()
    no_camera = run(rules, mood=None, visitor=off, rng=random.Random(1))
    off.decision_remember(no_camera, NOW)

    again = run(rules, visitor=visitor, rng=random.Random(2), now=NOW + timedelta(seconds=60))
    no_face = run(rules, mood="no_face", visitor=off, rng=random.Random(2), now=NOW + timedelta(seconds=60))

    assert again.decision_id == happy.decision_id and again.items == happy.items
    assert not again.switched and not again.held
    assert no_face.decision_id == no_camera.decision_id and no_face.items == no_camera.items
    assert no_face.mood == "no_face"
    assert no_face.reason == "No face is in view, so you see the usual page."


def test_it_picks_anew_for_another_expression_of_the_same_rule():
    ad, text = item(1, kind="ad"), item(2)
    rules = [rule(1, moods=("happy", "sad"), items=[ad, text], mode="fixed")]
    visitor = VisitorState()
    visitor.decision_remember(run(rules, visitor=visitor), NOW)

    sad = run(rules, mood="sad", visitor=visitor, now=NOW + timedelta(seconds=60))

    assert sad.switched
    assert [i.id for i in sad.items["hero"]] == [2]  # the guardrail applies to the new expression


def test_it_switches_once_the_cool_down_is_over():
    rules = [rule(1, moods=("happy",), cooldown_s=30), rule(2, moods=("sad",))]
    visitor = VisitorState()
    visitor.decision_remember(run(rules, visitor=visitor), NOW)

    switched = run(rules, mood="sad", visitor=visitor, now=NOW + timedelta(seconds=30))

    assert switched.rule_id == 2
    assert switched.switched


def test_it_drops_the_cool_down_of_a_rule_that_is_gone():
    visitor = VisitorState()
    visitor.decision_remember(run([rule(1, cooldown_s=600)], visitor=visitor), NOW)

    decision = run([rule(2, moods=("sad",))], mood="sad", visitor=visitor, now=NOW + timedelta(seconds=5))

    assert decision.rule_id == 2


@pytest.mark.parametrize(
    ("mood", "why", "reason"),
    [
        (
            "uncertain",
            "The expression is uncertain, so the default rule “House” fired",
            "Your expression is hard to read, so you see the usual page.",
        ),
        (
            "no_face",
            "No face is in view, so the default rule “House” fired",
            "No face is in view, so you see the usual page.",
        ),
        (
            None,
            "There is no camera reading, so the default rule “House” fired",
            "Expression reading is off, so you see the usual page.",
        ),
        (
            "surprise",
            "No rule matched surprise at 90% confidence, so the default rule “House” fired",
            "You looked surprised; nothing on this page is meant for that right now, "
            "so you see the usual page.",
        ),
    ],
)
def test_it_takes_the_default_rule_when_nothing_matches(mood, why, reason):
    rules = [
        rule(1, moods=("happy", "sad")),
        rule(2, name="House", moods=(), is_default=True, items=[item(5)]),
    ]

    decision = run(rules, mood=mood)

    assert decision.rule_id == 2
    assert decision.is_default
    assert decision.detail.startswith(why)
    assert decision.reason == reason
    assert decision.hold_s == 0
    assert not decision.unclear  # no rule for these would fire at any confidence
    assert [i.id for i in decision.items["hero"]] == [5]


def test_rules_tell_no_camera_from_no_face():
    rules = [
        rule(1, name="Camera off", moods=("no_camera",), min_confidence=0.5, items=[item(1)]),
        rule(2, name="Nobody there", moods=("no_face",), items=[item(2)]),
        rule(3, name="House", moods=(), is_default=True, items=[item(3)]),
    ]

    no_camera = run(rules, mood=None, confidence=0.0)
    no_face = run(rules, mood="no_face", confidence=0.0)

    # No camera has no reading to be sure of: its rule fires whatever its minimum confidence.
    assert no_camera.rule_id == 1 and not no_camera.is_default and no_camera.mood is None
    assert no_camera.detail.startswith(
        "Rule “Camera off” (tier 2, order 0) fired: there is no camera reading"
    )
    assert (
        no_camera.reason == "Expression reading is off, so the page shows colours and content chosen to suit."
    )
    assert no_camera.hold_s == 0  # content for no camera never holds back the first reading
    assert no_face.rule_id == 2
    assert "“Camera off”: not for no_face." in no_face.trace
    assert (
        run(rules[1:], mood=None).rule_id == 3
    )  # a rule for no face does not serve visitors without a camera


def test_mood_keys_name_no_camera_apart_from_the_trackers_moods():
    assert MOOD_KEYS == (*MOODS, "no_camera")
    assert (mood_key(None), mood_key("no_face"), mood_key("happy")) == ("no_camera", "no_face", "happy")
    assert (mood_key_label("no_camera"), mood_key_label("no_face"), mood_key_label("happy")) == (
        "No camera",
        "No face (camera on)",
        "happy",
    )


def test_it_takes_the_default_rule_for_a_low_confidence_mood():
    rules = [rule(1, min_confidence=0.5), rule(2, name="House", moods=(), is_default=True)]

    decision = run(rules, confidence=0.2)

    assert decision.rule_id == 2


def test_it_lets_a_rule_claim_uncertain_explicitly():
    rules = [rule(1, moods=("uncertain",)), rule(2, name="House", moods=(), is_default=True)]

    assert run(rules, mood="uncertain", confidence=0.1).rule_id == 1


def test_it_shows_the_sites_own_look_without_any_default_rule():
    decision = run([rule(1, moods=("sad",))], mood="happy")

    assert decision.rule_id is None
    assert decision.is_default
    assert decision.theme.name == BUILTIN_THEME_NAME
    assert decision.items == {}
    assert decision.detail == (
        "No rule matched happy at 90% confidence and no default rule is active, "
        "so the site's own look is shown."
    )
    assert decision.reason == (
        "You looked happy; nothing on this page is meant for that right now, so you see the usual page."
    )


def test_it_never_shows_ads_to_a_visitor_in_a_negative_mood():
    rules = [rule(1, name="House", moods=(), is_default=True, items=[item(1, kind="ad"), item(2)])]

    sad = {i.id for _ in range(50) for i in run(rules, mood="sad", rng=random.Random(_)).items["hero"]}
    sad_unguarded = {
        i.id
        for s in range(50)
        for i in run(rules, mood="sad", rng=random.Random(s), ad_guardrail=False).items["hero"]
    }

    assert sad == {2}
    assert sad_unguarded == {1, 2}


def test_it_serializes_a_decision_to_the_live_page_shape():
    theme = ThemeSnapshot(id=1, name="Sunny", css={"--bg": "#fffaf0"})
    hero = item(1, media_url="/static/a.svg", cta_url="/#x", cta_label="Go", body="Hi")
    decision = run([rule(1, name="Celebrate", theme=theme, items=[hero])])

    data = decision.as_dict()

    assert data == {
        "decision_id": decision.decision_id,
        "mood": "happy",
        "theme": {"name": "Sunny", "css": {"--bg": "#fffaf0"}},
        "items": {
            "hero": [
                {
                    "id": 1,
                    "kind": "text",
                    "title": "Item 1",
                    "body": "Hi",
                    "media_url": "/static/a.svg",
                    "cta_url": "/#x",
                    "cta_label": "Go",
                    "alt": "",
                }
            ]
        },
        "rule": "Celebrate",
        "reason": decision.reason,
        "is_default": False,
        "hold_s": 0.0,
    }
    assert "detail" not in data and "trace" not in data  # the operators' terms stay in the admin


@pytest.mark.parametrize("mood", [None, *MOODS])
@pytest.mark.parametrize("confidence", [0.3, 0.9])
def test_it_tells_visitors_why_in_plain_words_about_the_reading_on_screen(mood, confidence):
    rules = [
        rule(1, moods=("happy", "sad"), min_confidence=0.5, mode="optimize", items=[item(1), item(2)]),
        rule(2, moods=("fear",), tier=1, tier_label="Sponsorship", theme=None, items=[item(3)]),
        rule(3, name="House", moods=(), is_default=True, items=[item(5)]),
    ]

    decision = run(rules, mood=mood, confidence=confidence)

    words = reading_words()[mood or "off"]
    assert decision.reason.startswith(words["was"]), decision.reason
    for word in OPERATOR_WORDS:
        assert word not in decision.reason, (word, decision.reason)
    others = [m for m in EMOTIONS if m != mood]
    assert not any(reading_words()[m]["now"].split()[-1] in decision.reason for m in others), decision.reason


@pytest.mark.parametrize(("mood", "confidence"), [("joy", 0.5), ("happy", 1.5), ("happy", float("nan"))])
def test_it_refuses_unknown_moods_and_bad_confidence(mood, confidence):
    with pytest.raises(ValueError):
        run([], mood=mood, confidence=confidence)


def test_it_settles_on_the_better_item_with_thompson_sampling():
    good, poor = item(1), item(2)
    rules = [rule(1, items=[good, poor], mode="optimize")]
    true_ctr = {1: 0.12, 2: 0.04}
    stats = {1: ArmStats(), 2: ArmStats()}
    world = random.Random(3)
    rng = random.Random(4)
    shown = []

    for _ in range(3000):
        picked = run(rules, stats=stats, rng=rng, exploration=0.1).items["hero"][0].id
        clicked = world.random() < true_ctr[picked]
        arm = stats[picked]
        stats[picked] = ArmStats(arm.impressions + 1, arm.clicks + clicked)
        shown.append(picked)

    late = shown[-1000:]
    assert late.count(1) / len(late) > 0.85
    # The exploration floor keeps the loser in play.
    assert late.count(2) >= 30


def test_it_flags_rules_that_compete_at_the_same_tier():
    weekdays = Schedule(weekdays=frozenset({0, 1, 2, 3, 4}))
    weekend = Schedule(weekdays=frozenset({5, 6}))
    evening = Schedule(daily_start=time(18), daily_end=time(23))
    morning = Schedule(daily_start=time(6), daily_end=time(12))

    assert rules_overlap(rule(1, moods=("sad", "fear")), rule(2, moods=("fear",)))
    assert not rules_overlap(rule(1, moods=("sad",)), rule(2, moods=("happy",)))
    assert not rules_overlap(rule(1, tier=1), rule(2, tier=2))
    assert not rules_overlap(rule(1, schedule=weekdays), rule(2, schedule=weekend))
    assert not schedules_overlap(evening, morning)
    assert schedules_overlap(
        Schedule(weekdays=frozenset({6}), daily_start=time(22), daily_end=time(3)), weekdays
    )
    assert not schedules_overlap(Schedule(ends_at=NOW), Schedule(starts_at=NOW + timedelta(days=1)))
