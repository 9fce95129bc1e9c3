"""The model registry and training runs through the API."""

from __future__ import annotations

from pathlib import Path

import pytest

from emotions import services as emotion_services
from emotions.models import ModelVersion
from tests.conftest import model_archive_write
from tests.emotions.conftest import litert_stand_in_write
from training import tasks
from training.models import TrainingRun

pytestmark = pytest.mark.django_db


# --- Models -----------------------------------------------------------------------------------


@pytest.fixture
def versions(settings, tmp_path) -> tuple[ModelVersion, ModelVersion]:
    """Two registered versions with stand-in files (.keras and LiteRT); the first is active."""
    settings.TRAINING_ARTIFACTS_DIR = tmp_path
    files = {
        name: {
            "sha256": model_archive_write(tmp_path / f"{name}.keras"),
            "litert_sha256": litert_stand_in_write(tmp_path / f"{name}.tflite"),
            "litert_max_abs_diff": 0.0,
        }
        for name in ("old", "new")
    }
    old = ModelVersion.objects.create(
        name="old",
        architecture="mini_xception",
        file_path="old.keras",
        litert_path="old.tflite",
        metrics={"accuracy": 0.61},
        **files["old"],
    )
    old.activate()
    new = ModelVersion.objects.create(
        name="new",
        architecture="mini_xception",
        file_path=str(tmp_path / "new.keras"),
        litert_path=str(tmp_path / "new.tflite"),
        **files["new"],
    )
    return old, new


def test_it_lists_the_registered_models_newest_first(client_all, versions):
    response = client_all.get("/api/v1/models")

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2
    assert [(v["name"], v["is_active"]) for v in body["results"]] == [("new", False), ("old", True)]
    assert body["results"][1]["accuracy"] == 0.61


def test_it_pages_the_list(client_all, versions):
    response = client_all.get("/api/v1/models", {"limit": 1, "offset": 1})

    body = response.json()
    assert [v["name"] for v in body["results"]] == ["old"]
    assert body["previous"] is not None and body["next"] is None


def test_it_activates_a_model_and_reloads_the_engine_after_commit(
    client_all, versions, monkeypatch, django_capture_on_commit_callbacks
):
    old, new = versions
    reloads = []
    monkeypatch.setattr(emotion_services, "emotion_engine_reload", lambda **kwargs: reloads.append(kwargs))

    with django_capture_on_commit_callbacks(execute=True):
        response = client_all.post(f"/api/v1/models/{new.pk}/activate")

    assert response.status_code == 200, response.content
    assert response.json()["is_active"] is True
    assert ModelVersion.objects.active() == new
    old.refresh_from_db()
    assert old.is_active is False
    assert reloads == [{"wait": False}]


def test_it_refuses_to_activate_a_model_whose_file_is_missing(client_all, versions):
    _, new = versions
    Path(new.file_path).unlink()

    response = client_all.post(f"/api/v1/models/{new.pk}/activate")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "model_unservable"
    assert ModelVersion.objects.active().name == "old"


def test_activating_an_unknown_model_is_a_404(client_all, versions):
    response = client_all.post("/api/v1/models/999999/activate")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


# --- Training runs ----------------------------------------------------------------------------


@pytest.fixture
def data_root(settings, tmp_path) -> Path:
    root = tmp_path / "data"
    (root / "fer2013" / "train").mkdir(parents=True)
    settings.API_TRAINING_DATA_ROOTS = [str(root)]
    settings.TRAINING_ARTIFACTS_DIR = tmp_path / "training"
    return root


@pytest.fixture
def enqueued(monkeypatch) -> list[int]:
    """The run ids sent to the Celery worker, instead of sending them."""
    sent: list[int] = []
    monkeypatch.setattr(tasks.training_run_task, "delay", sent.append)
    return sent


def test_it_starts_a_training_run_and_enqueues_it_once_committed(
    client_all, data_root, enqueued, django_capture_on_commit_callbacks
):
    body = {
        "architecture": "mini_xception",
        "dataset_path": "fer2013",
        "name": "baseline",
        "config": {"epochs": 3, "batch_size": 32, "fine_tune_epochs": 1},
    }

    with django_capture_on_commit_callbacks(execute=True):
        response = client_all.post("/api/v1/training-runs", body, format="json")

    assert response.status_code == 201, response.content
    run = TrainingRun.objects.get()
    assert response.json()["id"] == run.pk
    assert (run.status, run.name, run.total_epochs) == ("queued", "baseline", 4)
    assert run.dataset_path == str((data_root / "fer2013").resolve())
    assert run.config == {
        "epochs": 3,
        "batch_size": 32,
        "fine_tune_epochs": 1,
        "architecture": "mini_xception",
    }
    assert enqueued == [run.pk]


@pytest.mark.parametrize(
    "change, field",
    [
        ({"dataset_path": "x" * 501}, "dataset_path"),
        ({"dataset_path": 2013}, "dataset_path"),
        ({"architecture": "alexnet"}, "architecture"),
        ({"config": {"epochs": 0}}, "config"),
        ({"config": {"epochs": "many"}}, "config"),
        ({"config": {"optimizer": "sgd"}}, "config"),
        ({"config": {"weights_path": "/etc/passwd"}}, "config"),
        ({"config": [1, 2]}, "config"),
    ],
    ids=[
        "too-long",
        "not-text",
        "unknown-architecture",
        "zero-epochs",
        "wrong-type",
        "unknown-option",
        "weights-outside-the-roots",
        "config-not-an-object",
    ],
)
def test_it_refuses_a_training_run_that_is_not_valid(client_all, data_root, enqueued, change, field):
    body = {"architecture": "mini_xception", "dataset_path": "fer2013"} | change

    response = client_all.post("/api/v1/training-runs", body, format="json")

    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert field in error["details"]
    assert not TrainingRun.objects.exists()
    assert enqueued == []


