"""Django's way into the emotion engine: one engine per process, built from settings.

The engine is the pipeline, its micro-batcher and a hot-swapping classifier
whose backend ``settings.EMOTIONS_BACKEND`` names. It serves the registry's
active :class:`~emotions.models.ModelVersion`, or the default model shipped in
the repository while the registry is empty, and picks up a newly activated
version within ``MODEL_CHECK_INTERVAL_S`` without a restart.

The LiteRT backend (the default) serves each model's compiled ``.tflite`` file
and imports no TensorFlow, nor does this module, except in
:func:`model_version_compile`, which only training workers and management
commands call.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.signals import setting_changed
from django.db import close_old_connections, transaction
from django.dispatch import receiver
from django.utils.module_loading import import_string

from emotions.batcher import MicroBatcher
from emotions.classifier import (
    KERAS,
    LITERT,
    NO_VERSION,
    HotSwapClassifier,
    KerasClassifier,
    ModelFileError,
    ModelSpec,
    ModelUnavailable,
    keras_file_problem,
    litert_file_problem,
    litert_record_read,
)
from emotions.detector import BlazeFaceDetector, FaceDetector, FaceTrack, HaarFaceDetector
from emotions.models import ModelActivation, ModelVersion
from emotions.mood import MoodTracker
from emotions.pipeline import EmotionPipeline, FrameResult

logger = logging.getLogger(__name__)

MODEL_CHECK_INTERVAL_S = 2.0
DEFAULT_VERSION = "default"
# Live pages listen here for "model.changed" (``{"type": "model.changed", "version": name}``).
MODEL_GROUP = "emotions.model"


@dataclass
class EmotionEngine:
    pipeline: EmotionPipeline
    batcher: MicroBatcher
    classifier: HotSwapClassifier

    def close(self) -> None:
        """Stop the batch worker and the perception threads; queued requests are answered first."""
        self.batcher.close()
        self.pipeline.close()


_engine: EmotionEngine | None = None
_engine_lock = threading.Lock()


def emotion_model_spec() -> ModelSpec:
    """Return the model to serve: the registry's active version, else the default model file."""
    return _emotion_model_choice()[0]


def _emotion_model_choice() -> tuple[ModelSpec, str]:
    version = ModelVersion.objects.active()
    if version is None:
        # The shipped model's compiled file is recorded beside it, not in the registry.
        path = Path(settings.EMOTIONS_DEFAULT_MODEL)
        litert_path, litert_sha256, litert_problem = litert_record_read(path)
        spec = ModelSpec(
            path=path,
            version=DEFAULT_VERSION,
            litert_path=litert_path,
            litert_sha256=litert_sha256,
            litert_problem=litert_problem,
        )
        return spec, "default"
    litert_problem = version.litert_problem()
    spec = ModelSpec(
        path=model_version_path(version),
        sha256=version.sha256 or None,
        version=version.name,
        litert_path=None if litert_problem else model_version_litert_path(version),
        litert_sha256=None if litert_problem else version.litert_sha256,
        litert_problem=litert_problem or "",
    )
    return spec, "registry"


def emotion_backend_format() -> str | None:
    """Return which file of a model the configured backend serves (KERAS, LITERT), None if it reads none."""
    backend = import_string(settings.EMOTIONS_BACKEND)
    if not getattr(backend, "needs_model_file", True):
        return None
    return getattr(backend, "model_format", KERAS)


def _emotion_model_spec_from_worker() -> ModelSpec:
    # The batch worker is a long-lived thread; Django tidies connections only around requests.
    close_old_connections()
    try:
        return emotion_model_spec()
    finally:
        close_old_connections()


def emotion_engine() -> EmotionEngine:
    """Return this process's engine, built from settings on first use; safe in async code (no queries)."""
    global _engine
    engine = _engine
    if engine is None:
        with _engine_lock:
            if _engine is None:
                _engine = _emotion_engine_build()
            engine = _engine
    return engine


def _emotion_backend_create() -> Any:
    backend_class = import_string(settings.EMOTIONS_BACKEND)
    if getattr(backend_class, "model_format", None) == LITERT:
        # One interpreter per batch worker thread: a worker never waits for another's.
        return backend_class(
            num_threads=settings.EMOTIONS_LITERT_THREADS,
            interpreters=settings.EMOTIONS_BATCH_WORKERS,
            weights=settings.EMOTIONS_LITERT_WEIGHTS,
        )
    return backend_class()


