"""Demo content: a theme per expression, calm help for negative moods, and pictures committed as SVG.

The rows are data, in ``content.json`` beside this file: themes, items (named by a ``key`` that rules use)
and rules (their items as ``[key, weight]`` pairs in order). Rules for angry, disgust, fear and sad show
calm help and no ads; "Celebrate happy" learns from clicks; "Weekend sponsorship" shows tiers, schedules
and caps together. Pictures are named by file in ``static/adaptation/demo/`` (abstract shapes, no text,
nothing copyrighted) and served from this site, so nothing has to be uploaded.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction

from adaptation.models import ContentItem, Rule, RuleItem, Theme

DEMO_CONTENT = Path(__file__).with_name("content.json")
DEMO_STATIC_DIR = "adaptation/demo"


def demo_content_read() -> dict[str, list[dict[str, Any]]]:
    """Return the demo data: ``{"themes": [...], "items": [...], "rules": [...]}``, decimals as Decimal."""
    return json.loads(DEMO_CONTENT.read_text(encoding="utf-8"), parse_float=Decimal)


def demo_static_url(name: str) -> str:
    """Return the same-site path of a demo picture (``/static/adaptation/demo/<name>``), "" for none."""
    if not name:
        return ""
    prefix = settings.STATIC_URL or "/static/"
    # A CDN or absolute STATIC_URL would not be a same-site path; the files are also served under /static/.
    if "://" in prefix or prefix.startswith("//"):
        prefix = "/static/"
    return "/" + prefix.strip("/") + f"/{DEMO_STATIC_DIR}/{name}"


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
    data = demo_content_read()
    themes = {}
    for fields in data["themes"]:
        name, picture = fields.pop("name"), fields.pop("picture", "")
        themes[name], _ = Theme.objects.get_or_create(
            name=name, defaults={**fields, "background_url": demo_static_url(picture)}
        )
    items = {}
    for fields in data["items"]:
        key, picture = fields.pop("key"), fields.pop("picture", "")
        items[key], _ = ContentItem.objects.get_or_create(
            title=fields.pop("title"),
            slot=fields.pop("slot"),
            defaults={**fields, "media_url": demo_static_url(picture)},
        )
    for fields in data["rules"]:
        name, pairs = fields.pop("name"), fields.pop("items")
        fields["theme"] = themes[fields["theme"]]
        fields["tier"] = Rule.Tier[fields["tier"].upper()]
        rule, created = Rule.objects.get_or_create(name=name, defaults=fields)
        if created:
            for position, (key, weight) in enumerate(pairs):
                RuleItem.objects.create(rule=rule, item=items[key], weight=weight, position=position)
    return True
