"""Demo content: a theme per expression, calm help for negative moods, and pictures Attune draws itself.

The pictures are SVG written by :func:`demo_svgs` (abstract shapes, no text,
nothing copyrighted) and committed under ``static/adaptation/demo/``; items
point at them by a same-site path so nothing has to be uploaded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import transaction

from adaptation.models import ContentItem, Rule, RuleItem, Theme

DEMO_STATIC_DIR = "adaptation/demo"


# --- Pictures -------------------------------------------------------------------


def _svg(title: str, body: str, top: str, bottom: str) -> str:
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 800 400" width="800" height="400" role="img">'
        f"<title>{title}</title>"
        '<defs><linearGradient id="sky" x1="0" y1="0" x2="0" y2="1">'
        f'<stop offset="0" stop-color="{top}"/><stop offset="1" stop-color="{bottom}"/>'
        "</linearGradient></defs>"
        f'<rect width="800" height="400" fill="url(#sky)"/>{body}</svg>\n'
    )


def _wave(y: float, amplitude: float, length: float, phase: float) -> str:
    points = " ".join(
        f"{x},{y + amplitude * math.sin(2 * math.pi * x / length + phase):.1f}" for x in range(0, 801, 20)
    )
    return f"M0,400 L{points.replace(' ', ' L')} L800,400 Z"


def _waves(colours: tuple[str, ...], base: float, amplitude: float) -> str:
    return "".join(
        f'<path d="{_wave(base + 40 * i, amplitude, 400 + 90 * i, i * 1.3)}" fill="{c}" opacity="0.85"/>'
        for i, c in enumerate(colours)
    )


def _rays(cx: float, cy: float, inner: float, outer: float, count: int, colour: str, width: float) -> str:
    lines = []
    for i in range(count):
        a = 2 * math.pi * i / count
        lines.append(
            f'<line x1="{cx + inner * math.cos(a):.1f}" y1="{cy + inner * math.sin(a):.1f}" '
            f'x2="{cx + outer * math.cos(a):.1f}" y2="{cy + outer * math.sin(a):.1f}" '
            f'stroke="{colour}" stroke-width="{width}" stroke-linecap="round"/>'
        )
    return "".join(lines)


def _petals(cx: float, cy: float, radius: float, count: int, colour: str) -> str:
    return "".join(
        f'<ellipse cx="{cx}" cy="{cy - radius:.1f}" rx="{radius * 0.45:.1f}" ry="{radius:.1f}" '
        f'fill="{colour}" '
        f'opacity="0.8" transform="rotate({360 * i / count:.1f} {cx} {cy})"/>'
        for i in range(count)
    )


def demo_svgs() -> dict[str, str]:
    """Return the demo pictures by file name; deterministic, so the committed files can be checked."""
    return {
        "calm-waves.svg": _svg(
            "Slow waves under a pale sky",
            '<circle cx="620" cy="120" r="50" fill="#ffffff" opacity="0.7"/>'
            + _waves(("#9cc9d9", "#7fb3c8", "#5f9bb3"), 250, 12),
            "#e8f3f7",
            "#cfe6ee",
        ),
        "fresh-leaves.svg": _svg(
            "Green leaves in fresh air",
            "".join(
                f'<ellipse cx="{120 + 140 * i}" cy="{220 + (i % 2) * 50}" rx="70" ry="28" fill="{c}" '
                f'transform="rotate({-30 + 20 * i} {120 + 140 * i} {220 + (i % 2) * 50})"/>'
                for i, c in enumerate(("#8fc79a", "#6fb58a", "#a9d6a0", "#5ea57c", "#9fcf9b"))
            ),
            "#f1f8f1",
            "#dcefdc",
        ),
        "harbour.svg": _svg(
            "A small boat resting in a quiet harbour",
            _waves(("#b9c9d6", "#a3b7c8"), 280, 6)
            + '<path d="M330,270 L470,270 L445,300 L355,300 Z" fill="#8a6f5a"/>'
            + '<line x1="400" y1="270" x2="400" y2="170" stroke="#6d5646" stroke-width="5"/>'
            + '<path d="M405,178 L405,262 L460,262 Z" fill="#f4efe6"/>'
            + '<circle cx="160" cy="110" r="36" fill="#f6e7c8"/>',
            "#f6efe4",
            "#e7dccb",
        ),
        "gentle-light.svg": _svg(
            "Soft light through evening clouds",
            '<circle cx="400" cy="300" r="120" fill="#f3e3f0" opacity="0.9"/>'
            + "".join(
                f'<ellipse cx="{x}" cy="{y}" rx="{rx}" ry="26" fill="#ffffff" opacity="0.55"/>'
                for x, y, rx in ((180, 120, 110), (560, 90, 140), (420, 170, 90), (680, 200, 80))
            ),
            "#ddd6ef",
            "#c9c0e3",
        ),
        "sunrise.svg": _svg(
            "A bright sun rising over hills",
            _rays(400, 300, 110, 190, 18, "#ffcc33", 10)
            + '<circle cx="400" cy="300" r="95" fill="#ffb703"/>'
            + '<path d="M0,330 Q200,260 400,330 T800,320 L800,400 L0,400 Z" fill="#8ac926"/>',
            "#fff3c4",
            "#ffd6a5",
        ),
        "spark.svg": _svg(
            "Bursts of colour like fireworks",
            _rays(250, 170, 20, 110, 16, "#ff7b00", 6)
            + _rays(560, 220, 15, 90, 12, "#c77dff", 5)
            + '<circle cx="250" cy="170" r="14" fill="#ffd000"/>'
            + '<circle cx="560" cy="220" r="11" fill="#ffd000"/>',
            "#2b2d42",
            "#3d3b6e",
        ),
        "bloom.svg": _svg(
            "Three flowers in bloom",
            _petals(220, 230, 60, 8, "#ff8fab")
            + _petals(420, 190, 75, 10, "#ffb3c6")
            + _petals(610, 240, 55, 7, "#fb6f92")
            + '<circle cx="220" cy="230" r="18" fill="#ffd166"/>'
            + '<circle cx="420" cy="190" r="22" fill="#ffd166"/>'
            + '<circle cx="610" cy="240" r="16" fill="#ffd166"/>',
            "#fff0f3",
            "#ffe5ec",
        ),
        "ticket.svg": _svg(
            "A ticket with a star",
            '<rect x="200" y="110" width="400" height="180" rx="22" fill="#ffffff" stroke="#3a6ea5" '
            'stroke-width="6"/>'
            + '<line x1="470" y1="120" x2="470" y2="280" stroke="#3a6ea5" stroke-width="4" '
            'stroke-dasharray="10 10"/>'
            + '<path d="M335,150 L352,190 L395,192 L361,218 L373,260 L335,236 L297,260 L309,218 L275,192 '
            'L318,190 Z" fill="#ffb703"/>',
            "#e3edf7",
            "#c8daee",
        ),
        "welcome.svg": _svg(
            "Overlapping circles in quiet colours",
            "".join(
                f'<circle cx="{cx}" cy="{cy}" r="{r}" fill="{c}" opacity="0.6"/>'
                for cx, cy, r, c in (
                    (300, 200, 120, "#3a6ea5"),
                    (420, 200, 120, "#7fb3c8"),
                    (540, 200, 120, "#b9c9d6"),
                )
            ),
            "#f7f7f5",
            "#ecece8",
        ),
    }


def demo_svgs_write(folder: Path) -> list[Path]:
    """Write the demo pictures into ``folder``; return the paths written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in demo_svgs().items():
        path = folder / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def demo_static_url(name: str) -> str:
    """Return the same-site path of a demo picture (``/static/adaptation/demo/<name>``)."""
    prefix = settings.STATIC_URL or "/static/"
    # A CDN or absolute STATIC_URL would not be a same-site path; the files are also served under /static/.
    if "://" in prefix or prefix.startswith("//"):
        prefix = "/static/"
    return "/" + prefix.strip("/") + f"/{DEMO_STATIC_DIR}/{name}"


