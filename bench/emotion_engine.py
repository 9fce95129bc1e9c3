"""Benchmark the emotion engine on real frames, side by side with the `fer` package.

    python bench/emotion_engine.py [--json] [--frames 30] [--model PATH]

Measures, in one run:
- per-stage and total time per frame (median, p95) of the live pipeline
  (decode → detect → crop → micro-batched classification) on 640×480 and
  320×240 JPEG frames of ``skimage.data.astronaut()`` with small shifts,
  scales and brightness changes, and ``fer``'s ``FER(mtcnn=False).detect_emotions``
  on the same frames (JPEG decoding included for both), frame by frame;
- classifier throughput at batch 1, 8 and 32;
- micro-batcher throughput with 1, 8 and 32 concurrent callers, against one
  classifier call per face.

The detector and batcher use the site's settings (EMOTIONS_*), unless flags
override them. ``fer`` is optional: see requirements-bench.txt.
"""

from __future__ import annotations

import argparse
import asyncio
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
from emotions.classifier import KerasClassifier, configure_tensorflow  # noqa: E402
from emotions.detector import FaceTrack, HaarFaceDetector  # noqa: E402
from emotions.mood import MoodTracker  # noqa: E402
from emotions.pipeline import STAGES, EmotionPipeline  # noqa: E402

FER_TARGET = REPO / "var" / "bench" / "fer"
FER_INSTALL = ".venv/bin/pip install --no-deps --target var/bench/fer -r requirements-bench.txt"
SIZES = ((640, 480), (320, 240))
TARGET_MS_640 = 10.0
TARGET_FER_RATIO = 10.0
TARGET_BATCHER_RATIO = 3.0


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


def load_classifier(model: Path | None, default_model: Path) -> tuple[KerasClassifier, str]:
    """Return the classifier to time and a note on which model it serves."""
    path = model or default_model
    configure_tensorflow()  # before anything else imports TensorFlow with other settings
    if path.is_file():
        return KerasClassifier(path, version=path.stem), f"{path.name} (trained)"
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
    return KerasClassifier(folder / "untrained.keras", version="untrained"), note


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


def bench_frames(pipeline: EmotionPipeline, detector_fer, frames: list[bytes], rounds: int) -> dict:
    """Time the pipeline (as a stream and on single images) and fer on each frame in turn."""
    modes = ("stream", "single")
    stages = {mode: {stage: [] for stage in STAGES} for mode in modes}
    found = dict.fromkeys(modes, 0)
    fer_ms: list[float] = []
    fer_found = 0
    for frame in frames[:3]:  # warm-up: caches, thread pools, the first graph calls
        pipeline.analyze_sync(frame)
        if detector_fer is not None:
            detector_fer.detect_emotions(cv2.imdecode(np.frombuffer(frame, np.uint8), cv2.IMREAD_COLOR))
    for _ in range(rounds):
        # A stream keeps its mood and where its faces were, as a WebSocket connection does.
        stream = {"tracker": MoodTracker(), "track": FaceTrack(phase=0)}
        for frame in frames:
            for mode in modes:
                result = pipeline.analyze_sync(frame, **(stream if mode == "stream" else {}))
                for stage in STAGES:
                    stages[mode][stage].append(result.timings_ms[stage])
                found[mode] += bool(result.faces)
            if detector_fer is not None:
                started = time.perf_counter()
                image = cv2.imdecode(np.frombuffer(frame, np.uint8), cv2.IMREAD_COLOR)
                faces = detector_fer.detect_emotions(image)
                fer_ms.append((time.perf_counter() - started) * 1000)
                fer_found += bool(faces)
    count = rounds * len(frames)
    report: dict = {"frames": count}
    for mode in modes:
        report[mode] = {stage: summary(values) for stage, values in stages[mode].items()}
        report[mode]["face_found"] = round(found[mode] / count, 3)
    if fer_ms:
        report["fer"] = {**summary(fer_ms), "face_found": round(fer_found / count, 3)}
        for mode in modes:
            report[mode]["fer_ratio"] = round(report["fer"]["median"] / report[mode]["total"]["median"], 1)
    return report


