"""Adaptation workflows: decide what a visitor sees, count what they saw and clicked, tell pages about edits.

Nothing here identifies a person: visitor state lives in memory per
connection, duplicate events are recognised through short-lived cache keys
made from a keyed hash, and the database only holds daily counters per item
and mood and per-minute mood counts.
"""

from __future__ import annotations

import logging
import random
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from adaptation import engine, selectors
from adaptation.engine import Decision, VisitorState
from adaptation.models import ContentItem, ItemDailyStat, MoodMinuteStat
from emotions.labels import MOODS

logger = logging.getLogger(__name__)

CONTENT_GROUP = "adaptation.content"
EVENT_KINDS = ("impression", "click")
MAX_KEY_LENGTH = 200

# Stateless and thread-safe; tests pass a seeded random.Random instead.
_SYSTEM_RNG = random.SystemRandom()


# --- Deciding -----------------------------------------------------------------


def content_decide(
    *,
    mood: str | None,
    confidence: float,
    visitor_state: VisitorState | None = None,
    now: datetime | None = None,
    rng: random.Random | None = None,
) -> Decision:
    """Return the theme and content for ``mood`` and remember the decision for its events.

    ``mood=None`` means the visitor has no camera reading (camera off or
    unavailable). ``visitor_state`` is updated in place: it becomes the
    decision on screen, which starts the cool-down when the content changed.
    A decision held by a cool-down (``held``) leaves what is on screen as it is.
    """
    now = now or timezone.now()
    decision = _decide(mood=mood, confidence=confidence, visitor_state=visitor_state, now=now, rng=rng)
    key = _decision_key(decision.decision_id)
    ttl = settings.ADAPTATION_DECISION_TTL_S
    # Events must name a decision Attune issued and one of its items. Content that stays on screen keeps
    # the mood it was first shown for: its impressions were counted under that mood, so its clicks are too.
    if decision.switched or not cache.touch(key, timeout=ttl):
        cache.set(key, {"mood": stats_mood(decision.mood), "items": decision.item_ids}, timeout=ttl)
    if visitor_state is not None:
        visitor_state.decision_remember(decision, now)
    return decision


def content_simulate(
    *, mood: str | None, confidence: float, now: datetime | None = None, seed: int | None = None
) -> Decision:
    """Return what a new visitor would see, without remembering anything (the admin's simulator)."""
    return _decide(
        mood=mood,
        confidence=confidence,
        visitor_state=None,
        now=now or timezone.now(),
        rng=random.Random(seed) if seed is not None else None,
    )


def _decide(
    *,
    mood: str | None,
    confidence: float,
    visitor_state: VisitorState | None,
    now: datetime,
    rng: random.Random | None,
) -> Decision:
    if mood is not None and mood not in MOODS:
        raise ValidationError(f"Unknown mood {mood!r}; expected one of {', '.join(MOODS)}.")
    rules = selectors.rule_snapshots_active()
    optimized = [
        ri.item.id
        for rule in rules
        if rule.mode == engine.MODE_OPTIMIZE and (rule.is_default or (stats_mood(mood) in rule.moods))
        for ri in rule.items
    ]
    stats = selectors.item_arm_stats(mood=stats_mood(mood), item_ids=optimized)
    try:
        return engine.decide(
            mood=mood,
            confidence=confidence,
            rules=rules,
            # Schedules are written in the site's time zone.
            now=timezone.localtime(now),
            visitor=visitor_state,
            stats=stats,
            rng=rng or _SYSTEM_RNG,
            ad_guardrail=settings.ADAPTATION_AD_GUARDRAIL,
            exploration=settings.ADAPTATION_OPTIMIZE_EXPLORATION,
        )
    except ValueError as exc:
        raise ValidationError(str(exc)) from None


def decision_serialize(decision: Decision) -> dict[str, Any]:
    """Return the decision as JSON-ready data for the live page and the REST API."""
    return decision.as_dict()


def stats_mood(mood: str | None) -> str:
    """Return the mood statistics are kept under: visitors without a camera reading count as no_camera.

    Camera off, refused or unavailable (``None``) is ``no_camera``; ``no_face`` stays the camera-on
    reading without a face in view, so the two are counted apart.
    """
    return engine.mood_key(mood)


# --- Counting -----------------------------------------------------------------


class EventRefused(ValidationError):
    """A well-formed event that does not fit what Attune holds; ``code`` says how.

    ``decision_not_found``: no such decision was issued, or it expired; ``item_not_found``: the item was
    deleted since; ``decision_mismatch``: the item is not one of the decision's, or the mood not its
    mood; ``impression_missing``: a click before an impression of the same item.
    """

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message, code=code)


