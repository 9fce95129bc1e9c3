"""The model registry: every Keras model Attune may serve, its compiled LiteRT file, and which one is live."""

from __future__ import annotations

from django.conf import settings
from django.db import models, transaction
from django.db.models import Q

from emotions.classifier import LITERT_INT8_TOLERANCE


class ModelVersionQuerySet(models.QuerySet):
    def active(self) -> ModelVersion | None:
        return self.filter(is_active=True).first()


class ModelVersion(models.Model):
    name = models.CharField(max_length=100, help_text="A short name, e.g. 'mini_xception-2026-11-21'.")
    architecture = models.CharField(max_length=50, help_text="Architecture name used to build it.")
    file_path = models.CharField(
        max_length=500,
        help_text="Path of the .keras file, absolute or relative to the training artifacts folder.",
    )
    sha256 = models.CharField(max_length=64, help_text="SHA-256 of the file; checked before loading.")
    litert_path = models.CharField(
        max_length=500,
        blank=True,
        help_text="Path of the .tflite file compiled from it (LiteRT serves it), like the .keras file's.",
    )
    litert_sha256 = models.CharField(
        max_length=64, blank=True, help_text="SHA-256 of the .tflite file; checked before loading."
    )
    litert_max_abs_diff = models.FloatField(
        null=True,
        blank=True,
        help_text="Largest difference between the LiteRT and Keras probabilities on sample faces.",
    )
    litert_error = models.TextField(blank=True, help_text="Why it could not be compiled to LiteRT, if so.")
    input_spec = models.JSONField(
        default=dict, blank=True, help_text="Input shape, scaling and class order the model expects."
    )
    metrics = models.JSONField(default=dict, blank=True, help_text="Validation metrics at registration.")
    is_active = models.BooleanField(default=False, help_text="The one version the site serves.")
    created_at = models.DateTimeField(auto_now_add=True)
    activated_at = models.DateTimeField(null=True, blank=True)

    objects = ModelVersionQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_active"], condition=Q(is_active=True), name="one_active_model"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.architecture}){' · active' if self.is_active else ''}"

    @property
    def accuracy(self) -> float | None:
        return self.metrics.get("accuracy")

    def litert_problem(self) -> str | None:
        """Return why the registry holds no verified LiteRT file for this version, or None."""
        if not self.litert_path:
            return self.litert_error or "it was never compiled to LiteRT"
        if not self.litert_sha256:
            return "no SHA-256 is recorded for its LiteRT file"
        if self.litert_max_abs_diff is None:
            return "its LiteRT file was never checked against the Keras model"
        if not self.litert_max_abs_diff <= LITERT_INT8_TOLERANCE:
            return (
                f"its LiteRT file differs from the Keras model by {self.litert_max_abs_diff:.2g} "
                f"(more than {LITERT_INT8_TOLERANCE:g})"
            )
        return None

    @transaction.atomic
    def activate(self) -> None:
        """Make this the only active version, atomically (rollback is activating an older one)."""
        from django.utils import timezone

        ModelVersion.objects.select_for_update().filter(is_active=True).exclude(pk=self.pk).update(
            is_active=False
        )
        self.is_active = True
        self.activated_at = timezone.now()
        self.save(update_fields=["is_active", "activated_at"])


class ModelActivation(models.Model):
    """One change of the served model: who made it, when, and from which model to which."""

    from_version = models.ForeignKey(
        ModelVersion,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The version served before; empty for the shipped default model.",
    )
    to_version = models.ForeignKey(
        ModelVersion,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="activations",
        help_text="The version served after; empty for the shipped default model.",
    )
    # Names are kept too, so the history still reads after a version is deleted.
    from_name = models.CharField(max_length=100, help_text="Name of the model served before.")
    to_name = models.CharField(max_length=100, help_text="Name of the model served after.")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Who made the change; empty for the REST API, commands and training runs.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.from_name} → {self.to_name} ({self.created_at:%Y-%m-%d %H:%M})"
