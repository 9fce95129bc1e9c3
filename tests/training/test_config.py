"""A run's options are declared once: the form, the API, the command and TrainConfig refuse alike."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.urls import reverse
from rest_framework.test import APIClient

from training.apis import TrainConfigSerializer
from training.config import OPTIONS, TrainConfig
from training.forms import FORM_OPTIONS, TrainingRunStartForm
from training.models import TrainingRun

EVEN = "Must be even: odd batch sizes crash TensorFlow's CPU kernels."
FIXED_WIDTH = "Must be 1 for vgg16: a pretrained architecture has a fixed width."

REFUSALS = [
    pytest.param("mini_xception", "label_smoothing", 0.6, "Must be at most 0.5.", id="label-smoothing"),
    pytest.param("mini_xception", "epochs", 0, "Must be at least 1.", id="no-epochs"),
    pytest.param("mini_xception", "epochs", 1001, "Must be at most 1000.", id="too-many-epochs"),
    pytest.param("mini_xception", "batch_size", 7, EVEN, id="odd-batch-size"),
    pytest.param("mini_xception", "batch_size", 2048, "Must be at most 1024.", id="huge-batch-size"),
    pytest.param("vgg16", "width", 2.0, FIXED_WIDTH, id="width-of-a-pretrained-model"),
    pytest.param("mini_xception", "lr_schedule", "step", "Must be one of plateau, cosine.", id="schedule"),
]


def form_data(architecture: str, dataset_path: str, **changes) -> dict:
    """Return what the admin form posts with every option at its default, but ``changes``."""
    data = {"architecture": architecture, "dataset_path": dataset_path}
    for name in FORM_OPTIONS:
        value = changes.get(name, OPTIONS[name].default)
        if value is True:
            data[name] = "on"
        elif value is not None and value is not False:
            data[name] = value
    return data


@pytest.fixture
def staff_api(db, settings, tmp_path) -> APIClient:
    settings.API_TRAINING_DATA_ROOTS = [str(tmp_path)]
    client = APIClient()
    client.force_login(get_user_model().objects.create_superuser("op", password="pw-for-tests"))
    return client


@pytest.mark.parametrize("architecture, name, value, message", REFUSALS)
def test_the_form_the_api_and_the_trainer_refuse_a_value_with_the_same_words(
    staff_api, tmp_path, architecture, name, value, message
):
    form = TrainingRunStartForm(data=form_data(architecture, str(tmp_path), **{name: value}))
    response = staff_api.post(
        "/api/v1/training-runs",
        {"architecture": architecture, "dataset_path": str(tmp_path), "config": {name: value}},
        format="json",
    )
    with pytest.raises(ValueError) as refused:
        TrainConfig(architecture=architecture, **{name: value})

    assert not form.is_valid()
    assert form.errors[name] == [message]
    assert response.status_code == 400, response.content
    assert response.json()["error"]["details"]["config"] == {name: [message]}
    assert str(refused.value) == f"{name} {message[0].lower()}{message[1:]}"
    assert not TrainingRun.objects.exists()


def test_the_form_and_the_api_accept_the_bounds_themselves(staff_api, tmp_path):
    edges = {"epochs": 1000, "batch_size": 1024, "label_smoothing": 0.5, "width": 0.25}

    form = TrainingRunStartForm(data=form_data("custom_cnn", str(tmp_path), **edges))
    response = staff_api.post(
        "/api/v1/training-runs",
        {"architecture": "custom_cnn", "dataset_path": str(tmp_path), "config": edges},
        format="json",
    )

    assert form.is_valid(), form.errors
    assert response.status_code == 201, response.content
    assert TrainingRun.objects.get().config == {**edges, "architecture": "custom_cnn"}


def test_the_form_and_the_api_take_their_bounds_defaults_and_help_from_the_table():
    form_fields = TrainingRunStartForm().fields
    api_fields = TrainConfigSerializer().fields

    for name, option in OPTIONS.items():
        if name in form_fields:
            field = form_fields[name]
            assert field.initial == option.default, name
            assert str(field.help_text) == option.description, name
            assert (getattr(field, "min_value", None), getattr(field, "max_value", None)) == (
                option.min,
                option.max,
            ), name
        if name in api_fields:
            field = api_fields[name]
            assert str(field.help_text).startswith(option.description), name
            assert (getattr(field, "min_value", None), getattr(field, "max_value", None)) == (
                option.min,
                option.max,
            ), name
    assert set(FORM_OPTIONS) < set(form_fields)
    assert set(api_fields) == set(OPTIONS) - {"architecture"}


def test_the_admin_start_page_shows_the_options_with_their_ranges(admin_client):
    response = admin_client.get(reverse("admin:training_trainingrun_add"))

    content = response.content.decode()
    assert response.status_code == 200
    assert 'name="label_smoothing"' in content and 'max="0.5"' in content
    assert "Learning-rate schedule" in content and "From 2 to 1024." in content


def test_a_path_option_is_refused_for_an_architecture_that_takes_none(staff_api, tmp_path):
    weights = tmp_path / "imagenet.h5"
    weights.write_bytes(b"h5")
    message = "Must be empty for custom_cnn: it is trained from scratch."

    form = TrainingRunStartForm(data=form_data("custom_cnn", str(tmp_path), weights_path=str(weights)))
    response = staff_api.post(
        "/api/v1/training-runs",
        {
            "architecture": "custom_cnn",
            "dataset_path": str(tmp_path),
            "config": {"weights_path": str(weights)},
        },
        format="json",
    )

    assert form.errors["weights_path"] == [message]
    assert response.json()["error"]["details"]["config"] == {"weights_path": [message]}
    with pytest.raises(ValueError, match="weights_path must be empty for custom_cnn"):
        TrainConfig(architecture="custom_cnn", weights_path=str(weights))


@pytest.mark.django_db
def test_the_command_refuses_with_the_same_words(tmp_path):
    with pytest.raises(CommandError, match=r"^label_smoothing must be at most 0\.5\.$"):
        call_command("train", "--data", str(tmp_path), "--label-smoothing", "0.6")
    with pytest.raises(CommandError, match="^batch_size must be even"):
        call_command("train", "--data", str(tmp_path), "--batch-size", "7")

    assert not TrainingRun.objects.exists()


def test_the_command_keeps_its_flags_and_maps_them_onto_the_options(tmp_path, monkeypatch):
    from training.management.commands import train

    created = {}

    def refuse(**kwargs):
        created.update(kwargs)
        raise ValueError("stop here")

    monkeypatch.setattr(train, "training_run_create", refuse)

    with pytest.raises(CommandError, match="stop here"):
        call_command(
            "train",
            *("--data", str(tmp_path), "--arch", "vgg16", "--epochs", "3", "--batch-size", "8"),
            *("--lr", "0.01", "--no-augment", "--class-weights", "--label-smoothing", "0.1"),
            *("--patience", "4", "--fine-tune-epochs", "2", "--fine-tune-lr", "1e-6"),
            *("--weights", "w.h5", "--width", "1", "--lr-schedule", "cosine", "--init-model", "m.keras"),
            *("--mirror-average", "--seed", "7", "--name", "n", "--run-dir", str(tmp_path / "run")),
            *("--max-per-class", "50", "--no-calibrate", "--teacher-model", "t.keras"),
            *("--distill-weight", "0.3", "--ferplus-dir", "votes", "--ferplus-weight", "0.2"),
            "--no-refit-batchnorm",
        )

    assert created["architecture"] == "vgg16" and created["name"] == "n"
    assert created["config"] == {
        "epochs": 3,
        "batch_size": 8,
        "learning_rate": 0.01,
        "augment": False,
        "class_weights": True,
        "label_smoothing": 0.1,
        "early_stopping_patience": 4,
        "reduce_lr_patience": OPTIONS["reduce_lr_patience"].default,
        "reduce_lr_factor": OPTIONS["reduce_lr_factor"].default,
        "min_learning_rate": OPTIONS["min_learning_rate"].default,
        "fine_tune_epochs": 2,
        "fine_tune_learning_rate": 1e-6,
        "weights_path": "w.h5",
        "width": 1.0,
        "lr_schedule": "cosine",
        "init_model": "m.keras",
        "mirror_average": True,
        "refit_batchnorm": False,
        "calibrate": False,
        "teacher_model": "t.keras",
        "distill_weight": 0.3,
        "ferplus_dir": "votes",
        "ferplus_weight": 0.2,
        "seed": 7,
        "max_per_class": 50,
    }


def test_validating_options_in_the_web_process_does_not_import_keras():
    code = """
import sys
import django
django.setup()
import training.apis, training.config, training.forms, training.services
from training.config import TrainConfig
TrainConfig.from_dict({"architecture": "vgg16", "epochs": 3})
training.apis.TrainConfigSerializer(data={"epochs": 2000}).is_valid()
training.forms.TrainingRunStartForm(data={"epochs": 0}).is_valid()
heavy = [name for name in ("keras", "tensorflow", "jax") if name in sys.modules]
assert not heavy, heavy
"""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "fer_site.settings"}

    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=django_settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 0, done.stderr


def test_a_valid_configuration_keeps_its_defaults():
    config = TrainConfig.from_dict({"architecture": "mini_xception"})

    assert all(getattr(config, name) == option.default for name, option in OPTIONS.items())
    assert config.total_epochs == OPTIONS["epochs"].default
