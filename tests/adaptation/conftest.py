"""Factories for adaptation tests: themes, items and rules as operators would make them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.core.cache import cache

from adaptation.models import ContentItem, Rule, RuleItem, Theme


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    # Decisions and duplicate markers live in the cache; each test starts without them.
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _fast_passwords(settings) -> None:
    # The admin tests log in a superuser per test; PBKDF2 on two busy cores costs seconds each.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


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
