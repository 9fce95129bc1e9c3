"""A real daphne server (``manage.py serve``) in a subprocess, sharing the test database."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.conf import settings

from tests.conftest import REPO, database_url
from tests.processes import stop_process


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    def __init__(self, process: subprocess.Popen, port: int, log_path: Path) -> None:
        self.process = process
        self.port = port
        self.log_path = log_path
        self.url = f"http://127.0.0.1:{port}"

    @property
    def log(self) -> bytes:
        return self.log_path.read_bytes()

    def stop(self) -> None:
        stop_process(self.process, timeout=20)


@contextmanager
def serve(log_path: Path, *, port: int | None = None, **env: str) -> Iterator[Server]:
    """Start ``manage.py serve`` on ``port`` (a free one by default) with ``env`` on top of the test's
    settings; stop it after."""
    port = port or free_port()
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "fer_site.settings",
        "DATABASE_URL": database_url(),
        "ATTUNE_VAR_DIR": str(settings.VAR_DIR),
        "PYTHONUNBUFFERED": "1",
        **env,
    }
    with open(log_path, "ab") as log:  # a restarted server adds to the same log
        process = subprocess.Popen(
            [sys.executable, "manage.py", "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=REPO,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(process, port, log_path)
    try:
        _wait_until_up(server)
        yield server
    finally:
        server.stop()


def _wait_until_up(server: Server, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"the server exited:\n{server.log.decode(errors='replace')[-4000:]}")
        try:
            with urllib.request.urlopen(server.url + "/", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.3)
    server.stop()
    log = server.log.decode(errors="replace")[-4000:]
    pytest.fail(f"the server did not answer within {timeout} s:\n{log}")
