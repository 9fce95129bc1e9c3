"""Benchmark the emotion engine on real frames, its backends side by side and against the `fer` package.

    python bench/emotion_engine.py [--backends keras,litert] [--json] [--out FILE] [--frames N] [--model F]

Measures, in one run, for each backend (``keras``: the ``.keras`` file through a
TensorFlow function; ``litert``: its compiled ``.tflite`` file under LiteRT with
XNNPACK, as the web processes serve it):
- per-stage and total time per frame (median, p95) of the live pipeline
  (decode → detect → crop → micro-batched classification) on 640×480 and
  320×240 JPEG frames of ``skimage.data.astronaut()`` with small shifts,
  scales and brightness changes, and ``fer``'s ``FER(mtcnn=False).detect_emotions``
  on the same frames (JPEG decoding included for both), each contender's stream
  back to back, taking turns (see ``Contender``); a stream's faces are seen
  from one side per frame where a one-view file is served, and timed with both
  views on every frame too;
- classifier time per call and per face at batch 1, 8 and 32 (and of the
  one-view file at batch 1);
- micro-batcher throughput with 1, 8 and 32 concurrent callers, against one
  classifier call per face.

The detector, batcher and LiteRT threads use the site's settings (EMOTIONS_*),
unless flags override them; the Keras backend gets its own defaults (one batch
worker per core). ``fer`` is optional: see requirements-bench.txt.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep the table readable
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from emotions.batcher import MicroBatcher  # noqa: E402
from emotions.classifier import (  # noqa: E402
    KerasClassifier,
    LiteRTClassifier,
    configure_tensorflow,
    litert_record_read,
)
from emotions.detector import BlazeFaceDetector, FaceTrack, HaarFaceDetector  # noqa: E402
from emotions.mood import MoodTracker  # noqa: E402
from emotions.pipeline import STAGES, EmotionPipeline  # noqa: E402

FER_TARGET = REPO / "var" / "bench" / "fer"
FER_INSTALL = ".venv/bin/pip install --no-deps --target var/bench/fer -r requirements-bench.txt"
SIZES = ((640, 480), (320, 240))
BACKENDS = ("keras", "litert")
TARGET_MS_640 = 5.0
TARGET_FER_RATIO = 15.0
TARGET_MS_PER_FACE = 1.5


def make_frames(size: tuple[int, int], count: int, seed: int = 0) -> list[bytes]:
    """Return ``count`` JPEG frames of the astronaut, each slightly shifted, scaled and relit."""
    from skimage import data

    width, height = size
    astronaut = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(count):
        scale = rng.uniform(0.9, 1.1) * height / 420
        dx, dy = rng.uniform(-0.04, 0.04, size=2) * (width, height)
        angle = rng.uniform(-4, 4)
        # Centre the face (about (230, 125) in the original) a little above the frame's middle.
        matrix = cv2.getRotationMatrix2D((230, 125), angle, scale)
        matrix[:, 2] += (width / 2 - 230 + dx, height * 0.4 - 125 + dy)
        frame = cv2.warpAffine(astronaut, matrix, size, borderMode=cv2.BORDER_REFLECT)
        frame = cv2.convertScaleAbs(frame, alpha=rng.uniform(0.75, 1.25), beta=rng.uniform(-20, 20))
        ok, jpeg = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 80])
        assert ok
        frames.append(jpeg.tobytes())
    return frames


def site_settings() -> dict:
    """Return the EMOTIONS_* settings the site would run with."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fer_site.settings")
    from django.conf import settings

    return {name: getattr(settings, name) for name in dir(settings) if name.startswith("EMOTIONS_")}


