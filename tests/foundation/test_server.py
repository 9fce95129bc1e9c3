"""The real server: daphne started by `manage.py serve`, with Attune's limits."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from tests.conftest import REPO


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    port = free_port()
    env = {
        k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL", "ATTUNE_PRELOAD_ENGINE")
    }
    env.update(
        ATTUNE_VAR_DIR=str(tmp_path),
        EMOTIONS_BACKEND="emotions.fake.FakeClassifier",
        DATA_UPLOAD_MAX_MEMORY_SIZE="300000",
    )
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v0"], cwd=REPO, env=env, check=True, timeout=120
    )
    process = subprocess.Popen(
        [sys.executable, "manage.py", "serve", "--port", str(port)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url + "/", timeout=10)
            break
        except OSError:  # refused while daphne starts, or a slow first answer
            time.sleep(0.3)
    else:
        process.kill()
        pytest.fail("daphne did not start:\n" + process.communicate()[0][-3000:])
    yield url
    process.terminate()
    process.communicate(timeout=20)


def post(url: str, body: bytes) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "image/jpeg"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_daphne_answers_an_oversized_body_413_and_passes_a_large_allowed_one(server):
    allowed_status, _ = post(server + "/", b"\xff" * 200_000)  # over Twisted's 100 KB temp-file threshold
    refused_status, refused = post(server + "/", b"\xff" * 400_000)

    assert allowed_status in (403, 405)  # reached Django, which refuses a POST here (CSRF or method)
    assert refused_status == 413
    assert b'"request_too_large"' in refused


def test_request_bodies_stay_in_memory_under_daphne():
    from daphne.http_protocol import WebRequest

    from fer_site.request_limits import install_daphne_body_limit

    install_daphne_body_limit(1_000_000)
    request = WebRequest.__new__(WebRequest)  # only the body handling is exercised

    request.gotLength(500_000)  # Twisted alone would open a temporary file for this
    request.handleContentChunk(b"x" * 500_000)

    assert isinstance(request.content, io.BytesIO)
    assert request.content.getvalue() == b"x" * 500_000
