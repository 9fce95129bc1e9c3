"""Expression classifiers: LiteRT and Keras backends, and a hot-swapping holder around any backend.

A backend implements :class:`Classifier`: ``predict`` maps ``(n, 48, 48, 1)``
float32 faces in [0, 1] to ``(n, 7)`` float32 probabilities in the order of
:data:`emotions.labels.EMOTIONS`, ``load`` replaces its model, ``version`` names
it, ``model_format`` says which of a model's files it loads. :class:`LiteRTClassifier`
serves the ``.tflite`` file compiled from a model (:mod:`emotions.compile`) with
LiteRT and XNNPACK, and never imports TensorFlow; :class:`KerasClassifier` serves
the ``.keras`` file and imports TensorFlow lazily, on the first load.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import queue
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
# The files of one model: the .keras file training writes, and the .tflite file compiled from it.
KERAS = "keras"
LITERT = "litert"
# Largest difference between LiteRT's and Keras's probabilities on the sample faces a compiled
# file may show; above it the file is refused. A file with float32 weights differs by about 1e-7.
# One with int8 weights (dynamic-range quantization: XNNPACK multiplies int8 weights by activations
# quantized on the fly, about 3.5 times faster on an AVX2 CPU) differs more: the shipped model by 0.017,
# naming the same class for 99.3 % of val faces, with the same accuracy to 0.1 point.
LITERT_TOLERANCE = 1e-4
LITERT_INT8_TOLERANCE = 0.05
# Which weights a LiteRT classifier serves when its model was compiled with both (emotions.compile):
# "auto" times the two on this machine when the model loads and serves int8 ones only where they
# classify a face in at most INT8_MUST_SAVE of float32's time (3.4 times faster on an AMD EPYC with
# AVX-512 VNNI, no faster on an AVX2-only one); float32 ones answer as Keras does to 1e-5.
LITERT_WEIGHTS = ("auto", "float32", "int8")
INT8_MUST_SAVE = 0.9


class ModelFileError(Exception):
    """A model file that is missing, altered, corrupt or of the wrong shape."""


class ModelUnavailable(RuntimeError):
    """No model is loaded, so faces cannot be classified."""


class Classifier(Protocol):
    version: str
    # Which file of a model ``load`` takes: KERAS or LITERT (a backend without it takes the .keras one).
    model_format: str

    def load(self, path: str | Path, *, sha256: str | None = None, version: str | None = None) -> None:
        """Replace the model with the one at ``path``, keeping the old one if this fails."""
        ...

    def predict(self, faces: np.ndarray) -> np.ndarray:
        """Return (n, 7) float32 probabilities for (n, 48, 48, 1) float32 faces in [0, 1]."""
        ...


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """Which model to serve: its ``.keras`` file, its compiled ``.tflite`` file, their SHA-256s and a label.

    ``litert_path`` is None when the model has no verified LiteRT file; ``litert_problem`` says why.
    """

    path: Path
    sha256: str | None = None
    version: str = ""
    litert_path: Path | None = None
    litert_sha256: str | None = None
    litert_problem: str = ""

    def file_for(self, model_format: str) -> tuple[Path, str | None]:
        """Return the file a backend loading ``model_format`` serves, and its recorded SHA-256."""
        if model_format != LITERT:
            return self.path, self.sha256
        if self.litert_path is None:
            raise ModelFileError(
                f"{self.version or self.path.name} has no LiteRT file to serve "
                f"({self.litert_problem or 'it was never compiled'}); compile it with "
                "`manage.py compile_model`, or serve it with the Keras backend"
            )
        return self.litert_path, self.litert_sha256


def file_sha256(path: str | Path) -> str:
    """Return the hex SHA-256 of a file."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


KERAS_ARCHIVE_MEMBERS = ("config.json", "model.weights.h5")


def _recorded_file_problem(path: Path, *, suffix: str, sha256: str | None) -> str | None:
    """Return why ``path`` is not the ``suffix`` file the registry recorded (kind, existence, SHA-256)."""
    if path.suffix != suffix:
        return f"{path.name} is not a {suffix} file"
    if not path.is_file():
        return f"{path.name} does not exist"
    if sha256:
        actual = file_sha256(path)
        if actual != sha256.lower():
            return f"{path.name} has SHA-256 {actual}, but the registry records {sha256}"
    return None


