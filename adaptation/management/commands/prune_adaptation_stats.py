"""Delete aggregate statistics older than ADAPTATION_STATS_RETENTION_DAYS (run daily, e.g. from cron)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from adaptation.services import stats_prune


class Command(BaseCommand):
    help = "Delete impression, click and mood counters older than the retention period."

    def handle(self, *args: Any, **options: Any) -> None:
        daily, minutes = stats_prune()
        self.stdout.write(f"Deleted {daily} daily item counters and {minutes} per-minute mood counters.")
