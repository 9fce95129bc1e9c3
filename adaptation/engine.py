"""The adaptation engine: from a mood to a theme and content, with a reason.

Pure Python (no Django), so it is tested and reasoned about on its own. It
follows an ad server's semantics: rules are line items evaluated in order of
priority tier then order; a rule that is out of schedule, below its confidence
threshold or has nothing deliverable (every item capped or out of its window)
gives way to the next one; default rules and finally the site's own look catch
everything else. The caller passes snapshots of the active rules, the
visitor's in-memory state and ``now``; the engine returns a :class:`Decision`
and changes nothing.

Every decision explains itself twice: ``reason`` in plain words for the
visitor ("You looked happy, so …"), ``detail`` and ``trace`` in the operators'
terms (tiers, order, picking modes) for the admin's simulator.

A cool-down holds content chosen for an expression against a switch to
content for another reading, so the page does not flicker; it never holds the
content for no reading (camera off, no face, uncertain) nor the usual page,
so the first confident reading adapts at once. Deciding again while the same
rule would fire keeps its items on screen: only a new reading or an edit
changes them.
"""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, time
from typing import Any

from emotions.labels import EMOTIONS, MOOD_NO_FACE, MOOD_UNCERTAIN, MOODS

# Moods for which no sales pressure is shown (the ad guardrail).
NEGATIVE_MOODS: frozenset[str] = frozenset({"angry", "disgust", "fear", "sad"})

KIND_AD = "ad"
MODE_FIXED = "fixed"
MODE_WEIGHTED = "weighted"
MODE_OPTIMIZE = "optimize"
MODES = (MODE_FIXED, MODE_WEIGHTED, MODE_OPTIMIZE)

DEFAULT_EXPLORATION = 0.1
# The site's own look, served when not even a default rule can fire.
BUILTIN_THEME_NAME = "Site default"

# How a visitor is told about a reading: "You looked …" (the decision's) and "now you look …" (the latest).
_LOOKED = {
    "angry": "angry",
    "disgust": "disgusted",
    "fear": "afraid",
    "happy": "happy",
    "sad": "sad",
    "surprise": "surprised",
    "neutral": "neutral",
}
READING_OFF = "off"  # the key of "no camera reading" (mood None) in reading_words()

# The name of "no camera reading" (mood None: camera off, refused or unavailable) where a mood needs a name:
# the moods a rule serves and the statistics. "no_face" is another reading: the camera is on, no face in view.
MOOD_NO_CAMERA = "no_camera"
# The moods rules can serve and statistics are kept under: the tracker's moods, and no camera.
MOOD_KEYS: tuple[str, ...] = (*MOODS, MOOD_NO_CAMERA)
# How operators' pages name them; the expressions and "uncertain" go by their own names.
MOOD_KEY_LABELS = {MOOD_NO_FACE: "No face (camera on)", MOOD_NO_CAMERA: "No camera"}

_WEEKDAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MINUTES_PER_DAY = 24 * 60
_MINUTES_PER_WEEK = 7 * _MINUTES_PER_DAY


def mood_key(mood: str | None) -> str:
    """Return the name rules and statistics give ``mood`` (``None``, no camera reading: no_camera)."""
    return MOOD_NO_CAMERA if mood is None else mood


def mood_key_label(key: str) -> str:
    """Return how operators' pages name a mood key ("No camera", "No face (camera on)", "happy")."""
    return MOOD_KEY_LABELS.get(key, key)


# --- Inputs -----------------------------------------------------------------


@dataclass(frozen=True)
class ThemeSnapshot:
    id: int | None
    name: str
    css: Mapping[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "css": dict(self.css)}