def keras_file_problem(path: str | Path, *, sha256: str | None = None) -> str | None:
    """Return why the ``.keras`` file at ``path`` cannot be served (altered, corrupt), or None.

    Imports no TensorFlow: it checks the recorded SHA-256 and the zip archive, not the model in it.
    """
    path = Path(path)
    problem = _recorded_file_problem(path, suffix=".keras", sha256=sha256)
    if problem is not None:
        return problem
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


# A .tflite file is a FlatBuffer whose file identifier, at bytes 4 to 8, is "TFL3".
TFLITE_IDENTIFIER = b"TFL3"


def litert_file_problem(path: str | Path, *, sha256: str | None = None) -> str | None:
    """Return why the ``.tflite`` file at ``path`` cannot be served (missing, altered, not LiteRT), or None.

    Imports no LiteRT: it checks the recorded SHA-256 and the FlatBuffer's identifier, not the model in it.
    """
    path = Path(path)
    problem = _recorded_file_problem(path, suffix=".tflite", sha256=sha256)
    if problem is not None:
        return problem
    with open(path, "rb") as handle:
        header = handle.read(8)
    if header[4:8] != TFLITE_IDENTIFIER:
        return f"{path.name} is not a LiteRT model (no {TFLITE_IDENTIFIER.decode()} identifier)"
    return None


def litert_record_path(keras_path: str | Path) -> Path:
    """Return the path of the record of ``keras_path``'s compiled LiteRT file: ``<stem>.litert.json``."""
    return Path(keras_path).with_suffix(".litert.json")


def litert_record_read(keras_path: str | Path) -> tuple[Path | None, str | None, str]:
    """Return the verified LiteRT file compiled from ``keras_path``, its SHA-256, and why there is none.

    Reads the record :func:`emotions.compile.compile_model` writes beside a model it compiled, for
    models outside the registry (the shipped default): (path, sha256, "") or (None, None, reason).
    """
    record_path = litert_record_path(keras_path)
    try:
        record = json.loads(record_path.read_text())
        path = record_path.parent / record["model"]
        sha256, max_abs_diff = str(record["sha256"]), float(record["max_abs_diff"])
    except FileNotFoundError:
        return None, None, f"{Path(keras_path).name} was never compiled ({record_path.name} does not exist)"
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return None, None, f"{record_path.name} is unreadable ({type(exc).__name__}: {exc})"
    if not max_abs_diff <= LITERT_INT8_TOLERANCE:
        return (
            None,
            None,
            f"{path.name} differs from Keras by {max_abs_diff:.2g} (over {LITERT_INT8_TOLERANCE:g})",
        )
    return path, sha256, ""


def one_view_record_read(litert_path: str | Path, litert_sha256: str) -> tuple[Path | None, str | None]:
    """Return the one-view file compiled with the LiteRT file at ``litert_path`` and its SHA-256.

    From the record :func:`emotions.compile.compile_model` writes beside the two, and only when
    that record names this very file (``litert_sha256``): (path, sha256), or (None, None) when
    the model has no one-view file (it never looks at a mirror image) or the record does not vouch
    for one. ``litert_path`` may be the int8 file the record names beside the float32 one (see
    :func:`int8_record_read`): then its own one-view file.
    """
    litert_path = Path(litert_path)
    record = _record_vouching(litert_path, litert_sha256)
    if record is None:
        return None, None
    if record.get("sha256") != litert_sha256:  # the int8 file's entry vouched for it
        record = record.get("int8")
    return _recorded_file(litert_path.parent, record.get("one_view") if isinstance(record, dict) else None)


