"""A real cluster for the tests: `manage.py cluster` (nginx in front of web processes, a Celery worker).

Every process shares the test's PostgreSQL database and Redis, as production processes would. Without
REDIS_URL, a PostgreSQL DATABASE_URL or nginx the tests skip with that reason (CI has all three).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from http.cookiejar import CookieJar

import psutil
import pytest
from django.conf import settings

from fer_site.management.commands.cluster import nginx_binary
from tests.conftest import REPO, _missing, database_url
from tests.live.server import free_port
from tests.processes import stop_process

pytestmark = pytest.mark.cluster


@dataclass
class Cluster:
    process: subprocess.Popen
    port: int
    web_ports: list[int]
    log_path: object

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def web_url(self, index: int) -> str:
        """The address of one web process, bypassing the proxy."""
        return f"http://127.0.0.1:{self.web_ports[index]}"

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def web_process(self, index: int) -> psutil.Process:
        """The daphne process of web process ``index`` (the one listening on its port)."""
        port = str(self.web_ports[index])
        for process in psutil.process_iter(["cmdline"]):
            cmdline = process.info["cmdline"] or []
            if "daphne" in cmdline and port in cmdline:
                return process
        raise AssertionError(f"no daphne process on port {port}")


def wait_for(url: str, *, timeout: float = 90, cluster: Cluster | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cluster is not None and cluster.process.poll() is not None:
            pytest.fail(f"the cluster exited:\n{cluster.log[-4000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    pytest.fail(f"{url} did not answer in {timeout} s:\n{cluster.log[-4000:] if cluster else ''}")


@pytest.fixture
def cluster(tmp_path, transactional_db) -> Iterator[Cluster]:
    """Two web processes behind nginx and a Celery worker, on the test's database and Redis."""
    redis = os.environ.get("REDIS_URL")
    if not redis:
        _missing("the cluster tests need a real Redis: set REDIS_URL")
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        _missing("the cluster tests need a real PostgreSQL: set DATABASE_URL=postgres://...")
    if nginx_binary() is None:
        _missing("the cluster tests need nginx (apt-get install nginx)")
    port = free_port()
    web_ports = [free_port(), free_port()]
    while len({port, *web_ports}) < 3 or web_ports[1] != web_ports[0] + 1:
        port, first = free_port(), free_port()
        web_ports = [first, first + 1]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "fer_site.settings",
        "DATABASE_URL": database_url(),
        "REDIS_URL": redis,
        "ATTUNE_VAR_DIR": str(tmp_path / "var"),
        "TMPDIR": str(tmp_path),
        "PYTHONUNBUFFERED": "1",
        "LIVE_IDLE_TIMEOUT_S": "60",
    }
    log_path = tmp_path / "cluster.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "cluster", "--workers", "2", "--port", str(port),
             "--web-port", str(web_ports[0])],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    running = Cluster(process=process, port=port, web_ports=web_ports, log_path=log_path)
    try:
        for url in (running.web_url(0), running.web_url(1), running.url):
            wait_for(url + "/healthz", cluster=running)
        yield running
    finally:
        stop_process(process, sig=signal.SIGINT, timeout=30)


class Browser:
    """An HTTP client with cookies (a signed-in operator), for one base URL at a time."""

    def __init__(self) -> None:
        self.jar = CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def open(self, url: str, data: dict | None = None, headers: dict | None = None) -> tuple[int, bytes]:
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        request = urllib.request.Request(url, data=body, headers=headers or {})
        try:
            with self.opener.open(request, timeout=30) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def csrf_token(self) -> str:
        for cookie in self.jar:
            if cookie.name == "csrftoken":
                return cookie.value
        raise AssertionError("no CSRF cookie")

    def sign_in(self, base: str, username: str, password: str) -> None:
        self.open(f"{base}/admin/login/")
        status, page = self.open(
            f"{base}/admin/login/?next=/admin/",
            {"username": username, "password": password, "csrfmiddlewaretoken": self.csrf_token()},
            headers={"Referer": f"{base}/admin/login/"},
        )
        assert status == 200 and b"log out" in page.lower(), page[:500]

    def post_form(self, url: str, data: dict) -> tuple[int, bytes]:
        return self.open(url, {**data, "csrfmiddlewaretoken": self.csrf_token()}, headers={"Referer": url})


def json_get(url: str, headers: dict | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def json_post(url: str, body: dict, headers: dict) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")
