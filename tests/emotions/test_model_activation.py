from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from emotions.models import ModelActivation, ModelVersion
from emotions.selectors import (
    model_comparison,
    model_default_figures,
    model_figures,
    model_served_figures,
    model_served_since,
)
from emotions.services import (
    model_version_activate,
    model_version_restore_default,
    model_version_serve_problem,
)
from tests.emotions.test_admin import version


@pytest.fixture(autouse=True)
def artifacts(settings, tmp_path):
    settings.TRAINING_ARTIFACTS_DIR = tmp_path
    return tmp_path


@pytest.mark.django_db
def test_it_records_each_activation_with_its_user_and_the_model_it_replaced(admin_user):
    first, second = version("first"), version("second")

    model_version_activate(version=first)
    model_version_activate(version=second, user=admin_user)

    older, newer = ModelActivation.objects.order_by("pk")
    assert (older.from_version, older.from_name, older.to_version, older.user) == (
        None,
        "default",
        first,
        None,
    )
    assert (newer.from_version, newer.to_version, newer.user) == (first, second, admin_user)
    assert str(newer).startswith("first → second")


@pytest.mark.django_db
def test_it_records_nothing_when_activation_is_refused():
    lost = version("lost", with_file=False)

    with pytest.raises(ValidationError):
        model_version_activate(version=lost)

    assert "missing" in model_version_serve_problem(version=lost)
    assert not ModelActivation.objects.exists()


@pytest.mark.django_db
def test_it_restores_the_default_model_by_deactivating_every_version(admin_user):
    served = version("served")
    model_version_activate(version=served)

    model_version_restore_default(user=admin_user)

    assert not ModelVersion.objects.filter(is_active=True).exists()
    assert model_served_figures().is_default
    last = ModelActivation.objects.first()
    assert (last.from_version, last.to_version, last.to_name, last.user) == (
        served,
        None,
        "default",
        admin_user,
    )
    assert model_served_since() == last.created_at


@pytest.mark.django_db
def test_restoring_the_default_while_it_is_served_records_nothing():
    model_version_restore_default()

    assert not ModelActivation.objects.exists()


def test_it_reads_the_shipped_default_models_figures():
    figures = model_default_figures()

    assert figures.is_default
    assert figures.architecture == "custom_cnn"
    assert 0.5 < figures.accuracy < 1
    assert set(figures.per_class_f1) == {"angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"}


@pytest.mark.django_db
def test_its_comparison_flags_the_figures_on_which_the_new_model_is_worse():
    current = model_figures(
        version=version("a", metrics={"accuracy": 0.6, "macro_f1": 0.5, "per_class": {"sad": {"f1": 0.4}}})
    )
    calibrated = {"calibration": {"ece_after": 0.05}}
    new = model_figures(
        version=version(
            "b",
            metrics={"accuracy": 0.65, "macro_f1": 0.45, "per_class": {"sad": {"f1": 0.5}}, **calibrated},
        )
    )

    comparison = model_comparison(current=current, new=new)

    assert comparison.worse == ["macro F1"]
    accuracy, macro_f1, calibration = comparison.headline
    # Calibration error is shown, lower is better; an uncalibrated current model is unknown, not better.
    assert (calibration.current_display, calibration.new_display, calibration.worse) == ("—", "0.050", False)
    assert (accuracy.current_display, accuracy.new_display, accuracy.delta_display) == (
        "60.0%",
        "65.0%",
        "+5.0 pt",
    )
    assert macro_f1.delta_display == "-0.050"
    assert [(row.label, row.worse) for row in comparison.per_class] == [("F1 sad", False)]


@pytest.mark.django_db
def test_its_comparison_treats_missing_figures_as_unknown_not_worse():
    comparison = model_comparison(
        current=model_default_figures(), new=model_figures(version=version("bare", metrics={}))
    )

    assert comparison.worse == []
    assert comparison.headline[0].new_display == "—"


@pytest.mark.django_db
def test_a_higher_calibration_error_is_shown_as_worse_without_warning():
    def figures(name: str, ece: float):
        metrics = {"accuracy": 0.6, "macro_f1": 0.5, "calibration": {"ece_after": ece}}
        return model_figures(version=version(name, metrics=metrics))

    comparison = model_comparison(current=figures("a", 0.02), new=figures("b", 0.06))

    calibration = comparison.headline[-1]
    assert calibration.label == "calibration error (ECE)"
    assert calibration.worse and calibration.delta_display == "+0.040"
    assert comparison.worse == []  # accuracy decides the warning; calibration is shown beside it
