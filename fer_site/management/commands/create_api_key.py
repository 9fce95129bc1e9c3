"""Create an API key and print it once: `manage.py create_api_key NAME --scopes analyze,content`."""

from __future__ import annotations

from datetime import timedelta

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from fer_site.api.keys import api_key_create
from fer_site.models import Scope


class Command(BaseCommand):
    help = "Create a REST API key with scopes; the key is printed once and stored only as a hash."

    def add_arguments(self, parser):
        parser.add_argument("name", help="A name that says who uses the key, e.g. 'kiosk app'.")
        parser.add_argument(
            "--scopes",
            required=True,
            help=f"Comma-separated scopes: {', '.join(Scope.values)}, or 'all'.",
        )
        parser.add_argument(
            "--rate", default="", help="Throttle rate, e.g. 600/min (default API_THROTTLE_RATE)."
        )
        parser.add_argument("--expires-in-days", type=int, default=None, help="Expire the key after N days.")

    def handle(self, *args, **options):
        scopes = [s.strip() for s in options["scopes"].split(",") if s.strip()]
        if scopes == ["all"]:
            scopes = list(Scope.values)
        days = options["expires_in_days"]
        if days is not None and days < 1:
            raise CommandError("--expires-in-days must be at least 1.")
        try:
            api_key, key = api_key_create(
                name=options["name"],
                scopes=scopes,
                throttle_rate=options["rate"],
                expiry_date=timezone.now() + timedelta(days=days) if days else None,
            )
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        self.stderr.write(
            f"Created API key {api_key.prefix}… '{api_key.name}' with scopes "
            f"{', '.join(api_key.scopes) or 'none'}. Store it now: it is not shown again."
        )
        # The key alone on stdout, so scripts can capture it: KEY=$(manage.py create_api_key ...).
        self.stdout.write(key)
