"""Compile a Keras expression model to LiteRT (``.tflite``) and check that it answers as Keras does.

The web processes serve the compiled file with LiteRT and never import
TensorFlow (:class:`emotions.classifier.LiteRTClassifier`); compiling needs
TensorFlow's converter, so it runs where TensorFlow lives already: the training
worker, when it registers a model, and management commands. TensorFlow is
imported lazily, inside :func:`compile_model`.

A compiled file is written beside its model (``X.keras`` → ``X.tflite``) with a
record, ``X.litert.json``: its SHA-256, the model's, its weights' type, and the
largest difference between the two models' probabilities on :func:`sample_faces`.
Its weights are float32, within :data:`~emotions.classifier.LITERT_TOLERANCE` of
Keras. Beside it, ``X.int8.tflite`` holds int8 weights (dynamic-range quantization),
named in the record under ``int8`` when it stays within
:data:`~emotions.classifier.LITERT_INT8_TOLERANCE`: which of the two serves a face
faster depends on the CPU (3.4 times faster on an AMD EPYC with AVX-512 VNNI, no
faster on an AVX2-only one), so the web processes time both where they run
(:class:`emotions.classifier.LiteRTClassifier`, ``EMOTIONS_LITERT_WEIGHTS``). A model
whose float32 file is beyond its tolerance and int8 one within is served int8 alone,
from ``X.tflite``; a file beyond both is refused.

A model that averages each face's answer with its mirror image's (``mirror_average``,
``ensemble --mirror``) runs its network twice per face. Its answer on the face alone
is compiled too, to ``X.view.tflite`` (and ``X.int8.view.tflite``), named in the record
under ``one_view`` (and the int8 entry's) once the mean of that file's answers on a face
and on its mirror image is checked to be the model's answer. A stream then shows the
model the face on one frame and its mirror image on the next, each at half the cost,
and its mood, a moving average, averages the two views as the model would
(:meth:`emotions.classifier.LiteRTClassifier.predict_view`).
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import logging
import os
import time
import zipfile
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import cv2
import numpy as np

from emotions.classifier import (
    LITERT_INT8_TOLERANCE,
    LITERT_TOLERANCE,
    LiteRTClassifier,
    ModelFileError,
    configure_tensorflow,
    file_sha256,
    keras_file_problem,
    litert_record_path,
    timed_in_turns,
)
from emotions.preprocessing import FACE_SIZE, INPUT_SHAPE

logger = logging.getLogger(__name__)

# The vector instructions /proc/cpuinfo may name that LiteRT's kernels use, as a serving cost states them.
VECTOR_FLAGS = (("avx2", "AVX2"), ("avx512f", "AVX-512"), ("avx512_vnni", "VNNI"), ("amx_int8", "AMX"))

# The layer that turns a face into its mirror image inside a model that averages the two
# (training.trainer.averaged builds it): the answers that do not pass through it are the face's own.
MIRROR_LAYER = "mirror"
# Layers named SHIFT_CROP_<n> cut the face a few pixels off its centre (test-time crops): a stream's
# one-view file leaves them out, its frames' own small movements shifting the face as much.
SHIFT_CROP = "shift_crop"


class CompileError(Exception):
    """A model that could not be compiled to LiteRT, or whose compiled file answers differently."""


@dataclass(frozen=True)
class CompiledModel:
    """A verified LiteRT file: where it is, its SHA-256, and how far it is from the Keras model."""

    path: Path
    sha256: str
    source: Path
    source_sha256: str
    max_abs_diff: float
    tolerance: float
    weights: str  # "int8" or "float32"
    sample_faces: int
    seconds: float
    converter: str
    runtime: str
    # Per face on the machine that compiled it, each kind of weights that passed, when both did.
    timed_ms_per_face: dict[str, float] = field(default_factory=dict)
    # The model's answer on the face alone, for a model that also averages its mirror image: the file,
    # its SHA-256 and how far the mean of its two views is from the Keras model (else None).
    one_view: dict | None = None
    # Beside float32 weights, the file with int8 ones: its name, SHA-256, difference from Keras, the
    # tolerance it was held to, and its own one-view file (else None).
    int8: dict | None = None

    def summary(self) -> str:
        """Return what the commands that compile a model say of it: the files written, how far from Keras."""
        int8 = self.int8
        return (
            f"wrote {self.path} ({self.weights} weights, SHA-256 {self.sha256}): largest difference from "
            f"Keras {self.max_abs_diff:.2g} on {self.sample_faces} sample faces"
            + (f"; and {int8['model']} (int8 weights, within {int8['max_abs_diff']:.2g})" if int8 else "")
        )

    def record(self) -> dict:
        """Return the JSON record written beside the model (file names relative to its folder)."""
        return {
            "model": self.path.name,
            "sha256": self.sha256,
            "source": self.source.name,
            "source_sha256": self.source_sha256,
            "weights": self.weights,
            "max_abs_diff": self.max_abs_diff,
            "tolerance": self.tolerance,
            "sample_faces": self.sample_faces,
            "converter": self.converter,
            "runtime": self.runtime,
            **({"timed_ms_per_face": self.timed_ms_per_face} if self.timed_ms_per_face else {}),
            **({"one_view": self.one_view} if self.one_view else {}),
            **({"int8": self.int8} if self.int8 else {}),
        }


def sample_faces(count: int = 32, seed: int = 0) -> np.ndarray:
    """Return (count, 48, 48, 1) float32 faces in [0, 1] to compare two models on.

    Drawn faces (head, eyes, brows and a mouth that smiles, frowns or opens, lit from varied sides),
    smooth noise, plain noise and flat images: the range of what a model sees, with no data set.
    """
    rng = np.random.default_rng(seed)
    faces = []
    for index in range(count):
        kind = index % 4
        if kind in (0, 1):
            faces.append(_drawn_face(rng))
        elif kind == 2:
            noise = rng.random((FACE_SIZE, FACE_SIZE)).astype(np.float32)
            faces.append(cv2.GaussianBlur(noise, (0, 0), rng.uniform(1.0, 4.0)))
        else:
            faces.append(rng.random((FACE_SIZE, FACE_SIZE)).astype(np.float32) * rng.uniform(0.2, 1.0))
    faces[-1] = np.full((FACE_SIZE, FACE_SIZE), 0.5, dtype=np.float32)
    stacked = np.clip(np.stack(faces), 0.0, 1.0).astype(np.float32)
    return stacked.reshape((count, *INPUT_SHAPE))


def _drawn_face(rng: np.random.Generator) -> np.ndarray:
    size = FACE_SIZE * 4  # drawn large, then shrunk like a camera face
    image = np.full((size, size), rng.uniform(20, 90), dtype=np.float32)
    centre = (size // 2 + int(rng.integers(-8, 9)), size // 2 + int(rng.integers(-8, 9)))
    axes = (int(size * rng.uniform(0.32, 0.42)), int(size * rng.uniform(0.42, 0.5)))
    cv2.ellipse(image, centre, axes, 0, 0, 360, float(rng.uniform(130, 220)), -1)
    eye_y = centre[1] - axes[1] // 4
    for side in (-1, 1):
        eye = (centre[0] + side * axes[0] // 2, eye_y)
        cv2.ellipse(image, eye, (12, int(rng.integers(4, 10))), 0, 0, 360, 30.0, -1)
        tilt = int(rng.integers(-8, 9)) * side
        cv2.line(image, (eye[0] - 16, eye_y - 22 + tilt), (eye[0] + 16, eye_y - 22 - tilt), 40.0, 5)
    mouth = (centre[0], centre[1] + axes[1] // 2)
    if rng.random() < 0.3:
        cv2.ellipse(image, mouth, (int(rng.integers(10, 24)), int(rng.integers(8, 20))), 0, 0, 360, 25.0, -1)
    else:
        start, end = (0, 180) if rng.random() < 0.5 else (180, 360)  # a smile or a frown
        axes = (int(rng.integers(16, 36)), int(rng.integers(4, 14)))
        cv2.ellipse(image, mouth, axes, 0, start, end, 30.0, 4)
    light = np.linspace(rng.uniform(0.6, 1.0), rng.uniform(0.6, 1.0), size, dtype=np.float32)
    image *= light[np.newaxis, :] if rng.random() < 0.5 else light[:, np.newaxis]
    small = cv2.resize(image, (FACE_SIZE, FACE_SIZE), interpolation=cv2.INTER_AREA)
    return small / 255.0 + rng.normal(0, 0.01, small.shape).astype(np.float32)


def _package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "?"


def _check_keras_archive(path: Path) -> None:
    # Refuse what is plainly no Keras model before paying seconds for importing TensorFlow.
    problem = keras_file_problem(path)
    if problem is not None:
        raise CompileError(problem)
    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise CompileError(f"{path.name} holds no readable model configuration ({exc})") from exc
    if not isinstance(config, dict) or "class_name" not in config:
        raise CompileError(f"{path.name} holds no Keras model configuration")


def compile_model(
    keras_path: str | Path,
    *,
    faces: np.ndarray | None = None,
    int8: bool = True,
    tolerance: float | None = None,
    write_record: bool = True,
) -> CompiledModel:
    """Compile the ``.keras`` model at ``keras_path`` to ``.tflite`` beside it, verified against Keras.

    ``faces``: (n, 48, 48, 1) float32 in [0, 1] to compare the two on (default :func:`sample_faces`),
    one by one and as one batch, the two ways the server runs them. Float32 weights are held to
    ``tolerance`` (default ``LITERT_TOLERANCE``); ``int8``: int8 weights too, held to ``tolerance``
    (default ``LITERT_INT8_TOLERANCE``), written to ``X.int8.tflite`` beside the float32 file (or to
    ``X.tflite``, where the float32 file is beyond its tolerance).
    Raises :class:`CompileError` when the model cannot be converted or differs by more than
    allowed; then no file is left.
    """
    source = Path(keras_path)
    target = source.with_suffix(".tflite")
    int8_target = int8_path(source)
    started = time.perf_counter()
    _check_keras_archive(source)
    source_sha256 = file_sha256(source)
    faces = sample_faces() if faces is None else np.asarray(faces, dtype=np.float32)

    tf = configure_tensorflow()
    import keras

    try:
        model = keras.saving.load_model(source, compile=False, safe_mode=True)
        expected = np.asarray(model(faces, training=False), dtype=np.float32)
    except Exception as exc:  # Keras raises many types for what it cannot load
        raise CompileError(f"could not compile {source.name} to LiteRT: {type(exc).__name__}: {exc}") from exc

    limits = {"int8": LITERT_INT8_TOLERANCE, "float32": LITERT_TOLERANCE}
    if tolerance is not None:
        limits = dict.fromkeys(limits, tolerance)
    passed: dict[str, tuple[Path, float, float]] = {}  # weights: (file, largest difference, allowed)
    # Files of an earlier compile answer for another model: none is left that the record does not name.
    for stale in (int8_target, one_view_path(int8_target)):
        stale.unlink(missing_ok=True)
    try:
        for quantize in (True, False) if int8 else (False,):
            content = _convert(tf, model, source, int8=quantize)
            partial = target.with_name(f".{target.stem}.{os.getpid()}.{int(quantize)}.partial.tflite")
            partial.write_bytes(content)
            max_abs_diff = _verify(partial, faces, expected)
            # The converter leaves small tensors (under 1,024 values) float32: judge a file by what it holds.
            weights = "int8" if _has_int8_weights(partial) else "float32"
            allowed = limits[weights]
            if max_abs_diff <= allowed:
                passed.setdefault(weights, (partial, max_abs_diff, allowed))
            else:
                logger.info(
                    "%s with %s weights differs from Keras by %.3g (over %g)",
                    source.name,
                    weights,
                    max_abs_diff,
                    allowed,
                )
            if weights == "float32":
                break  # a float32 file holds what the next attempt would
        if not passed:
            raise CompileError(
                f"{target.name} differs from {source.name} by {max_abs_diff:.3g} on the sample faces "
                f"(more than {allowed:g}), so it is not served"
            )
        timed, int8_entry = {}, None
        weights = "float32" if "float32" in passed else "int8"
        if len(passed) == 2:
            # Which is faster depends on the CPU (int8 3.4 times faster on one machine measured, on an
            # AVX2-only one no faster): the record states it for this one, the web processes time their own.
            timed = _ms_per_face({weights: path for weights, (path, _, _) in passed.items()})
            logger.info(
                "%s per face here: int8 weights %.2f ms, float32 %.2f ms",
                source.name,
                timed["int8"],
                timed["float32"],
            )
            int8_partial, int8_diff, int8_allowed = passed["int8"]
            int8_view = _compile_one_view(
                tf, model, source, faces, expected, int8=True, allowed=int8_allowed, target=int8_target
            )
            os.replace(int8_partial, int8_target)
            int8_entry = {
                "model": int8_target.name,
                "sha256": file_sha256(int8_target),
                "max_abs_diff": int8_diff,
                "tolerance": int8_allowed,
                **({"one_view": int8_view} if int8_view else {}),
            }
        partial, max_abs_diff, allowed = passed[weights]
        one_view = _compile_one_view(
            tf, model, source, faces, expected, int8=weights == "int8", allowed=allowed
        )
        os.replace(partial, target)
    finally:
        for partial, _, _ in passed.values():
            partial.unlink(missing_ok=True)
        for leftover in target.parent.glob(f".{target.stem}.{os.getpid()}.*.partial.tflite"):
            leftover.unlink(missing_ok=True)

    compiled = CompiledModel(
        path=target,
        sha256=file_sha256(target),
        source=source,
        source_sha256=source_sha256,
        max_abs_diff=max_abs_diff,
        tolerance=allowed,
        weights=weights,
        sample_faces=len(faces),
        seconds=round(time.perf_counter() - started, 2),
        converter=f"tensorflow {tf.__version__}",
        runtime=f"ai-edge-litert {_package_version('ai-edge-litert')}",
        timed_ms_per_face=timed,
        one_view=one_view,
        int8=int8_entry,
    )
    if write_record:
        litert_record_path(source).write_text(json.dumps(compiled.record(), indent=2) + "\n")
    logger.info(
        "compiled %s to %s (%s weights): largest difference %.2g on %d faces",
        source.name,
        target.name,
        weights,
        max_abs_diff,
        len(faces),
    )
    return compiled


def one_view_model(model):
    """Return the part of ``model`` that answers on the face alone, when ``model`` averages that answer
    with its answer on the face's mirror image (one Keras model, sharing its layers); otherwise None.

    Of a model that also averages crops shifted off the centre, the centre crop's answer alone.
    """
    import keras

    names = {layer.name for layer in model.layers}
    if not isinstance(model.layers[-1], keras.layers.Average) or MIRROR_LAYER not in names:
        return None
    return _averaged_part(model, mirror=True, shifts=True, suffix="one_view")


def centre_model(model):
    """Return the part of ``model`` that averages the answers on the centre crop (and its mirror image),
    without its shifted crops; ``model`` itself when it has none."""
    import keras

    if not isinstance(model.layers[-1], keras.layers.Average):
        return model
    return _averaged_part(model, mirror=False, shifts=True, suffix="centre") or model


def _averaged_part(model, *, mirror: bool, shifts: bool, suffix: str):
    """Return the mean of the answers averaged by ``model``'s last layer that pass neither through its
    mirror layer (with ``mirror``) nor through a shifted crop (with ``shifts``); None when that leaves
    none of them out, or all. A model cut at one answer holds only the layers that answer needs."""
    import keras

    def left_out(answer) -> bool:
        return any(
            (mirror and layer.name == MIRROR_LAYER) or (shifts and layer.name.startswith(f"{SHIFT_CROP}_"))
            for layer in keras.Model(model.inputs, answer).layers
        )

    answers = model.layers[-1].input
    kept = [answer for answer in answers if not left_out(answer)]
    if not kept or len(kept) == len(answers):
        return None
    outputs = kept[0] if len(kept) == 1 else keras.layers.Average(dtype="float32")(kept)
    return keras.Model(model.inputs, outputs, name=f"{model.name}_{suffix}")


def one_view_path(keras_path: str | Path) -> Path:
    """Return where the one-view LiteRT file of the model at ``keras_path`` goes: ``<stem>.view.tflite``
    (``<stem>.int8.view.tflite`` for its int8 file's, ``keras_path`` being that file)."""
    return Path(keras_path).with_suffix(".view.tflite")


def int8_path(keras_path: str | Path) -> Path:
    """Return where the LiteRT file with int8 weights of the model at ``keras_path`` goes (beside a
    float32 one): ``<stem>.int8.tflite``."""
    return Path(keras_path).with_suffix(".int8.tflite")


def _compile_one_view(
    tf,
    model,
    source: Path,
    faces: np.ndarray,
    expected: np.ndarray,
    *,
    int8: bool,
    allowed: float,
    target: Path | None = None,
) -> dict | None:
    """Write ``model``'s one-view LiteRT file beside ``source`` (the one of ``target``'s file, default
    ``source``'s) and return its record entry, or None (and no file) when the model has no mirror view or
    the mean of the file's two views is off."""
    target = one_view_path(target or source)
    target.unlink(missing_ok=True)  # a file from an earlier compile answers for another model
    try:
        one_view = one_view_model(model)
    except Exception as exc:  # a model of another shape than Attune builds: served whole, no loss
        logger.info("%s: no one-view file (%s: %s)", source.name, type(exc).__name__, exc)
        return None
    if one_view is None:
        return None
    centre = centre_model(model)
    if centre is not model:  # what a stream's two frames average: the centre crop and its mirror image
        expected = np.asarray(centre(faces, training=False), dtype=np.float32)
    partial = target.with_name(f".{target.stem}.{os.getpid()}.partial.tflite")
    try:
        partial.write_bytes(_convert(tf, one_view, source, int8=int8))
        max_abs_diff = _verify(partial, faces, expected, views=True)
        if max_abs_diff > allowed:
            logger.info(
                "%s: the mean of its one-view file's two views differs by %.3g (over %g): not kept",
                source.name,
                max_abs_diff,
                allowed,
            )
            return None
        os.replace(partial, target)
    except CompileError as exc:
        logger.info("%s: no one-view file (%s)", source.name, exc)
        return None
    finally:
        partial.unlink(missing_ok=True)
    return {"model": target.name, "sha256": file_sha256(target), "max_abs_diff": max_abs_diff}


def _convert(tf, model, source: Path, *, int8: bool) -> bytes:
    """Return ``model`` converted to a LiteRT flatbuffer, its weights int8 or float32."""
    try:
        converter = tf.lite.TFLiteConverter.from_keras_model(model)
        if int8:
            # Dynamic-range quantization: int8 weights, float32 inputs, outputs and activations.
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        # The exporter prints the SavedModel's signature on stdout; a command's output stays its own.
        with contextlib.redirect_stdout(io.StringIO()):
            return converter.convert()
    except Exception as exc:  # the converter raises many types for what it cannot handle
        raise CompileError(f"could not compile {source.name} to LiteRT: {type(exc).__name__}: {exc}") from exc


def serving_cost(path: str | Path, *, seconds: float = 1.0) -> dict:
    """Return what serving the LiteRT file at ``path`` costs here, as the web processes run it.

    One interpreter on one thread with XNNPACK: the median milliseconds per face at batch 1 (a lone
    image) and at batch 32, each timed for about ``seconds``, of its one-view file at batch 1 (a
    stream's frame) where it has one, and this machine's description; under ``int8`` the same of the
    file with int8 weights beside it, where the record names one.
    """
    import platform

    options = {"version": "cost", "num_threads": 1, "interpreters": 1, "warmup_batch_sizes": (1, 32)}
    cost: dict = {"threads": 1, **_file_cost(LiteRTClassifier(path, weights="float32", **options), seconds)}
    int8 = LiteRTClassifier(path, weights="int8", **options)
    if int8.served_path != Path(path):
        cost["int8"] = _file_cost(int8, seconds)
    cost["machine"] = f"{platform.machine()}, {os.cpu_count()} CPUs ({_cpu_name()})"
    return cost


def _file_cost(served: LiteRTClassifier, seconds: float) -> dict:
    faces = sample_faces(32)
    cost = {"xnnpack": bool(served.xnnpack)}
    for size in (1, 32):
        cost[f"batch_{size}_ms_per_face"] = round(_median_ms(served.predict, faces[:size], seconds) / size, 3)
    if served.views:
        one_view = functools.partial(served.predict_view, mirrored=False)
        cost["one_view_ms_per_face"] = round(_median_ms(one_view, faces[:1], seconds), 3)
    return cost


def _median_ms(predict, faces: np.ndarray, seconds: float) -> float:
    """Return the median milliseconds of ``predict(faces)``, called for ``seconds`` (and 5 times at least)."""
    calls: list[float] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(calls) < 5:
        started = time.perf_counter()
        predict(faces)
        calls.append(time.perf_counter() - started)
    return float(np.median(calls)) * 1000


def _ms_per_face(paths: dict[str, Path]) -> dict[str, float]:
    """Return the median milliseconds per lone face each LiteRT file in ``paths`` takes here, as served,
    timed in turns."""
    face = sample_faces(1)
    served = {
        key: LiteRTClassifier(path, version="timing", num_threads=1, interpreters=1, warmup_batch_sizes=(1,))
        for key, path in paths.items()
    }
    return timed_in_turns(
        {key: functools.partial(classifier.predict, face) for key, classifier in served.items()}
    )


def _cpu_name() -> str:
    """Return the CPU's model name and its widest vector instructions (what LiteRT's speed depends on)."""
    name, flags = "unknown CPU", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and name == "unknown CPU":
                name = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    vectors = [label for flag, label in VECTOR_FLAGS if flag in flags]
    return ", ".join([name, *vectors])


def _has_int8_weights(path: Path) -> bool:
    from ai_edge_litert.interpreter import Interpreter

    return any(
        detail["dtype"] == np.int8 for detail in Interpreter(model_path=str(path)).get_tensor_details()
    )


def _verify(path: Path, faces: np.ndarray, expected: np.ndarray, *, views: bool = False) -> float:
    """Return the largest |LiteRT − Keras| over ``faces`` served one by one and as one batch.

    ``views``: the file at ``path`` answers on one view; what is compared is the mean of its answers
    on each face and on the face's mirror image.
    """

    try:
        served = LiteRTClassifier(path, version="verify", warmup_batch_sizes=(1,))
        one_by_one, batched = _answers(served, faces)
        if views:
            mirrored = _answers(served, np.ascontiguousarray(faces[:, :, ::-1, :]))
            one_by_one, batched = (one_by_one + mirrored[0]) / 2, (batched + mirrored[1]) / 2
    except ModelFileError as exc:
        raise CompileError(f"the compiled file does not run under LiteRT: {exc}") from exc
    if one_by_one.shape != expected.shape or batched.shape != expected.shape:
        raise CompileError(f"the compiled file returns {batched.shape}, Keras {expected.shape}")
    return float(max(np.abs(one_by_one - expected).max(), np.abs(batched - expected).max()))


def _answers(served: LiteRTClassifier, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return what ``served`` answers on ``faces`` one by one and as one batch."""
    one_by_one = np.concatenate([served.predict(faces[i : i + 1]) for i in range(len(faces))])
    return one_by_one, served.predict(faces)
