from __future__ import annotations

import json

import numpy as np
import pytest

from training.datasets import load_dataset

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("name", ["custom_cnn", "mini_xception", "vgg16", "resnet50v2", "efficientnetb2"])
def test_each_architecture_builds_and_trains_one_step(name):
    import keras

    from training.architectures import build_model

    built = build_model(name)
    model = built.model
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    x = np.random.default_rng(0).random((4, 48, 48, 1), dtype=np.float32)
    y = keras.utils.to_categorical([0, 3, 4, 6], 7)

    loss = model.train_on_batch(x, y)
    probabilities = np.asarray(model.predict_on_batch(x))

    assert np.isfinite(loss)
    assert probabilities.shape == (4, 7)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-4)
    if name in ("vgg16", "resnet50v2", "efficientnetb2"):
        assert "training from scratch" in built.weights_note  # no weights can be downloaded here


@pytest.mark.parametrize("name", ["custom_cnn", "mini_xception"])
def test_width_scales_the_filters_of_the_models_trained_from_scratch(name):
    from training.architectures import build_model

    narrow, normal, wide = (build_model(name, width=w).model for w in (0.5, 1.0, 2.0))

    assert narrow.count_params() < normal.count_params() < wide.count_params()
    assert wide.output_shape == (None, 7)


def test_a_pretrained_architecture_keeps_its_width():
    from training.architectures import build_model

    with pytest.raises(ValueError, match="fixed width"):
        build_model("vgg16", width=2.0)


def test_it_refuses_an_unknown_architecture():
    from training.architectures import build_model

    with pytest.raises(ValueError, match="unknown architecture 'lenet'"):
        build_model("lenet")


class CancelAfter:
    def __init__(self, epochs: int) -> None:
        self.epochs_seen = 0
        self.limit = epochs

    def on_epoch_end(self, *, epoch, total_epochs, logs, history):
        self.epochs_seen = epoch

    def on_batch_end(self, *, epoch, batch, steps):
        pass

    def should_cancel(self) -> bool:
        return self.epochs_seen >= self.limit

    def log(self, message):
        pass


def test_a_run_cancelled_mid_way_resumes_from_its_checkpoint(tiny_dataset, tmp_path):
    from training.trainer import TrainConfig, train

    data = load_dataset(tiny_dataset)
    config = TrainConfig(architecture="mini_xception", epochs=3, batch_size=2, augment=True)
    run_dir = tmp_path / "run"

    first = train(config, data, run_dir, CancelAfter(1))
    state_after_cancel = json.loads((run_dir / "state.json").read_text())
    second = train(config, data, run_dir)

    assert first.cancelled and state_after_cancel["epochs_done"] == 1
    assert not second.cancelled
    assert second.epochs_done == 3
    assert len(second.history["val_accuracy"]) == 3
    assert (run_dir / "model.keras").exists() and (run_dir / "best.keras").exists()


def test_it_refuses_to_resume_a_folder_with_another_configuration(tiny_dataset, tmp_path):
    from training.trainer import TrainConfig, train

    data = load_dataset(tiny_dataset)
    train(TrainConfig(architecture="mini_xception", epochs=1, batch_size=4), data, tmp_path / "run")

    with pytest.raises(ValueError, match="another configuration"):
        train(TrainConfig(architecture="mini_xception", epochs=2, batch_size=4), data, tmp_path / "run")


def test_fine_tuning_unfreezes_a_transfer_backbone_after_the_first_phase(tiny_dataset, tmp_path):
    import keras

    from training.trainer import TrainConfig, train

    data = load_dataset(tiny_dataset)
    config = TrainConfig(architecture="vgg16", epochs=1, fine_tune_epochs=1, batch_size=6, augment=False)

    result = train(config, data, tmp_path / "run")
    model = keras.models.load_model(tmp_path / "run" / "last.keras")

    assert result.epochs_done == 2
    assert json.loads((tmp_path / "run" / "state.json").read_text())["phase"] == "fine_tune"
    assert model.get_layer("vgg16").get_layer("vgg16").trainable


