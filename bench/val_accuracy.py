"""Accuracy of a model on FER-2013's validation split, served by the Keras and the LiteRT backends.

    python bench/val_accuracy.py [--data ../shared/data/fer2013] [--model PATH.keras] [--json] [--out FILE]

Every ``val`` image is classified through the serving code
(``emotions.classifier``: Keras's frozen TensorFlow function; the compiled
``.tflite`` file, under LiteRT with XNNPACK, with float32 weights, and the file
with int8 weights ``compile_model`` wrote beside it: a web process serves one of
the two, by which is faster on its CPU), after the one preprocessing path
(``emotions.preprocessing.to_model_input``). Reports each one's accuracy and
macro F1, how often each LiteRT file names Keras's class, the largest difference
between their probabilities, the expected calibration error (ECE), and the time each
took. Where a LiteRT file has a
one-view file (a mirror-averaging model), also what one live frame sees (the face,
or its mirror image) and the mean of two frames.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from emotions.classifier import (  # noqa: E402
    KerasClassifier,
    LiteRTClassifier,
    litert_record_path,
    litert_record_read,
)
from emotions.preprocessing import to_model_input  # noqa: E402
from training.calibration import expected_calibration_error  # noqa: E402
from training.datasets import load_evaluation_split  # noqa: E402
from training.evaluation import compute_metrics  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "data" / "fer2013"
DEFAULT_MODEL = REPO / "emotions" / "default_model" / "attune_default.keras"


def classify(classifier, faces: np.ndarray, batch: int) -> tuple[np.ndarray, float]:
    """Return (n, 7) probabilities for (n, 48, 48, 1) faces, in batches, and the seconds it took."""
    started = time.perf_counter()
    probabilities = np.concatenate(
        [classifier.predict(faces[start : start + batch]) for start in range(0, len(faces), batch)]
    )
    return probabilities, time.perf_counter() - started


class OneView:
    """A LiteRT classifier's one-view answers: the face as it is, its mirror image, or (``mirrored``
    None) both, weighed ``newest`` to ``1 - newest``: two frames of a stream (0.5: their mean)."""

    def __init__(self, classifier: LiteRTClassifier, *, mirrored: bool | None, newest: float = 0.5) -> None:
        self.classifier, self.mirrored, self.newest = classifier, mirrored, newest

    def predict(self, faces: np.ndarray) -> np.ndarray:
        if self.mirrored is not None:
            return self.classifier.predict_view(faces, mirrored=self.mirrored)
        sides = [self.classifier.predict_view(faces, mirrored=side) for side in (False, True)]
        return self.newest * sides[0] + (1 - self.newest) * sides[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="FER-2013 folder (with val/)")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="a .keras file, compiled beside it")
    parser.add_argument("--batch", type=int, default=32, help="faces per call (default 32)")
    parser.add_argument(
        "--mood-alpha", type=float, default=0.3, help="the mood's moving-average weight (EMOTIONS_MOOD_ALPHA)"
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--out", type=Path, help="also write the results as JSON to this file")
    args = parser.parse_args(argv)

    split, name = load_evaluation_split(args.data, split="val")
    faces = to_model_input(split.x)
    litert_path, sha256, problem = litert_record_read(args.model)
    if litert_path is None:
        sys.exit(f"{args.model.name} has no LiteRT file: {problem} (manage.py compile_model {args.model})")

    record = json.loads(litert_record_path(args.model).read_text())
    served: dict = {"keras": KerasClassifier(args.model, version=args.model.stem)}
    if record.get("weights", "float32") == "float32":
        # The float32 file, and the int8 one beside it where compile_model wrote one (which of the two a
        # web process serves depends on its CPU: EMOTIONS_LITERT_WEIGHTS).
        for kind in ("float32", "int8"):
            classifier = LiteRTClassifier(litert_path, sha256=sha256, weights=kind, num_threads=2)
            if kind == "float32" or classifier.served_path != litert_path:
                served[f"litert {kind}"] = classifier
    else:  # compiled before float32 files were always kept: the same model compiled so, for comparison
        served["litert int8"] = LiteRTClassifier(litert_path, sha256=sha256, num_threads=2)
        with tempfile.TemporaryDirectory(prefix="attune-val-") as folder:
            from emotions.compile import compile_model

            as_float = compile_model(Path(shutil.copy(args.model, folder)), int8=False)
            served["litert float32"] = LiteRTClassifier(as_float.path, sha256=as_float.sha256, num_threads=2)
    # The mood's moving average (weight alpha on the newest frame) gives the newest side this share.
    newest = args.mood_alpha / (1 - (1 - args.mood_alpha) ** 2)
    for kind in ("float32", "int8"):
        classifier = served.get(f"litert {kind}")
        if classifier is None or not classifier.views:
            continue
        # What a stream's frames see, one side each in turn, and the mean of two frames (the mood's view).
        served[f"litert {kind} one view"] = OneView(classifier, mirrored=False)
        served[f"litert {kind} one view, mirrored"] = OneView(classifier, mirrored=True)
        served[f"litert {kind} two frames"] = OneView(classifier, mirrored=None)
        mood = OneView(classifier, mirrored=None, newest=newest)
        served[f"litert {kind} mood ({newest:.2f} newest side)"] = mood
    results: dict = {}
    probabilities = {}
    for backend, classifier in served.items():
        probabilities[backend], seconds = classify(classifier, faces, args.batch)
        metrics = compute_metrics(split.y, probabilities[backend])
        results[backend] = {
            "accuracy": round(metrics["accuracy"], 4),
            "macro_f1": round(metrics["macro_f1"], 4),
            "ece": round(expected_calibration_error(probabilities[backend], split.y), 4),
            "seconds": round(seconds, 2),
        }
        if backend != "keras":
            results[backend].update(
                accuracy_difference_points=round(
                    (metrics["accuracy"] - results["keras"]["accuracy"]) * 100, 2
                ),
                same_class=round(
                    float((probabilities["keras"].argmax(1) == probabilities[backend].argmax(1)).mean()), 5
                ),
                max_abs_diff=float(np.abs(probabilities["keras"] - probabilities[backend]).max()),
            )
    report = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "command": " ".join(["python", "bench/val_accuracy.py", *(argv or sys.argv[1:])]),
        "model": args.model.name,
        "litert_files": {
            name: classifier.served_path.name
            for name, classifier in served.items()
            if isinstance(classifier, LiteRTClassifier)
        },
        "split": f"{args.data.name}/{name}",
        "images": len(split),
        "backends": results,
    }
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"{report['model']} on {report['split']} ({report['images']} images) · {report['machine']}")
    print(f"{'backend':<34}{'accuracy':>10}{'macro F1':>10}{'ECE':>8}{'seconds':>9}   vs Keras")
    for backend, row in results.items():
        versus = (
            f"   same class {row['same_class']:.2%}, probabilities within {row['max_abs_diff']:.2g}, "
            f"accuracy {row['accuracy_difference_points']:+.2f} points"
            if "same_class" in row
            else ""
        )
        print(
            f"{backend:<34}{row['accuracy']:>10.4f}{row['macro_f1']:>10.4f}{row['ece']:>8.4f}"
            f"{row['seconds']:>9.2f}{versus}"
        )
    for name, file in report["litert_files"].items():
        print(f"{name}: {file}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