def _emotion_engine_build() -> EmotionEngine:
    backend = _emotion_backend_create()
    classifier = HotSwapClassifier(
        backend, _emotion_model_spec_from_worker, check_interval_s=MODEL_CHECK_INTERVAL_S
    )
    batcher = MicroBatcher(
        classifier,
        max_batch=settings.EMOTIONS_BATCH_MAX_SIZE,
        max_wait_ms=settings.EMOTIONS_BATCH_MAX_WAIT_MS,
        queue_size=settings.EMOTIONS_BATCH_QUEUE_SIZE,
        workers=settings.EMOTIONS_BATCH_WORKERS,
        inline=not getattr(backend, "gains_from_batching", True),
    )
    detector = face_detector_build()
    pipeline = EmotionPipeline(
        detector,
        batcher,
        max_bytes=settings.EMOTIONS_MAX_IMAGE_BYTES,
        max_pixels=settings.EMOTIONS_MAX_IMAGE_PIXELS,
        classifier=classifier,
        threads=settings.EMOTIONS_PERCEPTION_THREADS,
        alternate_views=settings.EMOTIONS_ALTERNATE_VIEWS,
    )
    # Loading the model takes a moment (seconds with TensorFlow): start before the first frame.
    classifier.start()
    logger.info("emotion engine started with backend %s", settings.EMOTIONS_BACKEND)
    return EmotionEngine(pipeline=pipeline, batcher=batcher, classifier=classifier)


def face_detector_build() -> FaceDetector:
    """Return the face detector ``settings.EMOTIONS_DETECTOR`` names, tuned by its settings."""
    if settings.EMOTIONS_DETECTOR == "haar":
        return HaarFaceDetector(
            detect_height=settings.EMOTIONS_DETECT_HEIGHT,
            scale_factor=settings.EMOTIONS_DETECT_SCALE_FACTOR,
            min_neighbors=settings.EMOTIONS_DETECT_MIN_NEIGHBORS,
            min_face_fraction=settings.EMOTIONS_DETECT_MIN_FACE_FRACTION,
        )
    return BlazeFaceDetector(
        min_score=settings.EMOTIONS_DETECTOR_MIN_SCORE, threads=settings.EMOTIONS_DETECTOR_THREADS
    )


def emotion_engine_start() -> str:
    """Build this process's engine now, so the model loads before the first frame; return its version.

    Returns ``"none"`` when the engine cannot start: frames will then be answered ``model_unavailable``.
    """
    try:
        return emotion_engine().pipeline.model_version
    except Exception:
        logger.exception("the emotion engine could not start")
        return NO_VERSION


async def frame_analyze(*, frame: bytes, tracker: MoodTracker, track: FaceTrack) -> FrameResult:
    """Return the faces in one frame of a stream and the stream's mood after it, off the event loop.

    Raises the engine's refusals: ``ImageRejected``, ``Overloaded``/``BatcherClosed``, and
    ``ModelUnavailable`` (also when the engine itself cannot start, e.g. a bad ``EMOTIONS_BACKEND``).
    """
    try:
        engine = emotion_engine()
    except Exception as exc:
        logger.error("the emotion engine could not start: %s", exc)
        raise ModelUnavailable("the emotion engine could not start") from exc
    return await engine.pipeline.analyze(frame, tracker, track=track)


def emotion_engine_reload(*, wait: bool = True) -> dict[str, Any] | None:
    """Load the model the registry names now, even if it is already served; return the engine's state."""
    engine = _engine
    if engine is None:
        return None
    engine.classifier.refresh(spec=emotion_model_spec(), force=True, wait=wait)
    return engine.classifier.status()


def emotion_engine_close() -> None:
    """Stop and forget this process's engine; the next emotion_engine() call builds a new one."""
    global _engine
    with _engine_lock:
        engine, _engine = _engine, None
    if engine is not None:
        engine.close()


