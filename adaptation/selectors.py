"""Reads for the adaptation engine, the simulator and the statistics page."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.db.models import Prefetch, Sum
from django.db.models.functions import TruncDay, TruncHour
from django.utils import timezone

from adaptation import engine
from adaptation.models import ItemDailyStat, MoodMinuteStat, Rule, RuleItem
from emotions.labels import MOODS


def rule_snapshots_active() -> list[engine.RuleSnapshot]:
    """Return the engine's view of every active rule, with themes and items, in three queries."""
    rules = (
        Rule.objects.active()
        .select_related("theme")
        .prefetch_related(Prefetch("rule_items", queryset=RuleItem.objects.select_related("item")))
    )
    return [rule.snapshot(list(rule.rule_items.all())) for rule in rules]


def item_arm_stats(*, mood: str, item_ids: list[int]) -> dict[int, engine.ArmStats]:
    """Return all kept impressions and clicks per item for ``mood`` (the bandit's evidence)."""
    if not item_ids:
        return {}
    rows = (
        ItemDailyStat.objects.filter(mood=mood, item_id__in=item_ids)
        .values("item_id")
        .annotate(impressions=Sum("impressions"), clicks=Sum("clicks"))
    )
    return {row["item_id"]: engine.ArmStats(row["impressions"] or 0, row["clicks"] or 0) for row in rows}


def rule_overlaps(*, rule: Rule) -> list[Rule]:
    """Return the other active rules that compete with ``rule`` at the same tier."""
    if not rule.is_active:
        return []
    others = Rule.objects.active().filter(tier=rule.tier).exclude(pk=rule.pk)
    return [other for other in others if engine.rules_overlap(_overlap_view(rule), _overlap_view(other))]


def _overlap_view(rule: Rule) -> engine.RuleSnapshot:
    # Only what decides an overlap; a full snapshot would fetch the theme and items of every rule.
    return engine.RuleSnapshot(
        id=rule.pk,
        name=rule.name,
        moods=frozenset(rule.moods or ()),
        tier=rule.tier,
        schedule=rule.schedule(),
        is_default=rule.is_default,
    )


@dataclass(frozen=True)
class ItemMoodStat:
    item_id: int
    item_title: str
    item_kind: str
    mood: str
    impressions: int
    clicks: int

    @property
    def mood_label(self) -> str:
        return engine.mood_key_label(self.mood)

    @property
    def ctr(self) -> float | None:
        return self.clicks / self.impressions if self.impressions else None

    @property
    def ctr_display(self) -> str:
        return ctr_display(self.clicks, self.impressions)


def ctr_display(clicks: int, impressions: int) -> str:
    """Return click-through as a percentage with one decimal, or a dash without impressions."""
    return f"{100 * clicks / impressions:.1f} %" if impressions else "—"


def item_mood_stats(*, since: date, until: date) -> list[ItemMoodStat]:
    """Return impressions and clicks per item and mood between two days, inclusive."""
    rows = (
        ItemDailyStat.objects.filter(day__gte=since, day__lte=until)
        .values("item_id", "item__title", "item__kind", "mood")
        .annotate(impressions=Sum("impressions"), clicks=Sum("clicks"))
        .order_by("mood", "-impressions", "item__title")
    )
    return [
        ItemMoodStat(
            item_id=row["item_id"],
            item_title=row["item__title"],
            item_kind=row["item__kind"],
            mood=row["mood"],
            impressions=row["impressions"] or 0,
            clicks=row["clicks"] or 0,
        )
        for row in rows
    ]


def mood_totals(*, since: date, until: date) -> dict[str, tuple[int, int]]:
    """Return (impressions, clicks) per mood between two days, inclusive (no_camera apart from no_face)."""
    rows = (
        ItemDailyStat.objects.filter(day__gte=since, day__lte=until)
        .values("mood")
        .annotate(impressions=Sum("impressions"), clicks=Sum("clicks"))
    )
    return {row["mood"]: (row["impressions"] or 0, row["clicks"] or 0) for row in rows}


def mood_series(
    *, start: datetime, end: datetime, bucket: str = "hour"
) -> tuple[list[datetime], dict[str, list[int]]]:
    """Return bucket starts and, per mood, the number of mood samples in each bucket.

    Samples are the tracker's moods (camera on), so there is no no_camera series.
    """
    trunc = TruncHour if bucket == "hour" else TruncDay
    step = timedelta(hours=1) if bucket == "hour" else timedelta(days=1)
    rows = (
        MoodMinuteStat.objects.filter(minute__gte=start, minute__lt=end)
        .annotate(bucket=trunc("minute"))
        .values("bucket", "mood")
        .annotate(total=Sum("count"))
    )
    first = _floor(start, bucket)
    buckets: list[datetime] = []
    at = first
    while at < end:
        buckets.append(at)
        at += step
    index = {b: i for i, b in enumerate(buckets)}
    series = {mood: [0] * len(buckets) for mood in MOODS}
    for row in rows:
        i = index.get(_floor(row["bucket"], bucket))
        if i is not None and row["mood"] in series:
            series[row["mood"]][i] += row["total"] or 0
    return buckets, series


def _floor(moment: datetime, bucket: str) -> datetime:
    # Buckets follow the site's time zone, as TruncHour/TruncDay do.
    moment = timezone.localtime(moment).replace(minute=0, second=0, microsecond=0)
    return moment.replace(hour=0) if bucket == "day" else moment