@dataclass(frozen=True)
class ItemSnapshot:
    id: int
    kind: str
    title: str
    slot: str
    body: str = ""
    media_url: str = ""
    cta_url: str = ""
    cta_label: str = ""
    alt: str = ""
    active_from: datetime | None = None
    active_until: datetime | None = None

    def is_live(self, now: datetime) -> bool:
        """Return whether ``now`` is inside the item's active window."""
        if self.active_from is not None and now < self.active_from:
            return False
        return not (self.active_until is not None and now >= self.active_until)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "title": self.title,
            "body": self.body,
            "media_url": self.media_url,
            "cta_url": self.cta_url,
            "cta_label": self.cta_label,
            "alt": self.alt,
        }


@dataclass(frozen=True)
class RuleItemSnapshot:
    item: ItemSnapshot
    weight: float = 1.0
    position: int = 0


@dataclass(frozen=True)
class Schedule:
    """When a rule may fire: an absolute window, weekdays and a daily window.

    ``weekdays`` holds Monday=0 … Sunday=6 (empty means every day). A daily
    window whose end is before its start runs over midnight and belongs to the
    day it starts on. Times are compared with ``now`` as given, so pass local
    time.
    """

    starts_at: datetime | None = None
    ends_at: datetime | None = None
    weekdays: frozenset[int] = frozenset()
    daily_start: time | None = None
    daily_end: time | None = None

    @property
    def is_always(self) -> bool:
        return (
            self.starts_at is None
            and self.ends_at is None
            and not self.weekdays
            and self.daily_start is None
            and self.daily_end is None
        )

    def is_open(self, now: datetime) -> bool:
        """Return whether a rule with this schedule may fire at ``now``."""
        if self.starts_at is not None and now < self.starts_at:
            return False
        if self.ends_at is not None and now >= self.ends_at:
            return False
        minute = now.weekday() * _MINUTES_PER_DAY + now.hour * 60 + now.minute
        return any(start <= minute < end for start, end in self.week_intervals())

    def week_intervals(self) -> list[tuple[int, int]]:
        """Return the open intervals as minutes since Monday 00:00, wrapped into one week."""
        days = sorted(self.weekdays) if self.weekdays else list(range(7))
        start = _minutes(self.daily_start) if self.daily_start is not None else 0
        end = _minutes(self.daily_end) if self.daily_end is not None else _MINUTES_PER_DAY
        if end <= start:  # runs over midnight into the next day
            end += _MINUTES_PER_DAY
        intervals: list[tuple[int, int]] = []
        for day in days:
            lo, hi = day * _MINUTES_PER_DAY + start, day * _MINUTES_PER_DAY + end
            if hi > _MINUTES_PER_WEEK:  # Sunday night into Monday morning
                intervals.append((lo, _MINUTES_PER_WEEK))
                intervals.append((0, hi - _MINUTES_PER_WEEK))
            else:
                intervals.append((lo, hi))
        return intervals

    def describe(self) -> str:
        """Return the schedule in words, e.g. 'Mon, Tue 09:00–17:00'."""
        if self.is_always:
            return "always"
        parts = []
        if self.weekdays:
            parts.append(", ".join(_WEEKDAY_NAMES[d] for d in sorted(self.weekdays)))
        if self.daily_start is not None or self.daily_end is not None:
            start = (self.daily_start or time(0)).strftime("%H:%M")
            end = (self.daily_end or time(0)).strftime("%H:%M") if self.daily_end else "24:00"
            parts.append(f"{start}–{end}")
        if self.starts_at is not None:
            parts.append(f"from {self.starts_at:%Y-%m-%d %H:%M}")
        if self.ends_at is not None:
            parts.append(f"until {self.ends_at:%Y-%m-%d %H:%M}")
        return " ".join(parts)


@dataclass(frozen=True)
class RuleSnapshot:
    id: int
    name: str
    moods: frozenset[str] = frozenset()
    min_confidence: float = 0.0
    tier: int = 2
    tier_label: str = ""
    order: int = 0
    theme: ThemeSnapshot | None = None
    items: tuple[RuleItemSnapshot, ...] = ()
    schedule: Schedule = Schedule()
    frequency_cap: int | None = None
    cooldown_s: float = 0.0
    mode: str = MODE_WEIGHTED
    picks_per_slot: int = 1
    is_default: bool = False

    @property
    def sort_key(self) -> tuple[int, int, int]:
        return (self.tier, self.order, self.id)

    @property
    def tier_name(self) -> str:
        return self.tier_label or f"tier {self.tier}"


