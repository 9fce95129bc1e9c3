"""Limits of the live stream: per connection a rate gate that spots floods and a throttle; per client
address caps on open and new connections.

The live consumer (:mod:`fer_site.live.consumers`) owns a gate and a throttle per connection;
``asgi.py`` wraps the WebSocket routes in :class:`ClientConnectionLimits`. All take a clock so
tests can drive time.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from urllib.parse import urlparse

from channels.security.websocket import OriginValidator
from django.conf import settings


async def refuse_handshake(receive, send, code: int | None = None) -> None:
    """Close a WebSocket before accepting it (daphne answers 403) and end, touching no channel layer."""
    message = await receive()
    if message["type"] == "websocket.connect":
        await send({"type": "websocket.close"} if code is None else {"type": "websocket.close", "code": code})


class RateGate:
    """Admit at most ``rate`` messages per second (bursts up to ``burst``); flag a sustained flood.

    A token bucket: each admitted message spends a token and tokens come back
    at ``rate`` per second. A message that finds no token is dropped and
    counted; more than ``flood_drops`` drops within ``window_s`` is a flood.
    """

    def __init__(
        self,
        rate: float,
        *,
        burst: float,
        flood_drops: int,
        window_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.rate = rate
        self.burst = burst
        self.flood_drops = flood_drops
        self.window_s = window_s
        self.clock = clock
        self.dropped = 0
        self._tokens = burst
        self._refilled_at = clock()
        self._drops: deque[float] = deque()

    def admit(self) -> bool:
        """Return True if a message arriving now is within the rate; otherwise count it as dropped."""
        now = self.clock()
        self._tokens = min(self.burst, self._tokens + (now - self._refilled_at) * self.rate)
        self._refilled_at = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        self.dropped += 1
        self._drops.append(now)
        return False

    @property
    def full(self) -> bool:
        """Return whether a whole burst could be admitted now (nothing was admitted for a while)."""
        return self._tokens + (self.clock() - self._refilled_at) * self.rate >= self.burst

    @property
    def flooded(self) -> bool:
        """Return whether more than ``flood_drops`` messages were dropped within the last ``window_s``."""
        horizon = self.clock() - self.window_s
        while self._drops and self._drops[0] <= horizon:
            self._drops.popleft()
        return len(self._drops) > self.flood_drops


class Throttle:
    """Say yes to each key at most once per ``interval_s``: one warning a second, not one per message."""

    def __init__(self, interval_s: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval_s = interval_s
        self.clock = clock
        self._last: dict[str, float] = {}

    def ready(self, key: str) -> bool:
        """Return True (and start a new interval) if ``key`` was not let through in the last interval."""
        now = self.clock()
        last = self._last.get(key)
        if last is not None and now - last < self.interval_s:
            return False
        self._last[key] = now
        return True


class ClientConnectionLimits:
    """ASGI middleware: per client address, ``max_open`` WebSockets at once and ``per_minute`` new ones.

    The address is the ASGI scope's client, which daphne takes from ``X-Forwarded-For`` when it serves
    with ``--proxy-headers`` behind a proxy. A refused handshake is closed before it is accepted (daphne
    answers it 403), so one client cannot take a process's connections or its connect-time work from
    everyone else. Counts are per process.
    """

    def __init__(
        self,
        app,
        *,
        max_open: int,
        per_minute: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.max_open = max_open
        self.per_minute = per_minute
        self.clock = clock
        self.open: dict[str, int] = {}
        self._gates: dict[str, RateGate] = {}

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "websocket":
            await self.app(scope, receive, send)
            return
        client = (scope.get("client") or ("unknown",))[0]
        if not self._admit(client):
            await refuse_handshake(receive, send, 4429)
            return
        self.open[client] = self.open.get(client, 0) + 1
        try:
            await self.app(scope, receive, send)
        finally:
            left = self.open.pop(client) - 1
            if left:
                self.open[client] = left

    def _admit(self, client: str) -> bool:
        if self.open.get(client, 0) >= self.max_open:
            return False
        gate = self._gates.get(client)
        if gate is None:
            if len(self._gates) > 10_000:
                self._forget_idle_clients()
            burst = max(1.0, self.per_minute / 6)  # ten seconds' worth at once, e.g. a page reloaded
            gate = RateGate(self.per_minute / 60, burst=burst, flood_drops=1 << 30, clock=self.clock)
            self._gates[client] = gate
        return gate.admit()

    def _forget_idle_clients(self) -> None:
        # A client whose bucket has filled up again is like a new one: nothing to remember.
        for client in [c for c, gate in self._gates.items() if gate.full and c not in self.open]:
            del self._gates[client]


class AllowedHostsOrigins(OriginValidator):
    """Channels' ``AllowedHostsOriginValidator``, refusing a foreign origin without a consumer.

    Channels refuses with a consumer that opens a channel-layer receive (under Redis a blocking pop
    repeated every few seconds) and keeps it until the client goes; a refused handshake should cost
    nothing. The origin rules are Channels' own (``valid_origin``).
    """

    def __init__(self, application) -> None:
        allowed_hosts = settings.ALLOWED_HOSTS
        if settings.DEBUG and not allowed_hosts:
            allowed_hosts = ["localhost", "127.0.0.1", "[::1]"]
        super().__init__(application, allowed_hosts)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "websocket":
            raise ValueError("AllowedHostsOrigins guards WebSocket connections only")
        origin = None
        for name, value in scope.get("headers", []):
            if name == b"origin":
                try:
                    origin = urlparse(value.decode("latin1"))
                except UnicodeDecodeError:
                    origin = None
        if self.valid_origin(origin):
            await self.application(scope, receive, send)
        else:
            await refuse_handshake(receive, send)