def content_event_record(
    *,
    kind: Literal["impression", "click"],
    item_id: int,
    mood: str,
    decision_id: str,
    now: datetime | None = None,
) -> bool:
    """Count an impression or a click once per (item, decision); return False for a duplicate.

    The decision must be one Attune issued (and not expired), the item one of
    its items and ``mood`` the statistics mood it was decided for (:func:`stats_mood`:
    ``no_camera`` for a decision without a camera reading). A click counts only
    after an impression of the same item in the same decision, so click-through
    never exceeds one. Raises ``ValidationError`` for a malformed event and :class:`EventRefused` (a
    subclass) for one that does not fit the decision.
    """
    if kind not in EVENT_KINDS:
        raise ValidationError(f"Unknown event kind {kind!r}; expected impression or click.")
    if mood not in engine.MOOD_KEYS:
        raise ValidationError(f"Unknown mood {mood!r}.")
    if not isinstance(decision_id, str) or not decision_id or len(decision_id) > MAX_KEY_LENGTH:
        raise ValidationError(
            f"decision_id must be a non-empty string of at most {MAX_KEY_LENGTH} characters."
        )
    if isinstance(item_id, bool) or not isinstance(item_id, int):
        raise ValidationError("item_id must be an integer.")
    issued = cache.get(_decision_key(decision_id))
    if issued is None:
        raise EventRefused("Unknown or expired decision.", code="decision_not_found")
    if item_id not in issued["items"]:
        raise EventRefused("The item is not part of this decision.", code="decision_mismatch")
    if mood != issued["mood"]:
        raise EventRefused(
            f"The decision was made for {issued['mood']}, not {mood}.", code="decision_mismatch"
        )

    ttl = settings.ADAPTATION_DECISION_TTL_S
    if kind == "click" and cache.get(_event_key("impression", item_id, decision_id)) is None:
        raise EventRefused("A click needs an impression of the same item first.", code="impression_missing")
    key = _event_key(kind, item_id, decision_id)
    # cache.add is atomic on every backend: exactly one of two racing requests wins.
    if not cache.add(key, 1, timeout=ttl):
        return False
    try:
        _count_event(kind=kind, item_id=item_id, mood=mood, day=timezone.localdate(now or timezone.now()))
    except Exception:
        cache.delete(key)  # let a retry count it
        raise
    return True


@transaction.atomic
def _count_event(*, kind: str, item_id: int, mood: str, day: Any) -> None:
    if not ContentItem.objects.filter(pk=item_id).exists():
        raise EventRefused("The item no longer exists.", code="item_not_found")
    field = "impressions" if kind == "impression" else "clicks"
    _increment(ItemDailyStat, {"item_id": item_id, "mood": mood, "day": day}, field)


def content_show(
    *, visitor: VisitorState, mood: str | None, confidence: float, shown_id: str | None
) -> Decision:
    """Return the decision for ``mood`` for a live visitor; when it is new, count an impression of its items.

    ``shown_id`` names the decision on the visitor's screen now: deciding the
    same again counts nothing.
    """
    decision = content_decide(mood=mood, confidence=confidence, visitor_state=visitor)
    if decision.decision_id == shown_id:
        return decision
    for item_id in decision.item_ids:
        visitor.impression_add(item_id)
        try:
            content_event_record(
                kind="impression",
                item_id=item_id,
                mood=stats_mood(decision.mood),
                decision_id=decision.decision_id,
            )
        except ValidationError as error:  # e.g. the item was deleted a moment ago
            logger.info("impression of item %s not counted: %s", item_id, " ".join(error.messages))
    return decision


def mood_sample_record(*, mood: str, now: datetime | None = None) -> None:
    """Add one sample of ``mood`` to this minute's count across all visitors.

    Samples are the tracker's moods, read from frames: a visitor without a camera sends none, so there is
    no ``no_camera`` sample; ``no_face`` is a camera-on reading.
    """
    if mood not in MOODS:
        raise ValidationError(f"Unknown mood {mood!r}.")
    minute = (now or timezone.now()).astimezone(UTC).replace(second=0, microsecond=0)
    with transaction.atomic():
        _increment(MoodMinuteStat, {"minute": minute, "mood": mood}, "count")


def _increment(model: Any, lookup: dict[str, Any], field: str) -> None:
    """Add one to ``field`` of the row matching ``lookup``, creating it; safe under concurrency."""
    if model.objects.filter(**lookup).update(**{field: F(field) + 1}):
        return
    try:
        with transaction.atomic():
            model.objects.create(**lookup, **{field: 1})
    except IntegrityError:
        # Another request created the row between our update and create.
        model.objects.filter(**lookup).update(**{field: F(field) + 1})


def stats_prune(*, now: datetime | None = None) -> tuple[int, int]:
    """Delete counters older than ADAPTATION_STATS_RETENTION_DAYS; return the (daily, minute) rows deleted."""
    now = now or timezone.now()
    days = settings.ADAPTATION_STATS_RETENTION_DAYS
    cutoff = now - timedelta(days=days)
    daily, _ = ItemDailyStat.objects.filter(day__lt=timezone.localdate(cutoff)).delete()
    minutes, _ = MoodMinuteStat.objects.filter(minute__lt=cutoff).delete()
    return daily, minutes


def _decision_key(decision_id: str) -> str:
    return f"adaptation:decision:{decision_id}"


def _event_key(kind: str, item_id: int, decision_id: str) -> str:
    # A decision is issued to one visitor (a page or one API call), so it is the unit an event counts
    # once in: whoever reports it, however they name the visitor.
    return f"adaptation:event:{kind}:{decision_id}:{item_id}"


# --- Telling connected pages --------------------------------------------------


def content_changed_broadcast() -> None:
    """Tell every connected page that rules, themes or items changed, so it asks for a new decision."""
    layer = get_channel_layer()
    if layer is None:
        return
    async_to_sync(layer.group_send)(CONTENT_GROUP, {"type": "content.changed"})


def content_changed_schedule() -> None:
    """Broadcast once when the current transaction commits (at once outside a transaction).

    An admin save touches a rule and each of its inline items; pages need one
    message, not one per row. Tests inside an outer ``TestCase`` transaction see
    only the first change of the test queued, so broadcast tests use
    transactional databases.
    """
    connection = transaction.get_connection()
    # run_on_commit is Django's own queue; if its shape ever changes we simply broadcast more often.
    pending = getattr(connection, "run_on_commit", None) or []
    if connection.in_atomic_block and any(
        isinstance(entry, tuple) and len(entry) == 3 and entry[1] is content_changed_broadcast
        for entry in pending
    ):
        return
    transaction.on_commit(content_changed_broadcast, robust=True)
