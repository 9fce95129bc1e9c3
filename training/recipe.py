"""A GPU recipe: wide teachers, then small students distilled from them (the shipped default's teachers).

Runs without Django (``python -m training.recipe``), on any Keras 3 backend; on a GPU machine use JAX::

    KERAS_BACKEND=jax python -m training.recipe --data DATASET_DIR --out RUN_DIR --seconds 520

Within a wall-clock budget, several :func:`training.trainer.train` runs share the machine, each in its
own process and run folder:

* phase A (the first ``--teacher-share`` of the budget): two wide custom CNNs (``--teacher-width``,
  1.5 by default; seeds 1 and 2), the teachers;
* phase B (the rest): two students distilled from both teachers' averaged answer, one of the serving
  width (``--student-width``; started from ``--student-init`` when given), one wider
  (``--wide-student-width``);
* throughout: a student of the serving width trained on the labels alone, for comparison.

Each run first times two short epochs on a sample, then sets its epoch count so that its cosine
schedule ends inside its share of the budget; a run that would still overrun stops at the deadline with
its best checkpoint. Everything is selected on the validation split only. The students are then served
as the shipped default is (``manage.py ensemble --zoom ... --mirror``) and calibrated on a CPU machine.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

log = logging.getLogger("training.recipe")

ROOT = Path(__file__).resolve().parents[1]  # where ``python -m training.recipe`` finds the package

SAMPLE_PER_CLASS = 400  # the timing sample: two epochs of at most this many faces per class
DONE = "done"  # written into a run folder once its model.keras is complete
SAFETY = 0.9  # share of the measured time budget the schedule plans to fill
GRACE = 60.0  # seconds a student waits for a teacher beyond the teachers' deadline


def _jobs(args) -> dict[str, dict]:
    teachers = ["teacher_1", "teacher_2"]
    teacher_end = _teacher_end(args)
    common = {
        "batch_size": args.batch_size,
        "learning_rate": args.learning_rate,
        "lr_schedule": "cosine",
        "early_stopping_patience": 1000,  # the cosine schedule runs its whole budget
    }
    student = {**common, "architecture": "custom_cnn", "width": args.student_width}
    return {
        "teacher_1": {
            "config": {**common, "architecture": "custom_cnn", "width": args.teacher_width, "seed": 1},
            "ends": teacher_end,
        },
        "teacher_2": {
            "config": {**common, "architecture": "custom_cnn", "width": args.teacher_width, "seed": 2},
            "ends": teacher_end,
        },
        "labels_only": {"config": {**student, "label_smoothing": 0.1, "seed": 3}, "ends": args.seconds},
        "student_1": {
            "config": {
                **student,
                "distill_weight": args.distill_weight,
                "seed": 4,
                **(
                    {"init_model": args.student_init, "learning_rate": args.student_init_lr}
                    if args.student_init
                    else {}
                ),
            },
            "teachers": teachers,
            "ends": args.seconds,
        },
        "student_wide": {
            "config": {
                **student,
                "width": args.wide_student_width,
                "distill_weight": args.distill_weight,
                "seed": 5,
            },
            "teachers": teachers,
            "ends": args.seconds,
        },
    }


def _teacher_end(args) -> float:
    return args.seconds * args.teacher_share


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="dataset folder (train/ and val/ of class folders)")
    parser.add_argument("--out", required=True, help="folder for the runs (one sub-folder each)")
    parser.add_argument("--seconds", type=float, default=520.0, help="wall-clock budget from start")
    parser.add_argument("--teacher-share", type=float, default=0.5)
    parser.add_argument("--teacher-width", type=float, default=1.5)
    parser.add_argument("--student-width", type=float, default=0.5)
    parser.add_argument("--student-init", help="a .keras model of the serving width to start student_1 from")
    parser.add_argument("--student-init-lr", type=float, default=5e-4)
    parser.add_argument("--wide-student-width", type=float, default=0.75)
    parser.add_argument("--distill-weight", type=float, default=0.7)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--max-per-class", type=int, default=0, help="train on a sample (a quick trial)")
    parser.add_argument("--max-epochs", type=int, default=1000, help="at most this many epochs a run")
    parser.add_argument("--jobs", help="run only these jobs (comma-separated names)")
    parser.add_argument("--job", help=argparse.SUPPRESS)
    parser.add_argument("--started", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stdout)
    if args.job:
        return _run_job(args)

    started = time.time()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    _dataset(args)  # fills the cache once, before the jobs read it
    env = {**os.environ, "XLA_PYTHON_CLIENT_PREALLOCATE": "false", "PYTHONUNBUFFERED": "1"}
    processes = {}
    for name in args.jobs.split(",") if args.jobs else _jobs(args):
        command = [sys.executable, "-m", "training.recipe", *_passed(argv), "--job", name]
        command += ["--started", str(started)]
        with open(out / f"{name}.log", "w") as log_file:
            processes[name] = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT
            )
    codes = {name: process.wait() for name, process in processes.items()}
    summary = {name: _summary(out / name) | {"exit_code": code} for name, code in codes.items()}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    log.info("done in %.0f s: %s", time.time() - started, json.dumps(summary))
    return 0 if all(code == 0 for code in codes.values()) else 1


def _passed(argv: list[str] | None) -> list[str]:
    return list(sys.argv[1:] if argv is None else argv)


def _dataset(args):
    from training.datasets import load_dataset

    return load_dataset(args.data, cache_dir=Path(args.out) / "cache")


def _summary(run_dir: Path) -> dict:
    state = run_dir / "state.json"
    if not state.exists():
        return {}
    data = json.loads(state.read_text())
    return {
        "best_val_accuracy": data["best_val_accuracy"],
        "best_epoch": data["best_epoch"],
        "epochs_done": data["epochs_done"],
        "epochs": data["config"]["epochs"],
        "seconds": data["seconds"],
    }


def _run_job(args) -> int:
    import keras

    from training.config import TrainConfig
    from training.trainer import Hooks, averaged, train

    job = _jobs(args)[args.job]
    out = Path(args.out)
    deadline = args.started + job["ends"]
    dataset = _dataset(args)
    options = {**job["config"], "max_per_class": args.max_per_class}

    teachers = job.get("teachers")
    if teachers:
        # Teachers stop at their share of the budget; one that failed is left out after a grace period.
        _wait_for([out / name / DONE for name in teachers], args.started + _teacher_end(args) + GRACE)
        present = [name for name in teachers if (out / name / DONE).exists()]
        if not present:
            log.error("%s: no teacher finished", args.job)
            return 1
        networks = []
        for name in present:
            network = keras.models.load_model(out / name / "model.keras")
            network.name = name
            networks.append(network)
        teacher_file = out / args.job / "teacher.keras"
        teacher_file.parent.mkdir(parents=True, exist_ok=True)
        teacher = averaged(networks, mirror=False, name="teachers")
        teacher.save(teacher_file)
        options["teacher_model"] = str(teacher_file)
        log.info("%s: distilling from %s", args.job, ", ".join(present))

    class Deadline(Hooks):
        def should_cancel(self) -> bool:
            return time.time() > deadline

        def log(self, message: str) -> None:
            log.info("%s: %s", args.job, message)

    # Time two short epochs on a sample (the first compiles), then size the schedule to the budget. The
    # sample is of both splits alike, so that its epoch scales to a whole one, validation included.
    train_split = dataset.train.limited(args.max_per_class, seed=0) if args.max_per_class else dataset.train
    sample = train_split.limited(SAMPLE_PER_CLASS, seed=0)
    share = len(sample) / len(train_split)
    probe_data = replace(dataset, train=sample, val=dataset.val.fraction(share, seed=0))
    probe = TrainConfig(**{**options, "epochs": 2, "max_per_class": 0})
    probe_result = train(probe, probe_data, out / args.job / "probe", Deadline())
    if len(probe_result.history.get("seconds", [])) < 2:
        log.error("%s: the deadline passed while timing the sample epochs", args.job)
        return 1
    per_epoch = probe_result.history["seconds"][-1] / share
    # The run compiles again: at most the probe's first epoch (compiling and a sample's epoch) again.
    left = deadline - time.time() - probe_result.history["seconds"][0]
    epochs = max(1, min(args.max_epochs, int(SAFETY * left / per_epoch)))
    log.info("%s: %.1f s per epoch, %.0f s left: %d epochs", args.job, per_epoch, left, epochs)
    config = TrainConfig(**{**options, "epochs": epochs})
    (out / args.job).mkdir(parents=True, exist_ok=True)
    (out / args.job / "recipe.json").write_text(json.dumps(asdict(config), indent=1))
    result = train(config, dataset, out / args.job, Deadline())
    if result.cancelled:  # stopped at the deadline: serve the best checkpoint so far
        if not result.model_path.exists():
            log.error("%s: stopped at the deadline before its first epoch ended", args.job)
            return 1
        (out / args.job / "model.keras").write_bytes(result.model_path.read_bytes())
    (out / args.job / DONE).write_text(json.dumps(_summary(out / args.job)))
    log.info(
        "%s: best validation accuracy %.4f at epoch %d of %d (%s)",
        args.job,
        result.best_val_accuracy,
        result.best_epoch,
        epochs,
        "stopped at the deadline" if result.cancelled else "finished",
    )
    return 0


def _wait_for(paths: list[Path], deadline: float) -> None:
    while not all(Path(p).exists() for p in paths) and time.time() < deadline:
        time.sleep(2)


if __name__ == "__main__":
    sys.exit(main())
