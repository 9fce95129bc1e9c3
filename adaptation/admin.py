"""Operators' tools: themes with a live preview, items with a media preview, rules, simulator, statistics."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from adaptation import engine, selectors, services
from adaptation.forms import (
    ContentItemForm,
    RuleForm,
    RuleItemFormSet,
    SimulateForm,
    StatisticsForm,
    ThemeForm,
)
from adaptation.models import TIER_NAMES, ContentItem, Rule, RuleItem, Theme, ad_guardrail_enabled
from fer_site import charts


def _theme_style(css: dict[str, str]) -> str:
    # Values come from validated fields (#rrggbb, numbers, same-site paths): safe in a style attribute.
    return "; ".join(f"{name}: {value}" for name, value in css.items())


@admin.register(Theme)
class ThemeAdmin(admin.ModelAdmin):
    form = ThemeForm
    list_display = ["name", "swatches", "font_scale", "motion", "rule_count"]
    search_fields = ["name"]
    readonly_fields = ["preview"]
    fieldsets = [
        (None, {"fields": ["name", "preview"]}),
        ("Colours", {"fields": [("background", "surface", "text"), ("muted", "accent", "accent_text")]}),
        ("Type and motion", {"fields": ["font_scale", "motion"]}),
        ("Background picture", {"fields": ["background_image", "background_url"], "classes": ["collapse"]}),
    ]

    class Media:
        css = {"all": ["adaptation/admin.css"]}
        js = ["adaptation/theme_preview.js"]

    @admin.display(description="Colours")
    def swatches(self, theme: Theme) -> SafeString:
        return format_html_join(
            "",
            '<span class="attune-swatch" style="background:{}" title="{}"></span>',
            (
                (colour, label)
                for label, colour in (
                    ("background", theme.background),
                    ("surface", theme.surface),
                    ("text", theme.text),
                    ("accent", theme.accent),
                )
            ),
        )

    @admin.display(description="Rules")
    def rule_count(self, theme: Theme) -> int:
        return theme.rules.count()

    @admin.display(description="Live preview")
    def preview(self, theme: Theme) -> SafeString:
        css = theme.css_variables() if theme.pk else Theme().css_variables()
        return format_html(
            '<div id="attune-theme-preview" class="attune-preview" style="{}">'
            '<div class="attune-preview-card"><span class="attune-preview-dot" aria-hidden="true"></span>'
            "<strong>A calm headline</strong><p>Body text in the theme's colours and type scale.</p>"
            '<p class="attune-preview-muted">Secondary text</p>'
            '<a class="attune-preview-button" href="#" onclick="return false">Call to action</a>'
            '<a class="attune-preview-button attune-preview-quiet" href="#" onclick="return false">'
            "Not now</a>"
            "</div></div>"
            '<p class="help">Follows your edits below as you type; the dot shows the motion level.</p>',
            _theme_style(css),
        )


@admin.register(ContentItem)
class ContentItemAdmin(admin.ModelAdmin):
    form = ContentItemForm
    list_display = ["thumbnail", "title", "kind", "slot", "active_from", "active_until", "tags"]
    list_display_links = ["thumbnail", "title"]
    list_filter = ["kind", "slot"]
    search_fields = ["title", "body", "tags"]
    readonly_fields = ["media_preview"]
    fieldsets = [
        (None, {"fields": ["kind", "slot", "title", "body", "tags"]}),
        ("Media", {"fields": ["media_preview", "media", "media_url", "alt"]}),
        ("Call to action", {"fields": ["cta_url", "cta_label"]}),
        ("Active window", {"fields": ["active_from", "active_until"]}),
    ]

    class Media:
        css = {"all": ["adaptation/admin.css"]}

    @admin.display(description="Media")
    def thumbnail(self, item: ContentItem) -> SafeString:
        return self._media_html(item, css_class="attune-thumb")

    @admin.display(description="Preview")
    def media_preview(self, item: ContentItem) -> SafeString:
        if not item.pk:
            return mark_safe('<span class="help">Save the item to see its media.</span>')
        return self._media_html(item, css_class="attune-media-preview")

    @staticmethod
    def _media_html(item: ContentItem, *, css_class: str) -> SafeString:
        url = item.resolved_media_url
        if not url:
            return format_html('<span class="attune-no-media">{}</span>', item.get_kind_display())
        if item.is_video:
            return format_html(
                '<video class="{}" src="{}" muted controls preload="metadata"></video>', css_class, url
            )
        return format_html('<img class="{}" src="{}" alt="{}">', css_class, url, item.alt or item.title)


class RuleItemInline(admin.TabularInline):
    model = RuleItem
    formset = RuleItemFormSet
    extra = 1
    autocomplete_fields = ["item"]
    fields = ["item", "weight", "position"]


@admin.register(Rule)
class RuleAdmin(admin.ModelAdmin):
    form = RuleForm
    inlines = [RuleItemInline]
    change_list_template = "adaptation/admin/rule_change_list.html"
    list_display = [
        "name",
        "is_active",
        "mood_list",
        "tier",
        "order",
        "confidence",
        "theme",
        "pacing",
        "overlap_flag",
    ]
    list_display_links = ["name"]
    list_editable = ["is_active", "order"]
    list_filter = ["is_active", "is_default", "tier", "mode"]
    search_fields = ["name"]
    fieldsets = [
        (None, {"fields": ["name", "is_active", "is_default", "moods", "min_confidence"]}),
        ("Priority", {"fields": ["tier", "order"]}),
        ("What it shows", {"fields": ["theme", "mode", "picks_per_slot"]}),
        (
            "Schedule",
            {
                "fields": [("starts_at", "ends_at"), "weekdays", ("daily_start", "daily_end")],
                "classes": ["collapse"],
            },
        ),
        ("Pacing", {"fields": ["frequency_cap", "cooldown_s"]}),
    ]

    class Media:
        css = {"all": ["adaptation/admin.css"]}

    def get_queryset(self, request: HttpRequest) -> Any:
        return super().get_queryset(request).select_related("theme")

    @admin.display(description="Moods")
    def mood_list(self, rule: Rule) -> SafeString | str:
        if rule.is_default:
            return format_html(
                '<span title="{}">default</span>', "uncertain, no face, moods no rule matched, no camera"
            )
        return ", ".join(engine.mood_key_label(mood) for mood in rule.moods)

    # Short columns, with the long wording in a tooltip, so the list fits a 1400 px screen.
    @admin.display(description="Min conf.", ordering="min_confidence")
    def confidence(self, rule: Rule) -> str:
        return f"{rule.min_confidence:.2f}"

    @admin.display(description="Picks, pacing", ordering="mode")
    def pacing(self, rule: Rule) -> SafeString:
        cap = f"{rule.frequency_cap}× each" if rule.frequency_cap else "no cap"
        return format_html(
            '<span title="{}">{}</span><br><span title="cool-down {} s; frequency cap: {}">{} s · {}</span>',
            rule.get_mode_display(),
            rule.mode,
            rule.cooldown_s,
            rule.frequency_cap or "none",
            rule.cooldown_s,
            cap,
        )

    @admin.display(description="Overlaps")
    def overlap_flag(self, rule: Rule) -> SafeString | str:
        others = selectors.rule_overlaps(rule=rule)
        if not others:
            return "—"
        return format_html(
            '<span class="attune-warning" title="Same tier, shared mood, overlapping schedule">⚠ {}</span>',
            ", ".join(o.name for o in others),
        )

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        rule: Rule = form.instance
        for other in selectors.rule_overlaps(rule=rule):
            messages.warning(request, _overlap_message(rule, other))

    def get_urls(self) -> list[URLPattern]:
        own = [
            path(
                "simulate/", self.admin_site.admin_view(self.simulate_view), name="adaptation_rule_simulate"
            ),
            path(
                "statistics/",
                self.admin_site.admin_view(self.statistics_view),
                name="adaptation_rule_statistics",
            ),
        ]
        return own + super().get_urls()

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        extra_context = {
            **(extra_context or {}),
            "guardrail_on": ad_guardrail_enabled(),
        }
        return super().changelist_view(request, extra_context)

    def simulate_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        form = SimulateForm(request.GET or None)
        decision = None
        if form.is_valid():
            at = form.cleaned_data["at"]
            decision = services.content_simulate(
                mood=form.mood_value(),
                confidence=form.cleaned_data["confidence"],
                now=at,
                seed=form.cleaned_data["seed"],
            )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Simulate a visitor",
            "form": form,
            "decision": decision,
            "theme_style": _theme_style(dict(decision.theme.css)) if decision else "",
            "rule_url": reverse("admin:adaptation_rule_change", args=[decision.rule_id])
            if decision and decision.rule_id
            else "",
            "guardrail_on": ad_guardrail_enabled(),
        }
        return render(request, "adaptation/admin/simulate.html", context)

    def statistics_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        form = StatisticsForm(request.GET or None)
        days, hours = 30, 24
        if form.is_valid():
            days = form.cleaned_data["days"] or days
            hours = form.cleaned_data["hours"] or hours
        now = timezone.now()
        until = timezone.localdate(now)
        since = until - timedelta(days=days - 1)
        rows = selectors.item_mood_stats(since=since, until=until)
        totals = selectors.mood_totals(since=since, until=until)
        bucket = "hour" if hours <= 72 else "day"
        buckets, series = selectors.mood_series(start=now - timedelta(hours=hours), end=now, bucket=bucket)
        label_format = "%H:%M" if hours <= 24 else ("%a %H:%M" if bucket == "hour" else "%b %d")
        chart = charts.line_chart_svg(
            labels=[timezone.localtime(b).strftime(label_format) for b in buckets],
            series=series,
            title=f"Moods reported per {bucket}, last {hours} hours",
            names={mood: engine.mood_key_label(mood) for mood in series},
        )
        # No camera and no face (camera on) are separate rows: visitors without a camera are not "no face".
        mood_rows = [
            {
                "mood": mood,
                "label": engine.mood_key_label(mood),
                "impressions": imp,
                "clicks": clk,
                "ctr": selectors.ctr_display(clk, imp),
            }
            for mood in engine.MOOD_KEYS
            for imp, clk in [totals.get(mood, (0, 0))]
        ]
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Adaptation statistics",
            "form": form,
            "rows": rows,
            "mood_rows": mood_rows,
            "since": since,
            "until": until,
            "chart": mark_safe(chart),  # built from numbers and escaped labels only
            "samples_total": sum(sum(v) for v in series.values()),
        }
        return render(request, "adaptation/admin/statistics.html", context)


def _overlap_message(rule: Rule, other: Rule) -> str:
    tier = TIER_NAMES.get(rule.tier, f"tier {rule.tier}")
    shared = (
        "both are default rules"
        if rule.is_default
        else f"both serve {', '.join(sorted(set(rule.moods) & set(other.moods)))}"
    )
    if rule.order == other.order:
        order = f"they share order {rule.order}, so the older one wins; give them different orders"
    else:
        first = rule if rule.order < other.order else other
        order = f"“{first.name}” comes first (lower order)"
    return (
        f"“{rule.name}” overlaps “{other.name}” in the {tier} tier: {shared} at overlapping times; {order}."
    )