def bench_classifier(classifier: KerasClassifier, seconds: float) -> dict:
    """Return faces per second and ms per call of the classifier at batch 1, 8 and 32."""
    results = {}
    for size in (1, 8, 32):
        faces = np.random.default_rng(size).random((size, 48, 48, 1), dtype=np.float32)
        classifier.predict(faces)
        calls: list[float] = []
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            classifier.predict(faces)
            calls.append(time.perf_counter() - started)
        results[size] = {
            "faces_per_s": round(size * len(calls) / sum(calls), 1),
            "ms_per_call": round(statistics.median(calls) * 1000, 2),
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


def bench_batcher(classifier: KerasClassifier, settings: dict, seconds: float) -> dict:
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
            workers=settings["EMOTIONS_BATCH_WORKERS"],
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
    print(f"peer: {report['fer']}")
    print()
    header = f"{'frame':<9}{'stage':<12}{'stream median':>14}{'p95':>8}{'single median':>15}{'p95':>8}"
    print(header)
    print("-" * len(header))
    for size, result in report["frames"].items():
        stream, single = result["stream"], result["single"]
        for stage in STAGES:
            print(
                f"{size:<9}{stage:<12}{stream[stage]['median']:>14.2f}{stream[stage]['p95']:>8.2f}"
                f"{single[stage]['median']:>15.2f}{single[stage]['p95']:>8.2f}"
            )
        if "fer" in result:
            fer = result["fer"]
            print(f"{size:<9}{'fer':<12}{fer['median']:>14.2f}{fer['p95']:>8.2f}")
            print(f"{size:<9}{'fer / ours':<12}{stream['fer_ratio']:>13.1f}×{single['fer_ratio']:>22.1f}×")
        found = (
            f"faces found in {stream['face_found']:.0%} (stream), {single['face_found']:.0%} (single)"
            f" of {result['frames']} frames"
        )
        if "fer" in result:
            found += f"; fer {result['fer']['face_found']:.0%}"
        print(f"{'':<9}{found}")
    print("stream: one visitor's frames in order (mood tracker, face track); single: each frame alone")
    print()
    print(f"{'classifier batch':<18}{'faces/s':>10}{'ms/call':>10}")
    for size, result in report["classifier"].items():
        print(f"{size:<18}{result['faces_per_s']:>10.1f}{result['ms_per_call']:>10.2f}")
    print()
    print(f"{'callers':<9}{'one call/face':>15}{'micro-batcher':>15}{'mean batch':>12}{'ratio':>8}")
    for callers, result in report["batcher"].items():
        print(
            f"{callers:<9}{result['one_call_per_face_faces_per_s']:>15.1f}"
            f"{result['micro_batcher_faces_per_s']:>15.1f}{result['mean_batch']:>12.1f}{result['ratio']:>7.2f}×"
        )
    print()
    for name, target in report["targets"].items():
        verdict = "skipped" if target["met"] is None else ("met" if target["met"] else "NOT met")
        print(f"target {name}: {target['goal']} → {target['measured']} · {verdict}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--frames", type=int, default=30, help="frames per size (default 30)")
    parser.add_argument("--rounds", type=int, default=2, help="passes over the frames (default 2)")
    parser.add_argument("--seconds", type=float, default=2.0, help="seconds per throughput point")
    parser.add_argument("--model", type=Path, help="a .keras file (default: EMOTIONS_DEFAULT_MODEL)")
    parser.add_argument("--fer-path", type=Path, default=FER_TARGET, help="folder fer was installed into")
    parser.add_argument("--detect-height", type=int)
    parser.add_argument("--scale-factor", type=float)
    parser.add_argument("--min-neighbors", type=int)
    parser.add_argument("--min-face-fraction", type=float)
    args = parser.parse_args(argv)

    settings = site_settings()
    detector_args = {
        "detect_height": args.detect_height or settings["EMOTIONS_DETECT_HEIGHT"],
        "scale_factor": args.scale_factor or settings["EMOTIONS_DETECT_SCALE_FACTOR"],
        "min_neighbors": args.min_neighbors or settings["EMOTIONS_DETECT_MIN_NEIGHBORS"],
        "min_face_fraction": args.min_face_fraction or settings["EMOTIONS_DETECT_MIN_FACE_FRACTION"],
    }
    classifier, model_note = load_classifier(args.model, Path(settings["EMOTIONS_DEFAULT_MODEL"]))
    detector_fer, fer_note = load_fer(args.fer_path)
    report: dict = {
        "machine": (
            f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
            f"load average {os.getloadavg()[0]:.1f} at start"
        ),
        "model": model_note,
        "detector": "Haar " + ", ".join(f"{k}={v}" for k, v in detector_args.items()),
        "batcher_settings": (
            f"max_batch={settings['EMOTIONS_BATCH_MAX_SIZE']}, "
            f"max_wait_ms={settings['EMOTIONS_BATCH_MAX_WAIT_MS']}"
        ),
        "fer": fer_note,
        "frames": {},
    }

    with MicroBatcher(
        classifier,
        max_batch=settings["EMOTIONS_BATCH_MAX_SIZE"],
        max_wait_ms=settings["EMOTIONS_BATCH_MAX_WAIT_MS"],
        queue_size=settings["EMOTIONS_BATCH_QUEUE_SIZE"],
        workers=settings["EMOTIONS_BATCH_WORKERS"],
    ) as batcher:
        pipeline = EmotionPipeline(
            HaarFaceDetector(**detector_args),
            batcher,
            max_bytes=settings["EMOTIONS_MAX_IMAGE_BYTES"],
            max_pixels=settings["EMOTIONS_MAX_IMAGE_PIXELS"],
            classifier=classifier,
        )
        for size in SIZES:
            frames = make_frames(size, args.frames)
            name = f"{size[0]}×{size[1]}"
            report["frames"][name] = bench_frames(pipeline, detector_fer, frames, args.rounds)
    report["classifier"] = bench_classifier(classifier, args.seconds)
    report["batcher"] = bench_batcher(classifier, settings, args.seconds)

    big = report["frames"]["640×480"]["stream"]
    at_32 = report["batcher"][32]
    report["targets"] = {
        "640×480 frame": {
            "goal": f"≤ {TARGET_MS_640:g} ms median (stream)",
            "measured": f"{big['total']['median']:.2f} ms",
            "met": big["total"]["median"] <= TARGET_MS_640,
        },
        "vs fer": {
            "goal": f"≥ {TARGET_FER_RATIO:g}× faster at 640×480 (stream)",
            "measured": f"{big['fer_ratio']:.1f}×" if "fer_ratio" in big else "fer not run",
            "met": big["fer_ratio"] >= TARGET_FER_RATIO if "fer_ratio" in big else None,
        },
        "micro-batcher": {
            "goal": f"≥ {TARGET_BATCHER_RATIO:g}× one call per face at 32 callers",
            "measured": f"{at_32['ratio']:.2f}×",
            "met": at_32["ratio"] >= TARGET_BATCHER_RATIO,
        },
    }
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        print_table(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