@pytest.mark.parametrize(
    "change, field",
    [
        ({"dataset_path": "missing"}, "dataset_path"),
        ({"dataset_path": " fer2013"}, "dataset_path"),
        ({"dataset_path": "/etc"}, "dataset_path"),
        ({"dataset_path": "../../../../etc"}, "dataset_path"),
        ({"dataset_path": "fer2013/" + "x" * 400}, "dataset_path"),
        ({"architecture": "vgg16", "config": {"weights_path": "missing.h5"}}, "config.weights_path"),
        ({"config": {"init_model": "/etc/passwd"}}, "config.init_model"),
    ],
    ids=["missing", "not-trimmed", "outside-the-roots", "climbing-out", "too-long-a-name", "weights", "init"],
)
def test_a_path_that_names_nothing_inside_the_roots_is_a_404(client_all, data_root, enqueued, change, field):
    body = {"architecture": "mini_xception", "dataset_path": "fer2013"} | change

    response = client_all.post("/api/v1/training-runs", body, format="json")

    assert response.status_code == 404, response.content
    error = response.json()["error"]
    assert (error["code"], error["details"]) == ("path_not_found", {"field": field})
    assert not TrainingRun.objects.exists()
    assert enqueued == []


def test_a_request_that_is_not_valid_is_refused_before_its_paths_are_looked_for(client_all, data_root):
    body = {"architecture": "mini_xception", "dataset_path": "missing", "config": {"epochs": 0}}

    response = client_all.post("/api/v1/training-runs", body, format="json")

    assert response.status_code == 400


def test_it_does_not_say_whether_paths_outside_the_roots_exist(client_all, data_root, enqueued):
    details = [
        client_all.post(
            "/api/v1/training-runs", {"architecture": "custom_cnn", "dataset_path": path}, format="json"
        ).json()["error"]["details"]
        for path in ("/etc", "/no/such/folder")
    ]

    assert details[0] == details[1]


def make_run(**fields) -> TrainingRun:
    fields = {"architecture": "mini_xception", "dataset_path": "/data", "total_epochs": 10} | fields
    return TrainingRun.objects.create(**fields)


def test_it_lists_runs_and_filters_them_by_status(client_all):
    queued = make_run()
    make_run(status="succeeded")

    everything = client_all.get("/api/v1/training-runs").json()
    only_queued = client_all.get("/api/v1/training-runs", {"status": "queued"}).json()

    assert everything["count"] == 2
    assert [run["id"] for run in only_queued["results"]] == [queued.pk]
    assert "log_tail" not in only_queued["results"][0]


def test_it_refuses_an_unknown_status_filter(client_all):
    response = client_all.get("/api/v1/training-runs", {"status": "sleeping"})

    assert response.status_code == 400


def test_it_shows_a_run_with_its_history_and_log(client_all):
    run = make_run(
        status="running", epoch=2, progress=0.2, history={"val_accuracy": [0.4, 0.5]}, log_tail="epoch 2\n"
    )

    response = client_all.get(f"/api/v1/training-runs/{run.pk}")

    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["epoch"], body["best_val_accuracy"]) == ("running", 2, 0.5)
    assert body["history"] == {"val_accuracy": [0.4, 0.5]}
    assert body["log_tail"] == "epoch 2\n"


def test_an_unknown_run_is_a_404(client_all):
    assert client_all.get("/api/v1/training-runs/424242").status_code == 404
    assert client_all.post("/api/v1/training-runs/424242/cancel").status_code == 404


def test_cancelling_a_queued_run_cancels_it_at_once(client_all):
    run = make_run()

    response = client_all.post(f"/api/v1/training-runs/{run.pk}/cancel")

    assert response.status_code == 200
    run.refresh_from_db()
    assert (run.status, run.cancel_requested) == ("cancelled", True)


def test_cancelling_a_running_run_asks_its_worker_to_stop(client_all):
    run = make_run(status="running")

    response = client_all.post(f"/api/v1/training-runs/{run.pk}/cancel")

    assert response.status_code == 202
    assert response.json()["cancel_requested"] is True
    run.refresh_from_db()
    assert (run.status, run.cancel_requested) == ("running", True)


@pytest.mark.parametrize("finished", ["succeeded", "failed"])
def test_a_finished_run_cannot_be_cancelled(client_all, finished):
    run = make_run(status=finished)

    response = client_all.post(f"/api/v1/training-runs/{run.pk}/cancel")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "run_finished"
    run.refresh_from_db()
    assert (run.status, run.cancel_requested) == (finished, False)


def test_the_api_knows_every_training_option(client_all):
    from training.apis import TrainConfigSerializer
    from training.config import TrainConfig

    options = set(TrainConfig.__dataclass_fields__) - {"architecture"}

    assert set(TrainConfigSerializer().fields) == options


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("offset=1&offset=2", "offset"),
        ("limit=5&limit=6", "limit"),
        ("offset=-1", "offset"),
        ("limit=lots", "limit"),
        ("status=", "status"),
    ],
)
def test_it_refuses_list_parameters_the_schema_does_not_allow(client_all, query, field):
    response = client_all.get(f"/api/v1/training-runs?{query}")

    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["details"]
