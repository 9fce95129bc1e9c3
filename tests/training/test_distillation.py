"""Distillation: the teacher answers on each augmented batch, frozen; the recipe that trains teachers
and students within a time budget."""

from __future__ import annotations

import json

import numpy as np
import pytest

from training.datasets import load_dataset

pytestmark = pytest.mark.slow


def _teacher_with_dropout(name: str = "custom_cnn"):
    import keras

    inputs = keras.Input((48, 48, 1))
    x = keras.layers.Flatten()(inputs)
    x = keras.layers.Dropout(0.9)(x)  # in training mode it would change every answer
    outputs = keras.layers.Dense(7, activation="softmax")(x)
    return keras.Model(inputs, outputs, name=name)


def test_the_teacher_answers_the_augmented_batch_in_inference_mode_and_never_learns():
    from training.architectures import build_model
    from training.config import TrainConfig
    from training.trainer import _training_model

    student = build_model("custom_cnn", width=0.25).model
    teacher = _teacher_with_dropout()  # the same name as the student: allowed
    config = TrainConfig(architecture="custom_cnn", teacher_model="t", augment=False)
    train_model = _training_model(student, config, teacher)
    faces = np.random.default_rng(0).random((4, 48, 48, 1), dtype=np.float32)

    first = np.asarray(train_model(faces, training=True))
    second = np.asarray(train_model(faces, training=True))

    assert first.shape == (4, 14)  # the student's answer, then the teacher's
    np.testing.assert_allclose(first[:, 7:], second[:, 7:], rtol=1e-6)
    np.testing.assert_allclose(first[:, 7:], np.asarray(teacher(faces, training=False)), rtol=1e-5)
    assert not teacher.trainable_weights
    assert len(train_model.trainable_weights) == len(student.trainable_weights)


def test_the_loss_targets_a_mix_of_the_label_and_the_teachers_answer():
    import keras

    from training.trainer import DistillationLoss

    label = np.array([[1, 0, 0, 0, 0, 0, 0]], np.float32)
    student = np.array([[0.5, 0.2, 0.1, 0.1, 0.05, 0.03, 0.02]], np.float32)
    teacher = np.array([[0.2, 0.6, 0.1, 0.05, 0.03, 0.01, 0.01]], np.float32)
    y_pred = np.concatenate([student, teacher], axis=1)

    loss = float(DistillationLoss(weight=0.25)(label, y_pred))

    target = 0.75 * label + 0.25 * teacher
    expected = float(keras.losses.categorical_crossentropy(target, student)[0])
    assert loss == pytest.approx(expected, rel=1e-5)
    assert float(DistillationLoss(weight=0.0)(label, y_pred)) == pytest.approx(-np.log(0.5), rel=1e-5)


def test_a_distillation_run_resumes_with_its_teacher_and_serves_the_student_alone(tiny_dataset, tmp_path):
    import keras

    from training.trainer import TrainConfig, leaf_networks, train

    teacher = tmp_path / "teacher.keras"
    _teacher_with_dropout().save(teacher)
    data = load_dataset(tiny_dataset)
    config = TrainConfig(
        architecture="custom_cnn", width=0.25, epochs=2, batch_size=4, teacher_model=str(teacher)
    )
    run_dir = tmp_path / "run"

    class CancelAfterOne:
        def __init__(self):
            self.done = 0

        def on_epoch_end(self, *, epoch, **kwargs):
            self.done = epoch

        def on_batch_end(self, **kwargs):
            pass

        def should_cancel(self):
            return self.done >= 1

        def log(self, message):
            pass

    first = train(config, data, run_dir, CancelAfterOne())
    second = train(config, data, run_dir)

    assert first.cancelled and not second.cancelled and second.epochs_done == 2
    assert "val_accuracy" in second.history and len(second.history["accuracy"]) == 2
    served = keras.models.load_model(second.model_path, safe_mode=True)
    assert served.output_shape == (None, 7)
    networks, _ = leaf_networks(served)
    assert [n.name for n in networks] == ["custom_cnn"] and served.count_params() < 200_000