def mood_tracker_create(*, clock: Callable[[], float] = time.monotonic) -> MoodTracker:
    """Return a new mood tracker for one stream, tuned by the EMOTIONS_MOOD_* settings."""
    return MoodTracker(
        alpha=settings.EMOTIONS_MOOD_ALPHA,
        margin=settings.EMOTIONS_MOOD_MARGIN,
        dwell_s=settings.EMOTIONS_MOOD_DWELL_S,
        min_confidence=settings.EMOTIONS_MOOD_MIN_CONFIDENCE,
        no_face_s=settings.EMOTIONS_MOOD_NO_FACE_S,
        clock=clock,
    )


def emotion_model_status() -> dict[str, Any]:
    """Return whether a model can be served and which, without importing TensorFlow (for /healthz)."""
    status: dict[str, Any] = {
        "backend": settings.EMOTIONS_BACKEND.rsplit(".", 1)[-1],
        # A web process serving LiteRT never imports TensorFlow (about 0.6 GB of memory).
        "tensorflow_loaded": "tensorflow" in sys.modules,
    }
    try:
        model_format = emotion_backend_format()
        spec, source = _emotion_model_choice()
    except Exception as exc:  # a bad backend path or an unreachable registry are both "not ok"
        return {**status, "ok": False, "problem": f"{type(exc).__name__}: {exc}"}

    served, sha256 = (
        (spec.litert_path, spec.litert_sha256) if model_format == LITERT else (spec.path, spec.sha256)
    )
    file_exists = served is not None and served.is_file()
    status.update(
        source=source,
        version=spec.version,
        format=model_format,
        file=served.name if served else None,
        file_exists=file_exists,
        sha256_recorded=bool(sha256),
    )
    problem = None
    if model_format is not None and not file_exists:
        if served is None:
            problem = f"{spec.version} has no LiteRT file to serve: {spec.litert_problem}"
        else:
            problem = f"the model file {served.name} does not exist"
        if source == "default" and not spec.path.is_file():
            problem += " (no version is active and the default model has not been trained yet)"

    engine = _engine
    if engine is None:
        status["engine"] = None
        ok = problem is None
    else:
        classifier = engine.classifier
        if model_format is not None and classifier.serving != spec:
            # An idle process notices a new activation here too; a model that failed stays failed.
            classifier.refresh(spec=spec)
        engine_status = classifier.status()
        engine_status.pop("path", None)
        engine_status["batcher"] = engine.batcher.stats.as_dict()
        status["engine"] = engine_status
        problem = engine_status["error"] or problem
        serving = classifier.serving
        if problem is None and model_format is not None and not classifier.loading and serving != spec:
            # The registry names a model this process does not serve: after a restart it would serve none.
            problem = f"serving {serving.version if serving else 'nothing'}, but {spec.version} is active"
        ok = problem is None and engine_status["state"] in ("ready", "loading")
    return {**status, "ok": ok, "problem": problem}


def model_version_path(version: ModelVersion) -> Path:
    """Return the absolute path of ``version``'s model file (a relative one is under the artifacts folder)."""
    path = Path(version.file_path)
    return path if path.is_absolute() else Path(settings.TRAINING_ARTIFACTS_DIR) / path


def model_version_litert_path(version: ModelVersion) -> Path | None:
    """Return the absolute path of ``version``'s compiled LiteRT file, None if it has none."""
    if not version.litert_path:
        return None
    path = Path(version.litert_path)
    return path if path.is_absolute() else Path(settings.TRAINING_ARTIFACTS_DIR) / path


def model_version_serve_problem(*, version: ModelVersion) -> str | None:
    """Return why the engine could not serve ``version`` (a sentence for operators), or None if it can."""
    try:
        _model_version_check(version)
    except ValidationError as error:
        return " ".join(error.messages)
    return None


def model_version_activate(*, version: ModelVersion, user: Any = None) -> ModelVersion:
    """Make ``version`` the served model: this process switches on commit, the others within seconds.

    Records the change (who, from which model to which) as a :class:`ModelActivation`.
    """
    _model_version_check(version)
    with transaction.atomic():
        previous = ModelVersion.objects.active()
        version.activate()
        _model_activation_record(previous=previous, new=version, user=user)
    transaction.on_commit(lambda: emotion_engine_reload(wait=False))
    transaction.on_commit(lambda: model_changed_broadcast(version=version.name), robust=True)
    return version


