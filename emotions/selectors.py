"""Reads of the model registry for operators: each model's figures, and two models side by side."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.conf import settings

from emotions.labels import EMOTIONS
from emotions.models import ModelActivation, ModelVersion

DEFAULT_NAME = "default"


@dataclass(frozen=True)
class ModelFigures:
    """What an operator compares between two models; ``version`` is None for the shipped default."""

    name: str
    architecture: str
    created: datetime | None
    accuracy: float | None
    macro_f1: float | None
    per_class_f1: dict[str, float] = field(default_factory=dict)
    n: int | None = None
    version: ModelVersion | None = None
    # Expected calibration error on val after calibration (None: not calibrated, or not recorded).
    calibration_error: float | None = None

    @property
    def is_default(self) -> bool:
        return self.version is None


@dataclass(frozen=True)
class FigureRow:
    label: str
    current: float | None
    new: float | None
    percent: bool = False
    lower_is_better: bool = False
    warns: bool = True  # whether being worse here makes the activation page warn

    def _format(self, value: float | None, *, sign: bool = False) -> str:
        if value is None:
            return "—"
        if self.percent:
            return f"{value * 100:+.1f} pt" if sign else f"{value:.1%}"
        return f"{value:+.3f}" if sign else f"{value:.3f}"

    @property
    def current_display(self) -> str:
        return self._format(self.current)

    @property
    def new_display(self) -> str:
        return self._format(self.new)

    @property
    def delta_display(self) -> str:
        return self._format(self.delta, sign=True)

    @property
    def delta(self) -> float | None:
        if self.current is None or self.new is None:
            return None
        return self.new - self.current

    @property
    def worse(self) -> bool:
        delta = self.delta
        return delta is not None and (delta > 0 if self.lower_is_better else delta < 0)


@dataclass(frozen=True)
class ModelComparison:
    current: ModelFigures
    new: ModelFigures
    headline: list[FigureRow]
    per_class: list[FigureRow]

    @property
    def worse(self) -> list[str]:
        """Return the headline figures on which the new model scores lower, e.g. ``["val accuracy"]``."""
        return [row.label for row in self.headline if row.worse and row.warns]


def model_figures(*, version: ModelVersion | None) -> ModelFigures:
    """Return the figures of ``version``, or of the shipped default model when it is None."""
    if version is None:
        return model_default_figures()
    metrics = version.metrics or {}
    return ModelFigures(
        name=version.name,
        architecture=version.architecture,
        created=version.created_at,
        accuracy=_number(metrics.get("accuracy")),
        macro_f1=_number(metrics.get("macro_f1")),
        per_class_f1=_per_class_f1(metrics.get("per_class")),
        n=metrics.get("n"),
        version=version,
        calibration_error=_calibration_error(metrics),
    )


def model_default_figures() -> ModelFigures:
    """Return the figures of the default model shipped beside ``settings.EMOTIONS_DEFAULT_MODEL``."""
    path = Path(settings.EMOTIONS_DEFAULT_MODEL)
    evaluation = path.parent / "evaluation.json"
    try:
        metrics: dict[str, Any] = json.loads(evaluation.read_text())
    except (OSError, ValueError):
        metrics = {}
    return ModelFigures(
        name=DEFAULT_NAME,
        architecture=_card_architecture(path.parent / "MODEL_CARD.md"),
        created=datetime.fromtimestamp(path.stat().st_mtime, tz=UTC) if path.is_file() else None,
        accuracy=_number(metrics.get("accuracy")),
        macro_f1=_number(metrics.get("macro_f1")),
        per_class_f1=_per_class_f1(metrics.get("per_class")),
        n=metrics.get("n"),
        calibration_error=_calibration_error(metrics),
    )


def model_served_figures() -> ModelFigures:
    """Return the figures of the model the registry serves now (the default while none is active)."""
    return model_figures(version=ModelVersion.objects.active())


def model_comparison(*, current: ModelFigures, new: ModelFigures) -> ModelComparison:
    """Return ``current`` and ``new`` side by side: headline figures, then F1 per class."""
    headline = [
        FigureRow("val accuracy", current.accuracy, new.accuracy, percent=True),
        FigureRow("macro F1", current.macro_f1, new.macro_f1),
        FigureRow(
            "calibration error (ECE)",
            current.calibration_error,
            new.calibration_error,
            lower_is_better=True,
            warns=False,
        ),
    ]
    classes = [c for c in EMOTIONS if c in current.per_class_f1 or c in new.per_class_f1]
    per_class = [FigureRow(f"F1 {c}", current.per_class_f1.get(c), new.per_class_f1.get(c)) for c in classes]
    return ModelComparison(current=current, new=new, headline=headline, per_class=per_class)


def model_activations_recent(*, limit: int = 10) -> list[ModelActivation]:
    """Return the latest changes of the served model, newest first."""
    return list(ModelActivation.objects.select_related("user")[:limit])


def model_served_since() -> datetime | None:
    """Return when the model served now started being served, None if never recorded."""
    active = ModelVersion.objects.active()
    if active is not None:
        return active.activated_at
    last = ModelActivation.objects.filter(to_version__isnull=True, to_name=DEFAULT_NAME).first()
    return last.created_at if last else None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def _calibration_error(metrics: dict[str, Any]) -> float | None:
    calibration = metrics.get("calibration")
    return _number(calibration.get("ece_after")) if isinstance(calibration, dict) else None


def _per_class_f1(per_class: Any) -> dict[str, float]:
    if not isinstance(per_class, dict):
        return {}
    return {
        label: float(scores["f1"])
        for label, scores in per_class.items()
        if isinstance(scores, dict) and isinstance(scores.get("f1"), int | float)
    }


def _card_architecture(card: Path) -> str:
    try:
        match = re.search(r"\*\*Architecture\*\*:\s*([\w-]+)", card.read_text())
    except OSError:
        return "—"
    return match.group(1) if match else "—"
