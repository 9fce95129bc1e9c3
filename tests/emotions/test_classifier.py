from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from emotions.classifier import (
    HotSwapClassifier,
    KerasClassifier,
    ModelFileError,
    ModelSpec,
    ModelUnavailable,
    file_sha256,
)
from emotions.fake import FakeClassifier
from tests.emotions.conftest import build_tiny_model

REPO = Path(__file__).resolve().parents[2]


def faces(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, 48, 48, 1), dtype=np.float32)


# --- KerasClassifier, with tiny real models -------------------------------------------------


@pytest.fixture(scope="module")
def classifier(tiny_models) -> KerasClassifier:
    model = tiny_models["a"]
    return KerasClassifier(model.path, sha256=model.sha256, version="a")


@pytest.mark.slow
@pytest.mark.parametrize("n", [1, 3, 8, 32, 33])
def test_it_returns_a_row_of_probabilities_per_face(classifier, n):
    probabilities = classifier.predict(faces(n))

    assert probabilities.shape == (n, 7)
    assert probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.slow
def test_it_gives_the_same_output_twice(classifier):
    batch = faces(8, seed=1)

    np.testing.assert_array_equal(classifier.predict(batch), classifier.predict(batch))


@pytest.mark.slow
def test_it_computes_what_the_keras_model_computes(classifier, tiny_models):
    batch = faces(5, seed=2)

    expected = np.asarray(tiny_models["a"].model(batch, training=False))

    np.testing.assert_allclose(classifier.predict(batch), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_it_classifies_each_face_independently_of_its_batch(classifier):
    batch = faces(8, seed=3)

    alone = np.concatenate([classifier.predict(batch[i : i + 1]) for i in range(8)])

    np.testing.assert_allclose(classifier.predict(batch), alone, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_it_returns_an_empty_result_for_no_faces(classifier):
    assert classifier.predict(np.zeros((0, 48, 48, 1), dtype=np.float32)).shape == (0, 7)


@pytest.mark.slow
def test_it_names_the_served_version(classifier):
    assert classifier.version == "a"
    assert classifier.loaded


def test_it_refuses_faces_of_the_wrong_shape():
    with pytest.raises(ValueError):
        FakeClassifier().predict(np.zeros((2, 64, 64, 1), dtype=np.float32))


@pytest.mark.slow
def test_it_refuses_a_file_whose_sha256_differs_from_the_registry(tiny_models):
    with pytest.raises(ModelFileError, match="SHA-256"):
        KerasClassifier(tiny_models["a"].path, sha256="0" * 64)


def test_it_refuses_a_missing_file(tmp_path):
    with pytest.raises(ModelFileError, match="does not exist"):
        KerasClassifier(tmp_path / "missing.keras")


def test_it_refuses_a_file_that_is_not_a_keras_archive_by_name(tmp_path):
    path = tmp_path / "model.h5"
    path.write_bytes(b"\x89HDF\r\n")

    with pytest.raises(ModelFileError, match="not a .keras file"):
        KerasClassifier(path)


@pytest.mark.slow
def test_it_refuses_a_corrupt_file(tmp_path):
    path = tmp_path / "corrupt.keras"
    path.write_bytes(b"PK\x03\x04 not really a zip archive")

    with pytest.raises(ModelFileError, match="could not load"):
        KerasClassifier(path)


@pytest.mark.slow
@pytest.mark.parametrize(
    "shape", [{"input_shape": (64, 64, 1)}, {"classes": 5}], ids=["wrong input", "wrong output"]
)
def test_it_refuses_a_model_of_the_wrong_shape(tmp_path, shape):
    path = tmp_path / "odd.keras"
    build_tiny_model(3, **shape).save(path)

    with pytest.raises(ModelFileError):
        KerasClassifier(path)


@pytest.mark.slow
def test_it_keeps_serving_the_previous_model_when_a_reload_fails(tiny_models, tmp_path):
    served = KerasClassifier(tiny_models["a"].path, version="a")
    batch = faces(4, seed=4)
    before = served.predict(batch)
    broken = tmp_path / "broken.keras"
    broken.write_bytes(b"garbage")

    with pytest.raises(ModelFileError):
        served.load(broken, version="broken")

    assert served.version == "a"
    np.testing.assert_array_equal(served.predict(batch), before)


@pytest.mark.slow
def test_it_serves_the_new_model_after_a_reload(tiny_models):
    served = KerasClassifier(tiny_models["a"].path, version="a")
    batch = faces(4, seed=5)

    served.load(tiny_models["b"].path, sha256=tiny_models["b"].sha256, version="b")

    assert served.version == "b"
    expected = np.asarray(tiny_models["b"].model(batch, training=False))
    np.testing.assert_allclose(served.predict(batch), expected, rtol=1e-5, atol=1e-6)


def test_it_is_unavailable_before_a_model_is_loaded():
    with pytest.raises(ModelUnavailable):
        KerasClassifier().predict(faces(1))


def test_it_hashes_files_like_the_registry(tmp_path):
    path = tmp_path / "x.bin"
    path.write_bytes(b"abc")

    assert file_sha256(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_it_imports_no_tensorflow_until_a_model_is_loaded():
    code = (
        "import sys\n"
        "import emotions.batcher, emotions.classifier, emotions.decoder, emotions.detector\n"
        "import emotions.fake, emotions.mood, emotions.pipeline\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'imported'\n"
        "assert 'django' not in sys.modules, 'the ML modules must not import Django'\n"
    )

    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=60)


# --- FakeClassifier -----------------------------------------------------------------------------


def test_the_fake_classifies_by_the_brightest_band_of_rows():
    face = np.zeros((1, 48, 48, 1), dtype=np.float32)
    face[0, 21:27] = 1.0  # the fourth of seven bands: "happy"

    probabilities = FakeClassifier().predict(face)

    assert probabilities.argmax() == 3
    np.testing.assert_allclose(probabilities.sum(), 1.0, atol=1e-6)


def test_the_fake_treats_each_face_on_its_own():
    fake = FakeClassifier()
    batch = faces(6, seed=6)

    alone = np.concatenate([fake.predict(batch[i : i + 1]) for i in range(6)])

    np.testing.assert_allclose(fake.predict(batch), alone, rtol=1e-6)
    assert fake.batch_sizes == [1] * 6 + [6]


# --- HotSwapClassifier, with the fake backend ---------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class RecordingBackend(FakeClassifier):
    """The fake, made to need a file and to fail on paths named "broken"."""

    needs_model_file = True

    def __init__(self) -> None:
        super().__init__()
        self.version = "none"
        self.loads: list[str] = []
        self.asked: list[float] = []

    def load(self, path, *, sha256=None, version=None) -> None:
        if "broken" in str(path):
            raise ModelFileError(f"{path} is broken")
        self.loads.append(str(path))
        super().load(path, sha256=sha256, version=version)


def hot_swap(specs: list[ModelSpec | None], clock: Clock) -> tuple[HotSwapClassifier, RecordingBackend]:
    backend = RecordingBackend()

    def resolve() -> ModelSpec | None:
        backend.asked.append(clock.now)
        return specs[-1]

    return HotSwapClassifier(backend, resolve, check_interval_s=2.0, clock=clock), backend


def test_it_loads_the_first_model_before_the_first_batch():
    clock = Clock()
    swapper, backend = hot_swap([ModelSpec(Path("a.keras"), version="a")], clock)

    swapper.predict(faces(1))

    assert swapper.version == "a"
    assert backend.loads == ["a.keras"]


def test_it_asks_for_the_wanted_model_at_most_every_interval():
    clock = Clock()
    specs = [ModelSpec(Path("a.keras"), version="a")]
    swapper, backend = hot_swap(specs, clock)
    swapper.predict(faces(1))

    specs.append(ModelSpec(Path("b.keras"), version="b"))
    clock.now = 1.0
    swapper.predict(faces(1))
    clock.now = 2.5
    swapper.predict(faces(1))
    swapper.settle()  # the check and the load the batch started

    assert backend.asked == [0.0, 2.5]
    assert swapper.version == "b"
    assert backend.loads == ["a.keras", "b.keras"]


def test_it_keeps_the_old_model_and_reports_why_when_the_new_one_fails():
    clock = Clock()
    specs = [ModelSpec(Path("a.keras"), version="a")]
    swapper, backend = hot_swap(specs, clock)
    swapper.predict(faces(1))

    specs.append(ModelSpec(Path("broken.keras"), version="broken"))
    swapper.refresh(wait=True)
    clock.now = 10.0
    swapper.predict(faces(1))
    swapper.refresh(wait=True)

    assert swapper.version == "a"
    assert "broken" in swapper.status()["error"]
    assert swapper.status()["state"] == "ready"
    assert backend.loads == ["a.keras"]


def test_it_explains_why_no_model_can_be_served():
    swapper, _ = hot_swap([ModelSpec(Path("broken.keras"))], Clock())

    with pytest.raises(ModelUnavailable, match="broken"):
        swapper.predict(faces(1))
    assert swapper.status()["state"] == "unavailable"


def test_it_keeps_serving_when_the_registry_cannot_be_read():
    clock = Clock()
    specs = [ModelSpec(Path("a.keras"), version="a")]
    swapper, _ = hot_swap(specs, clock)
    swapper.predict(faces(1))

    def unreachable() -> ModelSpec:
        raise ConnectionError("database is down")

    swapper.resolve = unreachable
    clock.now = 5.0
    probabilities = swapper.predict(faces(1))
    swapper.settle()

    assert probabilities.shape == (1, 7)
    assert "database is down" in swapper.status()["error"]


def test_the_registry_is_asked_outside_an_event_loop_that_classifies():
    # A process on one core classifies in its event loop, where Django's ORM refuses to run: the
    # question goes to a thread of its own, and the frame does not wait for the answer.
    import asyncio

    from django.utils.asyncio import async_unsafe

    clock = Clock()
    specs = [ModelSpec(Path("a.keras"), version="a")]
    swapper, backend = hot_swap(specs, clock)
    swapper.resolve = async_unsafe(swapper.resolve)  # what a query does in an event loop

    async def stream_frames() -> None:
        swapper.predict(faces(1))
        specs.append(ModelSpec(Path("b.keras"), version="b"))
        clock.now = 2.5
        swapper.predict(faces(1))  # still "a": the check and the load run beside it

    asyncio.run(stream_frames())
    swapper.settle()

    assert swapper.status()["error"] is None
    assert swapper.version == "b"
    assert backend.asked == [0.0, 2.5]
    assert backend.loads == ["a.keras", "b.keras"]


def test_it_serves_a_backend_that_needs_no_file_at_once():
    swapper = HotSwapClassifier(FakeClassifier(), lambda: None)

    assert swapper.predict(faces(2)).shape == (2, 7)
    assert swapper.version == "fake"
