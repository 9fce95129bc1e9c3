"""Compile expression models to LiteRT, the files the web processes serve."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from emotions.models import ModelVersion


class Command(BaseCommand):
    help = (
        "Compile .keras models to LiteRT (.tflite beside each, with a .litert.json record), checked "
        "against Keras on sample faces. Without arguments: the shipped default model."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("paths", nargs="*", type=Path, help=".keras files (default: the default model)")
        parser.add_argument(
            "--model-version", dest="names", action="append", default=[], help="a registered version's name"
        )
        parser.add_argument(
            "--all-versions",
            action="store_true",
            help="every registered version without a verified LiteRT file",
        )
        parser.add_argument(
            "--float32",
            action="store_true",
            help="write no file with int8 weights beside the float32 one (by default one is written where "
            "it stays within its tolerance; web processes serve it where it is faster on their CPU: 3.4 "
            "times faster on some, no faster on AVX2-only ones; EMOTIONS_LITERT_WEIGHTS)",
        )

    def handle(
        self, *args, paths: list[Path], names: list[str], all_versions: bool, float32: bool, **options
    ) -> None:
        from emotions.compile import CompileError, compile_model
        from emotions.services import model_version_compile

        versions = list(ModelVersion.objects.filter(name__in=names))
        missing = set(names) - {version.name for version in versions}
        if missing:
            raise CommandError(f"no registered version is named {', '.join(sorted(missing))}")
        if all_versions:
            versions += [v for v in ModelVersion.objects.all() if v.litert_problem() and v not in versions]
        if not paths and not names and not all_versions:
            paths = [Path(settings.EMOTIONS_DEFAULT_MODEL)]
        if not paths and not versions:
            self.stdout.write("every registered version has a verified LiteRT file already")

        failed = 0
        for path in paths:
            try:
                compiled = compile_model(path, int8=not float32)
            except CompileError as exc:
                self.stderr.write(self.style.ERROR(f"{path}: {exc}"))
                failed += 1
                continue
            self.stdout.write(self.style.SUCCESS(compiled.summary()))
        for version in versions:
            version = model_version_compile(version=version, int8=not float32)
            if problem := version.litert_problem():
                self.stderr.write(self.style.ERROR(f"{version.name}: {problem}"))
                failed += 1
                continue
            self.stdout.write(
                self.style.SUCCESS(
                    f"{version.name}: {version.litert_path} (SHA-256 {version.litert_sha256}), largest "
                    f"difference from Keras {version.litert_max_abs_diff:.2g}"
                )
            )
        if failed:
            raise CommandError(f"{failed} model(s) could not be compiled to LiteRT")
