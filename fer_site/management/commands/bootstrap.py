"""First-run set-up for `make run`: demo content and an admin account, both idempotent."""

from __future__ import annotations

import secrets

from django.contrib.auth import get_user_model
from django.core.management import call_command, get_commands
from django.core.management.base import BaseCommand

ADMIN_USERNAME = "admin"


class Command(BaseCommand):
    help = "Load the demo content and create the admin account on first run; print where to go."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--url", default="http://127.0.0.1:8000/", help="The URL the site will be served at."
        )

    def handle(self, *args, **options) -> None:
        if "load_demo_content" in get_commands():
            call_command("load_demo_content", verbosity=0)
        url = options["url"].rstrip("/") + "/"
        User = get_user_model()
        if not User.objects.filter(is_superuser=True).exists():
            password = secrets.token_urlsafe(12)
            User.objects.create_superuser(ADMIN_USERNAME, email="", password=password)
            self.stdout.write(
                self.style.WARNING(
                    f"Created the admin account '{ADMIN_USERNAME}' with the password: {password}\n"
                    "It is shown this once; `python manage.py changepassword admin` sets a new one."
                )
            )
        self.stdout.write(
            self.style.SUCCESS(f"Attune: {url}   operators: {url}admin/   health: {url}healthz")
        )
