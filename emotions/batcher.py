"""A micro-batcher: faces from all concurrent callers share one classifier call.

Callers submit their face crops; a worker thread takes the oldest request and
whatever queued up behind it (up to ``max_batch`` faces), runs one batch and
hands each caller its own rows. A face that is alone runs at once: batches form
only when faces queue up, while the workers are busy. The queue is bounded: when
it is full a caller gets :class:`Overloaded` at once instead of a growing delay.

A classifier that gains nothing from batches (LiteRT on a CPU: a batch of 32
costs what 32 single faces do) is better called by the thread that has the faces:
with ``inline``, :meth:`MicroBatcher.classify_sync` classifies in the caller's
thread, sparing two thread hops per frame, and the pipeline's perception threads
classify the faces they have just cut out.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from emotions.classifier import check_faces
from emotions.labels import NUM_CLASSES

logger = logging.getLogger(__name__)


class Overloaded(RuntimeError):
    """The batcher's queue is full; the caller should drop this frame or answer 503."""


class BatcherClosed(RuntimeError):
    """The batcher has been closed and takes no more requests."""


@dataclass
class BatcherStats:
    batches: int = 0
    faces: int = 0
    rejected: int = 0
    sizes: collections.deque[int] = field(default_factory=lambda: collections.deque(maxlen=10_000))

    def as_dict(self) -> dict[str, Any]:
        """Return the counters and the recent batch sizes as plain data."""
        return {
            "batches": self.batches,
            "faces": self.faces,
            "rejected": self.rejected,
            "mean_batch": round(self.faces / self.batches, 2) if self.batches else 0.0,
            "max_batch_seen": max(self.sizes, default=0),
        }


@dataclass(slots=True)
class _Request:
    faces: np.ndarray
    future: Future
    submitted_at: float


_STOP = object()
# While gathering, a pause of this fraction of max_wait_ms without a new request ends the wait.
_SILENCE = 0.25


