"""Serializer fields stricter than DRF's defaults, for input the schema promises to refuse."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers


class StrictCharField(serializers.CharField):
    """A CharField that takes text exactly as sent.

    Numbers and booleans are refused rather than turned into text, and surrounding whitespace is kept
    rather than trimmed, so that the schema's lengths hold for what a client sends.
    """

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictFloatField(serializers.FloatField):
    """A FloatField for JSON bodies: only JSON numbers, not ``false`` (which DRF reads as 0) or ``"0.5"``."""

    def to_internal_value(self, data: Any) -> float:
        if isinstance(data, bool) or not isinstance(data, int | float):
            self.fail("invalid")
        return super().to_internal_value(data)


class QuerySerializer(serializers.Serializer):
    """A serializer of query parameters: each given at most once and never empty.

    DRF reads ``?status=`` as leaving ``status`` out and ``?x=1&x=2`` as ``x=2``; the schema allows
    neither, so both are refused with the field named.
    """

    def to_internal_value(self, data: Any) -> Any:
        errors = {}
        for name in self.fields:
            values = (
                data.getlist(name) if hasattr(data, "getlist") else ([data[name]] if name in data else [])
            )
            if len(values) > 1:
                errors[name] = ["Give this parameter once."]
            elif values and values[0] == "":
                errors[name] = ["This parameter may not be empty."]
        if errors:
            raise serializers.ValidationError(errors)
        return super().to_internal_value(data)