def int8_record_read(litert_path: str | Path, litert_sha256: str) -> tuple[Path | None, str | None]:
    """Return the file with int8 weights compiled beside the float32 LiteRT file at ``litert_path``,
    and its SHA-256: (None, None) when the record beside them does not name this very file
    (``litert_sha256``) or names no int8 file (``compile_model --float32``, or one beyond its tolerance).
    """
    litert_path = Path(litert_path)
    record = _record_vouching(litert_path, litert_sha256)
    if record is None or record.get("sha256") != litert_sha256:
        return None, None
    return _recorded_file(litert_path.parent, record.get("int8"))


def _record_vouching(litert_path: Path, litert_sha256: str) -> dict | None:
    """Return the record beside ``litert_path`` (or beside the float32 file whose int8 file it is) when
    it names the file of ``litert_sha256``; else None."""
    stem = litert_path.name.removesuffix(".tflite").removesuffix(".int8")
    try:
        record = json.loads((litert_path.parent / f"{stem}.litert.json").read_text())
        int8 = record.get("int8")
        vouched = record.get("sha256") == litert_sha256 or (
            isinstance(int8, dict) and int8.get("sha256") == litert_sha256
        )
    except (OSError, ValueError, TypeError, AttributeError):
        return None
    return record if vouched else None


def _recorded_file(folder: Path, entry: Any) -> tuple[Path | None, str | None]:
    """Return the file a record's ``entry`` names in ``folder`` and its SHA-256, or (None, None)."""
    if not entry:
        return None, None
    try:
        name, sha256, max_abs_diff = str(entry["model"]), str(entry["sha256"]), float(entry["max_abs_diff"])
    except (KeyError, TypeError, ValueError):
        return None, None
    if Path(name).name != name or not name.endswith(".tflite") or not max_abs_diff <= LITERT_INT8_TOLERANCE:
        return None, None
    return folder / name, sha256


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


class _ServedModel:
    """A backend whose model and label are swapped together, in one assignment to ``_served``."""

    _served: tuple[Any, str] = (None, NO_VERSION)

    @property
    def version(self) -> str:
        return self._served[1]

    @property
    def loaded(self) -> bool:
        return self._served[0] is not None


class KerasClassifier(_ServedModel):
    """Serve one ``.keras`` model made by Attune's training pipeline through a compiled function."""

    needs_model_file = True
    model_format = KERAS

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

    def load(self, path: str | Path, *, sha256: str | None = None, version: str | None = None) -> None:
        """Load, check and warm up the model at ``path``; on any failure keep the current one."""
        path = Path(path)
        with self._load_lock:
            run = self._build(path, sha256)
            self._served = (run, version or path.stem)
        logger.info("serving expression model %s from %s", self.version, path)

    def _build(self, path: Path, sha256: str | None) -> Callable[[np.ndarray], Any]:
        problem = _recorded_file_problem(path, suffix=".keras", sha256=sha256)
        if problem is not None:
            raise ModelFileError(problem)
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


class _LiteRTRunner:
    """The interpreters of one thread: one kept at batch 1 (the lone face), one resized to other batches."""

    def __init__(self, content: bytes, num_threads: int) -> None:
        self.content = content
        self.num_threads = num_threads
        # The model's one-view file, run the same way (see LiteRTClassifier.predict_view), if it has one.
        self.view: _LiteRTRunner | None = None
        self.single = self._interpreter(1)
        self.batch: Any = None
        self.batch_size = 0
        # Tensor indices stay put when an interpreter is resized; looking them up costs on every call.
        self.input_index = self.single.get_input_details()[0]["index"]
        self.output_index = self.single.get_output_details()[0]["index"]
        # A model whose batch dimension is fixed at 1 cannot be resized: such models run face by face.
        self.resizable = int(self.single.get_input_details()[0]["shape_signature"][0]) == -1

    def _interpreter(self, batch: int) -> Any:
        from ai_edge_litert.interpreter import Interpreter

        # The default op resolver applies XNNPACK, LiteRT's CPU delegate, when tensors are allocated.
        interpreter = Interpreter(model_content=self.content, num_threads=self.num_threads)
        if batch != 1:
            interpreter.resize_tensor_input(
                interpreter.get_input_details()[0]["index"], [batch, *INPUT_SHAPE]
            )
        interpreter.allocate_tensors()
        return interpreter

    def run(self, faces: np.ndarray) -> np.ndarray:
        """Return (n, 7) float32 outputs for (n, 48, 48, 1) float32 faces."""
        count = len(faces)
        if count == 1 or not self.resizable:
            return np.concatenate([self._invoke(self.single, faces[i : i + 1]) for i in range(count)])
        if self.batch is None:
            self.batch, self.batch_size = self._interpreter(count), count
        elif self.batch_size != count:
            # Measured: resizing costs well under a millisecond, about what one face does.
            self.batch.resize_tensor_input(self.input_index, [count, *INPUT_SHAPE])
            self.batch.allocate_tensors()
            self.batch_size = count
        return self._invoke(self.batch, faces)

    def _invoke(self, interpreter: Any, faces: np.ndarray) -> np.ndarray:
        interpreter.set_tensor(self.input_index, faces)
        interpreter.invoke()
        # get_tensor copies, so the next invoke cannot change what this call returns.
        return interpreter.get_tensor(self.output_index)