# --- Rows -----------------------------------------------------------------------


THEMES: dict[str, dict[str, object]] = {
    "Cool down": dict(
        background="#eef5f7",
        surface="#ffffff",
        text="#21343d",
        muted="#5d7480",
        accent="#3f7f94",
        accent_text="#ffffff",
        font_scale=1.05,
        motion=Theme.Motion.NONE,
        background_url="calm-waves.svg",
    ),
    "Fresh air": dict(
        background="#f1f8f1",
        surface="#ffffff",
        text="#1f3323",
        muted="#5b735f",
        accent="#3f8a5a",
        accent_text="#ffffff",
        font_scale=1.0,
        motion=Theme.Motion.CALM,
        background_url="",
    ),
    "Safe harbour": dict(
        background="#f6efe4",
        surface="#fffdf8",
        text="#3b2f25",
        muted="#7a6a5c",
        accent="#8a6f5a",
        accent_text="#ffffff",
        font_scale=1.1,
        motion=Theme.Motion.NONE,
        background_url="",
    ),
    "Gentle light": dict(
        background="#f1eef8",
        surface="#ffffff",
        text="#2e2a3d",
        muted="#6c6680",
        accent="#6a5acd",
        accent_text="#ffffff",
        font_scale=1.05,
        motion=Theme.Motion.CALM,
        background_url="",
    ),
    "Sunny": dict(
        background="#fffaf0",
        surface="#ffffff",
        text="#2b2100",
        muted="#7a6a40",
        accent="#d98e04",
        accent_text="#1d1400",
        font_scale=1.0,
        motion=Theme.Motion.LIVELY,
        background_url="",
    ),
    "Spark": dict(
        background="#f7f4ff",
        surface="#ffffff",
        text="#1f1b33",
        muted="#625c80",
        accent="#d45500",
        accent_text="#ffffff",
        font_scale=1.0,
        motion=Theme.Motion.LIVELY,
        background_url="",
    ),
    "Clean": dict(
        background="#f7f7f5",
        surface="#ffffff",
        text="#1d1d1f",
        muted="#6b6b70",
        accent="#3a6ea5",
        accent_text="#ffffff",
        font_scale=1.0,
        motion=Theme.Motion.CALM,
        background_url="",
    ),
    "Attune default": dict(
        background="#f7f7f5",
        surface="#ffffff",
        text="#1d1d1f",
        muted="#6b6b70",
        accent="#3a6ea5",
        accent_text="#ffffff",
        font_scale=1.0,
        motion=Theme.Motion.CALM,
        background_url="",
    ),
}


