"""Real processes that tests start: a Celery worker, and stopping any of them cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from typing import IO

from tests.conftest import REPO


def start_celery_worker(
    env: dict[str, str], *, pool: str = "prefork", log: IO | None = None
) -> subprocess.Popen:
    """Start ``celery worker`` on both queues in its own process group; output is captured, or goes to
    ``log`` (an open file: a long run's output would fill an unread pipe and stall the worker)."""
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "fer_site", "worker", "-Q", "default,training",
         "--concurrency", "1", "--pool", pool, "--loglevel", "INFO",
         "--without-heartbeat", "--without-gossip", "--without-mingle"],
        cwd=REPO, env=env, stdout=log or subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip


def stop_process(process: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 60) -> str:
    """Signal the process group, wait (SIGKILL after ``timeout``), and return what it printed."""
    if process.poll() is None:
        os.killpg(process.pid, sig)
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
    return output or ""
