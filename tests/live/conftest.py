"""Fixtures for the live page: the fake engine on an in-memory channel layer, and a WebSocket client."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from channels.testing import WebsocketCommunicator
from django.core.cache import cache

from emotions.services import emotion_engine_close
from fer_site.asgi import application
from tests.conftest import _missing

CHROMIUM = "/usr/bin/chromium"
_SUMMARY = pytest.StashKey[list[str]]()


def summary_add(config: pytest.Config, line: str) -> None:
    """Print ``line`` in the terminal summary at the end of the run (e.g. where a screenshot is)."""
    config.stash.setdefault(_SUMMARY, []).append(line)


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    for line in config.stash.get(_SUMMARY, []):
        terminalreporter.write_line(line)


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    # Decisions and duplicate markers of events live in the cache; each test starts without them.
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def live_settings(settings, fake_emotions):
    """The fake backend, an in-memory channel layer and a generous frame cap (tests that need one set it)."""
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    settings.LIVE_MAX_FPS = 50.0
    yield settings
    emotion_engine_close()


class LiveClient:
    """A WebSocket client of /ws/live/ that reads the JSON messages Attune sends."""

    def __init__(self, communicator: WebsocketCommunicator) -> None:
        self.communicator = communicator

    async def send_frame(self, data: bytes) -> None:
        await self.communicator.send_to(bytes_data=data)

    async def send_json(self, message: Any) -> None:
        await self.communicator.send_to(text_data=json.dumps(message))

    async def send_text(self, text: str) -> None:
        await self.communicator.send_to(text_data=text)

    async def receive(self, wait_s: float = 10) -> dict:
        """Return the next message; fail on a close."""
        output = await self.communicator.receive_output(wait_s)
        assert output["type"] == "websocket.send", output
        return json.loads(output["text"])

    async def until(self, kind: str, wait_s: float = 10) -> tuple[dict, list[dict]]:
        """Return the next message of type ``kind`` and the messages that came before it."""
        before = []
        async with asyncio.timeout(wait_s):
            while (message := await self.receive(wait_s)).get("type") != kind:
                before.append(message)
        return message, before

    async def closed(self, wait_s: float = 10) -> tuple[int, list[dict]]:
        """Wait for the server to close the connection; return the close code and the messages before it."""
        before = []
        async with asyncio.timeout(wait_s):
            while True:
                output = await self.communicator.receive_output(wait_s)
                if output["type"] == "websocket.close":
                    return output.get("code", 1000), before
                before.append(json.loads(output["text"]))

    async def quiet(self, seconds: float = 0.3) -> list[dict]:
        """Return every message that arrives within ``seconds``."""
        messages = []
        # receive_nothing, unlike a receive that times out, leaves the consumer running.
        while not await self.communicator.receive_nothing(seconds):
            messages.append(await self.receive())
        return messages


@asynccontextmanager
async def live_socket(origin: bytes = b"http://localhost") -> AsyncIterator[LiveClient]:
    """Connect to /ws/live/ from ``origin``; the first two messages (ready, content) are left to read."""
    communicator = WebsocketCommunicator(application, "/ws/live/", headers=[(b"origin", origin)])
    connected, _ = await communicator.connect(timeout=10)
    assert connected
    try:
        yield LiveClient(communicator)
    finally:
        await communicator.disconnect()


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's Chromium, installed with apt-get when missing (the first time takes minutes)."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _missing("needs Playwright for Python: pip install -r requirements-dev.txt")
    if not os.path.exists(CHROMIUM) and shutil.which("apt-get") and os.geteuid() == 0:
        for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
            result = subprocess.run(
                command,
                env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
                capture_output=True,
                text=True,
                timeout=900,
            )
            if result.returncode != 0:
                _missing(f"could not install chromium ({' '.join(command)}): {result.stderr[-500:]}")
    if not os.path.exists(CHROMIUM):
        _missing(f"needs Debian's chromium at {CHROMIUM} (apt-get install chromium, as root)")
    return CHROMIUM
