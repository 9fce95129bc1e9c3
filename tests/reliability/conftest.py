"""Fixtures for the fault and abuse tests: a real daphne server, real JPEG frames, a well-behaved visitor."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from bench.live_load import make_frames
from tests.live.server import Server, serve

# Tight limits so that every abuse is limited within a few seconds.
ABUSE_LIMITS = {
    "EMOTIONS_BACKEND": "emotions.fake.FakeClassifier",
    "LIVE_MAX_FPS": "5",
    "LIVE_FLOOD_DROPS": "10",
    "LIVE_IDLE_TIMEOUT_S": "5",
    "LIVE_MAX_CONNECTIONS_PER_CLIENT": "20",
    "WEBSOCKET_PING_INTERVAL_S": "1",
    "WEBSOCKET_PING_TIMEOUT_S": "2",
}


OTHER_VISITOR_ADDRESS = "127.0.0.2"


@pytest.fixture(scope="session")
def frames() -> list[bytes]:
    """Real 320×240 JPEG webcam-like frames with a face, as the load generator sends them."""
    return make_frames(4)


@pytest.fixture
def abuse_server(tmp_path, transactional_db) -> Iterator[Server]:
    """Daphne (``manage.py serve``) with the fake model and tight per-connection limits."""
    with serve(tmp_path / "server.log", **ABUSE_LIMITS) as server:
        yield server


def ws_url(server: Server) -> str:
    return f"ws://127.0.0.1:{server.port}/ws/live/"


def origin(server: Server) -> str:
    return server.url


async def open_live(server: Server, **options) -> ClientConnection:
    """Connect to the live WebSocket and read ``ready`` and the first ``content``."""
    ws = await connect(ws_url(server), origin=origin(server), open_timeout=30, **options)
    seen = set()
    async with asyncio.timeout(30):
        while not {"ready", "content"} <= seen:
            seen.add(json.loads(await ws.recv())["type"])
    return ws


async def next_reply(ws: ClientConnection, wait_s: float = 30) -> dict:
    """Return the next ``emotion`` or ``error`` message (the answer to a frame)."""
    async with asyncio.timeout(wait_s):
        while (message := json.loads(await ws.recv()))["type"] not in ("emotion", "error"):
            pass
    return message


@dataclass
class SteadyVisitor:
    """A well-behaved page: one frame in flight, about 3 a second, every answer recorded with its time."""

    server: Server
    frame: bytes
    interval_s: float = 0.3
    answers: list[tuple[float, str]] = field(default_factory=list)  # (monotonic time, type or error code)
    failure: BaseException | None = None
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task | None = None

    async def __aenter__(self) -> SteadyVisitor:
        # Another visitor than the abuser: another client address (the whole 127/8 is loopback).
        self.ws = await open_live(self.server, local_addr=(OTHER_VISITOR_ADDRESS, 0))
        self._task = asyncio.create_task(self._run())
        await self.served_after(time.monotonic())
        return self

    async def __aexit__(self, *exc_info) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task
        await self.ws.close()

    async def _run(self) -> None:
        try:
            while not self._stop.is_set():
                await self.ws.send(self.frame)
                reply = await next_reply(self.ws)
                self.answers.append((time.monotonic(), reply.get("code") or reply["type"]))
                await asyncio.sleep(self.interval_s)
        except (ConnectionClosed, TimeoutError) as exc:
            self.failure = exc

    async def served_after(self, moment: float, count: int = 3, wait_s: float = 60) -> None:
        """Wait until ``count`` frames sent after ``moment`` were answered with an ``emotion``."""
        deadline = time.monotonic() + wait_s
        while sum(1 for at, kind in self.answers if at > moment and kind == "emotion") < count:
            assert self.failure is None, f"the well-behaved visitor lost its connection: {self.failure!r}"
            assert time.monotonic() < deadline, f"no answers since the abuse: {self.answers[-5:]}"
            await asyncio.sleep(0.1)

    def assert_never_refused(self) -> None:
        assert self.failure is None, f"the well-behaved visitor lost its connection: {self.failure!r}"
        assert {kind for _, kind in self.answers} == {"emotion"}, self.answers
