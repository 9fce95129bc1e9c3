"""A task through a real broker to a real worker process that the test starts."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from tests.conftest import REPO
from tests.processes import start_celery_worker, stop_process

PING = """
import sys
from fer_site.celery import ping
print(ping.delay(sys.argv[1]).get(timeout=90))
"""


def round_trip(env: dict[str, str], value: str) -> tuple[subprocess.CompletedProcess, str]:
    worker = start_celery_worker(env, pool="solo")
    try:
        result = subprocess.run(
            [sys.executable, "-c", PING, value],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        log = stop_process(worker, timeout=20)
    return result, log


def clean_env(tmp_path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    return {**env, "ATTUNE_VAR_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "fer_site.settings", **extra}


@pytest.mark.slow
def test_a_task_travels_through_the_serverless_filesystem_broker(tmp_path):
    value = f"fs-{time.time_ns()}"

    result, log = round_trip(clean_env(tmp_path), value)

    assert result.returncode == 0, result.stderr + log[-3000:]
    assert result.stdout.strip() == value
    assert "filesystem" in log


@pytest.mark.slow
@pytest.mark.redis
def test_a_task_travels_through_redis_to_a_real_worker(tmp_path, redis_url):
    value = f"redis-{time.time_ns()}"

    result, log = round_trip(clean_env(tmp_path, REDIS_URL=redis_url), value)

    assert result.returncode == 0, result.stderr + log[-3000:]
    assert result.stdout.strip() == value
    assert "redis://" in log