@dataclass(frozen=True)
class ArmStats:
    """Impressions and clicks of one item for one mood (the bandit's evidence)."""

    impressions: int = 0
    clicks: int = 0


@dataclass
class VisitorState:
    """What the engine may know about one visitor: kept in memory per connection, never identifying.

    ``impressions`` counts impressions per item id in this session (for the
    frequency caps); ``current`` is the decision on screen and
    ``last_switch_at`` when its content came on screen (for the cool-down).
    """

    impressions: dict[int, int] = field(default_factory=dict)
    last_switch_at: datetime | None = None
    current: Decision | None = None

    def impression_add(self, item_id: int) -> None:
        """Count one impression of ``item_id`` for the frequency caps."""
        self.impressions[item_id] = self.impressions.get(item_id, 0) + 1

    def decision_remember(self, decision: Decision, now: datetime) -> None:
        """Make ``decision`` the one on screen; new content restarts the cool-down."""
        if decision.held and self.current is not None:
            return
        if decision.switched or self.current is None:
            self.last_switch_at = now
        self.current = decision

    def current_forget(self) -> None:
        """Drop the decision on screen, e.g. after operators changed the content, so no cool-down holds it."""
        self.current = None
        self.last_switch_at = None


# --- Output -----------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    decision_id: str
    mood: str | None
    confidence: float
    theme: ThemeSnapshot
    items: Mapping[str, tuple[ItemSnapshot, ...]]
    rule_id: int | None
    rule_name: str
    reason: str  # for the visitor, in plain words; about ``mood``, the reading the content was chosen for
    is_default: bool
    switched: bool = True  # new content; False when the content on screen stays (kept or held)
    trace: tuple[str, ...] = ()
    detail: str = ""  # for operators: which rule fired and how, in the admin's terms
    held: bool = False  # a cool-down kept the content on screen against a switch
    # From now, how long a cool-down keeps this content against content for another reading.
    hold_s: float = 0.0
    unclear: bool = False  # a rule for the mood would fire if the expression read more clearly

    @property
    def item_ids(self) -> list[int]:
        return [item.id for items in self.items.values() for item in items]

    def as_dict(self) -> dict[str, Any]:
        """Return the JSON shape the live page and the REST API send."""
        return {
            "decision_id": self.decision_id,
            "mood": self.mood,
            "theme": self.theme.as_dict(),
            "items": {slot: [item.as_dict() for item in items] for slot, items in self.items.items()},
            "rule": self.rule_name,
            "reason": self.reason,
            "is_default": self.is_default,
            "hold_s": round(self.hold_s, 1),
        }


# --- The decision -----------------------------------------------------------


