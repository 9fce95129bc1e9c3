"""Evaluate a model (by default the active one) on a labelled test set."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Print accuracy, the per-class report and the confusion matrix of a model on a test set."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--model", help=".keras file; default: the active model (or the shipped default)."
        )
        parser.add_argument(
            "--data", required=True, help="A split folder (<class>/*.jpg), a dataset folder, or a CSV."
        )
        parser.add_argument(
            "--split",
            default="auto",
            choices=("auto", "train", "val", "test"),
            help="Which split of a dataset folder or CSV (auto: test if present, else val).",
        )
        parser.add_argument("--json", action="store_true", help="Print one JSON object instead of a report.")

    def handle(self, *args, **options) -> None:
        from tqdm import tqdm

        from emotions.services import emotion_model_spec
        from training.datasets import DatasetError, load_evaluation_split
        from training.evaluation import evaluate, format_report

        model_path = Path(options["model"]) if options["model"] else emotion_model_spec().path
        if not model_path.is_file():
            raise CommandError(f"model file not found: {model_path}")
        bar = None

        def progress(done: int, total: int) -> None:
            nonlocal bar
            if bar is None:
                bar = tqdm(total=total, desc="decoding", unit="img", file=sys.stderr, disable=options["json"])
            bar.update(done - bar.n)

        try:
            split, name = load_evaluation_split(options["data"], split=options["split"], progress=progress)
        except DatasetError as exc:
            raise CommandError(str(exc)) from None
        finally:
            if bar is not None:
                bar.close()

        import keras

        model = keras.models.load_model(model_path, safe_mode=True)
        metrics = evaluate(model, split)
        metrics["model"] = model_path.name
        metrics["split"] = name
        if options["json"]:
            self.stdout.write(json.dumps(metrics))
        else:
            self.stdout.write(f"{model_path.name} on {options['data']} ({name})\n")
            self.stdout.write(format_report(metrics))
