"""Themes, content items, mood rules and the aggregate counters behind the statistics."""

from __future__ import annotations

import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import (
    FileExtensionValidator,
    MaxValueValidator,
    MinValueValidator,
    RegexValidator,
    URLValidator,
)
from django.db import models
from django.db.models import Q

from adaptation import engine
from emotions.labels import MOODS

HEX_COLOUR = RegexValidator(r"^#[0-9a-fA-F]{6}$", "Enter a colour as #rrggbb.")
# A path on this site: no scheme, no host ("//"), no quotes, spaces or brackets that could end a CSS url().
SAME_SITE_PATH = re.compile(r"/(?!/)[A-Za-z0-9._~%+\-/]*(\?[A-Za-z0-9._~%+\-=&]*)?(#[A-Za-z0-9._\-]*)?")
IMAGE_EXTENSIONS = ["png", "jpg", "jpeg", "webp", "gif"]
VIDEO_EXTENSIONS = ["mp4", "webm"]


def validate_same_site_path(value: str) -> None:
    """Refuse anything but a path on this site ("/static/…"), so content cannot pull from elsewhere."""
    if not value:
        return
    if not SAME_SITE_PATH.fullmatch(value):
        raise ValidationError(
            "Enter a path on this site starting with a single '/', e.g. /static/adaptation/x.svg."
        )


def validate_link(value: str) -> None:
    """Accept a same-site path or an http(s) URL; never javascript: and friends."""
    if not value:
        return
    if value.startswith("/"):
        validate_same_site_path(value)
    else:
        URLValidator(schemes=["http", "https"])(value)


def validate_moods(value: object) -> None:
    if not isinstance(value, list) or not all(isinstance(m, str) for m in value):
        raise ValidationError("Moods must be a list of mood names.")
    unknown = sorted(set(value) - set(engine.MOOD_KEYS))
    if unknown:
        raise ValidationError(
            f"Unknown moods: {', '.join(unknown)}. Choose from {', '.join(engine.MOOD_KEYS)}."
        )


def validate_weekdays(value: object) -> None:
    if not isinstance(value, list) or not all(isinstance(d, int) and 0 <= d <= 6 for d in value):
        raise ValidationError("Weekdays must be a list of numbers from 0 (Monday) to 6 (Sunday).")


def ad_guardrail_enabled() -> bool:
    return settings.ADAPTATION_AD_GUARDRAIL


