"""Benchmark the emotion engine on real frames, its backends side by side and against the `fer` package.

    python bench/emotion_engine.py [--backends keras,litert] [--json] [--out FILE] [--frames N] [--model F]

Measures, in one run, for each backend (``keras``: the ``.keras`` file through a
TensorFlow function; ``litert``: its compiled ``.tflite`` file under LiteRT with
XNNPACK, as the web processes serve it):
- per-stage and total time per frame (median, p95) of the live pipeline
  (decode → detect → crop → micro-batched classification) on 640×480 and
  320×240 JPEG frames of ``skimage.data.astronaut()`` with small shifts,
  scales and brightness changes, and ``fer``'s ``FER(mtcnn=False).detect_emotions``
  on the same frames (JPEG decoding included for both), frame by frame;
- classifier time per call and per face at batch 1, 8 and 32;
- micro-batcher throughput with 1, 8 and 32 concurrent callers, against one
  classifier call per face.

The detector, batcher and LiteRT threads use the site's settings (EMOTIONS_*),
unless flags override them; the Keras backend gets its own defaults (one batch
worker per core). ``fer`` is optional: see requirements-bench.txt.
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


def load_classifiers(
    model: Path | None, default_model: Path, backends: list[str], settings: dict
) -> tuple[dict, str]:
    """Return the classifier of each backend, serving the same model, and a note on which model."""
    keras_path, note = keras_model(model, default_model)
    classifiers = {}
    for backend in backends:
        if backend == "keras":
            classifiers[backend] = KerasClassifier(keras_path, version=keras_path.stem)
            continue
        litert_path, sha256, problem = litert_record_read(keras_path)
        if litert_path is None or not litert_path.is_file():
            from emotions.compile import compile_model

            print(f"compiling {keras_path.name} to LiteRT ({problem})", file=sys.stderr)
            compiled = compile_model(keras_path)
            litert_path, sha256 = compiled.path, compiled.sha256
        tuned = backend_settings(backend, settings)
        classifiers[backend] = LiteRTClassifier(
            litert_path,
            sha256=sha256,
            version=keras_path.stem,
            num_threads=tuned["threads"],
            interpreters=tuned["workers"],
        )
    return classifiers, note


def keras_model(model: Path | None, default_model: Path) -> tuple[Path, str]:
    """Return the ``.keras`` file to time and a note on which model it is."""
    path = model or default_model
    configure_tensorflow()  # before anything else imports TensorFlow with other settings
    if path.is_file():
        return path, f"{path.name} (trained)"
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


def bench_classifier(classifier, seconds: float) -> dict:
    """Return faces per second, ms per call and ms per face of the classifier at batch 1, 8 and 32."""
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
    print("stream: one visitor's frames in order (mood tracker, face track); single: each frame alone")
    print()
    print(f"{'classifier':<12}{'batch':>6}{'faces/s':>10}{'ms/call':>10}{'ms/face':>10}")
    for backend in backends:
        for size, result in report["backends"][backend]["classifier"].items():
            print(
                f"{backend:<12}{size:>6}{result['faces_per_s']:>10.1f}{result['ms_per_call']:>10.2f}"
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
            "measured": f"{one_face:.2f} ms",
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
    classifiers, model_note = load_classifiers(
        args.model, Path(settings["EMOTIONS_DEFAULT_MODEL"]), backends, settings
    )
    detector_fer, fer_note = load_fer(args.fer_path)
    report: dict = {
        "machine": (
            f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
            f"load average {os.getloadavg()[0]:.1f} at start"
        ),
        "command": " ".join(["python", "bench/emotion_engine.py", *(argv or sys.argv[1:])]),
        "model": model_note,
        "detector": f"{detector_class.__name__} " + ", ".join(f"{k}={v}" for k, v in detector_args.items()),
        "batcher_settings": (
            f"max_batch={settings['EMOTIONS_BATCH_MAX_SIZE']}, "
            f"max_wait_ms={settings['EMOTIONS_BATCH_MAX_WAIT_MS']}"
        ),
        "fer": fer_note,
        "backends": {
            backend: {"settings": backend_settings(backend, settings), "frames": {}} for backend in backends
        },
    }

    batchers = {
        backend: MicroBatcher(
            classifier,
            max_batch=settings["EMOTIONS_BATCH_MAX_SIZE"],
            max_wait_ms=settings["EMOTIONS_BATCH_MAX_WAIT_MS"],
            queue_size=settings["EMOTIONS_BATCH_QUEUE_SIZE"],
            workers=report["backends"][backend]["settings"]["workers"],
            inline=not getattr(classifier, "gains_from_batching", True),  # as the site builds it
        )
        for backend, classifier in classifiers.items()
    }
    try:
        # Size by size, backend after backend: both meet the same moments of a shared machine's load.
        for size in SIZES:
            frames = make_frames(size, args.frames)
            name = f"{size[0]}×{size[1]}"
            for backend, classifier in classifiers.items():
                pipeline = EmotionPipeline(
                    detector_class(**detector_args),
                    batchers[backend],
                    max_bytes=settings["EMOTIONS_MAX_IMAGE_BYTES"],
                    max_pixels=settings["EMOTIONS_MAX_IMAGE_PIXELS"],
                    classifier=classifier,
                )
                frames_report = bench_frames(pipeline, detector_fer, frames, args.rounds)
                report["backends"][backend]["frames"][name] = frames_report
    finally:
        for batcher in batchers.values():
            batcher.close()
    for backend, classifier in classifiers.items():
        report["backends"][backend]["classifier"] = bench_classifier(classifier, args.seconds)
    for backend, classifier in classifiers.items():
        workers = report["backends"][backend]["settings"]["workers"]
        report["backends"][backend]["batcher"] = bench_batcher(classifier, settings, workers, args.seconds)
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
