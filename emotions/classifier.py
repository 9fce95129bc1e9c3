"""Expression classifiers: the Keras one that serves, and a hot-swapping holder around any backend.

A backend implements :class:`Classifier`: ``predict`` maps ``(n, 48, 48, 1)``
float32 faces in [0, 1] to ``(n, 7)`` float32 probabilities in the order of
:data:`emotions.labels.EMOTIONS`, ``load`` replaces its model, ``version`` names
it. TensorFlow is imported lazily, on the first load.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from emotions.labels import NUM_CLASSES
from emotions.preprocessing import INPUT_SHAPE

logger = logging.getLogger(__name__)

NO_VERSION = "none"


class ModelFileError(Exception):
    """A model file that is missing, altered, corrupt or of the wrong shape."""


class ModelUnavailable(RuntimeError):
    """No model is loaded, so faces cannot be classified."""


class Classifier(Protocol):
    version: str

    def load(self, path: str | Path, *, sha256: str | None = None, version: str | None = None) -> None:
        """Replace the model with the one at ``path``, keeping the old one if this fails."""
        ...

    def predict(self, faces: np.ndarray) -> np.ndarray:
        """Return (n, 7) float32 probabilities for (n, 48, 48, 1) float32 faces in [0, 1]."""
        ...


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """Which model file to serve: a path, the SHA-256 recorded for it (if any) and a label."""

    path: Path
    sha256: str | None = None
    version: str = ""


def file_sha256(path: str | Path) -> str:
    """Return the hex SHA-256 of a file."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


KERAS_ARCHIVE_MEMBERS = ("config.json", "model.weights.h5")


def keras_file_problem(path: str | Path, *, sha256: str | None = None) -> str | None:
    """Return why the ``.keras`` file at ``path`` cannot be served (altered, corrupt), or None.

    Imports no TensorFlow: it checks the recorded SHA-256 and the zip archive, not the model in it.
    """
    path = Path(path)
    if path.suffix != ".keras":
        return f"{path.name} is not a .keras file"
    if not path.is_file():
        return f"{path.name} does not exist"
    if sha256:
        actual = file_sha256(path)
        if actual != sha256.lower():
            return f"{path.name} has SHA-256 {actual}, but the registry records {sha256}"
    # A .keras file is a zip archive; testzip() checks every member's CRC, so damage anywhere shows.
    try:
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        return f"{path.name} is not a readable Keras archive ({exc})"
    if damaged is not None:
        return f"{path.name} is corrupt: its member {damaged} fails its checksum"
    missing = [name for name in KERAS_ARCHIVE_MEMBERS if name not in names]
    if missing:
        return f"{path.name} is not a Keras model archive: it lacks {', '.join(missing)}"
    return None


def check_faces(faces: np.ndarray) -> np.ndarray:
    """Return ``faces`` as (n, 48, 48, 1) float32, or raise ValueError."""
    faces = np.asarray(faces, dtype=np.float32)
    if faces.ndim != 4 or faces.shape[1:] != INPUT_SHAPE:
        raise ValueError(f"expected faces of shape (n, 48, 48, 1), got {faces.shape}")
    return faces


_tensorflow_ready = threading.Lock()
_tensorflow_configured = False


def configure_tensorflow() -> Any:
    """Import and return TensorFlow, set up for serving: one thread per op, GPU memory growth on."""
    global _tensorflow_configured
    # Small convnets gain nothing from intra-op threads, and on a few shared cores their
    # spinning doubles the time of a batch; concurrency comes from batching instead.
    # Both variables are TensorFlow's own and can be set in the environment.
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
    os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")
    import tensorflow as tf

    with _tensorflow_ready:
        if not _tensorflow_configured:
            for gpu in tf.config.list_physical_devices("GPU"):
                try:
                    tf.config.experimental.set_memory_growth(gpu, True)
                except RuntimeError:
                    # Too late: another part of the process already initialised the GPU.
                    logger.warning("could not turn on memory growth for %s", gpu.name)
            _tensorflow_configured = True
    return tf


