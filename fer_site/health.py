"""Health of every service Attune depends on, for `GET /healthz`.

Each check is bounded by a short timeout, so a dead Redis makes the report
say so quickly rather than hang the request.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.cache import cache
from django.db import connection

logger = logging.getLogger(__name__)

CHECK_TIMEOUT_S = 2.0


def check_database() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {"vendor": connection.vendor}


def check_cache() -> dict:
    key = f"healthz:{uuid.uuid4().hex}"
    cache.set(key, "1", timeout=10)
    if cache.get(key) != "1":
        raise RuntimeError("a value written to the cache could not be read back")
    cache.delete(key)
    return {"backend": settings.CACHES["default"]["BACKEND"].rsplit(".", 1)[-1]}


def check_channel_layer() -> dict:
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("no channel layer is configured")

    async def round_trip() -> None:
        # The process's own prefix: channels_redis reads one process-local channel per process, and a
        # server with live pages is already reading it (a "healthz." channel would never be read there).
        channel = await layer.new_channel()
        await layer.send(channel, {"type": "healthz.ping"})
        message = await layer.receive(channel)
        if message.get("type") != "healthz.ping":
            raise RuntimeError("the channel layer returned another message")

    async def bounded() -> None:
        await asyncio.wait_for(round_trip(), CHECK_TIMEOUT_S)

    async_to_sync(bounded)()
    return {"backend": type(layer).__name__}


def check_broker() -> dict:
    from fer_site.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=CHECK_TIMEOUT_S)
        transport = conn.transport_cls if isinstance(conn.transport_cls, str) else conn.transport.driver_type
        # The filesystem transport "connects" to anything; check the folder really is writable.
        if conn.transport.driver_type == "filesystem":
            folder = settings.CELERY_BROKER_DIR
            probe = folder / f".healthz-{uuid.uuid4().hex}"
            probe.write_bytes(b"")
            probe.unlink()
    return {"transport": str(transport)}


def check_emotion_model() -> dict:
    from emotions.services import emotion_model_status

    status = emotion_model_status()
    if not status.get("ok"):
        raise RuntimeError(status.get("problem") or "the emotion model is not available")
    return status


CHECKS: dict[str, Callable[[], dict]] = {
    "database": check_database,
    "cache": check_cache,
    "channel_layer": check_channel_layer,
    "broker": check_broker,
    "emotion_model": check_emotion_model,
}


def health_report() -> dict:
    """Return ``{"status": "ok"|"degraded", "checks": {...}, "failing": [...]}``."""
    checks: dict[str, dict] = {}
    for name, check in CHECKS.items():
        started = time.perf_counter()
        try:
            detail = check()
            checks[name] = {"ok": True, **detail}
        except Exception as exc:  # a health check reports every failure, whatever its type
            logger.warning("health check %s failed: %s", name, exc)
            checks[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
        checks[name]["ms"] = round((time.perf_counter() - started) * 1000, 1)
    failing = [name for name, result in checks.items() if not result["ok"]]
    return {"status": "degraded" if failing else "ok", "failing": failing, "checks": checks}
