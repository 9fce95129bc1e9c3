"""Average several models into one file (an ensemble), calibrated, with its card."""

from __future__ import annotations

import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from training.management.commands._litert import compile_beside


class Command(BaseCommand):
    help = (
        "Serve the mean of models (or one model, with a mirror or zoom view) as one .keras file (stock "
        "layers), calibrated on the validation "
        "split, with evaluation.json, pictures and a model card beside it; compiled to LiteRT. Useful as a "
        "teacher for train --teacher-model, or to serve when the compute per face allows it."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--model",
            action="append",
            required=True,
            help="A member .keras file (one or more; a run's last.keras: its last epoch).",
        )
        parser.add_argument("--data", required=True, help="A dataset folder with val/ (or a CSV).")
        parser.add_argument(
            "--to", required=True, help="The ensemble's .keras path; its card goes beside it."
        )
        mirror = parser.add_mutually_exclusive_group()
        mirror.add_argument("--mirror", action="store_true", default=None, help="Also average mirror images.")
        mirror.add_argument("--no-mirror", dest="mirror", action="store_false", help="Never mirror faces.")
        parser.add_argument(
            "--zoom",
            type=float,
            help="Enlarge each face about its centre by about this much before the members see it (1 to "
            "1.5; a test-time zoom, which makes up for training's random zooms; choose it on val). "
            "Default: the members' own when they share one, else none.",
        )
        parser.add_argument(
            "--shift",
            type=int,
            help="With a zoom: also average the zoomed crop moved this many pixels up, down, left and "
            "right (five crops, ten with mirror images; lone images pay for every pass, a live stream's "
            "frame for one). Default: the members' own when they share one, else none.",
        )

        parser.add_argument(
            "--refit-batchnorm",
            action="store_true",
            help="Gather the members' BatchNorm statistics again on the training faces as the ensemble "
            "serves them (its zoom, crops and mirror images), before calibrating: they were gathered on "
            "augmented faces (FixRes; about a minute for the shipped network on 2 CPU cores).",
        )

    def handle(self, *args, **options) -> None:
        from tqdm import tqdm

        from training.calibration import CalibrationError
        from training.datasets import DatasetError
        from training.services import model_ensemble

        sources = [Path(path) for path in options["model"]]
        missing = [str(path) for path in sources if not path.is_file()]
        if missing:
            raise CommandError(f"model file not found: {', '.join(missing)}")
        target = Path(options["to"])
        bar = None

        def progress(done: int, total: int) -> None:
            nonlocal bar
            if bar is None:
                bar = tqdm(total=total, desc="BatchNorm statistics", unit="batch", file=sys.stderr)
            bar.update(done - bar.n)

        try:
            result = model_ensemble(
                sources=sources,
                data_path=options["data"],
                target=target,
                mirror=options["mirror"],
                zoom=options["zoom"],
                shift=options["shift"],
                refit_batchnorm=options["refit_batchnorm"],
                command=_command(options),
                progress=progress,
            )
        except (CalibrationError, DatasetError, ValueError) as exc:
            raise CommandError(str(exc)) from None
        finally:
            if bar is not None:
                bar.close()
        for member in result["members"]:
            self.stdout.write(f"{member['file']}: {member['accuracy']:.4f} alone")
        if result["batchnorm"]:
            self.stdout.write(
                f"BatchNorm statistics gathered again on {result['batchnorm']['faces']} training faces: "
                f"validation accuracy {result['batchnorm']['accuracy_before']:.4f} before"
            )
        figures = result["calibration"]
        self.stdout.write(
            self.style.SUCCESS(
                f"wrote {target}: validation accuracy {result['accuracy']:.4f}, expected calibration error "
                f"{figures['ece_after']:.4f} (temperature {figures['temperature']:.3f})"
            )
        )
        compile_beside(self, target)


def _command(options: dict) -> str:
    """Return the command line that made the ensemble, for its model card."""
    parts = ["python manage.py ensemble"]
    parts += [f"--model {path}" for path in options["model"]]
    parts += [f"--data {options['data']}", f"--to {options['to']}"]
    if options["mirror"] is not None:
        parts.append("--mirror" if options["mirror"] else "--no-mirror")
    if options["zoom"] is not None:
        parts.append(f"--zoom {options['zoom']:g}")
    if options["shift"] is not None:
        parts.append(f"--shift {options['shift']}")
    if options["refit_batchnorm"]:
        parts.append("--refit-batchnorm")
    return " ".join(parts)