def test_a_cosine_schedule_decays_the_rate_to_its_floor_and_resumes_on_the_same_curve(tiny_dataset, tmp_path):
    from training.trainer import TrainConfig, train

    data = load_dataset(tiny_dataset)
    config = TrainConfig(epochs=4, batch_size=4, learning_rate=1e-3, lr_schedule="cosine", augment=False)
    straight = train(config, data, tmp_path / "straight")
    train(config, data, tmp_path / "resumed", CancelAfter(2))
    resumed = train(config, data, tmp_path / "resumed")

    rates = straight.history["learning_rate"]
    assert rates == sorted(rates, reverse=True) and rates[0] < 1e-3
    assert rates[-1] == pytest.approx(config.min_learning_rate, rel=1e-3)
    assert resumed.history["learning_rate"] == pytest.approx(rates, rel=1e-5)


def test_every_architecture_of_the_option_table_has_a_builder():
    from training import architectures, config

    assert tuple(architectures.BUILDERS) == config.ARCHITECTURES


def test_it_refuses_an_unknown_schedule():
    from training.trainer import TrainConfig

    with pytest.raises(ValueError, match="lr_schedule"):
        TrainConfig(lr_schedule="step")


def test_a_run_can_start_from_another_models_weights(tiny_dataset, tmp_path):
    import keras

    from training.trainer import TrainConfig, train

    data = load_dataset(tiny_dataset)
    first = train(TrainConfig(epochs=1, batch_size=4), data, tmp_path / "first")
    config = TrainConfig(epochs=1, batch_size=4, learning_rate=1e-9, init_model=str(first.model_path))
    second = train(config, data, tmp_path / "second")

    def learned(path):  # BatchNorm's moving statistics move whatever the learning rate
        return [w.numpy() for w in keras.models.load_model(path).trainable_weights]

    assert "started from model.keras" in second.weights_note
    # A learning rate of 1e-9 barely moves the weights: the run began where the first ended.
    assert all(
        np.allclose(a, b, atol=1e-5)
        for a, b in zip(learned(first.model_path), learned(second.model_path), strict=True)
    )


def test_a_run_can_start_from_a_mirror_averaged_model(tiny_dataset, tmp_path):
    from training.trainer import TrainConfig, train

    data = load_dataset(tiny_dataset)
    first = train(TrainConfig(epochs=1, batch_size=4, mirror_average=True), data, tmp_path / "first")
    second = train(
        TrainConfig(epochs=1, batch_size=4, init_model=str(first.model_path)), data, tmp_path / "2"
    )

    assert second.epochs_done == 1 and "started from model.keras" in second.weights_note


def test_an_initial_model_of_another_architecture_is_refused(tiny_dataset, tmp_path):
    from training.architectures import build_model
    from training.trainer import TrainConfig, train

    other = tmp_path / "cnn.keras"
    build_model("custom_cnn").model.save(other)

    with pytest.raises(ValueError, match="does not fit mini_xception"):
        train(
            TrainConfig(epochs=1, batch_size=4, init_model=str(other)),
            load_dataset(tiny_dataset),
            tmp_path / "r",
        )


def test_a_mirror_averaged_model_serves_the_mean_of_a_face_and_its_mirror(tiny_dataset, tmp_path):
    import keras

    from training.trainer import TrainConfig, served_network, train

    data = load_dataset(tiny_dataset)
    result = train(TrainConfig(epochs=1, batch_size=4, mirror_average=True), data, tmp_path / "run")
    served = keras.models.load_model(result.model_path, safe_mode=True)  # stock layers only
    plain = keras.models.load_model(tmp_path / "run" / "best.keras")
    faces = np.random.default_rng(3).random((5, 48, 48, 1), dtype=np.float32)

    expected = (plain.predict(faces, verbose=0) + plain.predict(faces[:, :, ::-1], verbose=0)) / 2
    assert served.predict(faces, verbose=0) == pytest.approx(expected, abs=1e-6)
    assert served.predict(faces, verbose=0) == pytest.approx(
        served.predict(faces[:, :, ::-1], verbose=0), abs=1e-6
    )
    # The model card counts the network, not the fixed mirror around it.
    assert served_network(served, "mini_xception").count_params() == plain.count_params()