class MicroBatcher:
    """Run one classifier call for the faces of all concurrent callers.

    ``predict`` is a classifier (anything with ``predict``) or a function from
    (n, 48, 48, 1) float32 faces to (n, 7) probabilities; it is only ever called
    from the worker threads. A lone face never waits: a worker takes the oldest
    request and what is queued behind it, and runs. Only when several requests
    were queued, the sign that callers are concurrent, does it wait for
    stragglers, at most ``max_wait_ms`` after the oldest arrived and only while
    they keep arriving (0, the default, never waits: worth a few ms where
    batches pay, on a GPU). With ``workers`` > 1, that many threads each gather
    and run batches from the one queue, so batches use every core.
    """

    def __init__(
        self,
        predict: Callable[[np.ndarray], np.ndarray] | Any,
        max_batch: int = 32,
        max_wait_ms: float = 0.0,
        queue_size: int = 256,
        workers: int = 1,
        inline: bool = False,
    ) -> None:
        if max_batch < 1 or queue_size < 1 or max_wait_ms < 0 or workers < 1:
            raise ValueError("max_batch, queue_size and workers must be positive, max_wait_ms not negative")
        self._predict = predict.predict if hasattr(predict, "predict") else predict
        # A classifier that answers for one side of a face (HotSwapClassifier, LiteRTClassifier).
        self._predict_view = getattr(predict, "predict_view", None)
        self.max_batch = max_batch
        self.max_wait_s = max_wait_ms / 1000.0
        self.queue_size = queue_size
        self.inline = inline
        self.stats = BatcherStats()
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._lock = threading.Lock()
        self._closed = False
        self._workers = [
            threading.Thread(target=self._work, name=f"attune-micro-batcher-{i}", daemon=True)
            for i in range(workers)
        ]
        for worker in self._workers:
            worker.start()

    @property
    def pending(self) -> int:
        """Return how many requests are waiting for the worker."""
        return self._queue.qsize()

    def submit(self, faces: np.ndarray) -> Future:
        """Queue (n, 48, 48, 1) float32 faces; the future gives their (n, 7) probabilities."""
        faces = check_faces(faces)
        future: Future = Future()
        if len(faces) == 0:
            future.set_result(np.zeros((0, NUM_CLASSES), dtype=np.float32))
            return future
        with self._lock:
            if self._closed:
                raise BatcherClosed("the micro-batcher is closed")
            try:
                self._queue.put_nowait(_Request(faces, future, time.monotonic()))
            except queue.Full:
                self.stats.rejected += 1
                raise Overloaded(
                    f"{self.queue_size} requests are already waiting for the classifier"
                ) from None
        return future

    async def classify(self, faces: np.ndarray) -> np.ndarray:
        """Return (n, 7) probabilities for (n, 48, 48, 1) faces, awaiting the batch without blocking."""
        return await asyncio.wrap_future(self.submit(faces))

    def classify_sync(
        self, faces: np.ndarray, timeout: float | None = None, *, mirrored: bool | None = None
    ) -> np.ndarray:
        """Return (n, 7) probabilities for (n, 48, 48, 1) faces, blocking this thread until done.

        With ``inline``, this thread runs the classifier itself (``timeout`` does not apply), and
        ``mirrored`` (True or False) asks for the faces seen from one side, where the classifier
        can answer so (``predict_view``): a stream's frames alternate sides. Batched faces are
        classified whole.
        """
        if not self.inline:
            return self.submit(faces).result(timeout)
        faces = check_faces(faces)
        if len(faces) == 0:
            return np.zeros((0, NUM_CLASSES), dtype=np.float32)
        if self._closed:
            raise BatcherClosed("the micro-batcher is closed")
        if mirrored is None or self._predict_view is None:
            probabilities = self._classify(faces)
        else:
            probabilities = self._classify(faces, lambda part: self._predict_view(part, mirrored=mirrored))
        self._count(len(faces))
        return probabilities

    def close(self, timeout: float = 10.0) -> None:
        """Finish the queued requests, stop the worker threads and refuse new requests."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        for _ in self._workers:
            self._queue.put(_STOP)
        for worker in self._workers:
            worker.join(timeout)

    def __enter__(self) -> MicroBatcher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _work(self) -> None:
        carried: Any = None
        while True:
            if carried is not None:
                first, carried = carried, None
            else:
                first = self._queue.get()
            if first is _STOP:
                return
            batch, size = [first], len(first.faces)
            deadline = first.submitted_at + self.max_wait_s
            while size < self.max_batch:
                # Waiting only pays when callers are concurrent: several requests queued together.
                wait = len(batch) > 1 and self.max_wait_s > 0
                try:
                    if wait:
                        # Stop early once callers fall silent: the stragglers have all arrived.
                        timeout = min(deadline - time.monotonic(), self.max_wait_s * _SILENCE)
                        item = self._queue.get(timeout=max(0.0, timeout))
                    else:
                        item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP or size + len(item.faces) > self.max_batch:
                    carried = item
                    break
                batch.append(item)
                size += len(item.faces)
            self._run(batch)

    def _classify(
        self, faces: np.ndarray, predict: Callable[[np.ndarray], np.ndarray] | None = None
    ) -> np.ndarray:
        predict = predict or self._predict
        probabilities = np.concatenate(
            [
                np.asarray(predict(faces[start : start + self.max_batch]), dtype=np.float32)
                for start in range(0, len(faces), self.max_batch)
            ]
        )
        if probabilities.shape != (len(faces), NUM_CLASSES):
            raise ValueError(f"the classifier returned {probabilities.shape} for {len(faces)} faces")
        return probabilities

    def _count(self, faces: int) -> None:
        with self._lock:
            self.stats.batches += 1
            self.stats.faces += faces
            self.stats.sizes.append(faces)

    def _run(self, batch: list[_Request]) -> None:
        # A caller that gave up (a cancelled asyncio task) is dropped before its faces cost anything.
        live = [request for request in batch if request.future.set_running_or_notify_cancel()]
        if not live:
            return
        faces = live[0].faces if len(live) == 1 else np.concatenate([r.faces for r in live])
        try:
            probabilities = self._classify(faces)
        except Exception as exc:  # every caller of this batch gets the failure, the worker lives on
            logger.warning("a batch of %d faces failed: %s", len(faces), exc)
            for request in live:
                request.future.set_exception(exc)
            return
        self._count(len(faces))
        offset = 0
        for request in live:
            count = len(request.faces)
            request.future.set_result(probabilities[offset : offset + count])
            offset += count