def decide(
    *,
    mood: str | None,
    confidence: float,
    rules: Sequence[RuleSnapshot],
    now: datetime,
    visitor: VisitorState | None = None,
    stats: Mapping[int, ArmStats] | None = None,
    rng: random.Random | None = None,
    ad_guardrail: bool = True,
    exploration: float = DEFAULT_EXPLORATION,
    decision_id: str | None = None,
) -> Decision:
    """Return the decision for ``mood`` at ``confidence`` (``mood=None``: no camera reading).

    Rules name a missing camera reading :data:`MOOD_NO_CAMERA`; a rule for it fires whatever the
    confidence, as there is no reading to be sure of.

    ``rules`` are the active rules in any order; ``stats`` holds the evidence
    for this mood per item id (used by rules in optimize mode); ``rng`` makes
    every random choice reproducible.
    """
    if mood is not None and mood not in MOODS:
        raise ValueError(f"unknown mood {mood!r}; expected one of {', '.join(MOODS)}")
    if not (isinstance(confidence, int | float) and 0.0 <= confidence <= 1.0):
        raise ValueError(f"confidence must be a number between 0 and 1, not {confidence!r}")
    if not 0.0 <= exploration <= 1.0:
        raise ValueError("exploration must be between 0 and 1")
    rng = rng if rng is not None else random.Random()
    visitor = visitor if visitor is not None else VisitorState()
    picker = _Picker(
        mood=mood,
        now=now,
        visitor=visitor,
        stats=stats or {},
        rng=rng,
        ad_guardrail=ad_guardrail,
        exploration=exploration,
    )
    decision = _first_firing(mood, confidence, sorted(rules, key=lambda r: r.sort_key), picker)
    decision = replace(decision, decision_id=decision_id or uuid.uuid4().hex)
    return _against_screen(decision, rules, visitor, now)


def _first_firing(
    mood: str | None, confidence: float, ordered: list[RuleSnapshot], picker: _Picker
) -> Decision:
    trace: list[str] = []
    mood_rules = [r for r in ordered if not r.is_default]
    default_rules = [r for r in ordered if r.is_default]

    too_unclear = False  # a rule for the mood wanted a higher confidence
    key = mood_key(mood)
    for rule in mood_rules:
        if key not in rule.moods:
            trace.append(f"“{rule.name}”: not for {key}.")
            continue
        # Without a camera there is no reading to be sure of: a rule for no camera ignores its minimum.
        if mood is not None and confidence < rule.min_confidence:
            too_unclear = True
            trace.append(
                f"“{rule.name}”: confidence {_pct(confidence)} is below "
                f"its minimum {_pct(rule.min_confidence)}."
            )
            continue
        picked = picker.pick(rule)
        if picked.skip_reason:
            trace.append(f"“{rule.name}”: {picked.skip_reason}")
            continue
        reading = (
            "there is no camera reading"
            if mood is None
            else f"the mood is {mood} at {_pct(confidence)} confidence (minimum {_pct(rule.min_confidence)})"
        )
        detail = (
            f"Rule “{rule.name}” ({rule.tier_name}, order {rule.order}) fired: {reading}"
            f"{_schedule_words(rule)}{picked.how}."
        )
        trace.append(f"“{rule.name}”: fired.")
        reason = f"{reading_words_for(mood)['was']}, so the page shows {_what_changes(rule)} chosen to suit."
        return _decision(mood, confidence, rule, picked.items, reason, detail, False, trace)

    why = _default_why(mood, confidence)
    usual = _usual_reason(mood, too_unclear)
    for rule in default_rules:
        picked = picker.pick(rule)
        if picked.skip_reason:
            trace.append(f"Default “{rule.name}”: {picked.skip_reason}")
            continue
        trace.append(f"Default “{rule.name}”: fired.")
        detail = f"{why}, so the default rule “{rule.name}” fired{_schedule_words(rule)}{picked.how}."
        decision = _decision(mood, confidence, rule, picked.items, usual, detail, True, trace)
        return replace(decision, unclear=too_unclear)

    trace.append("No default rule could fire: the site's own look is shown.")
    return Decision(
        decision_id="",
        mood=mood,
        confidence=confidence,
        theme=ThemeSnapshot(id=None, name=BUILTIN_THEME_NAME),
        items={},
        rule_id=None,
        rule_name="",
        reason=usual,
        detail=f"{why} and no default rule is active, so the site's own look is shown.",
        is_default=True,
        trace=tuple(trace),
        unclear=too_unclear,
    )


