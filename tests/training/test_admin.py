from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from training.models import TrainingRun

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    user = get_user_model().objects.create_superuser("op", password="pw-for-tests")
    client.force_login(user)
    return client


def finished_run() -> TrainingRun:
    history = {
        "accuracy": [0.3, 0.5],
        "val_accuracy": [0.25, 0.45],
        "loss": [1.9, 1.4],
        "val_loss": [2.0, 1.5],
    }
    per_class = {
        label: {"precision": 0.5, "recall": 0.4, "f1": 0.44, "support": 2}
        for label in ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
    }
    return TrainingRun.objects.create(
        architecture="mini_xception",
        dataset_path="/data",
        status=TrainingRun.Status.SUCCEEDED,
        epoch=2,
        total_epochs=2,
        progress=1.0,
        history=history,
        metrics={
            "accuracy": 0.45,
            "macro_f1": 0.44,
            "per_class": per_class,
            "confusion_matrix": [[1] * 7] * 7,
        },
        config={"epochs": 2},
        log_tail="epoch 2/2: accuracy 0.5\n",
    )


def test_it_starts_a_run_from_the_admin_form(staff_client, tmp_path, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        response = staff_client.post(
            reverse("admin:training_trainingrun_add"),
            {
                "name": "try",
                "architecture": "custom_cnn",
                "dataset_path": str(tmp_path),
                "epochs": 5,
                "batch_size": 32,
                "learning_rate": 0.001,
                "augment": "on",
                "label_smoothing": 0.1,
                "early_stopping_patience": 3,
                "fine_tune_epochs": 0,
                "fine_tune_learning_rate": 1e-5,
                "width": 0.5,
                "lr_schedule": "cosine",
                "mirror_average": "on",
            },
        )

    run = TrainingRun.objects.get()
    assert response.status_code == 302
    assert run.status == TrainingRun.Status.QUEUED
    assert run.config["epochs"] == 5 and run.config["label_smoothing"] == 0.1 and run.config["augment"]
    assert (
        run.config["width"] == 0.5 and run.config["lr_schedule"] == "cosine" and run.config["mirror_average"]
    )
    assert len(callbacks) == 1


def test_it_refuses_a_dataset_path_that_does_not_exist(staff_client):
    response = staff_client.post(
        reverse("admin:training_trainingrun_add"),
        {
            "architecture": "mini_xception",
            "dataset_path": "/no/such/folder",
            "epochs": 5,
            "batch_size": 32,
            "learning_rate": 0.001,
            "label_smoothing": 0,
            "early_stopping_patience": 3,
            "fine_tune_epochs": 0,
            "fine_tune_learning_rate": 1e-5,
        },
    )

    assert response.status_code == 200
    assert b"does not exist on this server" in response.content
    assert not TrainingRun.objects.exists()


def test_the_list_shows_progress_and_refreshes_while_a_run_is_unfinished(staff_client):
    finished_run()
    TrainingRun.objects.create(
        architecture="vgg16",
        dataset_path="/data",
        status=TrainingRun.Status.RUNNING,
        progress=0.42,
        total_epochs=10,
    )

    response = staff_client.get(reverse("admin:training_trainingrun_changelist"))

    assert response.status_code == 200
    assert b'value="42"' in response.content
    assert b'http-equiv="refresh"' in response.content


def test_a_runs_page_shows_curves_per_class_table_confusion_matrix_and_log(staff_client):
    run = finished_run()

    response = staff_client.get(reverse("admin:training_trainingrun_change", args=[run.pk]))

    assert response.status_code == 200
    content = response.content.decode()
    assert "<svg" in content and "Accuracy per epoch" in content
    assert "Confusion matrix" in content and "disgust" in content
    assert "epoch 2/2: accuracy 0.5" in content


def test_cancel_from_the_runs_page(staff_client):
    run = TrainingRun.objects.create(
        architecture="vgg16", dataset_path="/d", status=TrainingRun.Status.RUNNING
    )

    staff_client.post(reverse("admin:training_trainingrun_change", args=[run.pk]), {"cancel": "1"})

    run.refresh_from_db()
    assert run.cancel_requested


def test_runs_compare_side_by_side(staff_client):
    a, b = finished_run(), finished_run()

    response = staff_client.get(reverse("admin:training_trainingrun_compare") + f"?ids={a.pk},{b.pk}")

    assert response.status_code == 200
    assert response.content.count(b"45.0%") == 2
    assert b"Validation accuracy per epoch" in response.content


def test_only_known_artifacts_are_served(staff_client, tmp_path):
    run = finished_run()
    run.run_dir = str(tmp_path)
    run.save()
    (tmp_path / "curves.png").write_bytes(b"\x89PNG fake")
    (tmp_path / "last.keras").write_bytes(b"weights")

    ok = staff_client.get(reverse("admin:training_trainingrun_artifact", args=[run.pk, "curves.png"]))
    refused = staff_client.get(reverse("admin:training_trainingrun_artifact", args=[run.pk, "last.keras"]))

    assert ok.status_code == 200 and ok["Content-Type"] == "image/png"
    assert refused.status_code == 404
