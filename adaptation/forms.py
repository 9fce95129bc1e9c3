"""Admin forms: colour pickers, mood checkboxes, the ad guardrail and the simulator."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.forms.models import BaseInlineFormSet

from adaptation import engine
from adaptation.models import ContentItem, Rule, Theme, ad_guardrail_enabled
from emotions.labels import MOODS

WEEKDAY_CHOICES = [(i, name) for i, name in enumerate(("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"))]
NO_CAMERA = "__none__"


def guardrail_message(*, moods: list[str], ads: list[str]) -> str:
    """Return the admin's explanation of why ads cannot join this rule."""
    return (
        f"Ads cannot be shown for {', '.join(sorted(moods))}: the ad guardrail keeps items of kind “ad” "
        "out of rules for angry, disgust, fear or sad, so visitors in those moods get calm, helpful content. "
        f"Remove {', '.join(f'“{a}”' for a in ads)} or those moods "
        "(the guardrail can be turned off with ADAPTATION_AD_GUARDRAIL=false)."
    )


class ThemeForm(forms.ModelForm):
    class Meta:
        model = Theme
        fields = [
            "name",
            "background",
            "surface",
            "text",
            "muted",
            "accent",
            "accent_text",
            "font_scale",
            "motion",
            "background_image",
            "background_url",
        ]
        widgets = {
            name: forms.TextInput(attrs={"type": "color", "data-css-var": var})
            for name, var in (
                ("background", "--bg"),
                ("surface", "--surface"),
                ("text", "--fg"),
                ("muted", "--muted"),
                ("accent", "--accent"),
                ("accent_text", "--accent-fg"),
            )
        }


class ContentItemForm(forms.ModelForm):
    class Meta:
        model = ContentItem
        fields = [
            "kind",
            "slot",
            "title",
            "body",
            "tags",
            "media",
            "media_url",
            "alt",
            "cta_url",
            "cta_label",
            "active_from",
            "active_until",
        ]
        widgets = {"body": forms.Textarea(attrs={"rows": 4})}

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        # The guardrail also holds when an item already in a calm rule is turned into an ad.
        if cleaned.get("kind") == ContentItem.Kind.AD and self.instance.pk and ad_guardrail_enabled():
            rules = [r for r in Rule.objects.filter(rule_items__item=self.instance) if r.negative_moods]
            if rules:
                moods = sorted({m for r in rules for m in r.negative_moods})
                raise ValidationError(
                    f"This item is used by {', '.join(f'“{r.name}”' for r in rules)}, which serve "
                    f"{', '.join(moods)}; the ad guardrail keeps ads out of rules for negative moods. "
                    f"Remove it from those rules first, or keep a kind other than ad."
                )
        return cleaned


class RuleForm(forms.ModelForm):
    moods = forms.MultipleChoiceField(
        choices=[(m, engine.mood_key_label(m)) for m in engine.MOOD_KEYS],
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="The moods this rule serves. “No face (camera on)”: the camera is on but no face is in "
        "view; “No camera”: the visitor has no camera reading (off, refused or unavailable). "
        "Leave empty only for a default rule.",
    )
    weekdays = forms.TypedMultipleChoiceField(
        choices=WEEKDAY_CHOICES,
        coerce=int,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="Days it may fire; none means every day.",
    )

    class Meta:
        model = Rule
        fields = [
            "name",
            "is_active",
            "is_default",
            "moods",
            "min_confidence",
            "tier",
            "order",
            "theme",
            "mode",
            "picks_per_slot",
            "starts_at",
            "ends_at",
            "weekdays",
            "daily_start",
            "daily_end",
            "frequency_cap",
            "cooldown_s",
        ]

    def clean_moods(self) -> list[str]:
        # Stored in the canonical label order so equal rules compare equal.
        chosen = set(self.cleaned_data.get("moods") or [])
        return [m for m in engine.MOOD_KEYS if m in chosen]

    def clean_weekdays(self) -> list[int]:
        return sorted(set(self.cleaned_data.get("weekdays") or []))


class RuleItemFormSet(BaseInlineFormSet):
    def clean(self) -> None:
        super().clean()
        if any(self.errors):
            return
        live = [f for f in self.forms if f.cleaned_data and not f.cleaned_data.get("DELETE")]
        for form in live:
            weight = form.cleaned_data.get("weight")
            if weight is not None and weight <= 0:
                raise ValidationError("Every weight must be above zero.")
        rule: Rule = self.instance
        negative = rule.negative_moods
        if ad_guardrail_enabled() and negative and not rule.is_default:
            ads = [
                form.cleaned_data["item"].title
                for form in live
                if form.cleaned_data.get("item") and form.cleaned_data["item"].kind == ContentItem.Kind.AD
            ]
            if ads:
                raise ValidationError(guardrail_message(moods=negative, ads=ads))


class SimulateForm(forms.Form):
    mood = forms.ChoiceField(
        choices=[(m, engine.mood_key_label(m)) for m in MOODS]
        + [(NO_CAMERA, "No camera (visitor without a camera)")],
        initial="neutral",
        help_text="Uncertain and no face come from the mood tracker while the camera is on; no camera is a "
        "visitor without a camera reading. Each reaches the default rule unless a rule names it.",
    )
    confidence = forms.FloatField(min_value=0.0, max_value=1.0, initial=0.8, help_text="From 0 to 1.")
    at = forms.DateTimeField(
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"],
        help_text="When to simulate (site time zone); empty means now. Schedules depend on it.",
    )
    seed = forms.IntegerField(
        required=False, min_value=0, help_text="Fixes the random choices, to reproduce a weighted pick."
    )

    def mood_value(self) -> str | None:
        mood = self.cleaned_data["mood"]
        return None if mood == NO_CAMERA else mood


class StatisticsForm(forms.Form):
    days = forms.TypedChoiceField(
        choices=[(1, "today"), (7, "7 days"), (30, "30 days"), (90, "90 days"), (365, "a year")],
        coerce=int,
        initial=30,
        required=False,
        help_text="Period of the table of impressions and clicks.",
    )
    hours = forms.TypedChoiceField(
        choices=[(6, "6 hours"), (24, "24 hours"), (72, "3 days"), (168, "7 days"), (720, "30 days")],
        coerce=int,
        initial=24,
        required=False,
        help_text="Period of the mood chart.",
    )


# Kept here so the admin and its tests agree on which moods the guardrail covers.
GUARDED_MOODS = sorted(engine.NEGATIVE_MOODS)
