"""Load Attune's demo themes, items and rules (run by `make run`; does nothing once content exists)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from adaptation.demo import demo_content_load


class Command(BaseCommand):
    help = "Create the demo themes, content items and mood rules on a first start; idempotent."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--force", action="store_true", help="Add any missing demo row even if content already exists."
        )

    def handle(self, *args: Any, force: bool, **options: Any) -> None:
        if demo_content_load(force=force):
            self.stdout.write(self.style.SUCCESS("Demo content loaded."))
        else:
            self.stdout.write(
                "Content already exists; demo content not loaded (use --force to add missing rows)."
            )
