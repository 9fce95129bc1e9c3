"""Factories for adaptation tests: themes, items and rules as operators would make them."""

from __future__ import annotations

from typing import Any

import pytest

from adaptation.models import ContentItem, Rule, RuleItem, Theme


@pytest.fixture
def make_theme():
    def make(name: str = "Calm", **fields: Any) -> Theme:
        return Theme.objects.create(name=name, **fields)

    return make


@pytest.fixture
def make_item():
    counter = iter(range(1, 10_000))

    def make(
        title: str | None = None, *, kind: str = "text", slot: str = "hero", **fields: Any
    ) -> ContentItem:
        return ContentItem.objects.create(
            title=title or f"Item {next(counter)}", kind=kind, slot=slot, body="Body", **fields
        )

    return make


@pytest.fixture
def make_rule():
    def make(
        name: str = "Rule",
        *,
        moods: list[str] | None = None,
        items: list[ContentItem | tuple[ContentItem, float]] = (),
        **fields: Any,
    ) -> Rule:
        fields.setdefault("cooldown_s", 0)
        rule = Rule.objects.create(name=name, moods=moods if moods is not None else ["happy"], **fields)
        for position, entry in enumerate(items):
            item, weight = entry if isinstance(entry, tuple) else (entry, 1)
            RuleItem.objects.create(rule=rule, item=item, weight=weight, position=position)
        return rule

    return make
