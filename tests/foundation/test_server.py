"""The real server: daphne started by `manage.py serve`, with Attune's limits."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.conftest import REPO


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def running_server(var_dir, **settings: str) -> Iterator[str]:
    """Start `manage.py serve` on a free port with ``settings`` in its environment; yield its URL."""
    port = free_port()
    env = {
        k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL", "ATTUNE_PRELOAD_ENGINE")
    }
    env.update(ATTUNE_VAR_DIR=str(var_dir), EMOTIONS_BACKEND="emotions.fake.FakeClassifier", **settings)
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
    try:
        yield url
    finally:
        process.terminate()
        process.communicate(timeout=20)


@pytest.fixture
def server(tmp_path):
    with running_server(tmp_path, DATA_UPLOAD_MAX_MEMORY_SIZE="300000") as url:
        yield url


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


def tiny_parts_body(parts: int) -> tuple[bytes, str]:
    """Return a multipart/form-data body of ``parts`` one-byte fields, and its Content-Type."""
    boundary = "b"
    body = b"".join(b'--b\r\nContent-Disposition: form-data; name="f"\r\n\r\nx\r\n' for _ in range(parts))
    return body + b"--b--\r\n", f"multipart/form-data; boundary={boundary}"


@pytest.mark.slow
def test_a_body_of_200000_tiny_parts_does_not_stall_other_clients(tmp_path):
    from websockets.sync.client import connect

    body, content_type = tiny_parts_body(200_000)  # about 10 MB, under the default body limit
    answers: list[int | str] = []

    def attack(url: str) -> None:
        request = urllib.request.Request(
            url + "/", data=body, method="POST", headers={"Content-Type": content_type}
        )
        try:
            urllib.request.urlopen(request, timeout=120)
        except urllib.error.HTTPError as error:
            answers.append(error.code)
        except OSError as error:
            answers.append(repr(error))

    with running_server(tmp_path) as url:
        with connect(url.replace("http", "ws") + "/ws/ping/", origin=url) as ws:
            attacker = threading.Thread(target=attack, args=(url,))
            attacker.start()
            waits = []
            while attacker.is_alive() and len(waits) < 400:
                started = time.monotonic()
                ws.send("ping")
                ws.recv(timeout=30)
                waits.append(time.monotonic() - started)
                time.sleep(0.02)
            attacker.join(timeout=120)

    assert answers and answers[0] in (403, 405), answers  # Django refused the POST, cleanly
    assert waits, "the body was sent before a single ping"
    # Twisted's own parsing of such a body used to freeze every connection for 16 s.
    assert max(waits) < 2.0, f"a ping waited {max(waits):.2f} s during the upload"
