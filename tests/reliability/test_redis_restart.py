"""Redis restarted under connected live pages: the pages reconnect and get content again, HTTP never stops.

A throwaway ``redis-server`` on a free port (never the shared one) is the
channel layer and cache of a real daphne server; it is killed and started again
on the same port while visitors are connected.
"""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidHandshake, WebSocketException

from tests.conftest import _missing
from tests.live.server import free_port, serve
from tests.reliability.conftest import ws_url

pytestmark = [pytest.mark.slow, pytest.mark.redis]


class RedisServer:
    """A ``redis-server`` without persistence on ``port``, which the test can kill and start again."""

    def __init__(self, binary: str, port: int, log_path: Path) -> None:
        self.binary = binary
        self.port = port
        self.log_path = log_path
        self.process: subprocess.Popen | None = None
        self.url = f"redis://127.0.0.1:{port}/0"

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [
                    self.binary,
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 20
        while not self.answers_ping():
            assert self.process.poll() is None, self.log_path.read_text()[-2000:]
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.1)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def answers_ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False


@pytest.fixture
def throwaway_redis(tmp_path) -> Iterator[RedisServer]:
    binary = shutil.which("redis-server")
    if binary is None:
        _missing("needs the redis-server program (apt-get install redis-server)")
    redis = RedisServer(binary, free_port(), tmp_path / "redis.log")
    redis.start()
    yield redis
    redis.kill()


class ReconnectingVisitor:
    """A live page: reconnects with jittered backoff, sends a frame after each answer, logs what it gets."""

    def __init__(self, url: str, origin: str, frame: bytes, seed: int) -> None:
        self.url = url
        self.origin = origin
        self.frame = frame
        self.random = random.Random(seed)
        self.received: list[tuple[float, str]] = []
        self.connections = 0

    async def run(self, stop: asyncio.Event) -> None:
        backoff = 0.25
        while not stop.is_set():
            try:
                async with connect(self.url, origin=self.origin, open_timeout=10) as ws:
                    self.connections += 1
                    await self._session(ws, stop)
            except (OSError, TimeoutError, InvalidHandshake, WebSocketException):
                pass  # refused, reset or closed by the server: try again
            else:
                backoff = 0.25
            await asyncio.sleep(backoff * self.random.uniform(0.5, 1.5))
            backoff = min(backoff * 2, 2.0)

    async def _session(self, ws, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                async with asyncio.timeout(0.5):
                    message = json.loads(await ws.recv())
            except TimeoutError:
                continue
            self.received.append((time.monotonic(), message["type"]))
            if message["type"] in ("content", "emotion", "error") and not stop.is_set():
                await asyncio.sleep(0.2)
                await ws.send(self.frame)  # one frame in flight: the next only after an answer

    def got_after(self, moment: float) -> set[str]:
        return {kind for at, kind in self.received if at > moment}


class HttpPoller(threading.Thread):
    """Ask for the home page every half second; record each status, or the exception when none came."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.results: list[tuple[float, int | str]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                with urllib.request.urlopen(self.url, timeout=15) as response:
                    result: int | str = response.status
            except urllib.error.HTTPError as error:
                result = error.code
            except OSError as error:
                result = repr(error)
            self.results.append((time.monotonic(), result))
            self.stop.wait(0.5)


async def wait_until(condition, wait_s: float, what: str) -> None:
    deadline = time.monotonic() + wait_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.2)


@pytest.mark.django_db(transaction=True)
async def test_live_pages_reconnect_and_get_content_again_after_redis_restarts(
    throwaway_redis, tmp_path, frames
):
    with serve(
        tmp_path / "server.log",
        REDIS_URL=throwaway_redis.url,
        EMOTIONS_BACKEND="emotions.fake.FakeClassifier",
    ) as server:
        url = ws_url(server)
        visitors = [ReconnectingVisitor(url, server.url, frames[i % len(frames)], seed=i) for i in range(3)]
        poller = HttpPoller(server.url + "/")
        stop = asyncio.Event()
        poller.start()
        tasks = [asyncio.create_task(visitor.run(stop)) for visitor in visitors]
        try:
            start = time.monotonic()
            await wait_until(
                lambda: all({"content", "emotion"} <= v.got_after(start) for v in visitors),
                60,
                "first content",
            )

            throwaway_redis.kill()
            await asyncio.sleep(3)  # pages and server notice: connections drop, reconnects are refused
            throwaway_redis.start()
            back = time.monotonic()
            await wait_until(
                lambda: all({"content", "emotion"} <= v.got_after(back) for v in visitors),
                90,
                "content and emotions after the restart",
            )
            await wait_until(
                lambda: any(result == 200 for at, result in poller.results if at > back), 60, "HTTP 200"
            )
        finally:
            stop.set()
            await asyncio.gather(*tasks)
            poller.stop.set()
            poller.join(timeout=30)

    # Every request got the page, during the outage too, and the site was whole again after it.
    not_served = [result for _, result in poller.results if result != 200]
    assert not not_served, not_served
    assert any(result == 200 for at, result in poller.results if at < back), poller.results
    assert all(visitor.connections >= 1 for visitor in visitors)
