from __future__ import annotations

import numpy as np
import pytest

from emotions.labels import EMOTIONS, MOODS
from emotions.mood import MoodTracker


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def peaked(label: str, p: float = 0.8) -> np.ndarray:
    """Return probabilities with ``p`` on ``label`` and the rest spread evenly."""
    probabilities = np.full(7, (1 - p) / 6)
    probabilities[EMOTIONS.index(label)] = p
    return probabilities


FLAT = np.full(7, 1 / 7)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def tracker(clock) -> MoodTracker:
    return MoodTracker(alpha=0.5, margin=0.1, dwell_s=1.0, min_confidence=0.4, no_face_s=2.0, clock=clock)


def feed(tracker: MoodTracker, clock: Clock, probabilities, seconds: float, fps: float = 10.0) -> list:
    """Feed the same frame for ``seconds`` at ``fps``; return every state."""
    states = []
    for _ in range(round(seconds * fps)):
        clock.now += 1 / fps
        states.append(tracker.update(probabilities))
    return states


def test_it_starts_without_a_face(tracker):
    assert tracker.mood == "no_face"


def test_it_takes_the_first_faces_mood_at_once(tracker):
    state = tracker.update(peaked("happy"))

    assert state.mood == "happy"
    assert state.changed
    assert state.previous == "no_face"
    assert state.event is not None and state.event.mood == "happy"


def test_it_switches_only_after_the_new_mood_has_led_for_the_dwell_time(tracker, clock):
    feed(tracker, clock, peaked("happy"), 1.0)

    states = feed(tracker, clock, peaked("sad"), 2.0)

    changes = [i for i, state in enumerate(states) if state.changed]
    assert len(changes) == 1
    assert states[changes[0]].mood == "sad"
    assert states[changes[0]].previous == "happy"
    # Sad leads by the margin from the 2nd frame on; the switch comes one dwell time (10 frames) later.
    assert 10 <= changes[0] <= 12


def test_it_ignores_a_spike_shorter_than_the_dwell_time(tracker, clock):
    feed(tracker, clock, peaked("happy"), 1.0)

    states = feed(tracker, clock, peaked("angry", 0.95), 0.5) + feed(tracker, clock, peaked("happy"), 1.0)

    assert not any(state.changed for state in states)
    assert tracker.mood == "happy"


def test_it_does_not_switch_while_the_lead_is_below_the_margin(tracker, clock):
    feed(tracker, clock, peaked("happy", 0.45), 1.0)
    close_race = np.array([0.0, 0.0, 0.0, 0.44, 0.0, 0.0, 0.48]) + 0.08 / 7

    states = feed(tracker, clock, close_race, 5.0)

    assert not any(state.changed for state in states)
    assert tracker.mood == "happy"


def test_it_becomes_uncertain_below_the_confidence_threshold(tracker, clock):
    feed(tracker, clock, peaked("happy"), 1.0)

    states = feed(tracker, clock, FLAT, 3.0)

    assert states[-1].mood == "uncertain"
    assert sum(state.changed for state in states) == 1
    assert states[-1].confidence == pytest.approx(1 / 7, abs=0.01)


def test_it_leaves_uncertain_when_a_mood_becomes_clear(tracker, clock):
    feed(tracker, clock, FLAT, 1.0)
    assert tracker.mood == "uncertain"

    states = feed(tracker, clock, peaked("surprise"), 2.0)

    assert states[-1].mood == "surprise"


def test_it_reports_no_face_only_after_the_configured_absence(tracker, clock):
    feed(tracker, clock, peaked("happy"), 1.0)

    short = feed(tracker, clock, None, 1.5)
    assert all(state.mood == "happy" and not state.changed for state in short)

    longer = feed(tracker, clock, None, 1.0)
    changed = [state for state in longer if state.changed]
    assert len(changed) == 1
    assert changed[0].mood == "no_face" and changed[0].previous == "happy"
    assert longer[-1].mood == "no_face"


def test_it_starts_afresh_when_a_face_returns(tracker, clock):
    feed(tracker, clock, peaked("happy"), 1.0)
    feed(tracker, clock, None, 3.0)

    state = tracker.update(peaked("sad"))

    assert state.mood == "sad"
    assert state.probabilities["sad"] == pytest.approx(0.8)


def test_it_smooths_probabilities_with_an_exponential_moving_average(tracker):
    tracker.update(peaked("happy", 0.8))

    state = tracker.update(peaked("happy", 0.4))

    assert state.probabilities["happy"] == pytest.approx(0.5 * 0.4 + 0.5 * 0.8)
    assert sum(state.probabilities.values()) == pytest.approx(1.0)


def test_the_mood_changed_event_carries_the_smoothed_probabilities(tracker, clock):
    feed(tracker, clock, peaked("happy"), 1.0)

    event = next(state.event for state in feed(tracker, clock, peaked("sad"), 2.0) if state.changed)

    assert event.mood == "sad" and event.previous == "happy"
    assert event.probabilities["sad"] == pytest.approx(event.confidence)
    assert event.probabilities["sad"] > event.probabilities["happy"]
    assert event.at == clock.now or event.at < clock.now


def test_every_mood_it_reports_is_a_known_mood(tracker, clock):
    rng = np.random.default_rng(0)
    for _ in range(300):
        clock.now += rng.uniform(0.05, 0.8)
        frame = None if rng.random() < 0.2 else rng.dirichlet(np.full(7, 0.5))
        state = tracker.update(frame)
        assert state.mood in MOODS
        assert 0.0 <= state.confidence <= 1.0


def test_it_refuses_probabilities_of_the_wrong_length(tracker):
    with pytest.raises(ValueError):
        tracker.update([0.5, 0.5])


def test_its_state_is_json_ready(tracker):
    import json

    state = tracker.update(peaked("happy"))

    assert json.loads(json.dumps(state.as_dict()))["mood"] == "happy"


def test_it_names_the_mood_it_is_changing_to_while_the_dwell_runs(tracker, clock):
    feed(tracker, clock, peaked("sad", 0.9), 1.0)

    changing = feed(tracker, clock, peaked("happy", 0.9), 0.5)
    changed = feed(tracker, clock, peaked("happy", 0.9), 1.0)

    assert [s.mood for s in changing] == ["sad"] * len(changing)
    assert changing[-1].candidate == "happy"
    assert changing[-1].probabilities["sad"] < 0.4  # the held mood has collapsed: a page shows "changing"
    assert changed[-1].mood == "happy" and changed[-1].candidate is None
    assert changed[-1].as_dict()["candidate"] is None


def test_it_names_no_candidate_while_the_mood_is_steady(tracker, clock):
    states = feed(tracker, clock, peaked("happy", 0.9), 2.0)

    assert all(s.candidate is None for s in states)


def test_it_says_the_face_may_be_gone_before_it_reports_no_face(tracker, clock):
    feed(tracker, clock, peaked("happy", 0.9), 1.0)

    clock.now += 0.5
    missing = tracker.update(None)
    clock.now += 2.0
    gone = tracker.update(None)

    assert missing.mood == "happy" and missing.candidate == "no_face"
    assert gone.mood == "no_face" and gone.changed and gone.candidate is None
