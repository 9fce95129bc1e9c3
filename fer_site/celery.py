"""The Celery application: settings come from Django's, under the CELERY_ prefix."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fer_site.settings")

app = Celery("fer_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.task(name="fer_site.ping")
def ping(value: str = "pong") -> str:
    """Return ``value``: a round trip through the broker for health checks and tests."""
    return value
