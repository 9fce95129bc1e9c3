from __future__ import annotations

import numpy as np
import pytest
from django.urls import reverse

from training.datasets import Split, folder_split_counts
from training.models import TrainingRun

ADD = "admin:training_trainingrun_add"


def images(folder, n: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (folder / f"{i}.png").write_bytes(b"png")


@pytest.fixture
def data_root(settings, tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    settings.API_TRAINING_DATA_ROOTS = [str(root)]
    settings.TRAINING_DATA_DIR = root / "fer2013"
    return root


def test_it_counts_the_images_of_each_split_without_reading_them(tmp_path):
    images(tmp_path / "train" / "happy", 3)
    images(tmp_path / "train" / "sad", 2)
    images(tmp_path / "val" / "happy", 1)
    (tmp_path / "train" / "happy" / "notes.txt").write_text("not an image")

    assert folder_split_counts(tmp_path) == {"train": 5, "val": 1}
    assert folder_split_counts(tmp_path / "train" / "happy") == {}


def test_a_split_limited_per_class_keeps_at_most_that_many_of_each_class_in_order():
    split = Split(np.arange(10, dtype=np.uint8).reshape(10, 1, 1), np.array([0, 0, 0, 0, 0, 0, 1, 1, 3, 3]))

    limited = split.limited(2, seed=1)

    assert limited.class_counts()["angry"] == 2
    assert limited.class_counts()["disgust"] == 2 and limited.class_counts()["happy"] == 2
    assert list(limited.x.ravel()[-4:]) == [6, 7, 8, 9]
    assert list(limited.x.ravel()) == sorted(limited.x.ravel())
    assert np.array_equal(split.limited(2, seed=1).x, limited.x)


@pytest.mark.django_db
def test_it_lists_the_datasets_under_the_data_roots_with_their_counts(admin_client, data_root):
    images(data_root / "fer2013" / "train" / "happy", 4)
    images(data_root / "fer2013" / "val" / "happy", 2)
    images(data_root / "mini" / "train" / "sad", 1)
    (data_root / "not-a-dataset").mkdir()

    response = admin_client.get(reverse(ADD))

    content = response.content.decode()
    assert "fer2013 (train 4 · val 2 images)" in content
    assert "mini (train 1 images)" in content
    assert "not-a-dataset" not in content
    assert f'value="{data_root / "fer2013"}"' in content and "checked" in content
    assert "No dataset found" not in content


@pytest.mark.django_db
def test_it_says_where_to_get_fer2013_when_no_dataset_is_found(admin_client, data_root):
    response = admin_client.get(reverse(ADD))

    assert b"No dataset found on this server" in response.content
    assert b"FER-2013" in response.content and b"README" in response.content
    assert str(data_root).encode() in response.content


@pytest.mark.django_db
def test_it_starts_a_quick_check_on_the_picked_dataset(admin_client, data_root):
    images(data_root / "fer2013" / "train" / "happy", 4)
    page = admin_client.get(reverse(ADD), {"preset": "quick"})
    form = page.context["form"]
    data = {name: form[name].value() for name in form.fields}
    data = {name: value for name, value in data.items() if value is not None and value is not False}

    response = admin_client.post(reverse(ADD), data)

    assert response.status_code == 302, response.context["form"].errors
    run = TrainingRun.objects.get()
    assert run.dataset_path == str(data_root / "fer2013")
    assert run.architecture == "custom_cnn"
    assert run.config["max_per_class"] == 200 and run.config["epochs"] == 3 and not run.config["augment"]


@pytest.mark.django_db
def test_its_presets_fill_the_form(admin_client, data_root):
    quick = admin_client.get(reverse(ADD), {"preset": "quick"}).content.decode()
    recipe = admin_client.get(reverse(ADD), {"preset": "default"}).content.decode()

    assert 'name="max_per_class" value="200"' in quick
    assert 'name="epochs" value="55"' in recipe and 'name="label_smoothing" value="0.1"' in recipe
    assert "Quick check" in quick and "Default recipe" in quick


@pytest.mark.django_db
def test_it_refuses_to_start_without_a_dataset(admin_client, data_root):
    response = admin_client.post(
        reverse(ADD),
        {
            "architecture": "custom_cnn",
            "epochs": 1,
            "batch_size": 2,
            "learning_rate": 0.001,
            "label_smoothing": 0,
            "early_stopping_patience": 1,
            "fine_tune_epochs": 0,
            "fine_tune_learning_rate": 1e-5,
            "width": 1,
            "lr_schedule": "plateau",
        },
    )

    assert b"Pick a dataset, or type the path of another one." in response.content
    assert not TrainingRun.objects.exists()


@pytest.mark.django_db
def test_the_run_page_puts_status_and_curves_before_the_folded_configuration(admin_client):
    run = TrainingRun.objects.create(
        architecture="custom_cnn",
        dataset_path="/data",
        status=TrainingRun.Status.RUNNING,
        epoch=1,
        total_epochs=3,
        progress=0.33,
        history={"accuracy": [0.3], "val_accuracy": [0.25], "loss": [1.9], "val_loss": [2.0]},
        config={"epochs": 3},
    )

    content = admin_client.get(reverse("admin:training_trainingrun_change", args=[run.pk])).content.decode()

    assert content.index("<progress") < content.index("Training curves") < content.index("<details")
    assert content.index("<details") < content.index("/data")


@pytest.mark.slow
def test_a_run_with_a_sample_limit_trains_on_that_many_faces_per_class(tiny_dataset, tmp_path):
    from training.datasets import load_dataset
    from training.trainer import Hooks, TrainConfig, train

    logged: list[str] = []

    class Recorder(Hooks):
        def log(self, message: str) -> None:
            logged.append(message)

    data = load_dataset(tiny_dataset)
    config = TrainConfig(
        architecture="custom_cnn", width=0.25, epochs=1, batch_size=4, augment=False, max_per_class=2
    )

    result = train(config, data, tmp_path / "run", Recorder())

    assert "training on a sample of 14 of 28 images (at most 2 per class)" in logged
    assert result.model_path.is_file()
