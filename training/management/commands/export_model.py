"""Ship a run's best model (finished or still training) with its evaluation, model card and LiteRT file."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from training.management.commands._litert import compile_beside
from training.services import model_package


class Command(BaseCommand):
    help = (
        "Evaluate a run folder's best model on the validation split and write it with its model card, "
        "and compiled to LiteRT beside it (.tflite and its .litert.json record)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--run-dir", required=True, help="The run's folder (holds state.json, best.keras)."
        )
        parser.add_argument(
            "--data", required=True, help="The dataset it was trained on (for the validation split)."
        )
        parser.add_argument(
            "--to", required=True, help="Target .keras path; the card and pictures go beside it."
        )
        parser.add_argument("--train-command", default="", help="The command that trained it, for the card.")
        parser.add_argument("--note", default="", help="A note for the model card.")

    def handle(self, *args, **options) -> None:
        run_dir = Path(options["run_dir"])
        if not (run_dir / "state.json").is_file():
            raise CommandError(f"{run_dir} holds no training run (no state.json)")
        result = model_package(
            run_dir=run_dir,
            data_path=options["data"],
            target_model=Path(options["to"]),
            train_command=options["train_command"],
            note=options["note"],
        )
        self.stdout.write(
            self.style.SUCCESS(
                f"wrote {result['model']}: validation accuracy {result['accuracy']:.4f} "
                f"after {result['epochs_done']} epochs"
            )
        )
        compile_beside(self, result["model"])
