"""Start daphne with the limits Attune's settings define."""

from __future__ import annotations

import os
import sys

from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Serve HTTP and WebSockets with daphne, its WebSocket message limit taken from the settings."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument(
            "--proxy-headers", action="store_true", help="Trust X-Forwarded-For from a proxy."
        )

    def handle(self, *args, **options) -> None:
        argv = [
            sys.executable,
            "-m",
            "daphne",
            "-b",
            options["host"],
            "-p",
            str(options["port"]),
            "--websocket-max-message-size",
            str(settings.WEBSOCKET_MAX_MESSAGE_SIZE),
            "--websocket-max-frame-size",
            str(settings.WEBSOCKET_MAX_MESSAGE_SIZE),
            "--ping-interval",
            str(settings.WEBSOCKET_PING_INTERVAL_S),
            "--ping-timeout",
            str(settings.WEBSOCKET_PING_TIMEOUT_S),
        ]
        if options["proxy_headers"]:
            argv.append("--proxy-headers")
        argv.append("fer_site.asgi:application")
        sys.stdout.flush()
        os.environ["ATTUNE_PRELOAD_ENGINE"] = "1"
        os.execv(sys.executable, argv)