@dataclass(frozen=True)
class DemoItem:
    key: str
    kind: str
    slot: str
    title: str
    body: str
    picture: str = ""
    alt: str = ""
    cta_url: str = ""
    cta_label: str = ""
    tags: str = ""


K, S = ContentItem.Kind, ContentItem.Slot
ITEMS = [
    # Calm, helpful content for negative moods.
    DemoItem(
        "breathe",
        K.IMAGE,
        S.HERO,
        "Take a slow breath",
        "In for four, hold for four, out for six. There is no hurry here.",
        "calm-waves.svg",
        "Slow waves under a pale sky",
        tags="calm, help",
    ),
    DemoItem(
        "harbour",
        K.IMAGE,
        S.HERO,
        "You are in a safe place",
        "Take your time. Everything on this page will wait for you.",
        "harbour.svg",
        "A small boat in a quiet harbour",
        tags="calm, reassurance",
    ),
    DemoItem(
        "gentle",
        K.IMAGE,
        S.HERO,
        "Be gentle with yourself today",
        "A short pause can make the rest of the day lighter.",
        "gentle-light.svg",
        "Soft light through evening clouds",
        tags="calm, comfort",
    ),
    DemoItem(
        "fresh",
        K.IMAGE,
        S.HERO,
        "A breath of fresh air",
        "Step away for a moment; a change of scene helps.",
        "fresh-leaves.svg",
        "Green leaves",
        tags="calm",
    ),
    DemoItem(
        "help",
        K.TEXT,
        S.SIDEBAR,
        "Need a hand?",
        "If something here is not working for you, tell us and a person will answer.",
        cta_url="/#help",
        cta_label="Get help",
        tags="help, support",
    ),
    DemoItem(
        "exercise",
        K.TEXT,
        S.SIDEBAR,
        "A one-minute breathing exercise",
        "Close your eyes, breathe slowly and count ten breaths.",
        tags="calm, wellbeing",
    ),
    DemoItem(
        "quiet",
        K.TEXT,
        S.SIDEBAR,
        "Quiet mode",
        "Animations are switched off while you browse. You can stop the camera at any time.",
        tags="calm, accessibility",
    ),
    DemoItem(
        "playlist",
        K.TEXT,
        S.FOOTER,
        "Something calm to listen to",
        "Soft piano, rain and birdsong: ten minutes of quiet.",
        tags="calm",
    ),
    # Lighter content for happy, surprised and neutral visitors.
    DemoItem(
        "sunny",
        K.IMAGE,
        S.HERO,
        "Good to see you smiling",
        "Here is something bright to match the mood.",
        "sunrise.svg",
        "A bright sun rising over hills",
        tags="happy",
    ),
    DemoItem(
        "spark",
        K.IMAGE,
        S.HERO,
        "Something new today",
        "Curious? Have a look at what changed this week.",
        "spark.svg",
        "Bursts of colour like fireworks",
        cta_url="/#new",
        cta_label="See what's new",
        tags="surprise, news",
    ),
    DemoItem(
        "welcome",
        K.IMAGE,
        S.HERO,
        "Welcome to Attune",
        "A site that can adapt to you, only if you ask it to.",
        "welcome.svg",
        "Overlapping circles in quiet colours",
        tags="welcome",
    ),
    DemoItem(
        "spring",
        K.AD,
        S.HERO,
        "The spring collection is here",
        "Fresh colours for brighter days. (A demo ad.)",
        "bloom.svg",
        "Three flowers in bloom",
        cta_url="/#spring",
        cta_label="Browse",
        tags="ad, seasonal",
    ),
    DemoItem(
        "members",
        K.AD,
        S.HERO,
        "Members save 10 %",
        "Join for free and save on every order. (A demo ad.)",
        "ticket.svg",
        "A ticket with a star",
        cta_url="/#members",
        cta_label="Join",
        tags="ad",
    ),
    DemoItem(
        "share",
        K.TEXT,
        S.SIDEBAR,
        "Share the good mood",
        "Send a friend something that made you smile today.",
        tags="happy",
    ),
    DemoItem(
        "fact",
        K.TEXT,
        S.SIDEBAR,
        "Did you know?",
        "People recognise the six basic expressions across cultures, but reading them from a photo is "
        "much harder than it looks.",
        tags="surprise, neutral",
    ),
    DemoItem(
        "weekend",
        K.AD,
        S.SIDEBAR,
        "Weekend offer",
        "Free delivery on Saturdays and Sundays. (A demo ad.)",
        cta_url="/#weekend",
        cta_label="Shop now",
        tags="ad, weekend",
    ),
    DemoItem(
        "newsletter",
        K.AD,
        S.FOOTER,
        "Our newsletter",
        "One short email a month, no tracking. (A demo ad.)",
        cta_url="/#newsletter",
        cta_label="Subscribe",
        tags="ad",
    ),
    DemoItem(
        "privacy",
        K.TEXT,
        S.FOOTER,
        "Your privacy",
        "Frames from your camera are analysed in memory and discarded; nothing about your face is stored.",
        cta_url="/#privacy",
        cta_label="How it works",
        tags="privacy",
    ),
    DemoItem(
        "feedback",
        K.TEXT,
        S.FOOTER,
        "Tell us what you think",
        "Attune is an experiment; your feedback shapes it.",
        cta_url="/#feedback",
        cta_label="Give feedback",
        tags="feedback",
    ),
]


