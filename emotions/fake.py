"""A stand-in classifier for tests and development: no TensorFlow, no model file."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np

from emotions.classifier import KERAS, check_faces
from emotions.labels import NUM_CLASSES


class FakeClassifier:
    """Derive deterministic probabilities from the pixels: class k gets the mean of the k-th band of rows.

    A face bright only in rows ``k * 48 // 7`` to ``(k + 1) * 48 // 7`` is thus
    classified as ``EMOTIONS[k]``. ``delay_s`` simulates a slow model; the size
    of every batch is recorded in ``batch_sizes``.
    """

    needs_model_file = False
    model_format = KERAS  # what it would be handed if it loaded files; it reads none

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        sha256: str | None = None,
        version: str | None = None,
        delay_s: float = 0.0,
    ) -> None:
        self.version = version or "fake"
        self.delay_s = delay_s
        self.batch_sizes: list[int] = []
        self._lock = threading.Lock()
        if path is not None:
            self.load(path, sha256=sha256, version=version)

    def load(self, path: str | Path, *, sha256: str | None = None, version: str | None = None) -> None:
        """Pretend to load ``path``: only the version label changes."""
        self.version = version or f"fake:{Path(path).name}"

    def predict(self, faces: np.ndarray) -> np.ndarray:
        """Return (n, 7) float32 probabilities for (n, 48, 48, 1) float32 faces in [0, 1]."""
        faces = check_faces(faces)
        with self._lock:
            self.batch_sizes.append(len(faces))
        if self.delay_s:
            time.sleep(self.delay_s)
        bands = np.array_split(faces[:, :, :, 0], NUM_CLASSES, axis=1)
        logits = np.stack([band.mean(axis=(1, 2)) for band in bands], axis=1) * 8.0
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))
        return (exp / exp.sum(axis=1, keepdims=True)).astype(np.float32)


class InlineFakeClassifier(FakeClassifier):
    """The fake classifier served as LiteRT is: in the caller's thread, with no batch worker.

    Nearly free (a few numpy sums per face), it shows what a stream frame costs besides a real
    classifier: ``bench/live_load.py --backends fake-inline`` measures how many visitors a process
    could hold with a model that cost nothing (README, "Performance and reliability").
    """

    gains_from_batching = False
