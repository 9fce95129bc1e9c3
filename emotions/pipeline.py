"""The emotion pipeline: image bytes → decode → detect → align/crop → batched classification → mood.

Decoding, detection and cropping run in the caller's thread (a worker thread
for asyncio callers); classification goes through the shared micro-batcher.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np

from emotions.batcher import MicroBatcher
from emotions.decoder import ImageRejected, declared_pixels, decode_image
from emotions.detector import Box, Face, FaceDetector, FaceTrack, Point, as_face
from emotions.labels import EMOTIONS
from emotions.mood import MoodState, MoodTracker
from emotions.preprocessing import faces_to_model_input

T = TypeVar("T")
STAGES: tuple[str, ...] = ("decode", "detect", "preprocess", "classify", "total")
# Without perception threads, a stream frame of more pixels than this (1280×720) is still prepared in a
# thread: decoding and scanning a 3000×3000 frame takes about 90 ms, a 320×240 one about 20 at most.
LOOP_MAX_PIXELS = 1280 * 720


@dataclass(frozen=True, slots=True)
class FaceResult:
    box: Box
    probabilities: dict[str, float]
    dominant: str
    keypoints: dict[str, Point] | None = None  # from detectors that give them (emotions.detector.KEYPOINTS)

    def as_dict(self) -> dict:
        """Return the face as the REST API and the live WebSocket both describe it.

        ``{"box": [x, y, w, h], "keypoints": {name: [x, y]} or None, "probabilities": {label: p},
        "dominant": label, "confidence": p}``.
        """
        probabilities = {label: round(p, 4) for label, p in self.probabilities.items()}
        keypoints = (
            {name: [round(x, 1), round(y, 1)] for name, (x, y) in self.keypoints.items()}
            if self.keypoints
            else None
        )
        return {
            "box": list(self.box),
            "keypoints": keypoints,
            "probabilities": probabilities,
            "dominant": self.dominant,
            "confidence": probabilities[self.dominant],
        }


@dataclass(slots=True)
class FrameResult:
    faces: list[FaceResult]  # largest first; the first one drives the mood
    width: int
    height: int
    model_version: str
    timings_ms: dict[str, float] = field(default_factory=dict)
    mood: MoodState | None = None

    def as_dict(self) -> dict:
        """Return the result as JSON-ready data: the fields of the live WebSocket's ``emotion`` message.

        ``mood``, ``confidence`` and ``mood_changed`` are there when a mood tracker followed the frame.
        """
        data: dict = {
            "faces": [face.as_dict() for face in self.faces],
            "width": self.width,
            "height": self.height,
            "model_version": self.model_version,
            "timings_ms": self.timings_ms,
        }
        if self.mood is not None:
            data.update(
                mood=self.mood.mood,
                confidence=round(self.mood.confidence, 4),
                mood_changed=self.mood.changed,
            )
        return data


@dataclass(slots=True)
class _Prepared:
    found: list[Face]
    faces: np.ndarray  # (n, 48, 48, 1) float32 in [0, 1]
    width: int
    height: int
    timings_ms: dict[str, float]


class EmotionPipeline:
    """Find and classify every face in an image, and update the stream's mood."""

    def __init__(
        self,
        detector: FaceDetector,
        batcher: MicroBatcher,
        max_bytes: int,
        max_pixels: int,
        *,
        classifier: object | None = None,
        threads: int = 2,
        alternate_views: bool = True,
    ) -> None:
        self.detector = detector
        # Streams' frames are prepared here, not in asyncio's default executor (cores + 4 threads): each
        # thread keeps its own detector interpreters, and more threads than cores only queue for them.
        # threads=0: on the event loop's own thread, which on a single core costs less than handing
        # each frame to another thread and back, while the frame waits for the core either way.
        self._pool = None
        if threads:
            self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="attune-perception")
        self._large: ThreadPoolExecutor | None = None
        # Without threads, frames take turns on the event loop, one at a time (see analyze).
        self._turns: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None
        self._large_lock = threading.Lock()
        self.batcher = batcher
        self.max_bytes = max_bytes
        self.max_pixels = max_pixels
        # The classifier behind the batcher, only for its ``version``, read after each batch.
        self.classifier = classifier
        self.alternate_views = alternate_views

    @property
    def model_version(self) -> str:
        return str(getattr(self.classifier, "version", "unknown"))

    def prepare(self, data: bytes, track: FaceTrack | None = None) -> _Prepared:
        """Decode ``data``, detect its faces and cut them out; raises ImageRejected for a refused image.

        A face with eyes (from a detector with keypoints) is aligned so they are level; others are cropped.
        """
        timings: dict[str, float] = {}
        started = time.perf_counter()
        image = decode_image(data, max_bytes=self.max_bytes, max_pixels=self.max_pixels)
        decoded = time.perf_counter()
        found = track.detect(self.detector, image.gray) if track else self.detector.detect(image.gray)
        found = [as_face(face) for face in found]
        detected = time.perf_counter()
        boxes = [face.box for face in found]
        faces = faces_to_model_input(image.gray, boxes, eyes=[face.eyes for face in found])
        cropped = time.perf_counter()
        timings["decode"] = _ms(decoded - started)
        timings["detect"] = _ms(detected - decoded)
        timings["preprocess"] = _ms(cropped - detected)
        return _Prepared(found, faces, image.width, image.height, timings)

    async def analyze(
        self, data: bytes, tracker: MoodTracker | None = None, *, track: FaceTrack | None = None
    ) -> FrameResult:
        """Analyse one frame of a stream; raises ImageRejected or Overloaded.

        In the perception threads, so the event loop goes on meanwhile; with none (``threads=0``), on
        the event loop itself, which then waits, unless the frame is larger than
        :data:`LOOP_MAX_PIXELS` (a full scan of a large frame would hold every other visitor up for
        tens of milliseconds): one thread, started for the first such frame, prepares those.

        ``tracker`` and ``track`` belong to the stream: its mood, and where its faces were (which
        makes detection several times cheaper on the frames that follow).
        """
        started = time.perf_counter()
        pool = self._pool
        if pool is None and (declared_pixels(data) or 0) > LOOP_MAX_PIXELS:
            pool = self._large_pool()
        if self.batcher.inline:
            # Who prepares the faces classifies them: no hop to a batch worker.
            prepared, probabilities, classify_started = await self._perceive(
                pool, self._prepare_and_classify, data, track
            )
            return self._finish(prepared, probabilities, tracker, classify_started, started)
        prepared = await self._perceive(pool, self.prepare, data, track)
        classify_started = time.perf_counter()
        probabilities = await self.batcher.classify(prepared.faces)
        return self._finish(prepared, probabilities, tracker, classify_started, started)

    async def _perceive(self, pool: ThreadPoolExecutor | None, work: Callable[..., T], *args: object) -> T:
        """Return ``work(*args)`` run in ``pool``, or on the event loop in its turn where there is none."""
        if pool is not None:
            return await asyncio.get_running_loop().run_in_executor(pool, work, *args)
        async with self._loop_turn():
            # Frames that arrived together would all be analysed in one turn of the event loop, and the
            # answers written meanwhile sent only after the last of them: twice round the loop first lets
            # it send what earlier frames answered (Twisted writes when it next polls).
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            return work(*args)

    def _prepare_and_classify(
        self, data: bytes, track: FaceTrack | None
    ) -> tuple[_Prepared, np.ndarray, float]:
        prepared = self.prepare(data, track)
        classify_started = time.perf_counter()
        probabilities = self.batcher.classify_sync(prepared.faces, mirrored=self._side(track))
        return prepared, probabilities, classify_started

    def _side(self, track: FaceTrack | None) -> bool | None:
        """Return which side of a stream's faces this frame shows the classifier: every other frame
        their mirror image (None, both at once, for a lone image or with ``alternate_views`` off).

        The mood, a moving average over frames, then averages the two as the model would on each
        frame, at half the cost where the classifier has a one-view file.
        """
        if track is None or not self.alternate_views:
            return None
        return track.frames % 2 == 0

    def _loop_turn(self) -> asyncio.Lock:
        """Return the lock frames take turns by on the running event loop (one per loop: a lock
        belongs to the loop it was first waited on)."""
        loop = asyncio.get_running_loop()
        if self._turns is None or self._turns[0] is not loop:
            self._turns = (loop, asyncio.Lock())
        return self._turns[1]

    def _large_pool(self) -> ThreadPoolExecutor:
        with self._large_lock:
            if self._large is None:
                self._large = ThreadPoolExecutor(max_workers=1, thread_name_prefix="attune-perception-large")
            return self._large

    def close(self) -> None:
        """Stop the perception threads once the frames they hold are prepared."""
        for pool in (self._pool, self._large):
            if pool is not None:
                pool.shutdown(wait=False)

    def analyze_sync(
        self, data: bytes, tracker: MoodTracker | None = None, *, track: FaceTrack | None = None
    ) -> FrameResult:
        """Analyse one frame in this thread; raises ImageRejected or Overloaded."""
        started = time.perf_counter()
        prepared = self.prepare(data, track)
        classify_started = time.perf_counter()
        probabilities = self.batcher.classify_sync(prepared.faces, mirrored=self._side(track))
        return self._finish(prepared, probabilities, tracker, classify_started, started)

    def analyze_many_sync(self, images: list[bytes]) -> list[FrameResult | ImageRejected]:
        """Analyse several images, all their faces in one batch; a refused image yields its ImageRejected."""
        prepared: list[_Prepared | ImageRejected] = []
        for data in images:
            try:
                prepared.append(self.prepare(data))
            except ImageRejected as rejected:
                prepared.append(rejected)
        accepted = [item for item in prepared if isinstance(item, _Prepared)]
        classify_started = time.perf_counter()
        faces = [item.faces for item in accepted if len(item.faces)]
        probabilities = self.batcher.classify_sync(np.concatenate(faces)) if faces else None
        classify_ms = _ms(time.perf_counter() - classify_started)

        results: list[FrameResult | ImageRejected] = []
        offset = 0
        for item in prepared:
            if isinstance(item, ImageRejected):
                results.append(item)
                continue
            rows = probabilities[offset : offset + len(item.faces)] if len(item.faces) else _no_rows()
            offset += len(item.faces)
            # The one batch serves every image, so each total is its own stages plus that call.
            own_ms = sum(item.timings_ms.values())
            item.timings_ms.update(classify=classify_ms, total=round(own_ms + classify_ms, 3))
            results.append(self._result(item, rows, None))
        return results

    def _finish(
        self,
        prepared: _Prepared,
        probabilities: np.ndarray,
        tracker: MoodTracker | None,
        classify_started: float,
        started: float,
    ) -> FrameResult:
        finished = time.perf_counter()
        prepared.timings_ms["classify"] = _ms(finished - classify_started)
        prepared.timings_ms["total"] = _ms(finished - started)
        return self._result(prepared, probabilities, tracker)

    def _result(
        self, prepared: _Prepared, probabilities: np.ndarray, tracker: MoodTracker | None
    ) -> FrameResult:
        faces = [
            FaceResult(
                box=tuple(int(v) for v in face.box),
                probabilities={label: float(p) for label, p in zip(EMOTIONS, row, strict=True)},
                dominant=EMOTIONS[int(np.argmax(row))],
                keypoints=face.keypoints,
            )
            for face, row in zip(prepared.found, probabilities, strict=True)
        ]
        mood = tracker.update(probabilities[0] if len(faces) else None) if tracker else None
        return FrameResult(
            faces=faces,
            width=prepared.width,
            height=prepared.height,
            model_version=self.model_version,
            timings_ms=prepared.timings_ms,
            mood=mood,
        )


def _no_rows() -> np.ndarray:
    return np.zeros((0, len(EMOTIONS)), dtype=np.float32)


def _ms(seconds: float) -> float:
    return round(seconds * 1000.0, 3)
