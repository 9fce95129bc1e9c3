"""Train a model in this process, with progress bars, and register it."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from training.config import OPTIONS, Option
from training.models import TrainingRun
from training.services import model_package, training_run_claim, training_run_create, training_run_execute


class Command(BaseCommand):
    help = "Train an expression model on FER-2013 (folder layout or fer2013.csv) and register it."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--data", required=True, help="Dataset folder (train/, val/ or test/) or fer2013.csv."
        )
        for option in OPTIONS.values():
            _add_option(parser, option)
        parser.add_argument("--name", default="")
        parser.add_argument("--run-dir", default="", help="Checkpoint folder; an existing one is resumed.")
        parser.add_argument(
            "--activate", action="store_true", help="Activate the model when the run succeeds."
        )
        parser.add_argument("--export", help="Also copy the model and its card to this .keras path.")

    def handle(self, *args, **options) -> None:
        from tqdm import tqdm

        config = {name: _option_value(option, options) for name, option in OPTIONS.items()}
        architecture = config.pop("architecture")
        if not Path(options["data"]).exists():
            raise CommandError(f"dataset not found: {options['data']}")
        try:
            run = training_run_create(
                architecture=architecture,
                dataset_path=options["data"],
                config=config,
                name=options["name"],
                run_dir=options["run_dir"],
                enqueue=False,
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        training_run_claim(run_id=run.pk, worker="manage.py train")
        self.stdout.write(f"run {run.pk}: {architecture} on {options['data']} -> {run.folder}")

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


def _add_option(parser, option: Option) -> None:
    """Add ``option`` under its flag; a boolean's flag turns it away from its default."""
    if option.type is bool:
        off = "Turn off (on by default): " if option.default else ""
        parser.add_argument(
            option.command_flag, action="store_true", dest=_dest(option), help=off + option.description
        )
        return
    parser.add_argument(
        option.command_flag,
        dest=_dest(option),
        type=option.type,
        default=option.default,
        choices=option.choices or None,
        help=option.description + (" Default: %(default)s." if option.default is not None else ""),
    )


def _dest(option: Option) -> str:
    # Named like the flag, so call_command(no_augment=True) means what --no-augment means.
    return option.command_flag.removeprefix("--").replace("-", "_")


def _option_value(option: Option, options: dict):
    value = options[_dest(option)]
    return (not value if option.default else value) if option.type is bool else value


def _command_line() -> str:
    return "python manage.py " + " ".join(shlex.quote(arg) for arg in sys.argv[1:])
