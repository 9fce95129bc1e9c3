"""Train a model in this process, with progress bars, and register it."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from training.models import TrainingRun
from training.services import (
    ARCHITECTURE_CHOICES,
    LR_SCHEDULE_CHOICES,
    model_package,
    training_run_claim,
    training_run_create,
    training_run_execute,
)


class Command(BaseCommand):
    help = "Train an expression model on FER-2013 (folder layout or fer2013.csv) and register it."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--data", required=True, help="Dataset folder (train/, val/ or test/) or fer2013.csv."
        )
        parser.add_argument("--arch", default="mini_xception", choices=ARCHITECTURE_CHOICES)
        parser.add_argument("--epochs", type=int, default=60)
        parser.add_argument("--batch-size", type=int, default=64)
        parser.add_argument("--lr", type=float, default=1e-3, help="Initial learning rate.")
        parser.add_argument("--no-augment", action="store_true", help="Train without augmentation.")
        parser.add_argument(
            "--class-weights", action="store_true", help="Weight classes by inverse frequency."
        )
        parser.add_argument("--label-smoothing", type=float, default=0.0)
        parser.add_argument("--patience", type=int, default=15, help="Early-stopping patience in epochs.")
        parser.add_argument("--fine-tune-epochs", type=int, default=0)
        parser.add_argument("--fine-tune-lr", type=float, default=1e-5)
        parser.add_argument("--weights", help="Local ImageNet weights file for transfer architectures.")
        parser.add_argument(
            "--width",
            type=float,
            default=1.0,
            help="Filter multiplier for custom_cnn and mini_xception (2: about 4x the parameters).",
        )
        parser.add_argument(
            "--lr-schedule",
            default="plateau",
            choices=LR_SCHEDULE_CHOICES,
            help="plateau: halve the rate when val_loss stalls; cosine: decay smoothly over the epochs.",
        )
        parser.add_argument(
            "--init-model", help="Start from this .keras model's weights (same architecture)."
        )
        parser.add_argument(
            "--mirror-average",
            action="store_true",
            help="Serve the average of each face and its mirror image (twice the compute).",
        )
        parser.add_argument("--name", default="")
        parser.add_argument("--run-dir", default="", help="Checkpoint folder; an existing one is resumed.")
        parser.add_argument(
            "--activate", action="store_true", help="Activate the model when the run succeeds."
        )
        parser.add_argument("--export", help="Also copy the model and its card to this .keras path.")

    def handle(self, *args, **options) -> None:
        from tqdm import tqdm

        config = {
            "epochs": options["epochs"],
            "batch_size": options["batch_size"],
            "learning_rate": options["lr"],
            "augment": not options["no_augment"],
            "class_weights": options["class_weights"],
            "label_smoothing": options["label_smoothing"],
            "early_stopping_patience": options["patience"],
            "fine_tune_epochs": options["fine_tune_epochs"],
            "fine_tune_learning_rate": options["fine_tune_lr"],
            "weights_path": options["weights"],
            "width": options["width"],
            "lr_schedule": options["lr_schedule"],
            "init_model": options["init_model"],
            "mirror_average": options["mirror_average"],
        }
        if not Path(options["data"]).exists():
            raise CommandError(f"dataset not found: {options['data']}")
        try:
            run = training_run_create(
                architecture=options["arch"],
                dataset_path=options["data"],
                config=config,
                name=options["name"],
                run_dir=options["run_dir"],
                enqueue=False,
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        training_run_claim(run_id=run.pk, worker="manage.py train")
        self.stdout.write(f"run {run.pk}: {options['arch']} on {options['data']} -> {run.folder}")

        bars: dict[str, tqdm] = {}

        def load_progress(done: int, total: int) -> None:
            bar = bars.get("load")
            if bar is None or bar.total != total:
                bar = bars["load"] = tqdm(total=total, desc="decoding", unit="img", file=sys.stderr)
            bar.update(done - bar.n)

        def batch_progress(epoch: int, batch: int, steps: int) -> None:
            bar = bars.get("epoch")
            if bar is None or bar.desc != f"epoch {epoch}":
                if bar is not None:
                    bar.close()
                bar = bars["epoch"] = tqdm(total=steps, desc=f"epoch {epoch}", unit="batch", file=sys.stderr)
            bar.update(batch - bar.n)

        try:
            run = training_run_execute(
                run_id=run.pk,
                command=_command_line(),
                load_progress=load_progress,
                batch_progress=batch_progress,
            )
        finally:
            for bar in bars.values():
                bar.close()

        if run.status != TrainingRun.Status.SUCCEEDED:
            raise CommandError(f"run {run.pk} {run.status}: {run.error or 'see its log'}")
        self.stdout.write(
            self.style.SUCCESS(f"validation accuracy {run.metrics['accuracy']:.4f}; {run.model_version}")
        )
        if options["activate"]:
            from django.core.exceptions import ValidationError

            from emotions.services import model_version_activate

            try:
                model_version_activate(version=run.model_version)
            except ValidationError as exc:
                raise CommandError(" ".join(exc.messages)) from None
            self.stdout.write(f"activated {run.model_version}")
        if options["export"]:
            result = model_package(
                run_dir=run.folder,
                data_path=options["data"],
                target_model=Path(options["export"]),
                train_command=_command_line(),
            )
            self.stdout.write(f"wrote {result['model']} and its evaluation, pictures and model card")


def _command_line() -> str:
    return "python manage.py " + " ".join(shlex.quote(arg) for arg in sys.argv[1:])
