"""Training runs: the database row is the source of truth, not the Celery result."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import models
from django.utils import timezone

from emotions.models import ModelVersion

LOG_TAIL_CHARS = 8000


class TrainingRunQuerySet(models.QuerySet):
    def unfinished(self) -> TrainingRunQuerySet:
        return self.filter(status__in=[TrainingRun.Status.QUEUED, TrainingRun.Status.RUNNING])

    def stale(self, *, older_than: timedelta) -> TrainingRunQuerySet:
        """Running runs whose worker has not reported for ``older_than``."""
        return self.filter(status=TrainingRun.Status.RUNNING, heartbeat_at__lt=timezone.now() - older_than)


class TrainingRun(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELLED = "cancelled"

    FINISHED = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)

    name = models.CharField(max_length=100, blank=True, help_text="Optional label for comparing runs.")
    architecture = models.CharField(
        max_length=50, help_text="custom_cnn, mini_xception, vgg16, resnet50v2 or efficientnetb2."
    )
    dataset_path = models.CharField(
        max_length=500, help_text="Folder in the Kaggle layout (train/, val/ or test/) or a fer2013.csv file."
    )
    config = models.JSONField(
        default=dict, blank=True, help_text="Training options (epochs, batch size, ...)."
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED, db_index=True)
    epoch = models.PositiveIntegerField(default=0, help_text="Epochs completed.")
    total_epochs = models.PositiveIntegerField(default=0)
    progress = models.FloatField(default=0.0, help_text="Fraction of the run done, 0 to 1.")
    history = models.JSONField(default=dict, blank=True, help_text="Metrics per epoch.")
    metrics = models.JSONField(default=dict, blank=True, help_text="Final validation metrics.")
    artifacts = models.JSONField(default=dict, blank=True, help_text="Files the run wrote, by kind.")
    log_tail = models.TextField(blank=True)
    error = models.TextField(blank=True)
    run_dir = models.CharField(max_length=500, blank=True, help_text="Folder with checkpoints and artifacts.")
    cancel_requested = models.BooleanField(default=False)
    attempts = models.PositiveIntegerField(default=0, help_text="How many times a worker claimed it.")
    worker = models.CharField(max_length=200, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    model_version = models.OneToOneField(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="training_run"
    )

    objects = TrainingRunQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Run {self.pk} · {self.name or self.architecture} · {self.status}"

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED

    @property
    def folder(self) -> Path:
        return (
            Path(self.run_dir) if self.run_dir else Path(settings.TRAINING_ARTIFACTS_DIR) / f"run-{self.pk}"
        )

    @property
    def best_val_accuracy(self) -> float | None:
        values = self.history.get("val_accuracy") or []
        return max(values) if values else None

    def append_log(self, message: str) -> None:
        stamp = timezone.now().strftime("%H:%M:%S")
        self.log_tail = (self.log_tail + f"{stamp} {message}\n")[-LOG_TAIL_CHARS:]
