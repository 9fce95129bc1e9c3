"""Temperature scaling (fitted, written into stock layers, reported) and distillation, end to end."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from django.core.management import call_command

from tests.training.conftest import train_tiny
from training.calibration import (
    CalibrationError,
    calibrate,
    expected_calibration_error,
    fit_temperature,
    member_probabilities,
    tempered,
)
from training.datasets import load_dataset
from training.models import TrainingRun


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def test_the_fitted_temperature_is_the_one_that_made_the_labels():
    rng = np.random.default_rng(0)
    logits = rng.normal(0.0, 3.0, (6000, 7))
    truth = _softmax(logits / 2.0)  # the model below is twice as sure as it should be
    labels = np.array([rng.choice(7, p=p) for p in truth])
    stated = _softmax(logits)[None]

    temperature = fit_temperature(stated, labels)

    assert temperature == pytest.approx(2.0, abs=0.15)
    before = expected_calibration_error(stated[0], labels)
    after = expected_calibration_error(tempered(stated, temperature), labels)
    assert after < 0.03 < before
    assert (tempered(stated, temperature).argmax(1) == stated[0].argmax(1)).all()


def test_expected_calibration_error_is_the_gap_between_confidence_and_accuracy():
    labels = np.zeros(1000, dtype=int)
    sure_and_right = np.tile([0.9, 0.1 / 6, 0.1 / 6, 0.1 / 6, 0.1 / 6, 0.1 / 6, 0.1 / 6], (1000, 1))
    half_wrong = sure_and_right.copy()
    labels_half = labels.copy()
    labels_half[:500] = 1

    assert expected_calibration_error(sure_and_right, labels) == pytest.approx(0.1)
    assert expected_calibration_error(half_wrong, labels_half) == pytest.approx(0.4)


@pytest.mark.slow
@pytest.mark.parametrize("architecture", ["custom_cnn", "mini_xception"])
@pytest.mark.parametrize("mirror", [False, True])
def test_the_temperature_is_written_into_the_model_and_survives_saving(
    architecture, mirror, tiny_dataset, tmp_path
):
    import keras

    from training.architectures import build_model
    from training.trainer import mirror_averaged

    model = build_model(architecture, width=0.25).model
    if mirror:
        model = mirror_averaged(model)
    val = load_dataset(tiny_dataset).val
    before = member_probabilities(model, val.x)

    figures, members = calibrate(model, val.x, val.y)

    np.testing.assert_allclose(members, before)
    expected = tempered(before, figures.temperature)
    answered = member_probabilities(model, val.x).mean(axis=0)
    np.testing.assert_allclose(answered, expected, atol=2e-5)
    model.save(tmp_path / "calibrated.keras")
    reloaded = keras.models.load_model(tmp_path / "calibrated.keras", safe_mode=True)  # stock layers only
    np.testing.assert_allclose(member_probabilities(reloaded, val.x).mean(axis=0), expected, atol=2e-5)
    assert figures.nll_after <= figures.nll_before + 1e-9


@pytest.mark.slow
def test_a_model_without_a_softmax_is_refused_and_left_as_it_was(tiny_dataset):
    import keras

    inputs = keras.Input((48, 48, 1))
    outputs = keras.layers.Dense(7, activation="sigmoid")(keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, outputs)
    weights = [w.copy() for w in model.get_weights()]
    val = load_dataset(tiny_dataset).val

    with pytest.raises(CalibrationError, match="softmax"):
        calibrate(model, val.x, val.y)

    for kept, now in zip(weights, model.get_weights(), strict=True):
        np.testing.assert_array_equal(kept, now)


@pytest.mark.slow
def test_the_calibrate_command_writes_the_model_its_figures_picture_and_card(tiny_dataset, tmp_path, capsys):
    from training.architectures import build_model

    folder = tmp_path / "shipped"
    folder.mkdir()
    build_model("custom_cnn", width=0.25).model.save(folder / "model.keras")
    (folder / "MODEL_CARD.md").write_text(
        "# Model card\n\n## Validation metrics\n\nOK\n\n## Limits\n\n- some\n"
    )

    for _ in range(2):  # a second calibration replaces the first one's section
        call_command("calibrate", model=str(folder / "model.keras"), data=str(tiny_dataset))

    evaluation = json.loads((folder / "evaluation.json").read_text())
    card = (folder / "MODEL_CARD.md").read_text()
    assert evaluation["calibration"]["temperature"] > 0
    assert evaluation["calibration"]["n"] == evaluation["n"] == 28
    assert len(evaluation["accuracy_ci95"]) == 2
    assert (folder / "reliability.png").read_bytes()[:4] == b"\x89PNG"
    assert card.count("## Calibration") == 1
    assert card.index("## Calibration") < card.index("## Limits")
    # The compiled file is timed as the web processes serve it, once per card however often it is compiled.
    assert card.count("## Serving cost") == 1 and card.index("## Serving cost") < card.index("## Limits")
    assert re.search(r"\*\*\d+\.\d\d ms per face\*\* alone", card)
    out = capsys.readouterr().out
    assert "expected calibration error" in out and "ms per face alone" in out


@pytest.mark.slow
@pytest.mark.django_db
def test_distillation_and_calibration_run_through_the_train_command(tiny_dataset, tmp_path, settings):
    settings.TRAINING_ARTIFACTS_DIR = str(tmp_path / "artifacts")
    teacher = tmp_path / "teacher.keras"
    train_tiny(tiny_dataset, tmp_path / "teacher-run", export=str(teacher))

    call_command(
        "train",
        data=str(tiny_dataset),
        arch="mini_xception",
        epochs=1,
        batch_size=4,
        teacher_model=str(teacher),
        distill_weight=0.7,
        run_dir=str(tmp_path / "student-run"),
    )

    run = TrainingRun.objects.latest("pk")
    assert run.status == TrainingRun.Status.SUCCEEDED, run.error
    assert "distilling from teacher.keras" in run.log_tail
    assert "calibrated: temperature" in run.log_tail
    assert run.metrics["calibration"]["ece_after"] >= 0
    assert run.artifacts["reliability"] == "reliability.png"
    assert (run.folder / "reliability.png").is_file()
    card = (run.folder / "MODEL_CARD.md").read_text()
    assert "## Calibration" in card
    # The registered version's LiteRT file, timed as the web processes serve it.
    assert run.model_version.litert_error == "" and "## Serving cost" in card
    assert "ms per face** alone" in card.split("## Serving cost")[1]


@pytest.mark.slow
@pytest.mark.django_db
def test_a_run_can_skip_calibration(tiny_dataset, tmp_path, settings):
    settings.TRAINING_ARTIFACTS_DIR = str(tmp_path / "artifacts")

    run = train_tiny(tiny_dataset, tmp_path / "run", no_calibrate=True)

    assert run.status == TrainingRun.Status.SUCCEEDED, run.error
    assert "calibration" not in run.metrics
    assert "reliability" not in run.artifacts


@pytest.mark.slow
def test_the_ensemble_command_serves_the_members_mean_as_one_calibrated_file(tiny_dataset, tmp_path, capsys):
    import keras

    from training.architectures import build_model
    from training.trainer import mirror_averaged

    first, second = tmp_path / "a.keras", tmp_path / "b.keras"
    mirror_averaged(build_model("custom_cnn", width=0.25).model).save(first)
    mirror_averaged(build_model("mini_xception", width=0.5).model).save(second)
    target = tmp_path / "ensemble" / "both.keras"
    target.parent.mkdir()
    val = load_dataset(tiny_dataset).val

    call_command(
        "ensemble", "--model", str(first), "--model", str(second), data=str(tiny_dataset), to=str(target)
    )

    ensemble = keras.models.load_model(target, safe_mode=True)
    members = member_probabilities(ensemble, val.x)
    evaluation = json.loads((target.parent / "evaluation.json").read_text())
    card = (target.parent / "MODEL_CARD.md").read_text()
    assert members.shape[0] == 4  # two networks, each on the face and its mirror image
    np.testing.assert_allclose(
        ensemble.predict(val.x[..., None] / 255.0, verbose=0), members.mean(0), atol=2e-5
    )
    assert evaluation["calibration"]["ece_after"] >= 0
    assert "`a.keras`" in card and "`b.keras`" in card and "## Calibration" in card
    assert (target.with_suffix(".tflite")).is_file()
    assert "alone" in capsys.readouterr().out


def test_a_test_time_zoom_shows_the_networks_the_faces_centre_enlarged():
    import keras

    from training.trainer import averaged, served_zoom

    inputs = keras.Input((48, 48, 1))
    network = keras.Model(inputs, keras.layers.Flatten()(inputs), name="identity")
    faces = np.random.default_rng(3).random((2, 48, 48, 1), dtype=np.float32)

    zoomed = averaged([network], mirror=False, zoom=1.04)
    seen = np.asarray(zoomed(faces)).reshape(2, 48, 48, 1)
    expected = np.asarray(keras.layers.Resizing(48, 48)(faces[:, 1:47, 1:47]))  # the centre 46×46, enlarged

    np.testing.assert_allclose(seen, expected, atol=1e-6)
    assert served_zoom(zoomed) == pytest.approx(48 / 46, abs=1e-3)
    assert served_zoom(averaged([network], mirror=True)) == 1.0
    with pytest.raises(ValueError, match="between 1 and 1.5"):
        averaged([network], mirror=False, zoom=2.0)


def test_shifted_crops_show_the_networks_the_zoomed_face_moved_each_way():
    import keras

    from emotions.compile import centre_model, one_view_model
    from training.trainer import averaged, served_shift, served_zoom

    inputs = keras.Input((48, 48, 1))
    network = keras.Model(inputs, keras.layers.Flatten()(inputs), name="identity")
    faces = np.random.default_rng(4).random((2, 48, 48, 1), dtype=np.float32)
    enlarged = keras.layers.Resizing(48, 48)

    def crop(top, left):  # the 44×44 cut of a 1.09 zoom (margin 2) at this corner, enlarged
        return np.asarray(enlarged(faces[:, top : top + 44, left : left + 44])).reshape(2, -1)

    five = averaged([network], mirror=False, zoom=1.09, shift=2)
    expected = np.mean([crop(2, 2), crop(0, 2), crop(4, 2), crop(2, 0), crop(2, 4)], axis=0)

    np.testing.assert_allclose(np.asarray(five(faces)), expected, atol=1e-6)
    assert (served_zoom(five), served_shift(five)) == (pytest.approx(48 / 44, abs=1e-3), 2)
    assert served_shift(averaged([network], mirror=True, zoom=1.09)) == 0
    with pytest.raises(ValueError, match="margin"):
        averaged([network], mirror=False, zoom=1.09, shift=3)
    with pytest.raises(ValueError, match="zoom"):
        averaged([network], mirror=False, shift=1)

    # A stream's frame shows the centre crop alone, or its mirror image: the one-view file's part, and
    # what two such frames average (the shifted crops left to the frames' own small movements).
    ten = averaged([network], mirror=True, zoom=1.09, shift=2)
    np.testing.assert_allclose(np.asarray(one_view_model(ten)(faces)), crop(2, 2), atol=1e-6)
    mirrored = np.asarray(enlarged(faces[:, 2:46, 2:46, :][:, :, ::-1])).reshape(2, -1)
    np.testing.assert_allclose(np.asarray(centre_model(ten)(faces)), (crop(2, 2) + mirrored) / 2, atol=1e-5)
    two = averaged([network], mirror=True, zoom=1.09)
    assert centre_model(two) is two


@pytest.mark.slow
def test_the_ensemble_command_serves_one_model_with_a_test_time_zoom(tiny_dataset, tmp_path, capsys):
    import keras

    from training.architectures import build_model
    from training.trainer import mirror_averaged, served_zoom

    source, target = tmp_path / "a.keras", tmp_path / "zoomed" / "a_zoomed.keras"
    mirror_averaged(build_model("custom_cnn", width=0.25).model).save(source)
    target.parent.mkdir()

    call_command("ensemble", "--model", str(source), "--zoom", "1.1", data=str(tiny_dataset), to=str(target))

    served = keras.models.load_model(target, safe_mode=True)
    card = (target.parent / "MODEL_CARD.md").read_text()
    assert served_zoom(served) == pytest.approx(48 / 44, abs=1e-3)
    assert any(layer.name == "mirror" for layer in served.layers)  # the member's mirror view is kept
    assert "enlarged 1.1 times" in card and "--zoom 1.1" in card and "## Serving cost" in card
    assert target.with_suffix(".tflite").is_file()
    # Live streams see the face from one side per frame: its one-view file, recorded and costed.
    record = json.loads(target.with_suffix(".litert.json").read_text())
    assert record["one_view"]["model"] == "a_zoomed.view.tflite"
    assert target.with_suffix(".view.tflite").is_file()
    assert "through its one-view file" in card.split("## Serving cost")[1]
    # Beside it, the file with int8 weights (and its own one-view file), costed too: which one a web
    # process serves depends on its CPU.
    assert record["int8"]["model"] == "a_zoomed.int8.tflite"
    assert record["int8"]["one_view"]["model"] == "a_zoomed.int8.view.tflite"
    assert "Its file with int8 weights" in card.split("## Serving cost")[1]


@pytest.mark.slow
def test_the_ensemble_command_adds_shifted_crops_and_streams_keep_one_pass_a_frame(tiny_dataset, tmp_path):
    import keras

    from training.architectures import build_model
    from training.trainer import mirror_averaged, served_shift

    source, target = tmp_path / "a.keras", tmp_path / "crops" / "a_crops.keras"
    mirror_averaged(build_model("custom_cnn", width=0.25).model).save(source)
    target.parent.mkdir()

    call_command(
        "ensemble",
        "--model",
        str(source),
        "--zoom",
        "1.1",
        "--shift",
        "2",
        data=str(tiny_dataset),
        to=str(target),
    )

    served = keras.models.load_model(target, safe_mode=True)
    card = (target.parent / "MODEL_CARD.md").read_text()
    assert served_shift(served) == 2
    assert "five crops" in card and "(10 passes per face)" in card and "--shift 2" in card
    # The one-view file (the centre crop alone) passed its check against the centre's two views.
    record = json.loads(target.with_suffix(".litert.json").read_text())
    assert record["one_view"]["model"] == "a_crops.view.tflite"
    assert record["one_view"]["max_abs_diff"] < 1e-3


def test_training_can_start_from_a_model_served_with_a_zoom(tmp_path):
    # The shipped default is such a model (its network renamed member_1 by `ensemble`): train --init-model
    # and the registry must still find the network inside.
    from training.architectures import build_model
    from training.trainer import _load_initial_weights, averaged

    network = build_model("custom_cnn", width=0.25).model
    network.name = "member_1"
    averaged([network], mirror=True, zoom=1.09).save(tmp_path / "served.keras")
    fresh = build_model("custom_cnn", width=0.25).model

    _load_initial_weights(fresh, str(tmp_path / "served.keras"))

    for mine, theirs in zip(fresh.get_weights(), network.get_weights(), strict=True):
        np.testing.assert_array_equal(mine, theirs)