@dataclass(frozen=True)
class DemoRule:
    name: str
    moods: tuple[str, ...]
    theme: str
    items: tuple[tuple[str, float], ...]
    min_confidence: float = 0.45
    tier: int = Rule.Tier.STANDARD
    order: int = 100
    mode: str = Rule.Mode.WEIGHTED
    cooldown_s: int = 15
    frequency_cap: int | None = None
    weekdays: tuple[int, ...] = ()
    is_default: bool = False


RULES = [
    DemoRule(
        "Calm for angry",
        ("angry",),
        "Cool down",
        (("breathe", 2), ("fresh", 1), ("help", 2), ("exercise", 1), ("playlist", 1)),
        cooldown_s=30,
    ),
    DemoRule(
        "Fresh air for disgust",
        ("disgust",),
        "Fresh air",
        (("fresh", 2), ("breathe", 1), ("help", 1), ("quiet", 1), ("playlist", 1)),
        cooldown_s=30,
    ),
    DemoRule(
        "Reassure when afraid",
        ("fear",),
        "Safe harbour",
        (("harbour", 3), ("breathe", 1), ("quiet", 2), ("help", 1), ("privacy", 1)),
        cooldown_s=30,
    ),
    DemoRule(
        "Gentle for sad",
        ("sad",),
        "Gentle light",
        (("gentle", 2), ("harbour", 1), ("exercise", 1), ("help", 1), ("playlist", 1)),
        cooldown_s=30,
    ),
    # Learns which hero and sidebar items happy visitors click.
    DemoRule(
        "Celebrate happy",
        ("happy",),
        "Sunny",
        (("sunny", 1), ("spring", 1), ("members", 1), ("share", 1), ("weekend", 1), ("newsletter", 1)),
        mode=Rule.Mode.OPTIMIZE,
        frequency_cap=20,
    ),
    DemoRule(
        "Spark for surprise",
        ("surprise",),
        "Spark",
        (("spark", 3), ("spring", 1), ("fact", 2), ("share", 1), ("feedback", 1)),
    ),
    DemoRule(
        "Neutral browsing",
        ("neutral",),
        "Clean",
        (
            ("welcome", 2),
            ("spring", 1),
            ("members", 1),
            ("fact", 2),
            ("weekend", 1),
            ("newsletter", 1),
            ("feedback", 1),
        ),
    ),
    # A sponsorship at weekends shows how tiers, schedules and caps work together.
    DemoRule(
        "Weekend sponsorship",
        ("happy", "neutral"),
        "Sunny",
        (("members", 1), ("weekend", 1)),
        tier=Rule.Tier.SPONSORSHIP,
        order=10,
        min_confidence=0.6,
        frequency_cap=3,
        weekdays=(5, 6),
    ),
    DemoRule(
        "Attune default",
        (),
        "Attune default",
        (("welcome", 1), ("privacy", 1), ("feedback", 1), ("fact", 1)),
        min_confidence=0,
        tier=Rule.Tier.HOUSE,
        cooldown_s=10,
        is_default=True,
    ),
]