def backend_settings(backend: str, settings: dict) -> dict:
    """Return the batcher's workers and LiteRT's threads for ``backend``, as the site would choose them."""
    cores = os.cpu_count() or 1
    threads = settings["EMOTIONS_LITERT_THREADS"]
    if "EMOTIONS_BATCH_WORKERS" in os.environ:
        workers = settings["EMOTIONS_BATCH_WORKERS"]
    else:
        workers = max(1, cores // threads) if backend == "litert" else cores
    return {"workers": workers, "threads": threads if backend == "litert" else None}


def resolve_model(model: Path | None, default_model: Path, backends: list[str]) -> dict:
    """Return the files each backend serves (the same model) and a note on which model it is.

    Compiles the LiteRT file first if it has none (that imports TensorFlow, here, not where LiteRT
    is timed).
    """
    keras_path, note = keras_model(model, default_model)
    files = {"keras_path": str(keras_path), "note": note}
    if "litert" in backends:
        litert_path, sha256, problem = litert_record_read(keras_path)
        if litert_path is None or not litert_path.is_file():
            from emotions.compile import compile_model

            print(f"compiling {keras_path.name} to LiteRT ({problem})", file=sys.stderr)
            compiled = compile_model(keras_path)
            litert_path, sha256 = compiled.path, compiled.sha256
        files.update(litert_path=str(litert_path), litert_sha256=sha256)
    return files


def served_classifier(backend: str, files: dict, settings: dict):
    """Return the classifier ``backend`` serves the model with, as the site builds it."""
    keras_path = Path(files["keras_path"])
    if backend == "keras":
        configure_tensorflow()
        return KerasClassifier(keras_path, version=keras_path.stem)
    tuned = backend_settings(backend, settings)
    return LiteRTClassifier(
        files["litert_path"],
        sha256=files["litert_sha256"],
        version=keras_path.stem,
        num_threads=tuned["threads"],
        interpreters=tuned["workers"],
        weights=settings["EMOTIONS_LITERT_WEIGHTS"],
    )


def keras_model(model: Path | None, default_model: Path) -> tuple[Path, str]:
    """Return the ``.keras`` file to time and a note on which model it is."""
    path = model or default_model
    if path.is_file():
        return path, f"{path.name} (trained)"
    configure_tensorflow()  # before anything else imports TensorFlow with other settings
    try:
        from training.architectures import build_model

        network = build_model("mini_xception").model
        where = "training.architectures"
    except ImportError:
        network = _mini_xception_like()
        where = "the bench"
    folder = Path(tempfile.mkdtemp(prefix="attune-bench-"))
    network.save(folder / "untrained.keras")
    note = (
        f"UNTRAINED mini_xception from {where}, {network.count_params():,} parameters "
        f"({path.name} does not exist yet): timings are valid, outputs are not"
    )
    return folder / "untrained.keras", note


def _mini_xception_like():
    import keras
    from keras import layers

    inputs = keras.Input((48, 48, 1))
    x = inputs
    for _ in range(2):
        x = layers.Conv2D(8, 3, use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        x = layers.Activation("relu")(x)
    for filters in (16, 32, 64, 128):
        residual = layers.BatchNormalization()(layers.Conv2D(filters, 1, strides=2, padding="same")(x))
        x = layers.SeparableConv2D(filters, 3, padding="same", activation="relu")(x)
        x = layers.SeparableConv2D(filters, 3, padding="same")(x)
        x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
        x = layers.Add()([x, residual])
    x = layers.GlobalAveragePooling2D()(layers.Conv2D(7, 3, padding="same")(x))
    return keras.Model(inputs, layers.Activation("softmax")(x))


def load_fer(fer_path: Path) -> tuple[object | None, str]:
    """Return ``FER(mtcnn=False)`` and its version, or None and why it is skipped."""
    if fer_path.is_dir() and str(fer_path) not in sys.path:
        sys.path.append(str(fer_path))
    try:
        import fer
        from fer.fer import FER
    except ImportError as exc:
        return None, f"skipped: the fer package is not installed ({exc}); install it with: {FER_INSTALL}"
    import logging
    import warnings

    logging.getLogger("fer").setLevel(logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return FER(mtcnn=False), f"fer {getattr(fer, '__version__', '?')}, FER(mtcnn=False)"


def summary(values: list[float]) -> dict[str, float]:
    """Return the median and 95th percentile of ``values`` in milliseconds."""
    return {
        "median": round(statistics.median(values), 2),
        "p95": round(float(np.percentile(values, 95)), 2),
    }


def frames_block(pipeline: EmotionPipeline, frames: list[bytes], mode: str) -> dict:
    """Return each stage's times and the frames with a face, for ``frames`` run back to back in ``mode``:
    ``stream`` (one visitor's frames: a mood tracker and a face track, as a WebSocket connection keeps,
    and a stream's alternating views), ``stream_both_views`` (the same with both views on every frame)
    or ``single`` (each frame alone)."""
    stream = {"tracker": MoodTracker(), "track": FaceTrack(phase=0)} if mode != "single" else {}
    # "stream" keeps the site's EMOTIONS_ALTERNATE_VIEWS; the others never alternate.
    alternate = pipeline.alternate_views
    pipeline.alternate_views = alternate and mode == "stream"
    stages: dict[str, list[float]] = {stage: [] for stage in STAGES}
    found = 0
    try:
        for frame in frames:
            result = pipeline.analyze_sync(frame, **stream)
            for stage in STAGES:
                stages[stage].append(result.timings_ms[stage])
            found += bool(result.faces)
    finally:
        pipeline.alternate_views = alternate
    return {"stages": stages, "found": found}


def fer_block(detector_fer, frames: list[bytes]) -> dict:
    """Return fer's time per frame (JPEG decoding included) and the frames it found a face in."""
    ms, found = [], 0
    for frame in frames:
        started = time.perf_counter()
        faces = detector_fer.detect_emotions(cv2.imdecode(np.frombuffer(frame, np.uint8), cv2.IMREAD_COLOR))
        ms.append((time.perf_counter() - started) * 1000)
        found += bool(faces)
    return {"ms": ms, "found": found}


class Contender:
    """A backend (or fer) timed in a process of its own, started fresh (spawn), as it would be served.

    A web process serving LiteRT never imports TensorFlow, whose thread pools, and fer's, would
    otherwise share the process and its caches with the pipeline timed. The parent asks for one
    block of work at a time (:meth:`ask`), so that contenders take turns and none runs while another
    is timed.
    """

    def __init__(self, name: str, setup: dict) -> None:
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        self.name = name
        self.connection, child = context.Pipe()
        self.process = context.Process(target=_contender_main, args=(child, name, setup), daemon=True)
        self.process.start()
        child.close()
        self.info: dict = {}

    def ready(self) -> dict:
        """Wait until the contender has loaded; return what it says about itself."""
        self.info = self._reply()
        return self.info

    def ask(self, request: str, *args):
        self.connection.send((request, args))
        return self._reply()

    def _reply(self):
        try:
            ok, value = self.connection.recv()
        except EOFError:
            raise RuntimeError(f"the {self.name} contender exited") from None
        if not ok:
            raise RuntimeError(f"{self.name}: {value}")
        return value

    def close(self) -> None:
        with contextlib.suppress(OSError, BrokenPipeError):
            self.connection.send(("close", ()))
        self.process.join(30)
        if self.process.is_alive():
            self.process.kill()


def _contender_main(connection, name: str, setup: dict) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        served = _Served(name, setup)
        connection.send((True, served.info))
    except Exception as exc:  # reported to the parent, which stops
        connection.send((False, f"{type(exc).__name__}: {exc}"))
        return
    try:
        while True:
            request, args = connection.recv()
            if request == "close":
                break
            try:
                connection.send((True, getattr(served, request)(*args)))
            except Exception as exc:
                connection.send((False, f"{request}: {type(exc).__name__}: {exc}"))
    finally:
        served.close()


class _Served:
    """What a contender's process holds: a backend's classifier, batcher and pipelines, or fer."""

    def __init__(self, name: str, setup: dict) -> None:
        self.setup = setup
        self.batcher = None
        self.fer_warm = False
        if name == "fer":
            self.detector_fer, note = load_fer(Path(setup["fer_path"]))
            self.info = {"note": note, "available": self.detector_fer is not None}
            return
        settings = site_settings()
        self.settings = settings
        self.classifier = served_classifier(name, setup["files"], settings)
        self.batcher = MicroBatcher(
            self.classifier,
            max_batch=settings["EMOTIONS_BATCH_MAX_SIZE"],
            max_wait_ms=settings["EMOTIONS_BATCH_MAX_WAIT_MS"],
            queue_size=settings["EMOTIONS_BATCH_QUEUE_SIZE"],
            workers=backend_settings(name, settings)["workers"],
            inline=not getattr(self.classifier, "gains_from_batching", True),  # as the site builds it
        )
        self.pipelines: dict[str, EmotionPipeline] = {}
        views = settings["EMOTIONS_ALTERNATE_VIEWS"] and getattr(self.classifier, "views", False)
        self.info = {"views": views, "tensorflow": "tensorflow" in sys.modules}
        if served := getattr(self.classifier, "served_path", None):  # LiteRT: float32 or int8 weights
            self.info.update(file=served.name, timed_ms_per_face=self.classifier.timed_ms_per_face)

    def frames(self, size: str, frames: list[bytes], modes: list[str]) -> dict:
        pipeline = self.pipelines.get(size)
        if pipeline is None:
            detector_class = HaarFaceDetector if self.setup["detector"] == "haar" else BlazeFaceDetector
            pipeline = self.pipelines[size] = EmotionPipeline(
                detector_class(**self.setup["detector_args"]),
                self.batcher,
                max_bytes=self.settings["EMOTIONS_MAX_IMAGE_BYTES"],
                max_pixels=self.settings["EMOTIONS_MAX_IMAGE_PIXELS"],
                classifier=self.classifier,
                alternate_views=self.settings["EMOTIONS_ALTERNATE_VIEWS"],
            )
            for frame in frames[:3]:  # warm-up: caches, thread pools, the first graph calls
                pipeline.analyze_sync(frame)
        return {mode: frames_block(pipeline, frames, mode) for mode in modes}

    def fer(self, frames: list[bytes]) -> dict:
        if not self.fer_warm:  # warm-up: TensorFlow's first calls
            fer_block(self.detector_fer, frames[:3])
            self.fer_warm = True
        return fer_block(self.detector_fer, frames)

    def classifier_costs(self, seconds: float) -> dict:
        costs = {"classifier": bench_classifier(self.classifier, seconds)}
        if getattr(self.classifier, "views", False):
            costs["classifier_one_view"] = bench_classifier(self.classifier, seconds, (1,), view=True)
        return costs

    def batcher_costs(self, workers: int, seconds: float) -> dict:
        return bench_batcher(self.classifier, self.settings, workers, seconds)

    def close(self) -> None:
        if self.batcher is not None:
            self.batcher.close()


def frames_report(blocks: list[dict], fer_blocks: list[dict], frames: int) -> dict:
    """Return a backend's report for one frame size from its blocks (and fer's)."""
    report: dict = {"frames": frames}
    for mode in blocks[0]:
        stages = {stage: [t for block in blocks for t in block[mode]["stages"][stage]] for stage in STAGES}
        report[mode] = {stage: summary(values) for stage, values in stages.items()}
        report[mode]["face_found"] = round(sum(block[mode]["found"] for block in blocks) / frames, 3)
    if fer_blocks:
        fer_ms = [t for block in fer_blocks for t in block["ms"]]
        found = sum(block["found"] for block in fer_blocks) / len(fer_ms)
        report["fer"] = {**summary(fer_ms), "face_found": round(found, 3)}
        for mode in blocks[0]:
            report[mode]["fer_ratio"] = round(report["fer"]["median"] / report[mode]["total"]["median"], 1)
    return report


def bench_classifier(classifier, seconds: float, sizes: tuple[int, ...] = (1, 8, 32), *, view=False) -> dict:
    """Return faces per second, ms per call and ms per face of the classifier at batch 1, 8 and 32
    (``view``: of its one-view file, what a stream's frame costs; see ``predict_view``)."""
    predict = (lambda faces: classifier.predict_view(faces, mirrored=False)) if view else classifier.predict
    results = {}
    for size in sizes:
        faces = np.random.default_rng(size).random((size, 48, 48, 1), dtype=np.float32)
        predict(faces)
        calls: list[float] = []
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            predict(faces)
            calls.append(time.perf_counter() - started)
        results[size] = {
            "faces_per_s": round(size * len(calls) / sum(calls), 1),
            "ms_per_call": round(statistics.median(calls) * 1000, 2),
            "ms_per_face": round(statistics.median(calls) * 1000 / size, 3),
        }
    return results


async def _callers(classify, faces: np.ndarray, callers: int, seconds: float) -> float:
    """Run ``callers`` asyncio tasks that each classify one face after another; return faces per second."""
    done = 0
    deadline = time.perf_counter() + seconds

    async def caller(index: int) -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await classify(faces[(index + done) % len(faces)])
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(caller(index) for index in range(callers)))
    return done / (time.perf_counter() - started)


def bench_batcher(classifier, settings: dict, workers: int, seconds: float) -> dict:
    """Return faces per second with 1, 8 and 32 concurrent callers, batched and one call per face.

    The callers are asyncio tasks, as the WebSocket consumers are. Without the
    batcher each one classifies its face in a worker thread
    (``asyncio.to_thread``), the natural way to keep inference off the event loop.
    """
    faces = np.random.default_rng(0).random((64, 1, 48, 48, 1), dtype=np.float32)

    async def run() -> dict:
        results = {}
        with MicroBatcher(
            classifier,
            max_batch=settings["EMOTIONS_BATCH_MAX_SIZE"],
            max_wait_ms=settings["EMOTIONS_BATCH_MAX_WAIT_MS"],
            queue_size=settings["EMOTIONS_BATCH_QUEUE_SIZE"],
            workers=workers,
        ) as batcher:
            for callers in (1, 8, 32):

                async def unbatched(face: np.ndarray) -> np.ndarray:
                    return await asyncio.to_thread(classifier.predict, face)

                one_by_one = await _callers(unbatched, faces, callers, seconds)
                batches_before, faces_before = batcher.stats.batches, batcher.stats.faces
                batched = await _callers(batcher.classify, faces, callers, seconds)
                batches = batcher.stats.batches - batches_before
                results[callers] = {
                    "one_call_per_face_faces_per_s": round(one_by_one, 1),
                    "micro_batcher_faces_per_s": round(batched, 1),
                    "mean_batch": round((batcher.stats.faces - faces_before) / max(batches, 1), 1),
                    "ratio": round(batched / one_by_one, 2),
                }
        return results

    return asyncio.run(run())


def print_table(report: dict) -> None:
    print(f"Attune emotion engine benchmark · {report['machine']}")
    print(f"model: {report['model']}")
    print(f"detector: {report['detector']} · batcher: {report['batcher_settings']}")
    for backend, result in report["backends"].items():
        print(f"backend {backend}: {result['settings']}")
    print(f"peer: {report['fer']}")
    print(f"processes: {report['processes']}")
    backends = list(report["backends"])
    for size in report["backends"][backends[0]]["frames"]:
        print()
        header = f"{size:<9}{'stage':<12}" + "".join(
            f"{backend + ' stream':>16}{'p95':>8}{'single':>9}{'p95':>8}" for backend in backends
        )
        print(header)
        print("-" * len(header))
        results = [report["backends"][backend]["frames"][size] for backend in backends]
        for stage in STAGES:
            cells = "".join(
                f"{r['stream'][stage]['median']:>16.2f}{r['stream'][stage]['p95']:>8.2f}"
                f"{r['single'][stage]['median']:>9.2f}{r['single'][stage]['p95']:>8.2f}"
                for r in results
            )
            print(f"{'':<9}{stage:<12}{cells}")
        if any("stream_both_views" in r for r in results):
            cells = "".join(
                f"{r['stream_both_views']['total']['median']:>16.2f}{r['stream_both_views']['total']['p95']:>8.2f}"
                f"{'':>17}"
                if "stream_both_views" in r
                else f"{'-':>16}{'':>25}"
                for r in results
            )
            print(f"{'':<9}{'both views':<12}{cells}")
        if "fer" in results[0]:
            cells = "".join(f"{r['fer']['median']:>16.2f}{r['fer']['p95']:>8.2f}{'':>17}" for r in results)
            print(f"{'':<9}{'fer':<12}{cells}")
            cells = "".join(
                f"{r['stream']['fer_ratio']:>15.1f}×{'':>8}{r['single']['fer_ratio']:>8.1f}×{'':>8}"
                for r in results
            )
            print(f"{'':<9}{'fer / ours':<12}{cells}")
        for backend, r in zip(backends, results, strict=True):
            found = f"{backend}: faces found in {r['stream']['face_found']:.0%} (stream), "
            found += f"{r['single']['face_found']:.0%} (single) of {r['frames']} frames"
            if "fer" in r:
                found += f"; fer {r['fer']['face_found']:.0%}"
            print(f"{'':<9}{found}")
    print(
        "stream: one visitor's frames in order (mood tracker, face track), where a one-view file is served "
        "its faces seen from one side per frame, alternately; both views: the same stream with both views "
        "on every frame (the stream's total); single: each frame alone"
    )
    print()
    print(f"{'classifier':<16}{'batch':>6}{'faces/s':>10}{'ms/call':>10}{'ms/face':>10}")
    for backend in backends:
        rows = [(backend, report["backends"][backend]["classifier"])]
        if "classifier_one_view" in report["backends"][backend]:
            rows.append((f"{backend} 1 view", report["backends"][backend]["classifier_one_view"]))
        for label, results in rows:
            for size, result in results.items():
                print(
                    f"{label:<16}{size:>6}{result['faces_per_s']:>10.1f}{result['ms_per_call']:>10.2f}"
                    f"{result['ms_per_face']:>10.3f}"
                )
    print()
    header = f"{'backend':<9}{'callers':>8}{'one call/face':>15}{'micro-batcher':>15}{'mean batch':>12}"
    print(f"{header}{'ratio':>8}")
    for backend in backends:
        for callers, result in report["backends"][backend]["batcher"].items():
            print(
                f"{backend:<9}{callers:>8}{result['one_call_per_face_faces_per_s']:>15.1f}"
                f"{result['micro_batcher_faces_per_s']:>15.1f}{result['mean_batch']:>12.1f}"
                f"{result['ratio']:>7.2f}×"
            )
    print()
    for name, target in report["targets"].items():
        verdict = "skipped" if target["met"] is None else ("met" if target["met"] else "NOT met")
        print(f"target {name}: {target['goal']} → {target['measured']} · {verdict}")


def targets(report: dict) -> dict:
    """Return each target with what was measured for the served backend (LiteRT when it ran)."""
    backend = "litert" if "litert" in report["backends"] else next(iter(report["backends"]))
    result = report["backends"][backend]
    big = result["frames"]["640×480"]["stream"]
    one_face = result["classifier"][1]["ms_per_face"]
    found = {
        f"classify ({backend})": {
            "goal": f"≤ {TARGET_MS_PER_FACE:g} ms per face at batch 1",
            "measured": f"{one_face:.2f} ms"
            + (
                f" (one view, a stream's frame: {result['classifier_one_view'][1]['ms_per_face']:.2f} ms)"
                if "classifier_one_view" in result
                else ""
            ),
            "met": one_face <= TARGET_MS_PER_FACE,
        },
        f"640×480 frame ({backend})": {
            "goal": f"≤ {TARGET_MS_640:g} ms median (stream)",
            "measured": f"{big['total']['median']:.2f} ms",
            "met": big["total"]["median"] <= TARGET_MS_640,
        },
        f"vs fer ({backend})": {
            "goal": f"≥ {TARGET_FER_RATIO:g}× faster at 640×480 (stream)",
            "measured": f"{big['fer_ratio']:.1f}×" if "fer_ratio" in big else "fer not run",
            "met": big["fer_ratio"] >= TARGET_FER_RATIO if "fer_ratio" in big else None,
        },
    }
    if {"keras", "litert"} <= set(report["backends"]):
        keras_ms = report["backends"]["keras"]["classifier"][1]["ms_per_face"]
        found["litert vs keras"] = {
            "goal": "LiteRT faster than Keras per face at batch 1",
            "measured": f"{keras_ms / one_face:.1f}× ({keras_ms:.2f} → {one_face:.2f} ms)",
            "met": one_face < keras_ms,
        }
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--out", type=Path, help="also write the results as JSON to this file")
    parser.add_argument("--backends", default=",".join(BACKENDS), help="keras, litert or both (default)")
    parser.add_argument("--frames", type=int, default=30, help="frames per size (default 30)")
    parser.add_argument("--rounds", type=int, default=2, help="passes over the frames (default 2)")
    parser.add_argument("--seconds", type=float, default=2.0, help="seconds per throughput point")
    parser.add_argument("--model", type=Path, help="a .keras file (default: EMOTIONS_DEFAULT_MODEL)")
    parser.add_argument("--fer-path", type=Path, default=FER_TARGET, help="folder fer was installed into")
    parser.add_argument(
        "--detector", choices=("blazeface", "haar"), help="face detector (default: EMOTIONS_DETECTOR)"
    )
    parser.add_argument("--detect-height", type=int)
    parser.add_argument("--scale-factor", type=float)
    parser.add_argument("--min-neighbors", type=int)
    parser.add_argument("--min-face-fraction", type=float)
    args = parser.parse_args(argv)
    backends = [name.strip() for name in args.backends.split(",") if name.strip()]
    if not backends or set(backends) - set(BACKENDS):
        parser.error(f"--backends takes {' and/or '.join(BACKENDS)}")

    settings = site_settings()
    detector_name = args.detector or settings["EMOTIONS_DETECTOR"]
    if detector_name == "haar":
        detector_args = {
            "detect_height": args.detect_height or settings["EMOTIONS_DETECT_HEIGHT"],
            "scale_factor": args.scale_factor or settings["EMOTIONS_DETECT_SCALE_FACTOR"],
            "min_neighbors": args.min_neighbors or settings["EMOTIONS_DETECT_MIN_NEIGHBORS"],
            "min_face_fraction": args.min_face_fraction or settings["EMOTIONS_DETECT_MIN_FACE_FRACTION"],
        }
        detector_class = HaarFaceDetector
    else:
        detector_args = {
            "min_score": settings["EMOTIONS_DETECTOR_MIN_SCORE"],
            "threads": settings["EMOTIONS_DETECTOR_THREADS"],
        }
        detector_class = BlazeFaceDetector
    files = resolve_model(args.model, Path(settings["EMOTIONS_DEFAULT_MODEL"]), backends)
    setup = {
        "files": files,
        "detector": detector_name,
        "detector_args": detector_args,
        "fer_path": str(args.fer_path),
    }
    # Each in a process of its own, as served; they load side by side, then take turns.
    contenders = {name: Contender(name, setup) for name in [*backends, "fer"]}
    try:
        infos = {name: contender.ready() for name, contender in contenders.items()}
        if not infos["fer"]["available"]:
            contenders.pop("fer").close()
        report: dict = {
            "machine": (
                f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
                f"load average {os.getloadavg()[0]:.1f} at start"
            ),
            "command": " ".join(["python", "bench/emotion_engine.py", *(argv or sys.argv[1:])]),
            "model": files["note"],
            "detector": f"{detector_class.__name__} "
            + ", ".join(f"{k}={v}" for k, v in detector_args.items()),
            "batcher_settings": (
                f"max_batch={settings['EMOTIONS_BATCH_MAX_SIZE']}, "
                f"max_wait_ms={settings['EMOTIONS_BATCH_MAX_WAIT_MS']}"
            ),
            "fer": infos["fer"]["note"],
            "processes": "one per backend and one for fer; TensorFlow imported in: "
            + (", ".join(name for name in backends if infos[name]["tensorflow"]) or "none"),
            "backends": {
                backend: {
                    "settings": backend_settings(backend, settings),
                    **({"file": infos[backend]["file"]} if "file" in infos[backend] else {}),
                    **(
                        {"timed_ms_per_face": infos[backend]["timed_ms_per_face"]}
                        if infos[backend].get("timed_ms_per_face")
                        else {}
                    ),
                    "frames": {},
                }
                for backend in backends
            },
        }
        modes = {
            backend: ["stream", "stream_both_views", "single"]
            if infos[backend]["views"]
            else ["stream", "single"]
            for backend in backends
        }
        for size in SIZES:
            frames = make_frames(size, args.frames)
            name = f"{size[0]}×{size[1]}"
            blocks: dict[str, list[dict]] = {backend: [] for backend in backends}
            fer_blocks: list[dict] = []
            # Round after round, contender after contender: all meet the same moments of the machine's load.
            for _ in range(args.rounds):
                for backend in backends:
                    blocks[backend].append(contenders[backend].ask("frames", name, frames, modes[backend]))
                if "fer" in contenders:
                    fer_blocks.append(contenders["fer"].ask("fer", frames))
            for backend in backends:
                report["backends"][backend]["frames"][name] = frames_report(
                    blocks[backend], fer_blocks, args.rounds * len(frames)
                )
        for backend in backends:
            report["backends"][backend].update(contenders[backend].ask("classifier_costs", args.seconds))
        for backend in backends:
            workers = report["backends"][backend]["settings"]["workers"]
            report["backends"][backend]["batcher"] = contenders[backend].ask(
                "batcher_costs", workers, args.seconds
            )
    finally:
        for contender in contenders.values():
            contender.close()
    report["targets"] = targets(report)

    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        print_table(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