def delegated_ops(interpreter: Any) -> int:
    """Return how many nodes of an allocated interpreter a delegate (XNNPACK on CPU) runs, -1 if unknown."""
    try:
        ops = interpreter._get_ops_details()  # the one way LiteRT's Python API shows delegation
    except Exception:  # a private method: a future LiteRT may lack it
        return -1
    return sum(1 for op in ops if op.get("op_name") == "DELEGATE")


class LiteRTClassifier(_ServedModel):
    """Serve a ``.tflite`` model compiled from Attune's Keras model, with LiteRT and its XNNPACK delegate.

    Imports LiteRT (``ai_edge_litert``), never TensorFlow. An interpreter runs one call at a time, so
    the classifier holds ``interpreters`` sets of them, one per batch worker thread, each running on
    ``num_threads`` threads; a call takes a free set and waits when all are busy. A set keeps one
    interpreter at batch 1, for the lone face, and one resized to the batch at hand.

    A model that averages each face with its mirror image may come with a one-view file (see
    :mod:`emotions.compile`), loaded beside it when the record next to the two vouches for it:
    :meth:`predict_view` then answers for one side of a face at half the cost of :meth:`predict`.

    A float32 file may come with an int8 one (int8 weights, within
    :data:`LITERT_INT8_TOLERANCE`), which the record vouches for the same way. ``weights``
    (:data:`LITERT_WEIGHTS`) says which is served: "auto" times both on a lone face as streams
    show it (the one-view files where there are some) when the model loads, in turns, and serves
    the int8 one only where it takes at most :data:`INT8_MUST_SAVE` of the float32 one's time.
    Which is faster depends on the CPU (int8 dot products: AVX-512 VNNI, AVX-VNNI, Arm's dotprod).
    """

    needs_model_file = True
    model_format = LITERT
    # A batch of 32 costs what 32 single faces do: faces are classified where they are cut out.
    gains_from_batching = False

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        sha256: str | None = None,
        version: str | None = None,
        num_threads: int = 1,
        interpreters: int = 1,
        warmup_batch_sizes: Sequence[int] = (1, 8),
        weights: str = "auto",
    ) -> None:
        if num_threads < 1 or interpreters < 1:
            raise ValueError("num_threads and interpreters must be at least 1")
        if weights not in LITERT_WEIGHTS:
            raise ValueError(f"weights must be one of {', '.join(LITERT_WEIGHTS)}, got {weights!r}")
        self.num_threads = num_threads
        self.interpreters = interpreters
        self.warmup_batch_sizes = tuple(warmup_batch_sizes)
        self.weights = weights
        self.xnnpack_nodes = 0
        self.views = False  # whether a one-view file is served beside the model
        # The file served (the model's, or the int8 one beside it), and each one's time per lone face
        # here when both were timed.
        self.served_path: Path | None = None
        self.timed_ms_per_face: dict[str, float] = {}
        # The free runners and the label change together, in one assignment.
        self._served: tuple[queue.SimpleQueue | None, str] = (None, NO_VERSION)
        self._load_lock = threading.Lock()
        if path is not None:
            self.load(path, sha256=sha256, version=version)

    @property
    def xnnpack(self) -> bool:
        """Return whether XNNPACK runs the served model (at least one node delegated to it)."""
        return self.xnnpack_nodes > 0

    def load(self, path: str | Path, *, sha256: str | None = None, version: str | None = None) -> None:
        """Load, check and warm up the ``.tflite`` model at ``path``; on any failure keep the current one."""
        path = Path(path)
        with self._load_lock:
            served, timed = self._build(path, sha256)
            runners, views = served.runners, served.runners[0].view is not None
            nodes = delegated_ops(runners[0].single)
            free: queue.SimpleQueue = queue.SimpleQueue()
            for runner in runners:
                free.put(runner)
            self._served, self.xnnpack_nodes, self.views = (free, version or path.stem), nodes, views
            self.served_path, self.timed_ms_per_face = served.path, timed
        delegation = {0: "NOT with XNNPACK", -1: "XNNPACK unknown"}.get(
            nodes, f"XNNPACK runs {nodes} node(s)"
        )
        timings = ", ".join(f"{weights} {ms:.2f} ms" for weights, ms in timed.items())
        logger.info(
            "serving expression model %s from %s with LiteRT: %d interpreter(s) × %d thread(s), %s%s%s",
            self.version,
            served.path,
            self.interpreters,
            self.num_threads,
            delegation,
            ", and its one-view file for streams" if views else "",
            f" (a lone face here: {timings})" if timed else "",
        )

    def _build(self, path: Path, sha256: str | None) -> tuple[_ServedFile, dict[str, float]]:
        """Return the runners of the file to serve for the model at ``path``, and the lone-face timings
        that chose between its float32 and int8 files (empty when there was no choice to make)."""
        content = self._read(path, sha256)
        served = self._served_file(path, content)
        if self.weights == "float32":
            return served, {}
        int8_path, int8_sha256 = int8_record_read(path, served.sha256)
        if int8_path is None:
            return served, {}
        try:
            int8 = self._served_file(int8_path, self._read(int8_path, int8_sha256))
        except ModelFileError as exc:  # costs only speed: the float32 file is served
            logger.warning("serving %s without its int8 file: %s", path.name, exc)
            return served, {}
        if self.weights == "int8":
            return int8, {}
        timed = _lone_face_ms({"float32": served.runners[0], "int8": int8.runners[0]})
        return (int8 if timed["int8"] <= INT8_MUST_SAVE * timed["float32"] else served), timed

    def _served_file(self, path: Path, content: bytes) -> _ServedFile:
        runners = self._runners(path, content)
        sha256 = hashlib.sha256(content).hexdigest()
        views = self._one_view_runners(path, sha256)
        for runner, view in zip(runners, views, strict=True) if views else ():
            runner.view = view
        return _ServedFile(path, sha256, runners)

    def _one_view_runners(self, path: Path, sha256: str) -> list[_LiteRTRunner] | None:
        """Return runners of the one-view file the record beside ``path`` vouches for, or None.

        A one-view file that cannot be served costs only speed: the model is served whole.
        """
        view_path, view_sha256 = one_view_record_read(path, sha256)
        if view_path is None:
            return None
        try:
            return self._runners(view_path, self._read(view_path, view_sha256))
        except ModelFileError as exc:
            logger.warning("serving %s without its one-view file: %s", path.name, exc)
            return None

    @staticmethod
    def _read(path: Path, sha256: str | None) -> bytes:
        if path.suffix != ".tflite":
            raise ModelFileError(f"{path} is not a .tflite file")
        try:
            content = path.read_bytes()
        except OSError as exc:
            raise ModelFileError(f"model file {path} cannot be read: {exc}") from exc
        # The checksum is of the very bytes the interpreters get, not of a file that may change after.
        if sha256 and (actual := hashlib.sha256(content).hexdigest()) != sha256.lower():
            raise ModelFileError(f"{path} has SHA-256 {actual}, but the registry records {sha256}")
        if content[4:8] != TFLITE_IDENTIFIER:
            raise ModelFileError(f"{path} is not a LiteRT model")
        return content

    def _runners(self, path: Path, content: bytes) -> list[_LiteRTRunner]:
        """Return ``interpreters`` runners of ``content``, checked and warmed up."""
        try:
            runners = [_LiteRTRunner(content, self.num_threads) for _ in range(self.interpreters)]
        except Exception as exc:  # LiteRT raises ValueError or RuntimeError for a damaged file
            raise ModelFileError(f"could not load {path}: {exc}") from exc
        inputs = runners[0].single.get_input_details()
        outputs = runners[0].single.get_output_details()
        takes = [(tuple(d["shape"][1:]), d["dtype"]) for d in inputs]
        if takes != [(INPUT_SHAPE, np.float32)]:
            shapes = [tuple(d["shape"]) for d in inputs]
            raise ModelFileError(f"{path} takes input {shapes}, not (n, 48, 48, 1) float32")
        if len(outputs) != 1 or tuple(outputs[0]["shape"][1:]) != (NUM_CLASSES,):
            shapes = [tuple(d["shape"]) for d in outputs]
            raise ModelFileError(f"{path} returns {shapes}, not (n, {NUM_CLASSES})")
        # Warm-up sizes every runner's buffers before the first visitor waits on them.
        for runner in runners:
            for size in self.warmup_batch_sizes:
                try:
                    probabilities = runner.run(np.full((size, *INPUT_SHAPE), 0.5, dtype=np.float32))
                except Exception as exc:  # a model that loads but cannot run is just as unusable
                    raise ModelFileError(f"{path} failed on a warm-up batch of {size}: {exc}") from exc
                if not np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-3) or probabilities.min() < 0:
                    raise ModelFileError(f"{path} does not end in a softmax: it outputs no probabilities")
        return runners

    def predict(self, faces: np.ndarray) -> np.ndarray:
        """Return (n, 7) float32 probabilities for (n, 48, 48, 1) float32 faces in [0, 1]."""
        return self._run(faces, None)

    def predict_view(self, faces: np.ndarray, *, mirrored: bool) -> np.ndarray:
        """Return (n, 7) float32 probabilities for faces seen from one side: as they are, or ``mirrored``.

        With a one-view file, at half the cost of :meth:`predict`, whose answer is the mean of a
        face's two views; without one, :meth:`predict`'s answer.
        """
        return self._run(faces, mirrored)

    def _run(self, faces: np.ndarray, mirrored: bool | None) -> np.ndarray:
        free, _ = self._served
        if free is None:
            raise ModelUnavailable("no expression model is loaded")
        faces = check_faces(faces)
        if len(faces) == 0:
            return np.zeros((0, NUM_CLASSES), dtype=np.float32)
        runner = free.get()
        try:
            if mirrored is None or runner.view is None:
                return runner.run(np.ascontiguousarray(faces))
            return runner.view.run(np.ascontiguousarray(faces[:, :, ::-1, :] if mirrored else faces))
        finally:
            # Back to the queue it came from: after a swap, the old model's runners go with it.
            free.put(runner)