@transaction.atomic
def model_version_restore_default(*, user: Any = None) -> None:
    """Serve the default model shipped in the repository again: no registry version stays active."""
    previous = ModelVersion.objects.select_for_update().filter(is_active=True).first()
    if previous is None:
        return
    ModelVersion.objects.filter(is_active=True).update(is_active=False)
    _model_activation_record(previous=previous, new=None, user=user)
    transaction.on_commit(lambda: emotion_engine_reload(wait=False))
    transaction.on_commit(lambda: model_changed_broadcast(version=DEFAULT_VERSION), robust=True)


def _model_activation_record(
    *, previous: ModelVersion | None, new: ModelVersion | None, user: Any
) -> ModelActivation:
    return ModelActivation.objects.create(
        from_version=previous,
        to_version=new,
        from_name=previous.name if previous else DEFAULT_VERSION,
        to_name=new.name if new else DEFAULT_VERSION,
        user=user if getattr(user, "is_authenticated", False) else None,
    )


def _model_version_check(version: ModelVersion) -> None:
    path = model_version_path(version)
    if not path.is_file():
        raise ValidationError(f"The model file of {version.name} is missing, so it cannot be served.")
    # Refused here, the registry keeps naming the model that serves now; every process would otherwise
    # try the bad file, and one that starts afresh would have no model at all.
    problem = keras_file_problem(path, sha256=version.sha256 or None)
    if problem is not None:
        raise ValidationError(f"{version.name} cannot be served: {problem}.")
    backend_format = emotion_backend_format()
    if backend_format == KERAS:
        # Load it as the engine will (safe mode, warm-up predictions): a file Keras refuses, e.g. one with
        # a Lambda layer, must not become the active model. This process serves Keras, so has TensorFlow.
        try:
            KerasClassifier(path, sha256=version.sha256 or None, warmup_batch_sizes=(1,))
        except ModelFileError as exc:
            raise ValidationError(f"{version.name} cannot be served: {exc}.") from None
    if backend_format == LITERT:
        # Registration compiled it with Keras's safe mode and checked LiteRT's answers against Keras on
        # sample faces; the recorded SHA-256 proves this file is the one that passed.
        litert_path = model_version_litert_path(version)
        problem = version.litert_problem() or litert_file_problem(
            litert_path, sha256=version.litert_sha256 or None
        )
        if problem is not None:
            raise ValidationError(
                f"{version.name} cannot be served by LiteRT: {problem}. Compile it with "
                f"`manage.py compile_model --model-version {version.name}`, or serve the Keras backend "
                "(EMOTIONS_BACKEND=emotions.classifier.KerasClassifier)."
            )


def model_version_compile(*, version: ModelVersion, int8: bool = True) -> ModelVersion:
    """Compile ``version`` to LiteRT beside its ``.keras`` file, check it against Keras and record the result.

    Imports TensorFlow: for the training worker and management commands, never a web process. A model
    that cannot be compiled, or whose compiled file differs, keeps its reason in ``litert_error``; the
    Keras backend can still serve it.
    """
    from emotions.compile import CompileError, compile_model

    try:
        compiled = compile_model(model_version_path(version), int8=int8)
    except CompileError as exc:
        logger.warning("%s cannot be served by LiteRT: %s", version.name, exc)
        version.litert_path, version.litert_sha256, version.litert_max_abs_diff = "", "", None
        version.litert_error = str(exc)
    else:
        # Beside the .keras file, and named the same way: relative to the artifacts folder, or absolute.
        version.litert_path = str(Path(version.file_path).with_suffix(".tflite"))
        version.litert_sha256 = compiled.sha256
        version.litert_max_abs_diff = compiled.max_abs_diff
        version.litert_error = ""
    version.save(update_fields=["litert_path", "litert_sha256", "litert_max_abs_diff", "litert_error"])
    return version


def model_changed_broadcast(*, version: str) -> None:
    """Tell every connected live page which model is served now."""
    layer = get_channel_layer()
    if layer is None:
        return
    async_to_sync(layer.group_send)(MODEL_GROUP, {"type": "model.changed", "version": version})


@receiver(setting_changed)
def _emotion_engine_forget(*, setting: str, **kwargs: Any) -> None:
    # Tests override these settings; an engine built from the old values must not linger.
    if setting.startswith("EMOTIONS_") or setting == "TRAINING_ARTIFACTS_DIR":
        emotion_engine_close()