def test_the_recipe_trains_teachers_then_distils_a_student_from_them(tiny_dataset, tmp_path):
    from training import recipe

    out = tmp_path / "runs"
    code = recipe.main(
        [
            *("--data", str(tiny_dataset), "--out", str(out), "--seconds", "400"),
            *("--teacher-width", "0.25", "--student-width", "0.25", "--max-epochs", "1"),
            *("--batch-size", "4", "--jobs", "teacher_1,teacher_2,student_1"),
        ]
    )

    summary = json.loads((out / "summary.json").read_text())
    assert code == 0, summary
    assert set(summary) == {"teacher_1", "teacher_2", "student_1"}
    assert all(job["exit_code"] == 0 and job["epochs_done"] == 1 for job in summary.values())
    log = (out / "student_1.log").read_text()
    assert "distilling from teacher_1, teacher_2" in log and "on each augmented batch" in log
    assert (out / "student_1" / "model.keras").is_file()


def test_under_jax_the_training_step_compiles_with_the_random_geometry_layers(monkeypatch):
    import keras

    from training import trainer
    from training.architectures import build_model
    from training.config import TrainConfig

    config = TrainConfig(architecture="custom_cnn", width=0.25)
    model = trainer._training_model(build_model("custom_cnn", width=0.25).model, config)
    assert not all(layer.supports_jit for layer in model._flatten_layers())  # Keras' own marking

    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
    trainer._compile(model, config, 1e-3, decay_steps=10)

    assert all(layer.supports_jit for layer in model._flatten_layers())


def test_a_recipe_job_out_of_time_while_timing_its_sample_says_so_and_fails(tiny_dataset, tmp_path, caplog):
    from training import recipe

    out = tmp_path / "runs"
    args = ["--data", str(tiny_dataset), "--out", str(out), "--seconds", "0", "--batch-size", "4"]
    code = recipe.main([*args, "--teacher-width", "0.25", "--job", "teacher_1", "--started", "0"])

    assert code == 1
    assert "the deadline passed while timing the sample epochs" in caplog.text
    assert not (out / "teacher_1" / recipe.DONE).exists()


def test_the_recipe_times_its_sample_epochs_on_a_like_share_of_both_splits(
    tiny_dataset, tmp_path, monkeypatch, caplog
):
    import logging
    import time

    from training import recipe

    caplog.set_level(logging.INFO, logger="training.recipe")
    monkeypatch.setattr(recipe, "SAMPLE_PER_CLASS", 2)  # half of the tiny dataset's 4 faces per class
    out = tmp_path / "runs"
    args = ["--data", str(tiny_dataset), "--out", str(out), "--seconds", "400", "--batch-size", "4"]
    code = recipe.main(
        [
            *args,
            "--teacher-width",
            "0.25",
            "--max-epochs",
            "1",
            "--job",
            "teacher_1",
            "--started",
            str(time.time()),
        ]
    )

    assert code == 0
    assert "teacher_1: 14 training and 14 validation images" in caplog.text  # the probe: half of each
    assert "teacher_1: 28 training and 28 validation images" in caplog.text  # the run itself


def test_a_split_gives_a_random_share_of_its_faces_in_order():
    import numpy as np

    from training.datasets import Split

    split = Split(np.zeros((1000, 48, 48), np.uint8), np.arange(1000) % 7, np.arange(1000))
    part = split.fraction(0.1, seed=0)

    assert len(part) == 100 and np.all(np.diff(part.names) > 0)  # distinct faces, in the split's order
    assert np.array_equal(part.y, part.names % 7)
    assert len(split.fraction(0.0, seed=0)) == 1 and len(split.fraction(2.0, seed=0)) == 1000


def test_ensemble_serves_a_distillation_runs_last_epoch_as_the_student_alone(tiny_dataset, tmp_path):
    import keras
    from django.core.management import call_command

    from training.trainer import TrainConfig, leaf_networks, train

    teacher = tmp_path / "teacher.keras"
    _teacher_with_dropout().save(teacher)
    config = TrainConfig(
        architecture="custom_cnn", width=0.25, epochs=1, batch_size=4, teacher_model=str(teacher)
    )
    run_dir = tmp_path / "run"
    train(config, load_dataset(tiny_dataset), run_dir)
    target = tmp_path / "served" / "last.keras"

    call_command(
        "ensemble", "--model", str(run_dir / "last.keras"), "--mirror", data=str(tiny_dataset), to=str(target)
    )

    served = keras.models.load_model(target, safe_mode=True)
    networks, mirrored = leaf_networks(served)
    student = keras.models.load_model(run_dir / "best.keras")
    assert mirrored and len(networks) == 1 and served.output_shape == (None, 7)
    assert networks[0].count_params() == student.count_params()  # the student, not its teacher
    assert "| `last.keras` | custom_cnn |" in (target.parent / "MODEL_CARD.md").read_text()
