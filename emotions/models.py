"""The model registry: every Keras model Attune may serve, and which one is live."""

from __future__ import annotations

from django.db import models, transaction
from django.db.models import Q


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