@dataclass(frozen=True)
class _ServedFile:
    path: Path
    sha256: str
    runners: list[_LiteRTRunner]  # with their one-view runners where the file has one


def _lone_face_ms(runners: dict[str, _LiteRTRunner]) -> dict[str, float]:
    """Return the median milliseconds each runner takes for a lone face as a stream shows it (its
    one-view file where it has one), timed in turns (:func:`timed_in_turns`)."""
    face = np.full((1, *INPUT_SHAPE), 0.5, dtype=np.float32)
    return timed_in_turns(
        {key: functools.partial((runner.view or runner).run, face) for key, runner in runners.items()}
    )


def timed_in_turns(
    work: dict[str, Callable[[], object]], *, rounds: int = 5, calls: int = 20
) -> dict[str, float]:
    """Return the median milliseconds of each call in ``work``, timed in turns (``calls`` of one, then
    of the next, ``rounds`` times), so that what else the machine does weighs on each alike."""
    times: dict[str, list[float]] = {key: [] for key in work}
    for _ in range(rounds):
        for key, call in work.items():
            for _ in range(calls):
                started = time.perf_counter()
                call()
                times[key].append(time.perf_counter() - started)
    return {key: round(float(np.median(values)) * 1000, 3) for key, values in times.items()}


class HotSwapClassifier:
    """Serve a backend's model, and load the one ``resolve`` names whenever it changes.

    ``resolve`` is asked at most every ``check_interval_s``, when :meth:`predict` is
    called, in a thread of its own: the caller may be an event loop (a process on one
    core classifies there), where Django refuses to query and a query would hold up
    every stream. A new model loads in a background thread while the current one
    keeps serving; a model that fails to load is logged and skipped until ``resolve``
    names another or :meth:`refresh` is forced.
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
        self._checker: threading.Thread | None = None
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

    @property
    def model_format(self) -> str:
        return getattr(self.backend, "model_format", KERAS)

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

    def _check_in_background(self) -> None:
        with self._lock:
            if self._checker is not None and self._checker.is_alive():
                return
            self._next_check = self.clock() + self.check_interval_s
            self._checker = threading.Thread(target=self.refresh, name="attune-model-check", daemon=True)
            self._checker.start()

    def _load_pending(self) -> None:
        while True:
            with self._lock:
                spec, self._pending = self._pending, None
                self._in_progress = spec
                if spec is None:
                    self._loader = None
                    return
            try:
                path, sha256 = spec.file_for(self.model_format)
                self.backend.load(path, sha256=sha256, version=spec.version or None)
            except Exception as exc:  # whatever went wrong, the current model keeps serving
                logger.error("could not load expression model %s: %s", spec.version or spec.path, exc)
                with self._lock:
                    self._failed, self.error = spec, str(exc)
            else:
                with self._lock:
                    self.serving, self._failed, self.error = spec, None, None

    def predict(self, faces: np.ndarray) -> np.ndarray:
        """Return (n, 7) float32 probabilities for (n, 48, 48, 1) float32 faces, after a due check."""
        self._ready()
        return self.backend.predict(faces)

    def predict_view(self, faces: np.ndarray, *, mirrored: bool) -> np.ndarray:
        """Return the probabilities of faces seen from one side, where the backend serves a one-view
        file (:meth:`LiteRTClassifier.predict_view`); otherwise :meth:`predict`'s."""
        self._ready()
        predict_view = getattr(self.backend, "predict_view", None)
        return self.backend.predict(faces) if predict_view is None else predict_view(faces, mirrored=mirrored)

    def settle(self, timeout_s: float | None = None) -> None:
        """Wait for the first load, the registry check and the load under way, each up to ``timeout_s``."""
        for attribute in ("_starter", "_checker", "_loader"):
            thread = getattr(self, attribute)
            if thread is not None:
                thread.join(timeout_s)

    def _ready(self) -> None:
        if self.clock() >= self._next_check:
            self._check_in_background()
        if self.serving is None and self.needs_model_file:
            # The first model may still be loading; later swaps never make a caller wait.
            self.settle(self.first_load_timeout_s)
            if self.serving is None:
                raise ModelUnavailable(self.error or "the expression model is still loading")

    def status(self) -> dict[str, Any]:
        """Return what is served, what is loading and the last error, for health checks."""
        serving = self.serving
        status = {
            "state": "ready"
            if serving or not self.needs_model_file
            else ("loading" if self.loading else "unavailable"),
            "version": self.version,
            "path": str(serving.file_for(self.model_format)[0]) if serving else None,
            "loading": self.loading,
            "error": self.error,
        }
        if isinstance(self.backend, LiteRTClassifier):
            status["litert"] = {
                "interpreters": self.backend.interpreters,
                "threads": self.backend.num_threads,
                "xnnpack": self.backend.xnnpack,
                "one_view_file": self.backend.views,
                "file": self.backend.served_path.name if self.backend.served_path else None,
                "weights_asked": self.backend.weights,
                "timed_ms_per_face": self.backend.timed_ms_per_face,
            }
        return status