def _decision(
    mood: str | None,
    confidence: float,
    rule: RuleSnapshot,
    items: dict[str, tuple[ItemSnapshot, ...]],
    reason: str,
    detail: str,
    is_default: bool,
    trace: list[str],
) -> Decision:
    return Decision(
        decision_id="",
        mood=mood,
        confidence=confidence,
        theme=rule.theme or ThemeSnapshot(id=None, name=BUILTIN_THEME_NAME),
        items=items,
        rule_id=rule.id,
        rule_name=rule.name,
        reason=reason,
        detail=detail,
        is_default=is_default,
        trace=tuple(trace),
    )


def _against_screen(
    decision: Decision, rules: Sequence[RuleSnapshot], visitor: VisitorState, now: datetime
) -> Decision:
    """Weigh a fresh decision against the content on the visitor's screen.

    The same rule for the same reading (or for another of no camera, no face
    and uncertain) keeps its items, so deciding again never rotates them by
    itself, with the reason for the reading now; other content waits while the
    cool-down of the content on screen runs; otherwise the fresh decision
    switches the content.
    """
    current = visitor.current
    if current is None:
        return replace(decision, hold_s=_hold_s(decision, rules))
    left = hold_left_s(current, rules, visitor, now)
    same_reading = decision.mood == current.mood or (
        decision.mood not in EMOTIONS and current.mood not in EMOTIONS
    )
    # For another expression the items are picked anew: they may not suit it (no ads for negative moods).
    if decision.rule_id == current.rule_id and same_reading:
        return replace(
            current,
            mood=decision.mood,
            confidence=decision.confidence,
            reason=decision.reason,
            detail=decision.detail,
            unclear=decision.unclear,
            switched=False,
            hold_s=max(0.0, left),
            trace=(*decision.trace, "The same rule is on screen: its items stay."),
        )
    if left <= 0:
        return replace(decision, hold_s=_hold_s(decision, rules))
    seconds = math.ceil(left)
    current_rule = next(r for r in rules if r.id == current.rule_id)
    target = decision.rule_name or BUILTIN_THEME_NAME
    return replace(
        current,
        reason=f"{current.reason} {held_words(decision.mood, seconds)}",
        detail=(
            f"Kept “{current.rule_name}” for {seconds} s more of its {current_rule.cooldown_s:g} s cool-down "
            f"before switching to “{target}” ({_mood_now(decision.mood)})."
        ),
        switched=False,
        held=True,
        hold_s=left,
        trace=(*decision.trace, f"Cool-down of “{current.rule_name}”: {seconds} s left, kept."),
    )


def hold_left_s(
    current: Decision, rules: Sequence[RuleSnapshot], visitor: VisitorState, now: datetime
) -> float:
    """Return how long the content on screen still holds against a switch (0 or less: it does not)."""
    if visitor.last_switch_at is None or not _holds(current):
        return 0.0
    # A rule that is gone or deactivated holds nothing: operators' edits show at once.
    rule = next((r for r in rules if r.id == current.rule_id), None)
    if rule is None or rule.cooldown_s <= 0:
        return 0.0
    return rule.cooldown_s - (now - visitor.last_switch_at).total_seconds()


def _holds(decision: Decision) -> bool:
    # Only content chosen for an expression holds: a cool-down limits switches between moods, it never
    # delays the first one (from the content for no camera, no face or an unclear face).
    return decision.rule_id is not None and not decision.is_default and decision.mood in EMOTIONS


def _hold_s(decision: Decision, rules: Sequence[RuleSnapshot]) -> float:
    if not _holds(decision):
        return 0.0
    rule = next((r for r in rules if r.id == decision.rule_id), None)
    return max(0.0, rule.cooldown_s) if rule is not None else 0.0


@dataclass(frozen=True)
class _Picked:
    items: dict[str, tuple[ItemSnapshot, ...]]
    how: str = ""
    skip_reason: str = ""


