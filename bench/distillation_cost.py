"""What distillation costs a training epoch: one student on labels alone and with a teacher, side by side.

    python bench/distillation_cost.py --teacher TEACHER.keras [--data ../shared/data/fer2013]
        [--width 0.5] [--per-class 400] [--rounds 2] [--json] [--out FILE]

Each round trains the student (custom_cnn) for three epochs on a sample of at most ``--per-class``
training faces per class, once on the labels and once with the teacher answering on every augmented
batch, alternating so that both see the same machine. The first epoch of each run compiles and is left
out; validation (the whole split, through the teacher too when there is one) is part of every epoch.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from training.config import TrainConfig  # noqa: E402
from training.datasets import load_dataset  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "data" / "fer2013"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--teacher", type=Path, required=True, help="the teacher's .keras file")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="FER-2013 folder (train/, val/)")
    parser.add_argument("--width", type=float, default=0.5, help="the student's width (custom_cnn)")
    parser.add_argument("--per-class", type=int, default=400, help="training faces per class, at most")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each kind, alternating")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--out", type=Path, help="also write the results as JSON to this file")
    args = parser.parse_args(argv)

    from training.trainer import train

    dataset = load_dataset(args.data)
    kinds = {"labels alone": None, "with the teacher": str(args.teacher)}
    seconds: dict[str, list[float]] = {kind: [] for kind in kinds}
    with tempfile.TemporaryDirectory(prefix="attune-distil-") as folder:
        for round_ in range(args.rounds):
            for kind, teacher in kinds.items():
                config = TrainConfig(
                    architecture="custom_cnn",
                    width=args.width,
                    epochs=3,
                    batch_size=64,
                    max_per_class=args.per_class,
                    lr_schedule="cosine",
                    teacher_model=teacher,
                )
                result = train(config, dataset, Path(folder) / f"{round_}-{teacher is not None}")
                seconds[kind] += result.history["seconds"][1:]
    medians = {kind: statistics.median(values) for kind, values in seconds.items()}
    report = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "command": " ".join(["python", "bench/distillation_cost.py", *(argv or sys.argv[1:])]),
        "student": f"custom_cnn width {args.width}",
        "teacher": args.teacher.name,
        "training_faces": len(dataset.train.limited(args.per_class, seed=0)),
        "validation_faces": len(dataset.val),
        "epoch_seconds": seconds,
        "median_epoch_seconds": medians,
        "ratio": round(medians["with the teacher"] / medians["labels alone"], 2),
    }
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(
        f"{report['student']}, {report['training_faces']} training and {report['validation_faces']} "
        f"validation faces · {report['machine']}"
    )
    print(f"{'epoch, median s':<20}{'labels alone':>14}{'with the teacher':>18}{'ratio':>8}")
    print(
        f"{'':<20}{medians['labels alone']:>14.1f}{medians['with the teacher']:>18.1f}{report['ratio']:>8.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