class KerasClassifier:
    """Serve one ``.keras`` model made by Attune's training pipeline through a compiled function."""

    needs_model_file = True

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        sha256: str | None = None,
        version: str | None = None,
        warmup_batch_sizes: Sequence[int] = (1, 8, 32),
    ) -> None:
        self.warmup_batch_sizes = tuple(warmup_batch_sizes)
        # The compiled function and its label change together, in one assignment.
        self._served: tuple[Callable[[np.ndarray], Any] | None, str] = (None, NO_VERSION)
        self._load_lock = threading.Lock()
        if path is not None:
            self.load(path, sha256=sha256, version=version)

    @property
    def version(self) -> str:
        return self._served[1]

    @property
    def loaded(self) -> bool:
        return self._served[0] is not None

    def load(self, path: str | Path, *, sha256: str | None = None, version: str | None = None) -> None:
        """Load, check and warm up the model at ``path``; on any failure keep the current one."""
        path = Path(path)
        with self._load_lock:
            run = self._build(path, sha256)
            self._served = (run, version or path.stem)
        logger.info("serving expression model %s from %s", self.version, path)

    def _build(self, path: Path, sha256: str | None) -> Callable[[np.ndarray], Any]:
        if path.suffix != ".keras":
            raise ModelFileError(f"{path} is not a .keras file")
        if not path.is_file():
            raise ModelFileError(f"model file {path} does not exist")
        if sha256:
            actual = file_sha256(path)
            if actual != sha256.lower():
                raise ModelFileError(f"{path} has SHA-256 {actual}, but the registry records {sha256}")
        tf = configure_tensorflow()
        import keras

        try:
            model = keras.saving.load_model(path, compile=False, safe_mode=True)
        except Exception as exc:  # Keras raises many types for a corrupt or foreign archive
            raise ModelFileError(f"could not load {path}: {exc}") from exc
        input_shape = tuple(model.inputs[0].shape[1:]) if getattr(model, "inputs", None) else None
        if input_shape != INPUT_SHAPE:
            raise ModelFileError(f"{path} takes input {input_shape}, not (n, 48, 48, 1)")

        run = _freeze(
            tf,
            tf.function(
                lambda faces: model(faces, training=False),
                input_signature=[tf.TensorSpec((None, *INPUT_SHAPE), tf.float32)],
            ),
        )
        # Warm-up traces the graph and sizes its buffers before the first visitor waits on it.
        for size in self.warmup_batch_sizes:
            try:
                probabilities = run(np.full((size, *INPUT_SHAPE), 0.5, dtype=np.float32)).numpy()
            except Exception as exc:  # a model that loads but cannot run is just as unusable
                raise ModelFileError(f"{path} failed on a warm-up batch of {size}: {exc}") from exc
            if probabilities.shape != (size, NUM_CLASSES):
                raise ModelFileError(f"{path} returns {probabilities.shape}, not (n, {NUM_CLASSES})")
            if not np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-3) or probabilities.min() < 0:
                raise ModelFileError(f"{path} does not end in a softmax: its outputs are not probabilities")
        return run

    def predict(self, faces: np.ndarray) -> np.ndarray:
        """Return (n, 7) float32 probabilities for (n, 48, 48, 1) float32 faces in [0, 1]."""
        run, _ = self._served
        if run is None:
            raise ModelUnavailable("no expression model is loaded")
        faces = check_faces(faces)
        if len(faces) == 0:
            return np.zeros((0, NUM_CLASSES), dtype=np.float32)
        return np.asarray(run(faces), dtype=np.float32)


def _freeze(tf: Any, function: Any) -> Callable[[np.ndarray], Any]:
    """Return ``function`` with the model's weights folded in as constants, when TensorFlow can."""
    # Constant weights let TensorFlow's graph optimiser fold batch normalisation into the
    # convolutions and fuse ops: a third less time per batch for the small convnets Attune trains.
    try:
        from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

        frozen = convert_variables_to_constants_v2(function.get_concrete_function())
    except Exception as exc:  # an op that cannot be frozen only costs speed
        logger.info("serving the model unfrozen: %s", exc)
        return function
    return lambda faces: frozen(tf.constant(faces, dtype=tf.float32))[0]


