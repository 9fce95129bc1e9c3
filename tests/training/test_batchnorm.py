"""BatchNorm statistics gathered again on the faces as a model serves them (FixRes), end to end."""

from __future__ import annotations

import numpy as np
import pytest
from django.core.management import call_command

from emotions.preprocessing import to_model_input
from tests.training.conftest import train_tiny


def _network(name: str = "net"):
    """A network whose first layer normalises the face itself: its statistics are the pixels'."""
    import keras

    inputs = keras.Input((48, 48, 1))
    x = keras.layers.BatchNormalization(name="first")(inputs)
    x = keras.layers.Conv2D(3, 3, name="conv")(x)
    x = keras.layers.BatchNormalization(name="second")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(7, activation="softmax", name="logits")(x)
    return keras.Model(inputs, outputs, name=name)


def _value(variable) -> np.ndarray:
    import keras

    return keras.ops.convert_to_numpy(variable)


def _faces(count: int, seed: int = 0) -> np.ndarray:
    """Faces bright in the middle and dark at the edges, brighter on the left: a zoom or a mirror shows
    other pixels than the plain face."""
    rng = np.random.default_rng(seed)
    faces = rng.integers(0, 60, (count, 48, 48)).astype(np.uint8)
    faces[:, 8:40, 8:40] += 150
    faces[:, :, :24] += 40
    return faces


def test_the_statistics_become_the_mean_of_the_batches_in_the_served_views():
    from training.batchnorm import refit_batchnorm
    from training.trainer import averaged, served_views

    network = _network()
    model = averaged([network], mirror=True, zoom=1.2)
    faces = _faces(70)
    first = network.get_layer("first")
    learned = [np.array(w) for w in network.get_layer("logits").get_weights()]
    scale = _value(first.gamma)

    summary = refit_batchnorm(model, faces, batch_size=32, seed=3)

    # Two batches of 32 (the 6 faces left over are left out), each seen zoomed and zoomed-and-mirrored.
    order = np.random.default_rng(3).permutation(70)
    views = served_views((48, 48, 1), zoom=1.2, mirror=True)
    batches = [views.predict_on_batch(to_model_input(faces[order[i * 32 : (i + 1) * 32]])) for i in range(2)]
    seen = [np.asarray(view) for batch in batches for view in batch]
    assert len(seen) == 4
    assert float(_value(first.moving_mean)[0]) == pytest.approx(np.mean([v.mean() for v in seen]), abs=1e-5)
    assert float(_value(first.moving_variance)[0]) == pytest.approx(
        np.mean([v.var() for v in seen]), rel=1e-4
    )
    # The zoom shows the bright middle larger: the plain faces' mean would be lower.
    assert _value(first.moving_mean)[0] > to_model_input(faces[order[:64]]).mean() + 0.02
    # Only statistics changed, and the layers normalise as before with their own momentum.
    for before, after in zip(learned, network.get_layer("logits").get_weights(), strict=True):
        np.testing.assert_array_equal(before, after)
    np.testing.assert_array_equal(scale, _value(first.gamma))
    assert first.momentum == pytest.approx(0.99) and network.get_layer("second").momentum == pytest.approx(
        0.99
    )
    assert summary["faces"] == 64 and summary["views"] == 2 and summary["batch_size"] == 32
    assert summary["layers"] == ["net/first", "net/second"]


def test_layers_that_training_leaves_alone_keep_their_statistics():
    from training.batchnorm import refit_batchnorm
    from training.trainer import averaged

    network = _network()
    network.get_layer("second").trainable = False
    model = averaged([network], mirror=False)
    before = _value(network.get_layer("second").moving_mean)

    summary = refit_batchnorm(model, _faces(20))

    np.testing.assert_array_equal(before, _value(network.get_layer("second").moving_mean))
    assert summary["layers"] == ["net/first"]
    assert summary["batch_size"] == 20  # fewer faces than a batch: one batch of all of them


def test_the_ensemble_command_refits_batchnorm_on_the_training_faces_and_says_so(
    tiny_dataset, tmp_path, capsys
):
    import keras

    from training.datasets import load_dataset
    from training.trainer import leaf_networks, mirror_averaged

    source, target = tmp_path / "a.keras", tmp_path / "refit" / "a_refit.keras"
    mirror_averaged(_network()).save(source)
    target.parent.mkdir()

    call_command(
        "ensemble",
        "--model",
        str(source),
        "--zoom",
        "1.1",
        "--refit-batchnorm",
        data=str(tiny_dataset),
        to=str(target),
    )

    served = keras.models.load_model(target, safe_mode=True)  # stock Keras, as before
    (network,), mirrored = leaf_networks(served)
    first = network.get_layer("first")
    # An untrained layer holds mean 0 and variance 1; now the training faces' own (about 0.1 to 0.8).
    train = to_model_input(load_dataset(tiny_dataset).train.x)
    assert float(_value(first.moving_mean)[0]) == pytest.approx(train.mean(), abs=0.05)
    assert float(_value(first.moving_variance)[0]) < 0.5
    card = (target.parent / "MODEL_CARD.md").read_text()
    assert "BatchNorm statistics** gathered again on 28 training faces" in card
    assert "--refit-batchnorm" in card
    assert "BatchNorm statistics gathered again on 28 training faces" in capsys.readouterr().out
    assert mirrored and target.with_suffix(".tflite").is_file()


@pytest.mark.slow
@pytest.mark.django_db
@pytest.mark.parametrize("refit", [True, False])
def test_a_training_run_gathers_its_statistics_again_unless_told_not_to(
    refit, tiny_dataset, tmp_path, settings
):
    import keras

    from training.models import TrainingRun
    from training.trainer import leaf_networks

    settings.TRAINING_ARTIFACTS_DIR = str(tmp_path / "artifacts")
    # A quick trial (3 of the 4 faces per class) has its statistics gathered on the faces it trained on.
    flags = {"max_per_class": 3} if refit else {"no_refit_batchnorm": True}

    run = train_tiny(tiny_dataset, tmp_path / "run", mirror_average=True, **flags)

    assert run.status == TrainingRun.Status.SUCCEEDED, run.error
    assert run.config["refit_batchnorm"] is refit
    trained = keras.models.load_model(tmp_path / "run" / "model.keras", safe_mode=True)
    served = keras.models.load_model(tmp_path / "run" / "served.keras", safe_mode=True)
    (trained_network,), _ = leaf_networks(trained)
    (served_network,), _ = leaf_networks(served)
    layer = next(
        layer for layer in served_network.layers if isinstance(layer, keras.layers.BatchNormalization)
    )
    before = _value(trained_network.get_layer(layer.name).moving_variance)
    # The registered model's statistics are its training faces' as served; the trainer's file keeps its own.
    assert np.array_equal(_value(layer.moving_variance), before) is not refit
    card = (tmp_path / "run" / "MODEL_CARD.md").read_text()
    assert ("BatchNorm statistics** gathered again after training" in card) is refit
    assert ("gathered again on 21 training faces" in run.log_tail) is refit


@pytest.mark.slow
@pytest.mark.django_db
def test_a_run_given_only_some_options_gathers_its_statistics_too(tiny_dataset, tmp_path, settings):
    # The admin and the API store the options a run was given; the others take their defaults.
    from training.models import TrainingRun
    from training.services import training_run_claim, training_run_create, training_run_execute

    settings.TRAINING_ARTIFACTS_DIR = str(tmp_path / "artifacts")
    run = training_run_create(
        architecture="custom_cnn",
        dataset_path=str(tiny_dataset),
        config={"epochs": 1, "batch_size": 4, "width": 0.25, "max_per_class": 2},
        run_dir=str(tmp_path / "run"),
        enqueue=False,
    )
    assert "refit_batchnorm" not in run.config and "seed" not in run.config
    assert training_run_claim(run_id=run.pk)

    run = training_run_execute(run_id=run.pk)

    assert run.status == TrainingRun.Status.SUCCEEDED, run.error
    assert "gathered again on 14 training faces" in run.log_tail
    assert "gathered again after training, on 14 training" in (tmp_path / "run" / "MODEL_CARD.md").read_text()