@dataclass
class _Picker:
    mood: str | None
    now: datetime
    visitor: VisitorState
    stats: Mapping[int, ArmStats]
    rng: random.Random
    ad_guardrail: bool
    exploration: float

    def pick(self, rule: RuleSnapshot) -> _Picked:
        """Return the rule's items per slot, or why the rule cannot deliver now."""
        if not rule.schedule.is_open(self.now):
            return _Picked({}, skip_reason=f"outside its schedule ({rule.schedule.describe()}).")
        if not rule.items:
            return _Picked({}, how="; it sets the theme only")

        live = [ri for ri in rule.items if ri.item.is_live(self.now)]
        if self.ad_guardrail and self.mood in NEGATIVE_MOODS:
            live = [ri for ri in live if ri.item.kind != KIND_AD]
        cap = rule.frequency_cap
        uncapped = [ri for ri in live if cap is None or self.visitor.impressions.get(ri.item.id, 0) < cap]
        if not uncapped:
            if not live:
                if self.ad_guardrail and self.mood in NEGATIVE_MOODS:
                    return _Picked({}, skip_reason="no item is live (ads are held back for negative moods).")
                return _Picked({}, skip_reason="no item is inside its active window.")
            return _Picked({}, skip_reason=f"every item reached its cap of {cap} per visitor.")

        by_slot: dict[str, list[RuleItemSnapshot]] = {}
        for ri in sorted(uncapped, key=lambda ri: (ri.position, ri.item.id)):
            by_slot.setdefault(ri.item.slot, []).append(ri)
        k = max(1, rule.picks_per_slot)
        chosen = {
            slot: tuple(ri.item for ri in self._choose(rule, candidates, k))
            for slot, candidates in by_slot.items()
        }
        how = {
            MODE_FIXED: "; items in their fixed order",
            MODE_WEIGHTED: "; items picked by weight",
            MODE_OPTIMIZE: "; items picked by Thompson sampling on clicks",
        }.get(rule.mode, "")
        if len(uncapped) < len(rule.items):
            how += f" ({len(rule.items) - len(uncapped)} held back by window, cap or guardrail)"
        return _Picked(chosen, how=how)

    def _choose(
        self, rule: RuleSnapshot, candidates: list[RuleItemSnapshot], k: int
    ) -> list[RuleItemSnapshot]:
        if rule.mode == MODE_FIXED:
            return candidates[:k]
        if rule.mode == MODE_OPTIMIZE:
            return thompson_choose(candidates, k, self.stats, self.rng, self.exploration)
        return weighted_choose(candidates, k, self.rng)


def weighted_choose(
    candidates: Sequence[RuleItemSnapshot], k: int, rng: random.Random
) -> list[RuleItemSnapshot]:
    """Return ``k`` candidates drawn by weight without replacement."""
    pool = [c for c in candidates if c.weight > 0]
    chosen: list[RuleItemSnapshot] = []
    while pool and len(chosen) < k:
        total = sum(c.weight for c in pool)
        target = rng.random() * total
        running = 0.0
        index = len(pool) - 1  # float rounding can leave target a hair above the last sum
        for i, candidate in enumerate(pool):
            running += candidate.weight
            if target < running:
                index = i
                break
        chosen.append(pool.pop(index))
    return chosen


def thompson_choose(
    candidates: Sequence[RuleItemSnapshot],
    k: int,
    stats: Mapping[int, ArmStats],
    rng: random.Random,
    exploration: float = DEFAULT_EXPLORATION,
) -> list[RuleItemSnapshot]:
    """Return ``k`` candidates by Thompson sampling on click-through, exploring at least ``exploration``.

    Each item's click-through is Beta(1 + clicks, 1 + impressions − clicks);
    the item with the highest draw wins. With probability ``exploration`` a
    uniformly random item is shown instead, so a loser that got unlucky early
    can still come back.
    """
    pool = list(candidates)
    chosen: list[RuleItemSnapshot] = []
    while pool and len(chosen) < k:
        if rng.random() < exploration:
            index = rng.randrange(len(pool))
        else:
            draws = []
            for candidate in pool:
                arm = stats.get(candidate.item.id, ArmStats())
                clicks = max(0, min(arm.clicks, arm.impressions))
                draws.append(rng.betavariate(1 + clicks, 1 + arm.impressions - clicks))
            index = max(range(len(pool)), key=draws.__getitem__)
        chosen.append(pool.pop(index))
    return chosen