class HotSwapClassifier:
    """Serve a backend's model, and load the one ``resolve`` names whenever it changes.

    ``resolve`` is asked at most every ``check_interval_s``, from the thread that
    calls :meth:`predict`. A new model loads in a background thread while the
    current one keeps serving; a model that fails to load is logged and skipped
    until ``resolve`` names another or :meth:`refresh` is forced.
    """

    def __init__(
        self,
        backend: Classifier,
        resolve: Callable[[], ModelSpec | None],
        *,
        check_interval_s: float = 2.0,
        first_load_timeout_s: float = 120.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.backend = backend
        self.resolve = resolve
        self.check_interval_s = check_interval_s
        self.first_load_timeout_s = first_load_timeout_s
        self.clock = clock
        self.serving: ModelSpec | None = None
        self.error: str | None = None
        self._failed: ModelSpec | None = None
        self._pending: ModelSpec | None = None
        self._in_progress: ModelSpec | None = None
        self._loader: threading.Thread | None = None
        self._starter: threading.Thread | None = None
        self._lock = threading.Lock()
        self._next_check = float("-inf")

    @property
    def version(self) -> str:
        return self.backend.version if self.serving or not self.needs_model_file else NO_VERSION

    @property
    def loading(self) -> bool:
        return self._loader is not None

    @property
    def needs_model_file(self) -> bool:
        return getattr(self.backend, "needs_model_file", True)

    def start(self) -> None:
        """Find and load the first model in a background thread."""
        self._starter = threading.Thread(
            target=self.refresh, kwargs={"wait": True}, name="attune-model-start", daemon=True
        )
        self._starter.start()

    def refresh(self, *, spec: ModelSpec | None = None, force: bool = False, wait: bool = False) -> None:
        """Start loading ``spec`` (by default the model ``resolve`` names) if it is not served yet."""
        self._next_check = self.clock() + self.check_interval_s
        if spec is None:
            try:
                spec = self.resolve()
            except Exception as exc:  # e.g. the database is down: keep serving what we have
                logger.warning("could not find out which expression model to serve: %s", exc)
                self.error = f"could not find out which model to serve: {exc}"
                return
        with self._lock:
            if spec is None:
                self.error = "no expression model is configured"
            elif spec == self.serving and not force:
                self.error = None
            elif force or spec not in (self._failed, self._pending, self._in_progress):
                self._pending = spec
                if self._loader is None:
                    self._loader = threading.Thread(
                        target=self._load_pending, name="attune-model-loader", daemon=True
                    )
                    self._loader.start()
            loader = self._loader
        if wait and loader is not None:
            loader.join()

    def _load_pending(self) -> None:
        while True:
            with self._lock:
                spec, self._pending = self._pending, None
                self._in_progress = spec
                if spec is None:
                    self._loader = None
                    return
            try:
                self.backend.load(spec.path, sha256=spec.sha256, version=spec.version or None)
            except Exception as exc:  # whatever went wrong, the current model keeps serving
                logger.error("could not load expression model %s: %s", spec.path, exc)
                with self._lock:
                    self._failed, self.error = spec, str(exc)
            else:
                with self._lock:
                    self.serving, self._failed, self.error = spec, None, None

    def predict(self, faces: np.ndarray) -> np.ndarray:
        """Return (n, 7) float32 probabilities for (n, 48, 48, 1) float32 faces, after a due check."""
        if self.clock() >= self._next_check:
            self.refresh()
        if self.serving is None and self.needs_model_file:
            # The first model may still be loading; later swaps never make a caller wait.
            for attribute in ("_starter", "_loader"):
                thread = getattr(self, attribute)
                if thread is not None:
                    thread.join(self.first_load_timeout_s)
            if self.serving is None:
                raise ModelUnavailable(self.error or "the expression model is still loading")
        return self.backend.predict(faces)

    def status(self) -> dict[str, Any]:
        """Return what is served, what is loading and the last error, for health checks."""
        serving = self.serving
        return {
            "state": "ready"
            if serving or not self.needs_model_file
            else ("loading" if self.loading else "unavailable"),
            "version": self.version,
            "path": str(serving.path) if serving else None,
            "loading": self.loading,
            "error": self.error,
        }