class Theme(models.Model):
    class Motion(models.TextChoices):
        NONE = "none", "None: no animation"
        CALM = "calm", "Calm: slow, small transitions"
        LIVELY = "lively", "Lively: full animation"

    # The CSS value of --motion the page scales its animations by.
    MOTION_SCALE = {Motion.NONE: "0", Motion.CALM: "0.5", Motion.LIVELY: "1"}

    name = models.CharField(
        max_length=80, unique=True, help_text="A name operators recognise, e.g. 'Calm blue'."
    )
    background = models.CharField(
        max_length=7, default="#f7f7f5", validators=[HEX_COLOUR], help_text="Page background (--bg)."
    )
    surface = models.CharField(
        max_length=7, default="#ffffff", validators=[HEX_COLOUR], help_text="Cards and panels (--surface)."
    )
    text = models.CharField(
        max_length=7, default="#1d1d1f", validators=[HEX_COLOUR], help_text="Body text (--fg)."
    )
    muted = models.CharField(
        max_length=7, default="#6b6b70", validators=[HEX_COLOUR], help_text="Secondary text (--muted)."
    )
    accent = models.CharField(
        max_length=7, default="#3a6ea5", validators=[HEX_COLOUR], help_text="Links and buttons (--accent)."
    )
    accent_text = models.CharField(
        max_length=7,
        default="#ffffff",
        validators=[HEX_COLOUR],
        help_text="Text on the accent colour (--accent-fg).",
    )
    font_scale = models.DecimalField(
        max_digits=3,
        decimal_places=2,
        default=1,
        validators=[MinValueValidator(0.75), MaxValueValidator(1.5)],
        help_text="Multiplies the base font size (--font-scale), from 0.75 to 1.5.",
    )
    motion = models.CharField(
        max_length=10,
        choices=Motion.choices,
        default=Motion.CALM,
        help_text="How much the page animates (--motion); visitors asking for reduced motion never get more.",
    )
    background_image = models.ImageField(
        upload_to="adaptation/themes/",
        blank=True,
        validators=[FileExtensionValidator(IMAGE_EXTENSIONS)],
        help_text="Optional uploaded background picture (PNG, JPEG, WebP or GIF).",
    )
    background_url = models.CharField(
        max_length=300,
        blank=True,
        validators=[validate_same_site_path],
        help_text="Or a picture already on this site, e.g. /static/adaptation/demo/calm-waves.svg.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.background_image and self.background_url:
            raise ValidationError("Upload a background picture or give its path on this site, not both.")

    @property
    def background_media_url(self) -> str:
        if self.background_image:
            return self.background_image.url
        return self.background_url

    def css_variables(self) -> dict[str, str]:
        """Return the CSS custom properties the page sets on :root."""
        css = {
            "--bg": self.background,
            "--surface": self.surface,
            "--fg": self.text,
            "--muted": self.muted,
            "--accent": self.accent,
            "--accent-fg": self.accent_text,
            "--font-scale": f"{float(self.font_scale):g}",
            "--motion": self.MOTION_SCALE.get(self.motion, "0.5"),
        }
        media = self.background_media_url
        # Paths are validated (no quotes, no spaces), so the url() cannot break out of its value.
        css["--bg-image"] = f'url("{media}")' if media else "none"
        return css

    def snapshot(self) -> engine.ThemeSnapshot:
        return engine.ThemeSnapshot(id=self.pk, name=self.name, css=self.css_variables())


class ContentItem(models.Model):
    class Kind(models.TextChoices):
        AD = "ad", "Ad"
        IMAGE = "image", "Image"
        VIDEO = "video", "Video"
        TEXT = "text", "Text"

    class Slot(models.TextChoices):
        HERO = "hero", "Hero (top of the page)"
        SIDEBAR = "sidebar", "Sidebar"
        FOOTER = "footer", "Footer strip"

    kind = models.CharField(
        max_length=10, choices=Kind.choices, help_text="Ads are kept away from negative moods."
    )
    title = models.CharField(max_length=120, help_text="Headline shown to visitors.")
    body = models.TextField(blank=True, help_text="Text under the headline; plain text.")
    media = models.FileField(
        upload_to="adaptation/items/",
        blank=True,
        validators=[FileExtensionValidator(IMAGE_EXTENSIONS + VIDEO_EXTENSIONS)],
        help_text="Optional uploaded picture (PNG, JPEG, WebP, GIF) or video (MP4, WebM).",
    )
    media_url = models.CharField(
        max_length=300,
        blank=True,
        validators=[validate_same_site_path],
        help_text="Or a picture or video already on this site, e.g. /static/adaptation/demo/sunrise.svg.",
    )
    alt = models.CharField(max_length=200, blank=True, help_text="Describes the picture for screen readers.")
    cta_url = models.CharField(
        max_length=500,
        blank=True,
        validators=[validate_link],
        verbose_name="call-to-action link",
        help_text="Where the button leads: a path on this site or an http(s) address.",
    )
    cta_label = models.CharField(
        max_length=40,
        blank=True,
        verbose_name="call-to-action label",
        help_text="Button text, e.g. 'Read more'.",
    )
    slot = models.CharField(
        max_length=20,
        choices=Slot.choices,
        default=Slot.HERO,
        help_text="Where on the page the item appears.",
    )
    active_from = models.DateTimeField(null=True, blank=True, help_text="Not shown before this moment.")
    active_until = models.DateTimeField(null=True, blank=True, help_text="Not shown from this moment on.")
    tags = models.CharField(max_length=200, blank=True, help_text="Comma-separated words for finding items.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["slot", "title"]

    def __str__(self) -> str:
        return f"{self.title} ({self.get_kind_display().lower()}, {self.slot})"

    def clean(self) -> None:
        if self.media and self.media_url:
            raise ValidationError("Upload a file or give its path on this site, not both.")
        if self.active_from and self.active_until and self.active_until <= self.active_from:
            raise ValidationError({"active_until": "The window must end after it starts."})
        if self.kind in (self.Kind.IMAGE, self.Kind.VIDEO) and not (self.media or self.media_url):
            raise ValidationError(
                f"A {self.get_kind_display().lower()} item needs a file or a path on this site."
            )

    @property
    def resolved_media_url(self) -> str:
        return self.media.url if self.media else self.media_url

    @property
    def is_video(self) -> bool:
        return self.kind == self.Kind.VIDEO or self.resolved_media_url.lower().endswith(
            tuple(VIDEO_EXTENSIONS)
        )

    def tag_list(self) -> list[str]:
        return [t.strip() for t in self.tags.split(",") if t.strip()]

    def snapshot(self) -> engine.ItemSnapshot:
        return engine.ItemSnapshot(
            id=self.pk,
            kind=self.kind,
            title=self.title,
            slot=self.slot,
            body=self.body,
            media_url=self.resolved_media_url,
            cta_url=self.cta_url,
            cta_label=self.cta_label or ("Learn more" if self.cta_url else ""),
            alt=self.alt,
            active_from=self.active_from,
            active_until=self.active_until,
        )


class RuleQuerySet(models.QuerySet):
    def active(self) -> RuleQuerySet:
        return self.filter(is_active=True)


class Rule(models.Model):
    class Tier(models.IntegerChoices):
        SPONSORSHIP = 1, "Sponsorship (evaluated first)"
        STANDARD = 2, "Standard"
        HOUSE = 3, "House (fills in last)"

    class Mode(models.TextChoices):
        FIXED = engine.MODE_FIXED, "Fixed: items in their order"
        WEIGHTED = engine.MODE_WEIGHTED, "Weighted: random by weight"
        OPTIMIZE = engine.MODE_OPTIMIZE, "Optimize: learn from clicks (Thompson sampling)"

    name = models.CharField(max_length=100, unique=True, help_text="Shown in every decision's reason.")
    moods = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_moods],
        help_text="The moods this rule serves: expressions, uncertain, no_face (the camera is on but no face "
        "is in view) or no_camera (no camera reading: off, refused or unavailable). "
        "Leave empty only for a default rule.",
    )
    is_default = models.BooleanField(
        default=False,
        help_text="Serves what no mood rule serves: moods no rule matched, including uncertain, no face and "
        "no camera unless a rule names them; its moods and minimum confidence are ignored.",
    )
    min_confidence = models.DecimalField(
        max_digits=3,
        decimal_places=2,
        default=0,
        validators=[MinValueValidator(0), MaxValueValidator(1)],
        help_text="Fires only when the mood's confidence is at least this (0 to 1); "
        "no camera has no confidence and ignores it.",
    )
    tier = models.PositiveSmallIntegerField(
        choices=Tier.choices, default=Tier.STANDARD, help_text="Rules in a lower tier are evaluated first."
    )
    order = models.IntegerField(default=100, help_text="Within a tier, lower numbers are evaluated first.")
    theme = models.ForeignKey(
        Theme,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="rules",
        help_text="The look while this rule is in force; empty keeps the site's own look.",
    )
    mode = models.CharField(
        max_length=10,
        choices=Mode.choices,
        default=Mode.WEIGHTED,
        help_text="How items are picked in each slot.",
    )
    picks_per_slot = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1), MaxValueValidator(10)], help_text="Items shown per slot."
    )
    starts_at = models.DateTimeField(null=True, blank=True, help_text="Does not fire before this moment.")
    ends_at = models.DateTimeField(null=True, blank=True, help_text="Does not fire from this moment on.")
    weekdays = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_weekdays],
        help_text="Days it may fire; none means every day.",
    )
    daily_start = models.TimeField(null=True, blank=True, help_text="Daily window start (site time zone).")
    daily_end = models.TimeField(
        null=True, blank=True, help_text="Daily window end; earlier than the start runs past midnight."
    )
    frequency_cap = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="The most times one visitor sees each of its items in a session; "
        "when all are capped the next rule fires. Empty: no cap.",
    )
    cooldown_s = models.PositiveIntegerField(
        default=10,
        verbose_name="cool-down (seconds)",
        help_text=(
            "Content this rule chose for an expression stays at least this long before the next switch, "
            "so it does not flicker; content for no camera, no face or an unclear face never holds."
        ),
    )
    is_active = models.BooleanField(default=True, help_text="Inactive rules are never evaluated.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = RuleQuerySet.as_manager()

    class Meta:
        ordering = ["tier", "order", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(min_confidence__gte=0) & Q(min_confidence__lte=1), name="rule_confidence_0_1"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if not self.is_default and not self.moods:
            raise ValidationError({"moods": "Choose at least one mood, or make this a default rule."})
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValidationError({"ends_at": "The schedule must end after it starts."})
        if (self.daily_start is None) != (self.daily_end is None):
            raise ValidationError({"daily_end": "Give both ends of the daily window, or neither."})

    @property
    def negative_moods(self) -> list[str]:
        return sorted(set(self.moods or ()) & engine.NEGATIVE_MOODS)

    def schedule(self) -> engine.Schedule:
        return engine.Schedule(
            starts_at=self.starts_at,
            ends_at=self.ends_at,
            weekdays=frozenset(self.weekdays or ()),
            daily_start=self.daily_start,
            daily_end=self.daily_end,
        )

    def snapshot(self, rule_items: list[RuleItem] | None = None) -> engine.RuleSnapshot:
        """Return the engine's view of this rule (``rule_items`` saves a query when prefetched)."""
        if rule_items is None:
            rule_items = list(self.rule_items.select_related("item"))
        return engine.RuleSnapshot(
            id=self.pk,
            name=self.name,
            moods=frozenset(self.moods or ()),
            min_confidence=float(self.min_confidence),
            tier=self.tier,
            tier_label=TIER_NAMES.get(self.tier, ""),
            order=self.order,
            theme=self.theme.snapshot() if self.theme_id else None,
            items=tuple(
                engine.RuleItemSnapshot(
                    item=ri.item.snapshot(), weight=float(ri.weight), position=ri.position
                )
                for ri in rule_items
            ),
            schedule=self.schedule(),
            frequency_cap=self.frequency_cap,
            cooldown_s=float(self.cooldown_s),
            mode=self.mode,
            picks_per_slot=self.picks_per_slot,
            is_default=self.is_default,
        )


# Short tier names for decision reasons ("Standard", not the admin's longer label).
TIER_NAMES = {Rule.Tier.SPONSORSHIP: "Sponsorship", Rule.Tier.STANDARD: "Standard", Rule.Tier.HOUSE: "House"}


class RuleItem(models.Model):
    rule = models.ForeignKey(Rule, on_delete=models.CASCADE, related_name="rule_items")
    item = models.ForeignKey(
        ContentItem,
        on_delete=models.CASCADE,
        related_name="rule_items",
        help_text="Its slot is the item's slot.",
    )
    weight = models.DecimalField(
        max_digits=6,
        decimal_places=2,
        default=1,
        validators=[MinValueValidator(0.01)],
        help_text="Relative chance in weighted mode; must be above zero.",
    )
    position = models.PositiveSmallIntegerField(default=0, help_text="Order in fixed mode (lowest first).")

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["rule", "item"], name="rule_item_once"),
            models.CheckConstraint(condition=Q(weight__gt=0), name="rule_item_weight_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.item.title} in {self.rule.name} (weight {self.weight:g})"

    def clean(self) -> None:
        if self.weight is not None and self.weight <= 0:
            raise ValidationError({"weight": "The weight must be above zero."})


class ItemDailyStat(models.Model):
    """Impressions and clicks of one item for one mood on one day: aggregate only, no visitor."""

    item = models.ForeignKey(ContentItem, on_delete=models.CASCADE, related_name="daily_stats")
    mood = models.CharField(
        max_length=20,
        choices=[(m, engine.mood_key_label(m)) for m in engine.MOOD_KEYS],
        help_text="The mood the item was shown for; no_camera: no camera reading, no_face: camera on, "
        "no face in view.",
    )
    day = models.DateField()
    impressions = models.PositiveIntegerField(default=0)
    clicks = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-day", "item", "mood"]
        constraints = [models.UniqueConstraint(fields=["item", "mood", "day"], name="item_mood_day_once")]

    def __str__(self) -> str:
        return f"{self.item_id}/{self.mood}/{self.day}: {self.impressions} impressions, {self.clicks} clicks"


class MoodMinuteStat(models.Model):
    """How often each mood was reported in one minute, across all visitors."""

    minute = models.DateTimeField(help_text="Start of the minute (UTC).")
    # The tracker's moods, read from frames: a visitor without a camera sends none, so never no_camera.
    mood = models.CharField(max_length=20, choices=[(m, engine.mood_key_label(m)) for m in MOODS])
    count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-minute", "mood"]
        constraints = [models.UniqueConstraint(fields=["minute", "mood"], name="mood_minute_once")]

    def __str__(self) -> str:
        return f"{self.minute:%Y-%m-%d %H:%M} {self.mood}: {self.count}"