# --- Helpers shared with the admin --------------------------------------------


def rules_overlap(a: RuleSnapshot, b: RuleSnapshot) -> bool:
    """Return whether two rules compete: same tier, a shared mood (or both default), overlapping schedules."""
    if a.tier != b.tier or a.is_default != b.is_default:
        return False
    if not a.is_default and not (a.moods & b.moods):
        return False
    return schedules_overlap(a.schedule, b.schedule)


def schedules_overlap(a: Schedule, b: Schedule) -> bool:
    """Return whether some moment lies inside both schedules."""
    lo = max(filter(None, (a.starts_at, b.starts_at)), default=None)
    hi = min(filter(None, (a.ends_at, b.ends_at)), default=None)
    if lo is not None and hi is not None and lo >= hi:
        return False
    return any(s1 < e2 and s2 < e1 for s1, e1 in a.week_intervals() for s2, e2 in b.week_intervals())


def reading_words() -> dict[str, dict[str, str]]:
    """Return how the page words each reading for visitors, by mood (``"off"``: no camera reading).

    ``was`` opens a reason ("You looked happy"); ``now`` tells what the latest reading is when the content
    on screen was chosen for an earlier one ("you look sad").
    """
    words = {mood: reading_words_for(mood) for mood in MOODS}
    words[READING_OFF] = reading_words_for(None)
    return words


def reading_words_for(mood: str | None) -> dict[str, str]:
    """Return the ``was`` and ``now`` words of one reading (``None``: no camera reading)."""
    if mood is None:
        return {"was": "Expression reading is off", "now": "expression reading is off"}
    if mood == MOOD_NO_FACE:
        return {"was": "No face is in view", "now": "no face is in view"}
    if mood == MOOD_UNCERTAIN:
        return {"was": "Your expression is hard to read", "now": "your expression is hard to read"}
    looked = _LOOKED.get(mood, mood)
    return {"was": f"You looked {looked}", "now": f"you look {looked}"}


def held_words(mood_now: str | None, seconds: int) -> str:
    """Return the sentence that says why content for an earlier reading stays for ``seconds`` more."""
    unit = "second" if seconds == 1 else "seconds"
    return (
        f"Now {reading_words_for(mood_now)['now']}: keeping this for {seconds} more {unit} "
        "so the page doesn't flicker."
    )


def _usual_reason(mood: str | None, too_unclear: bool) -> str:
    was = reading_words_for(mood)["was"]
    if mood in EMOTIONS and too_unclear:
        return f"{was}, but not clearly enough to change the page, so you see the usual page."
    if mood in EMOTIONS:
        return f"{was}; nothing on this page is meant for that right now, so you see the usual page."
    return f"{was}, so you see the usual page."


def _what_changes(rule: RuleSnapshot) -> str:
    if rule.theme is not None and rule.items:
        return "colours and content"
    return "colours" if rule.theme is not None else "content"


def _mood_now(mood: str | None) -> str:
    return "no camera reading" if mood is None else f"the mood is now {mood}"


def _default_why(mood: str | None, confidence: float) -> str:
    if mood is None:
        return "There is no camera reading"
    if mood == MOOD_UNCERTAIN:
        return "The expression is uncertain"
    if mood == MOOD_NO_FACE:
        return "No face is in view"
    return f"No rule matched {mood} at {_pct(confidence)} confidence"


def _schedule_words(rule: RuleSnapshot) -> str:
    return "" if rule.schedule.is_always else f", within its schedule ({rule.schedule.describe()})"


def _pct(value: float) -> str:
    return f"{value:.0%}"


def _minutes(value: time) -> int:
    return value.hour * 60 + value.minute
