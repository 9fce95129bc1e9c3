"""Calibrate a model file's confidence on a validation split (temperature scaling), in place or to a copy."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from training.management.commands._litert import compile_beside


class Command(BaseCommand):
    help = (
        "Fit a temperature on the validation split so that the model's stated confidence matches its "
        "accuracy; write the calibrated model (and its LiteRT file), reliability.png and evaluation.json."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--model", required=True, help="The .keras file to calibrate.")
        parser.add_argument(
            "--data", required=True, help="A dataset folder with val/ (or a CSV) to fit the temperature on."
        )
        parser.add_argument("--to", help="Where to write the calibrated model (default: over --model).")

    def handle(self, *args, **options) -> None:
        from training.calibration import CalibrationError
        from training.datasets import DatasetError
        from training.services import model_calibrate

        source = Path(options["model"])
        target = Path(options["to"] or source)
        if not source.is_file():
            raise CommandError(f"model file not found: {source}")
        try:
            result = model_calibrate(source=source, data_path=options["data"], target=target)
        except (CalibrationError, DatasetError) as exc:
            raise CommandError(str(exc)) from None
        figures = result["calibration"]
        self.stdout.write(
            self.style.SUCCESS(
                f"wrote {target}: temperature {figures['temperature']:.3f}, expected calibration error "
                f"{figures['ece_before']:.4f} -> {figures['ece_after']:.4f}, "
                f"accuracy {result['accuracy']:.4f}"
            )
        )
        compile_beside(self, target)