@transaction.atomic
def demo_content_load(*, force: bool = False) -> bool:
    """Create the demo themes, items and rules; return False when content already exists and not ``force``.

    Without ``force`` it runs only on a first start (no theme, item or rule),
    so operators' deletions stay deleted. With ``force`` it adds whatever demo
    row is missing and leaves existing ones as they are. Either way a second
    run creates nothing.
    """
    if not force and (Theme.objects.exists() or ContentItem.objects.exists() or Rule.objects.exists()):
        return False
    themes = {}
    for name, fields in THEMES.items():
        values = dict(fields)
        picture = values.pop("background_url")
        values["background_url"] = demo_static_url(picture) if picture else ""
        themes[name], _ = Theme.objects.get_or_create(name=name, defaults=values)
    items = {}
    for spec in ITEMS:
        items[spec.key], _ = ContentItem.objects.get_or_create(
            title=spec.title,
            slot=spec.slot,
            defaults={
                "kind": spec.kind,
                "body": spec.body,
                "media_url": demo_static_url(spec.picture) if spec.picture else "",
                "alt": spec.alt,
                "cta_url": spec.cta_url,
                "cta_label": spec.cta_label,
                "tags": spec.tags,
            },
        )
    for spec in RULES:
        rule, created = Rule.objects.get_or_create(
            name=spec.name,
            defaults={
                "moods": list(spec.moods),
                "theme": themes[spec.theme],
                "min_confidence": spec.min_confidence,
                "tier": spec.tier,
                "order": spec.order,
                "mode": spec.mode,
                "cooldown_s": spec.cooldown_s,
                "frequency_cap": spec.frequency_cap,
                "weekdays": list(spec.weekdays),
                "is_default": spec.is_default,
            },
        )
        if created:
            for position, (key, weight) in enumerate(spec.items):
                RuleItem.objects.get_or_create(
                    rule=rule, item=items[key], defaults={"weight": weight, "position": position}
                )
    return True
