"""Load Attune's demo themes, items and rules (run by `make run`; does nothing once content exists)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from adaptation.demo import DEMO_STATIC_DIR, demo_content_load, demo_svgs_write


class Command(BaseCommand):
    help = "Create the demo themes, content items and mood rules on a first start; idempotent."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--force", action="store_true", help="Add any missing demo row even if content already exists."
        )
        parser.add_argument(
            "--write-svg",
            action="store_true",
            help=f"Regenerate the demo pictures under static/{DEMO_STATIC_DIR}/ (they are committed).",
        )

    def handle(self, *args: Any, force: bool, write_svg: bool, **options: Any) -> None:
        if write_svg:
            folder = Path(settings.BASE_DIR) / "static" / DEMO_STATIC_DIR
            paths = demo_svgs_write(folder)
            self.stdout.write(f"Wrote {len(paths)} pictures to {folder}.")
        if demo_content_load(force=force):
            self.stdout.write(self.style.SUCCESS("Demo content loaded."))
        else:
            self.stdout.write(
                "Content already exists; demo content not loaded (use --force to add missing rows)."
            )
