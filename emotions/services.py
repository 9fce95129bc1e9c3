"""Django's way into the emotion engine: one engine per process, built from settings.

The engine is the pipeline, its micro-batcher and a hot-swapping classifier
whose backend ``settings.EMOTIONS_BACKEND`` names. It serves the registry's
active :class:`~emotions.models.ModelVersion`, or the default model shipped in
the repository while the registry is empty, and picks up a newly activated
version within ``MODEL_CHECK_INTERVAL_S`` without a restart.
"""

from __future__ import annotations

import logging
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
from emotions.classifier import HotSwapClassifier, ModelSpec, keras_file_problem
from emotions.detector import HaarFaceDetector
from emotions.models import ModelVersion
from emotions.mood import MoodTracker
from emotions.pipeline import EmotionPipeline

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
        """Stop the batch worker; queued requests are answered first."""
        self.batcher.close()


_engine: EmotionEngine | None = None
_engine_lock = threading.Lock()


def emotion_model_spec() -> ModelSpec:
    """Return the model to serve: the registry's active version, else the default model file."""
    return _emotion_model_choice()[0]


def _emotion_model_choice() -> tuple[ModelSpec, str]:
    version = ModelVersion.objects.active()
    if version is None:
        return ModelSpec(path=Path(settings.EMOTIONS_DEFAULT_MODEL), version=DEFAULT_VERSION), "default"
    spec = ModelSpec(path=model_version_path(version), sha256=version.sha256 or None, version=version.name)
    return spec, "registry"


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


def _emotion_engine_build() -> EmotionEngine:
    backend = import_string(settings.EMOTIONS_BACKEND)()
    classifier = HotSwapClassifier(
        backend, _emotion_model_spec_from_worker, check_interval_s=MODEL_CHECK_INTERVAL_S
    )
    batcher = MicroBatcher(
        classifier,
        max_batch=settings.EMOTIONS_BATCH_MAX_SIZE,
        max_wait_ms=settings.EMOTIONS_BATCH_MAX_WAIT_MS,
        queue_size=settings.EMOTIONS_BATCH_QUEUE_SIZE,
        workers=settings.EMOTIONS_BATCH_WORKERS,
    )
    detector = HaarFaceDetector(
        detect_height=settings.EMOTIONS_DETECT_HEIGHT,
        scale_factor=settings.EMOTIONS_DETECT_SCALE_FACTOR,
        min_neighbors=settings.EMOTIONS_DETECT_MIN_NEIGHBORS,
        min_face_fraction=settings.EMOTIONS_DETECT_MIN_FACE_FRACTION,
    )
    pipeline = EmotionPipeline(
        detector,
        batcher,
        max_bytes=settings.EMOTIONS_MAX_IMAGE_BYTES,
        max_pixels=settings.EMOTIONS_MAX_IMAGE_PIXELS,
        classifier=classifier,
    )
    # Importing TensorFlow and loading the model take seconds: start before the first frame.
    classifier.start()
    logger.info("emotion engine started with backend %s", settings.EMOTIONS_BACKEND)
    return EmotionEngine(pipeline=pipeline, batcher=batcher, classifier=classifier)


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
    status: dict[str, Any] = {"backend": settings.EMOTIONS_BACKEND.rsplit(".", 1)[-1]}
    try:
        needs_file = getattr(import_string(settings.EMOTIONS_BACKEND), "needs_model_file", True)
        spec, source = _emotion_model_choice()
    except Exception as exc:  # a bad backend path or an unreachable registry are both "not ok"
        return {**status, "ok": False, "problem": f"{type(exc).__name__}: {exc}"}

    file_exists = spec.path.is_file()
    status.update(
        source=source,
        version=spec.version,
        file=spec.path.name,
        file_exists=file_exists,
        sha256_recorded=bool(spec.sha256),
    )
    problem = None
    if needs_file and not file_exists:
        problem = f"the model file {spec.path.name} does not exist"
        if source == "default":
            problem += " (no version is active and the default model has not been trained yet)"

    engine = _engine
    if engine is None:
        status["engine"] = None
        ok = problem is None
    else:
        engine_status = engine.classifier.status()
        engine_status.pop("path", None)
        engine_status["batcher"] = engine.batcher.stats.as_dict()
        status["engine"] = engine_status
        problem = engine_status["error"] or problem
        ok = engine_status["state"] == "ready" or (engine_status["state"] == "loading" and problem is None)
    return {**status, "ok": ok, "problem": problem}


def model_version_path(version: ModelVersion) -> Path:
    """Return the absolute path of ``version``'s model file (a relative one is under the artifacts folder)."""
    path = Path(version.file_path)
    return path if path.is_absolute() else Path(settings.TRAINING_ARTIFACTS_DIR) / path


def model_version_activate(*, version: ModelVersion) -> ModelVersion:
    """Make ``version`` the served model: this process switches on commit, the others within seconds."""
    path = model_version_path(version)
    if not path.is_file():
        raise ValidationError(f"The model file of {version.name} is missing, so it cannot be served.")
    # Refused here, the registry keeps naming the model that serves now; every process would otherwise
    # try the bad file, and one that starts afresh would have no model at all.
    problem = keras_file_problem(path, sha256=version.sha256 or None)
    if problem is not None:
        raise ValidationError(f"{version.name} cannot be served: {problem}.")
    version.activate()
    transaction.on_commit(lambda: emotion_engine_reload(wait=False))
    transaction.on_commit(lambda: model_changed_broadcast(version=version.name), robust=True)
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
