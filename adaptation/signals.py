"""Loose reaction: any edit of rules, themes or items reaches connected pages."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_delete, post_save

from adaptation.models import ContentItem, Rule, RuleItem, Theme
from adaptation.services import content_changed_schedule

CONTENT_MODELS = (Theme, ContentItem, Rule, RuleItem)


def content_changed(sender: type, **kwargs: Any) -> None:
    # Fixture loading (raw saves) is not an operator's edit.
    if not kwargs.get("raw", False):
        content_changed_schedule()


for _model in CONTENT_MODELS:
    post_save.connect(content_changed, sender=_model, dispatch_uid=f"adaptation.save.{_model.__name__}")
    post_delete.connect(content_changed, sender=_model, dispatch_uid=f"adaptation.delete.{_model.__name__}")
