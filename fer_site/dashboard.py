"""The admin home: is Attune working, and what is it doing? Gathers a little from every app."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Sum
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import mark_safe

from adaptation.engine import MOOD_KEYS, mood_key_label
from adaptation.models import MoodMinuteStat
from adaptation.selectors import ItemMoodStat, item_mood_stats
from emotions.labels import MOODS
from emotions.selectors import model_served_figures, model_served_since
from fer_site import charts
from fer_site.health import health_report
from training.models import TrainingRun

MOOD_WINDOW = timedelta(hours=1)
MOOD_BUCKET = timedelta(minutes=5)
CONTENT_DAYS = 7
TOP_ITEMS_PER_MOOD = 3


@dataclass(frozen=True)
class ItemPerformance:
    stat: ItemMoodStat
    low: float
    high: float

    @property
    def interval_display(self) -> str:
        return f"{self.low:.1%} – {self.high:.1%}"


def wilson_interval(successes: int, trials: int, *, z: float = 1.96) -> tuple[float, float]:
    """Return the Wilson score interval of a proportion (95 % by default); (0, 1) without trials."""
    if trials <= 0:
        return 0.0, 1.0
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def live_sessions_count() -> int:
    """Return how many visitors this process serves now (each worker process counts its own)."""
    from fer_site.live.consumers import LIVE_SESSIONS

    return len(LIVE_SESSIONS)


def mood_mix_recent(*, now: datetime) -> dict[str, Any]:
    """Return the last hour's mood reports: totals and shares per mood, and an SVG chart per 5 minutes."""
    start = now - MOOD_WINDOW
    buckets = int(MOOD_WINDOW / MOOD_BUCKET)
    series = {mood: [0] * buckets for mood in MOODS}
    rows = MoodMinuteStat.objects.filter(minute__gte=start, minute__lt=now).values_list(
        "minute", "mood", "count"
    )
    for minute, mood, count in rows:
        index = min(buckets - 1, int((minute - start) / MOOD_BUCKET))
        if mood in series:
            series[mood][index] += count
    totals = {mood: sum(values) for mood, values in series.items()}
    total = sum(totals.values())
    shares = [
        {
            "mood": mood,
            "label": mood_key_label(mood),
            "count": count,
            "share": count / total,
            "colour": charts.MOOD_COLOURS.get(mood, "#999"),
        }
        for mood, count in sorted(totals.items(), key=lambda kv: -kv[1])
        if count
    ]
    labels = [timezone.localtime(start + MOOD_BUCKET * (i + 1)).strftime("%H:%M") for i in range(buckets)]
    chart = charts.line_chart_svg(
        labels=labels,
        series={mood: values for mood, values in series.items() if totals[mood]},
        title="Mood reports in the last hour, per 5 minutes",
        height=220,
        names={mood: mood_key_label(mood) for mood in series},
    )
    return {"total": total, "shares": shares, "chart": mark_safe(chart) if total else ""}  # noqa: S308


def content_performance(*, today: Any) -> list[dict[str, Any]]:
    """Return, per mood, the items with the best click-through over the last week, with 95 % intervals.

    Ranked by the interval's lower bound, so an item clicked once in two showings does not top one
    clicked 30 times in 100. Visitors without a camera (no_camera) are a group apart from no_face.
    """
    since = today - timedelta(days=CONTENT_DAYS - 1)
    by_mood: dict[str, list[ItemPerformance]] = {}
    for stat in item_mood_stats(since=since, until=today):
        if not stat.impressions:
            continue
        low, high = wilson_interval(stat.clicks, stat.impressions)
        by_mood.setdefault(stat.mood, []).append(ItemPerformance(stat=stat, low=low, high=high))
    return [
        {
            "mood": mood,
            "label": mood_key_label(mood),
            "items": sorted(items, key=lambda p: -p.low)[:TOP_ITEMS_PER_MOOD],
        }
        for mood, items in sorted(
            by_mood.items(), key=lambda kv: MOOD_KEYS.index(kv[0]) if kv[0] in MOOD_KEYS else 99
        )
    ]


def training_runs_recent(*, limit: int = 5) -> dict[str, list[TrainingRun]]:
    """Return the running and queued training runs, and the latest finished ones."""
    unfinished = list(TrainingRun.objects.unfinished().order_by("-created_at")[:limit])
    finished = list(
        TrainingRun.objects.filter(status__in=TrainingRun.FINISHED).order_by("-created_at")[:limit]
    )
    return {"unfinished": unfinished, "finished": finished}


def dashboard_context() -> dict[str, Any]:
    """Return everything the admin home shows."""
    now = timezone.now()
    served = model_served_figures()
    report = health_report()
    mood_mix = mood_mix_recent(now=now)
    return {
        "served": served,
        "served_since": model_served_since(),
        "health": report,
        "live_sessions": live_sessions_count(),
        "mood_mix": mood_mix,
        "mood_samples_last_minutes": _mood_samples_since(now - timedelta(minutes=5)),
        "content": content_performance(today=timezone.localdate(now)),
        "content_days": CONTENT_DAYS,
        "top_items": TOP_ITEMS_PER_MOOD,
        "runs": training_runs_recent(),
        "links": {
            "simulate": reverse("admin:adaptation_rule_simulate"),
            "statistics": reverse("admin:adaptation_rule_statistics"),
            "models": reverse("admin:emotions_modelversion_changelist"),
            "runs": reverse("admin:training_trainingrun_changelist"),
            "start_run": reverse("admin:training_trainingrun_add"),
            "healthz": reverse("healthz"),
        },
    }


def _mood_samples_since(moment: datetime) -> int:
    return MoodMinuteStat.objects.filter(minute__gte=moment).aggregate(total=Sum("count"))["total"] or 0
