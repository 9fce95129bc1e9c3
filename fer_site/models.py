"""API keys: hashed secrets with scopes and a throttle rate, for the REST API under /api/v1/."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models
from rest_framework_api_key.models import AbstractAPIKey

from fer_site.api.rates import RATE_HELP, parse_rate


class Scope(models.TextChoices):
    ANALYZE = "analyze", "analyze: read expressions from images"
    CONTENT = "content", "content: decide content, report impressions and clicks"
    MODELS = "models", "models: list expression models and activate one"
    TRAINING = "training", "training: start, watch and cancel training runs"


def validate_scopes(value: object) -> None:
    if not isinstance(value, list) or not all(isinstance(scope, str) for scope in value):
        raise ValidationError("Scopes must be a list of names.")
    unknown = sorted(set(value) - set(Scope.values))
    if unknown:
        raise ValidationError(
            f"Unknown scope(s) {', '.join(unknown)}; choose from {', '.join(Scope.values)}."
        )


def validate_rate(value: str) -> None:
    try:
        parse_rate(value)
    except ValueError as exc:
        raise ValidationError(str(exc)) from None


class ApiKey(AbstractAPIKey):
    """A key a third-party app sends as ``Authorization: Api-Key <prefix>.<secret>``.

    Only the prefix and a SHA-512 hash of the whole key are stored; the key is
    shown once, when it is created.
    """

    scopes = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_scopes],
        help_text=f"What the key may do: any of {', '.join(Scope.values)}.",
    )
    throttle_rate = models.CharField(
        max_length=20,
        blank=True,
        validators=[validate_rate],
        help_text=f"Requests allowed, {RATE_HELP}. Empty: the API_THROTTLE_RATE setting.",
    )

    class Meta(AbstractAPIKey.Meta):
        verbose_name = "API key"
        verbose_name_plural = "API keys"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_usable(self) -> bool:
        return not self.revoked and not self.has_expired

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes
