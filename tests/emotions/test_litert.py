"""LiteRT serving: compiled files that answer as Keras does, checked at registration and at activation.

The web processes serve each model's ``.tflite`` file with LiteRT and XNNPACK; TensorFlow compiles it
where it lives already (training worker, management commands). Tests marked slow import TensorFlow.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command

from emotions.classifier import (
    LITERT_INT8_TOLERANCE,
    LITERT_TOLERANCE,
    HotSwapClassifier,
    LiteRTClassifier,
    ModelFileError,
    ModelSpec,
    ModelUnavailable,
    file_sha256,
    litert_file_problem,
    litert_record_read,
)
from emotions.models import ModelVersion
from emotions.preprocessing import faces_to_model_input, to_model_input
from emotions.services import (
    emotion_engine,
    emotion_engine_reload,
    emotion_model_status,
    model_version_activate,
)
from tests.conftest import FER2013, model_archive_write
from tests.emotions.conftest import litert_stand_in_write

REPO = Path(__file__).resolve().parents[2]
DEFAULT_KERAS = REPO / "emotions" / "default_model" / "attune_default.keras"
DEFAULT_TFLITE = DEFAULT_KERAS.with_suffix(".tflite")
FACES = np.random.default_rng(5).random((5, 48, 48, 1), dtype=np.float32)


def keras_outputs(saved, faces: np.ndarray) -> np.ndarray:
    return np.asarray(saved.model(faces, training=False))


def registered(name: str, compiled, **fields) -> ModelVersion:
    """Register a tiny compiled model as the training pipeline would have recorded it."""
    values = {
        "file_path": compiled.keras.path.name,
        "sha256": compiled.keras.sha256,
        "litert_path": compiled.path.name,
        "litert_sha256": compiled.sha256,
        "litert_max_abs_diff": compiled.max_abs_diff,
        **fields,
    }
    return ModelVersion.objects.create(name=name, architecture="tiny", **values)


# --- The shipped default model ------------------------------------------------------------------


def test_the_shipped_litert_file_is_the_one_its_record_names_compiled_from_the_shipped_model():
    record = json.loads(DEFAULT_KERAS.with_suffix(".litert.json").read_text())

    path, sha256, problem = litert_record_read(DEFAULT_KERAS)

    assert (path, problem) == (DEFAULT_TFLITE, "")
    assert sha256 == file_sha256(DEFAULT_TFLITE)
    # A retrained default model must be compiled again (manage.py compile_model).
    assert record["source_sha256"] == file_sha256(DEFAULT_KERAS)
    # int8 weights where they were faster on the machine that compiled it, as accurate.
    tolerance = {"int8": LITERT_INT8_TOLERANCE, "float32": LITERT_TOLERANCE}[record["weights"]]
    assert record["max_abs_diff"] <= record["tolerance"] == tolerance
    assert litert_file_problem(DEFAULT_TFLITE, sha256=sha256) is None


def test_it_serves_the_shipped_model_with_xnnpack_one_face_and_batches_alike():
    served = LiteRTClassifier(
        DEFAULT_TFLITE, sha256=file_sha256(DEFAULT_TFLITE), version="default", num_threads=2, interpreters=2
    )

    batched = served.predict(FACES)
    one_by_one = np.concatenate([served.predict(FACES[i : i + 1]) for i in range(len(FACES))])

    assert served.xnnpack, "LiteRT did not apply its XNNPACK delegate"
    assert served.version == "default"
    assert batched.shape == (5, 7) and batched.dtype == np.float32
    np.testing.assert_allclose(batched.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(batched, one_by_one, atol=1e-6)


def test_its_interpreters_answer_concurrent_callers_each_with_their_own_rows():
    from concurrent.futures import ThreadPoolExecutor

    served = LiteRTClassifier(DEFAULT_TFLITE, num_threads=1, interpreters=2)
    rngs = [np.random.default_rng(seed) for seed in range(24)]
    batches = [rng.random((1 + seed % 3, 48, 48, 1), dtype=np.float32) for seed, rng in enumerate(rngs)]
    expected = [served.predict(batch) for batch in batches]

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(served.predict, batches))

    for result, wanted in zip(results, expected, strict=True):
        np.testing.assert_allclose(result, wanted, atol=1e-6)


@pytest.mark.slow
def test_the_shipped_litert_file_answers_as_the_keras_model_on_real_faces(astronaut_gray):
    import keras

    faces = [faces_to_model_input(astronaut_gray, [(170, 40, 120, 150)])]
    val = sorted((FER2013 / "val").glob("*/*.jpg"))[::40] if (FER2013 / "val").is_dir() else []
    if val:
        faces.append(to_model_input(np.stack([cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in val])))
    faces = np.concatenate(faces)
    model = keras.saving.load_model(DEFAULT_KERAS, compile=False, safe_mode=True)
    served = {
        weights: LiteRTClassifier(DEFAULT_TFLITE, sha256=file_sha256(DEFAULT_TFLITE), weights=weights)
        for weights in ("float32", "int8")
    }

    expected = np.asarray(model(faces, training=False))
    probabilities = {weights: classifier.predict(faces) for weights, classifier in served.items()}

    assert len(faces) > 1
    record = json.loads(DEFAULT_KERAS.with_suffix(".litert.json").read_text())
    assert served["int8"].served_path.name == record["int8"]["model"] == "attune_default.int8.tflite"
    assert np.abs(probabilities["float32"] - expected).max() <= record["tolerance"] == LITERT_TOLERANCE
    np.testing.assert_array_equal(probabilities["float32"].argmax(axis=1), expected.argmax(axis=1))
    assert np.abs(probabilities["int8"] - expected).max() <= record["int8"]["tolerance"]
    # int8 weights move a face whose two best classes are nearly tied now and then (0.7 % of val faces).
    assert (probabilities["int8"].argmax(axis=1) == expected.argmax(axis=1)).mean() >= 0.95


# --- The backend's own checks -------------------------------------------------------------------


def test_it_refuses_a_file_whose_sha256_differs_and_keeps_serving_the_old_one():
    served = LiteRTClassifier(DEFAULT_TFLITE, version="good")
    before = served.predict(FACES)

    with pytest.raises(ModelFileError, match="SHA-256"):
        served.load(DEFAULT_TFLITE, sha256="0" * 64, version="altered")

    assert served.version == "good"
    np.testing.assert_allclose(served.predict(FACES), before)


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("model.keras", b"PK", "not a .tflite file"),
        ("garbage.tflite", b"\x00" * 64, "not a LiteRT model"),
        ("truncated.tflite", None, "could not load"),
    ],
)
def test_it_refuses_what_is_no_loadable_litert_model(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(DEFAULT_TFLITE.read_bytes()[:2000] if content is None else content)

    with pytest.raises(ModelFileError, match=message):
        LiteRTClassifier(path)


def test_it_says_no_model_is_loaded_before_the_first_load():
    with pytest.raises(ModelUnavailable):
        LiteRTClassifier().predict(FACES)


def test_the_file_checks_read_only_the_checksum_and_the_identifier(tmp_path):
    stand_in = tmp_path / "stand_in.tflite"
    sha256 = litert_stand_in_write(stand_in)

    assert litert_file_problem(stand_in, sha256=sha256) is None
    assert "SHA-256" in litert_file_problem(stand_in, sha256="0" * 64)
    assert "does not exist" in litert_file_problem(tmp_path / "missing.tflite")
    (tmp_path / "zeros.tflite").write_bytes(bytes(64))
    assert "not a LiteRT model" in litert_file_problem(tmp_path / "zeros.tflite")


def test_a_missing_or_unverified_record_means_no_litert_file(tmp_path):
    keras_path = tmp_path / "model.keras"
    assert litert_record_read(keras_path)[0] is None
    assert "never compiled" in litert_record_read(keras_path)[2]

    record = {"model": "model.tflite", "sha256": "0" * 64, "max_abs_diff": 0.3}
    keras_path.with_suffix(".litert.json").write_text(json.dumps(record))

    path, sha256, problem = litert_record_read(keras_path)
    assert (path, sha256) == (None, None)
    assert "differs from Keras by 0.3" in problem


def test_hot_swap_refuses_a_model_without_a_litert_file_with_the_reason():
    served = HotSwapClassifier(
        LiteRTClassifier(),
        lambda: ModelSpec(path=Path("m.keras"), version="m", litert_problem="the converter fell over"),
    )

    served.refresh(wait=True)

    assert served.status()["state"] == "unavailable"
    assert "m has no LiteRT file to serve (the converter fell over)" in served.error
    with pytest.raises(ModelUnavailable, match="no LiteRT file"):
        served.predict(FACES)


# --- A stream's faces, one side per frame -------------------------------------------------------


@pytest.mark.parametrize(
    ("weights", "tolerance"), [("float32", LITERT_TOLERANCE), ("int8", LITERT_INT8_TOLERANCE)]
)
def test_the_shipped_model_comes_with_one_view_files_whose_two_views_average_to_the_model(weights, tolerance):
    served = LiteRTClassifier(DEFAULT_TFLITE, sha256=file_sha256(DEFAULT_TFLITE), weights=weights)

    face = served.predict_view(FACES, mirrored=False)
    mirrored = served.predict_view(FACES, mirrored=True)

    assert served.views
    np.testing.assert_allclose((face + mirrored) / 2, served.predict(FACES), atol=tolerance)
    np.testing.assert_allclose(mirrored, served.predict_view(FACES[:, :, ::-1, :], mirrored=False), atol=1e-6)
    assert np.abs(face - mirrored).max() > 0.01  # two views that differ, not one answer twice
    record = json.loads(DEFAULT_KERAS.with_suffix(".litert.json").read_text())
    entry = record["one_view"] if weights == "float32" else record["int8"]["one_view"]
    view_file = "attune_default.view.tflite" if weights == "float32" else "attune_default.int8.view.tflite"
    assert entry["model"] == view_file
    assert entry["sha256"] == file_sha256(DEFAULT_KERAS.with_name(view_file))


@pytest.fixture
def shipped_copy(tmp_path) -> Path:
    """A copy of the shipped LiteRT file, its one-view file and their record; returns the LiteRT file."""
    for suffix in (".tflite", ".view.tflite", ".litert.json"):
        shutil.copy(DEFAULT_KERAS.with_suffix(suffix), tmp_path / f"m{suffix}")
    record_path = tmp_path / "m.litert.json"
    record = json.loads(record_path.read_text())
    record["model"], record["one_view"]["model"] = "m.tflite", "m.view.tflite"
    record.pop("int8", None)  # the float32 files alone
    record_path.write_text(json.dumps(record))
    return tmp_path / "m.tflite"


def edit_record(path: Path, change) -> None:
    record_path = path.with_suffix(".litert.json")
    record = json.loads(record_path.read_text())
    change(record)
    record_path.write_text(json.dumps(record))


@pytest.mark.parametrize(
    "damage",
    [
        "view file altered",
        "record of another model",
        "name outside the folder",
        "no record",
    ],
)
def test_a_one_view_file_is_served_only_where_its_record_vouches_for_it(shipped_copy, damage, caplog):
    sha256 = file_sha256(shipped_copy)
    assert LiteRTClassifier(shipped_copy, sha256=sha256).views  # the copy as it is

    if damage == "view file altered":
        view = shipped_copy.with_suffix(".view.tflite")
        view.write_bytes(view.read_bytes() + b"\0")
    elif damage == "record of another model":
        edit_record(shipped_copy, lambda record: record.update(sha256="0" * 64))
    elif damage == "name outside the folder":
        edit_record(shipped_copy, lambda record: record["one_view"].update(model="../m.view.tflite"))
    else:
        shipped_copy.with_suffix(".litert.json").unlink()
    served = LiteRTClassifier(shipped_copy, sha256=sha256, version="m")

    assert not served.views
    # Served whole, every frame: the one-view question gets the model's answer.
    np.testing.assert_array_equal(served.predict_view(FACES, mirrored=True), served.predict(FACES))
    assert ("without its one-view file" in caplog.text) == (damage == "view file altered")


def test_hot_swap_asks_for_one_view_where_the_backend_has_it_and_for_the_whole_model_elsewhere():
    from emotions.fake import FakeClassifier

    litert = HotSwapClassifier(
        LiteRTClassifier(),
        lambda: ModelSpec(
            path=DEFAULT_KERAS, version="default", litert_path=DEFAULT_TFLITE, litert_sha256=None
        ),
    )
    fake = HotSwapClassifier(FakeClassifier(), lambda: None)

    np.testing.assert_array_equal(
        litert.predict_view(FACES, mirrored=True), litert.backend.predict_view(FACES, mirrored=True)
    )
    np.testing.assert_array_equal(fake.predict_view(FACES, mirrored=True), fake.predict(FACES))
    assert litert.status()["litert"]["one_view_file"] is True


# --- The engine, the registry and activation ----------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_engine_serves_the_shipped_litert_file_while_the_registry_is_empty(settings):
    settings.EMOTIONS_BACKEND = "emotions.classifier.LiteRTClassifier"
    settings.EMOTIONS_BATCH_WORKERS = 2
    settings.EMOTIONS_LITERT_THREADS = 1

    engine = emotion_engine()
    probabilities = engine.batcher.classify_sync(FACES, timeout=60)
    status = emotion_model_status()

    assert engine.classifier.version == "default"
    assert probabilities.shape == (5, 7)
    assert status["ok"] is True and status["problem"] is None
    assert (status["format"], status["file"], status["sha256_recorded"]) == (
        "litert",
        "attune_default.tflite",
        True,
    )
    litert = status["engine"]["litert"]
    timed = litert.pop("timed_ms_per_face")
    # Which file serves depends on this machine's CPU: its int8 one where that is clearly faster here.
    faster = (
        "attune_default.int8.tflite" if timed["int8"] <= 0.9 * timed["float32"] else "attune_default.tflite"
    )
    assert litert == {
        "interpreters": 2,
        "threads": 1,
        "xnnpack": True,
        "one_view_file": True,
        "file": faster,
        "weights_asked": "auto",
    }


@pytest.mark.django_db
def test_health_names_a_default_model_that_was_never_compiled(settings, tmp_path):
    settings.EMOTIONS_BACKEND = "emotions.classifier.LiteRTClassifier"
    settings.EMOTIONS_DEFAULT_MODEL = tmp_path / "attune_default.keras"
    model_archive_write(settings.EMOTIONS_DEFAULT_MODEL)

    status = emotion_model_status()

    assert status["ok"] is False
    assert status["file"] is None
    assert "default has no LiteRT file to serve" in status["problem"]
    assert "attune_default.litert.json does not exist" in status["problem"]


@pytest.fixture
def artifacts(settings, tmp_path):
    settings.TRAINING_ARTIFACTS_DIR = tmp_path
    return tmp_path


def stand_in_version(folder: Path, name: str, **fields) -> ModelVersion:
    sha256 = model_archive_write(folder / f"{name}.keras")
    return ModelVersion.objects.create(
        name=name, architecture="tiny", file_path=f"{name}.keras", sha256=sha256, **fields
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    "fields, reason",
    [
        ({}, "it was never compiled to LiteRT"),
        ({"litert_error": "could not compile m.keras"}, "could not compile m.keras"),
        ({"litert_path": "m.tflite", "litert_sha256": "SHA"}, "never checked against the Keras model"),
        (
            {"litert_path": "m.tflite", "litert_sha256": "SHA", "litert_max_abs_diff": 0.2},
            "differs from the Keras model by 0.2",
        ),
        ({"litert_path": "m.tflite", "litert_sha256": "0" * 64, "litert_max_abs_diff": 0.0}, "SHA-256"),
        (
            {"litert_path": "gone.tflite", "litert_sha256": "SHA", "litert_max_abs_diff": 0.0},
            "does not exist",
        ),
    ],
)
def test_activation_refuses_a_version_without_a_valid_litert_file_when_litert_serves(
    settings, artifacts, fields, reason
):
    settings.EMOTIONS_BACKEND = "emotions.classifier.LiteRTClassifier"
    sha256 = litert_stand_in_write(artifacts / "m.tflite")
    if fields.get("litert_sha256") == "SHA":
        fields = {**fields, "litert_sha256": sha256}
    version = stand_in_version(artifacts, "m", **fields)

    with pytest.raises(ValidationError, match="cannot be served by LiteRT") as refused:
        model_version_activate(version=version)

    assert reason in str(refused.value)
    assert not ModelVersion.objects.filter(is_active=True).exists()


@pytest.mark.django_db
@pytest.mark.slow
def test_the_keras_backend_activates_a_version_that_has_no_litert_file(settings, artifacts, tiny_models):
    settings.EMOTIONS_BACKEND = "emotions.classifier.KerasClassifier"
    # A real model: the Keras backend loads it as its engine will before it says yes.
    shutil.copy(tiny_models["a"].path, artifacts / "keras-only.keras")
    version = ModelVersion.objects.create(
        name="keras-only",
        architecture="tiny",
        file_path="keras-only.keras",
        sha256=tiny_models["a"].sha256,
        litert_error="could not compile",
    )

    model_version_activate(version=version)

    assert ModelVersion.objects.active() == version


@pytest.mark.django_db
def test_registering_what_cannot_be_compiled_records_why_without_importing_tensorflow(
    settings, artifacts, monkeypatch
):
    from emotions import compile as compiling
    from training.services import model_version_register

    monkeypatch.setattr(compiling, "configure_tensorflow", lambda: pytest.fail("TensorFlow was set up"))
    path = artifacts / "stand_in.keras"
    model_archive_write(path)

    version = model_version_register(name="stand-in", architecture="tiny", path=path, metrics={})

    assert version.litert_path == "" and version.litert_max_abs_diff is None
    assert "holds no readable model configuration" in version.litert_problem()
    assert not path.with_suffix(".tflite").exists()


def test_the_web_side_of_litert_never_imports_tensorflow(tmp_path):
    # The engine, health and activation checks run in every web process: they must not pull TensorFlow in.
    code = (
        "import sys, django\n"
        "django.setup()\n"
        "from django.core.management import call_command\n"
        "call_command('migrate', verbosity=0)\n"
        "from emotions.services import emotion_engine, emotion_model_status\n"
        "import numpy as np\n"
        "p = emotion_engine().batcher.classify_sync(np.full((2, 48, 48, 1), 0.5, np.float32), timeout=60)\n"
        "status = emotion_model_status()\n"
        "assert status['ok'] and status['engine']['litert']['xnnpack'], status\n"
        "assert not status['tensorflow_loaded'], status\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'imported'\n"
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "fer_site.settings",
        "ATTUNE_VAR_DIR": str(tmp_path),
        "EMOTIONS_BACKEND": "emotions.classifier.LiteRTClassifier",
    }

    subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, check=True, timeout=120)


# --- Compiling: registration, the command, refusal (TensorFlow) ----------------------------------


@pytest.mark.slow
def test_compiled_tiny_models_answer_as_keras_with_xnnpack(tiny_compiled):
    for compiled in tiny_compiled.values():
        served = LiteRTClassifier(compiled.path, sha256=compiled.sha256)
        expected = keras_outputs(compiled.keras, FACES)

        np.testing.assert_allclose(served.predict(FACES), expected, atol=1e-5)
        np.testing.assert_allclose(served.predict(FACES[:1]), expected[:1], atol=1e-5)
        assert served.xnnpack
        assert compiled.max_abs_diff <= LITERT_TOLERANCE
        assert litert_record_read(compiled.keras.path)[:2] == (compiled.path, compiled.sha256)


@pytest.mark.slow
@pytest.mark.django_db
def test_registering_a_model_compiles_it_and_records_its_sha256(settings, tmp_path, tiny_models):
    from training.services import model_version_register

    settings.TRAINING_ARTIFACTS_DIR = tmp_path
    settings.EMOTIONS_BACKEND = "emotions.classifier.LiteRTClassifier"
    (tmp_path / "run1").mkdir()
    path = Path(shutil.copy(tiny_models["a"].path, tmp_path / "run1" / "best.keras"))

    version = model_version_register(
        name="tiny-run1", architecture="tiny", path=path, metrics={}, activate=True
    )

    version.refresh_from_db()
    assert version.is_active
    assert version.litert_path == "run1/best.tflite"
    assert version.litert_sha256 == file_sha256(tmp_path / "run1" / "best.tflite")
    assert version.litert_max_abs_diff <= LITERT_TOLERANCE and version.litert_error == ""
    assert version.litert_problem() is None


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_engine_swaps_between_compiled_models_as_they_are_activated(litert_engine, tiny_compiled):
    registered("a", tiny_compiled["a"]).activate()
    before = emotion_engine().batcher.classify_sync(FACES, timeout=60)
    assert emotion_engine().classifier.version == "a"

    registered("b", tiny_compiled["b"]).activate()
    emotion_engine_reload()
    after = emotion_engine().batcher.classify_sync(FACES, timeout=60)

    assert emotion_engine().classifier.version == "b"
    np.testing.assert_allclose(before, keras_outputs(tiny_compiled["a"].keras, FACES), atol=1e-5)
    np.testing.assert_allclose(after, keras_outputs(tiny_compiled["b"].keras, FACES), atol=1e-5)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_engine_keeps_the_old_model_when_the_new_litert_file_was_altered(litert_engine, tiny_compiled):
    registered("a", tiny_compiled["a"]).activate()
    emotion_engine().batcher.classify_sync(FACES, timeout=60)
    registered("altered", tiny_compiled["b"], litert_sha256="f" * 64).activate()  # the registry edited

    state = emotion_engine_reload()
    probabilities = emotion_engine().batcher.classify_sync(FACES, timeout=60)

    assert state["version"] == "a" and "SHA-256" in state["error"]
    np.testing.assert_allclose(probabilities, keras_outputs(tiny_compiled["a"].keras, FACES), atol=1e-5)
    assert "SHA-256" in emotion_model_status()["problem"]


@pytest.mark.slow
def test_compiling_a_mirror_averaged_model_writes_its_one_view_file_and_a_plain_model_none(tmp_path):
    from emotions.compile import compile_model, one_view_path
    from tests.emotions.conftest import build_tiny_model
    from training.trainer import mirror_averaged

    path = tmp_path / "m.keras"
    model = mirror_averaged(build_tiny_model(3))
    model.save(path)

    compiled = compile_model(path, int8=False)
    served = LiteRTClassifier(compiled.path, sha256=compiled.sha256)
    face, mirrored = served.predict_view(FACES, mirrored=False), served.predict_view(FACES, mirrored=True)

    assert compiled.one_view["model"] == "m.view.tflite" == one_view_path(path).name
    assert compiled.one_view["sha256"] == file_sha256(one_view_path(path))
    assert json.loads(path.with_suffix(".litert.json").read_text())["one_view"] == compiled.one_view
    assert served.views
    expected = np.asarray(model(FACES, training=False))
    np.testing.assert_allclose((face + mirrored) / 2, expected, atol=LITERT_TOLERANCE)
    assert np.abs(face - mirrored).max() > 1e-4

    build_tiny_model(4).save(path)  # the same file, now a model that never looks at a mirror image
    recompiled = compile_model(path, int8=False)

    assert recompiled.one_view is None and not one_view_path(path).exists()
    assert "one_view" not in json.loads(path.with_suffix(".litert.json").read_text())
    assert not LiteRTClassifier(recompiled.path, sha256=recompiled.sha256).views


def test_compiling_refuses_a_file_that_differs_more_than_allowed_and_leaves_nothing(tmp_path, tiny_models):
    from emotions.compile import CompileError, compile_model

    path = Path(shutil.copy(tiny_models["a"].path, tmp_path / "a.keras"))

    with pytest.raises(CompileError, match="differs from a.keras"):
        compile_model(path, tolerance=-1.0)

    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.keras"]


def quantizable_model(seed: int = 3):
    """A small mirror-averaged model with weights enough to be quantized (the converter leaves tensors
    under 1,024 values float32)."""
    import keras
    from keras import layers

    from training.trainer import mirror_averaged

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((48, 48, 1))
    x = layers.Conv2D(8, 3, strides=2, activation="relu")(inputs)
    x = layers.Conv2D(16, 3, strides=2, activation="relu")(x)  # 1,152 weights
    outputs = layers.Dense(7, activation="softmax")(layers.Flatten()(x))
    return mirror_averaged(keras.Model(inputs, outputs))


@pytest.fixture(scope="module")
def both_weights(tmp_path_factory):
    """A model compiled with float32 and int8 weights, each with its one-view file."""
    from emotions.compile import compile_model

    folder = tmp_path_factory.mktemp("both")
    model = quantizable_model()
    model.save(folder / "q.keras")
    compiled = compile_model(folder / "q.keras")
    return folder, compiled, np.asarray(model(FACES, training=False))


@pytest.mark.slow
def test_compiling_writes_float32_weights_and_beside_them_int8_ones_each_with_its_one_view_file(both_weights):
    from emotions import compile as compiling

    folder, compiled, expected = both_weights
    record = json.loads((folder / "q.litert.json").read_text())

    assert compiled.weights == record["weights"] == "float32" and compiled.path.name == "q.tflite"
    assert not compiling._has_int8_weights(compiled.path)
    assert compiled.max_abs_diff <= LITERT_TOLERANCE == record["tolerance"]
    int8 = record["int8"]
    assert int8["model"] == "q.int8.tflite" and int8["sha256"] == file_sha256(folder / "q.int8.tflite")
    assert compiling._has_int8_weights(folder / "q.int8.tflite")
    assert LITERT_TOLERANCE < int8["max_abs_diff"] <= int8["tolerance"] == LITERT_INT8_TOLERANCE
    assert int8["one_view"]["model"] == "q.int8.view.tflite"
    assert int8["one_view"]["sha256"] == file_sha256(folder / "q.int8.view.tflite")
    assert set(record["timed_ms_per_face"]) == {"int8", "float32"}  # on the machine that compiled it
    said = compiled.summary()  # what compile_model and the training commands print
    assert said.endswith(f"; and q.int8.tflite (int8 weights, within {int8['max_abs_diff']:.2g})")
    assert sorted(p.name for p in folder.iterdir()) == [
        "q.int8.tflite",
        "q.int8.view.tflite",
        "q.keras",
        "q.litert.json",
        "q.tflite",
        "q.view.tflite",
    ]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("weights", "timed", "served_file"),
    [
        ("float32", None, "q.tflite"),
        ("int8", None, "q.int8.tflite"),
        ("auto", {"float32": 0.6, "int8": 0.2}, "q.int8.tflite"),  # int8 dot products (AVX-512 VNNI)
        ("auto", {"float32": 0.6, "int8": 0.58}, "q.tflite"),  # AVX2 alone: no faster
    ],
)
def test_a_process_serves_the_weights_asked_for_or_the_faster_here(
    both_weights, monkeypatch, weights, timed, served_file
):
    from emotions import classifier as classifying

    folder, compiled, expected = both_weights
    asked = []

    def lone_face_ms(runners):
        asked.append(sorted(runners))
        return timed

    monkeypatch.setattr(classifying, "_lone_face_ms", lone_face_ms)

    served = LiteRTClassifier(compiled.path, sha256=compiled.sha256, weights=weights)
    probabilities = served.predict(FACES)
    face, mirrored = served.predict_view(FACES, mirrored=False), served.predict_view(FACES, mirrored=True)

    assert served.served_path == folder / served_file and served.views
    assert asked == ([["float32", "int8"]] if weights == "auto" else [])
    assert served.timed_ms_per_face == (timed or {})
    allowed = LITERT_TOLERANCE if served_file == "q.tflite" else LITERT_INT8_TOLERANCE
    np.testing.assert_allclose(probabilities, expected, atol=allowed)
    np.testing.assert_allclose((face + mirrored) / 2, expected, atol=allowed)
    if served_file == "q.int8.tflite":
        assert np.abs(probabilities - expected).max() > LITERT_TOLERANCE  # int8 weights indeed


@pytest.mark.slow
def test_an_int8_file_that_is_not_the_one_compiled_is_not_served(both_weights, tmp_path, caplog):
    folder, compiled, expected = both_weights
    copy = Path(shutil.copytree(folder, tmp_path / "copy"))
    (copy / "q.int8.tflite").write_bytes((copy / "q.int8.view.tflite").read_bytes())  # another model

    served = LiteRTClassifier(copy / "q.tflite", sha256=compiled.sha256, weights="int8")

    assert served.served_path == copy / "q.tflite"
    np.testing.assert_allclose(served.predict(FACES), expected, atol=LITERT_TOLERANCE)
    assert "without its int8 file" in caplog.text and "SHA-256" in caplog.text


def test_weights_other_than_auto_float32_or_int8_are_refused():
    with pytest.raises(ValueError, match="weights must be one of auto, float32, int8"):
        LiteRTClassifier(weights="int4")


@pytest.mark.slow
def test_compiling_falls_back_to_float32_weights_when_int8_ones_differ_too_much(
    tmp_path, tiny_models, monkeypatch
):
    from emotions import compile as compiling

    path = Path(shutil.copy(tiny_models["a"].path, tmp_path / "a.keras"))
    monkeypatch.setattr(compiling, "LITERT_INT8_TOLERANCE", -1.0)  # no int8 file can pass

    compiled = compiling.compile_model(path)

    assert compiled.weights == "float32" and compiled.max_abs_diff <= LITERT_TOLERANCE == compiled.tolerance
    assert compiled.int8 is None and not (tmp_path / "a.int8.tflite").exists()
    assert "int8" not in json.loads((tmp_path / "a.litert.json").read_text())


@pytest.mark.slow
def test_the_compile_command_writes_the_litert_file_and_its_record(tmp_path, tiny_models, capsys):
    path = Path(shutil.copy(tiny_models["b"].path, tmp_path / "b.keras"))

    call_command("compile_model", str(path))

    record = json.loads((tmp_path / "b.litert.json").read_text())
    assert record["sha256"] == file_sha256(tmp_path / "b.tflite")
    assert record["source_sha256"] == file_sha256(path)
    assert record["max_abs_diff"] <= LITERT_TOLERANCE
    said = capsys.readouterr().out
    assert f"wrote {tmp_path / 'b.tflite'} (float32 weights" in said
    # The file with int8 weights beside it is named where it passed its tolerance (tiny models may fail it).
    assert ("; and b.int8.tflite (int8 weights, within" in said) == ("int8" in record)
