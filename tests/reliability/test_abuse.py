"""Hostile clients against a real daphne server: each is limited or closed, a good visitor is served on.

The assertions are about continuity (the steady visitor's frames keep being
answered, before, during and after the abuse), never about timings.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import struct
import time

import numpy as np
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from fer_site.live.consumers import CLOSE_IDLE, CLOSE_POLICY_VIOLATION
from tests.reliability.conftest import SteadyVisitor, open_live

pytestmark = [pytest.mark.slow]


async def close_code(ws, wait_s: float = 30) -> int | None:
    """Read until the server closes ``ws``; return its close code (None: the TCP connection dropped)."""
    try:
        async with asyncio.timeout(wait_s):
            async for _ in ws:
                pass
    except ConnectionClosed:
        pass
    await ws.wait_closed()
    return ws.close_code if ws.close_code != 1006 else None


async def test_a_client_flooding_frames_is_closed_while_a_steady_visitor_keeps_being_served(
    abuse_server, frames
):
    async with SteadyVisitor(abuse_server, frames[0]) as steady:
        flooder = await open_live(abuse_server)

        try:
            for _ in range(500):  # as fast as the socket takes them, far over 5 a second
                await flooder.send(frames[1])
        except ConnectionClosed:
            pass
        code = await close_code(flooder)
        over = time.monotonic()
        await steady.served_after(over)

    assert code == CLOSE_POLICY_VIOLATION
    steady.assert_never_refused()


async def test_a_client_sending_a_10_mb_message_is_closed_while_a_steady_visitor_keeps_being_served(
    abuse_server, frames
):
    async with SteadyVisitor(abuse_server, frames[0]) as steady:
        giant = await open_live(abuse_server, max_size=None)

        try:
            await giant.send(os.urandom(10 * 1024 * 1024))
        except ConnectionClosed:
            pass
        code = await close_code(giant)
        await steady.served_after(time.monotonic())

    # daphne refuses a message over WEBSOCKET_MAX_MESSAGE_SIZE with a close frame saying 1009 (too big).
    assert code == 1009
    assert giant.close_code is not None
    steady.assert_never_refused()


async def test_a_client_opening_many_connections_gets_its_cap_each_closed_when_idle_while_others_are_served(
    abuse_server, frames
):
    async with SteadyVisitor(abuse_server, frames[0]) as steady:
        opened = await asyncio.gather(*(open_live(abuse_server) for _ in range(60)), return_exceptions=True)
        idle = [ws for ws in opened if not isinstance(ws, BaseException)]
        refused = [error for error in opened if isinstance(error, BaseException)]
        during = time.monotonic()
        await steady.served_after(during)
        codes = await asyncio.gather(*(close_code(ws, wait_s=60) for ws in idle))
        await steady.served_after(time.monotonic())

    # LIVE_MAX_CONNECTIONS_PER_CLIENT: one address holds at most 20; the handshakes over it get 403.
    assert len(idle) == 20, refused[:3]
    assert all(isinstance(error, InvalidStatus) and error.response.status_code == 403 for error in refused)
    # LIVE_IDLE_TIMEOUT_S: a connection that sends nothing is closed with 4408, whatever it holds open.
    assert set(codes) == {CLOSE_IDLE}
    steady.assert_never_refused()


def raw_websocket(port: int, origin: str) -> socket.socket:
    """Open a WebSocket by hand with a tiny receive buffer, read the handshake answer and nothing after it."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /ws/live/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Origin: {origin}\r\n\r\n"
        ).encode()
    )
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += sock.recv(1)  # byte by byte, so that not one byte of the messages after it is read
    assert answer.startswith(b"HTTP/1.1 101"), answer
    return sock


def client_frame(payload: bytes) -> bytes:
    """Return ``payload`` as one masked binary WebSocket frame, as a client must send it."""
    mask = os.urandom(4)
    size = len(payload)
    if size < 126:
        header = struct.pack(">BB", 0x82, 0x80 | size)
    elif size < 65536:
        header = struct.pack(">BBH", 0x82, 0x80 | 126, size)
    else:
        header = struct.pack(">BBQ", 0x82, 0x80 | 127, size)
    data = np.frombuffer(payload, dtype=np.uint8)
    masked = data ^ np.resize(np.frombuffer(mask, dtype=np.uint8), len(data))
    return header + mask + masked.tobytes()


def is_dropped(sock: socket.socket, timeout: float = 30) -> bool:
    """Drain ``sock``; return True once the server has closed it."""
    sock.settimeout(timeout)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if not sock.recv(65536):
                return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    return False


async def send_until_dropped(sock: socket.socket, frame: bytes, seconds: float) -> bool:
    """Send ``frame`` 4 times a second (within the rate) for ``seconds``, never reading; True once refused."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            sock.sendall(client_frame(frame))
        except (BrokenPipeError, ConnectionResetError):
            return True
        await asyncio.sleep(0.25)
    return False


async def test_a_client_that_never_reads_is_dropped_while_a_steady_visitor_keeps_being_served(
    abuse_server, frames
):
    async with SteadyVisitor(abuse_server, frames[0]) as steady:
        silent = raw_websocket(abuse_server.port, abuse_server.url)
        # Frames whose answers it never reads, then silence: the server's answers pile up unread, its
        # pings go unanswered. Every connection is pinged, busy or not, so the drop may already come
        # while it sends (ping interval 1 s + timeout 2 s here).
        dropped = await send_until_dropped(silent, frames[2], seconds=2.5)
        await steady.served_after(time.monotonic())
        dropped = dropped or await asyncio.to_thread(is_dropped, silent)
        silent.close()
        await steady.served_after(time.monotonic())

    assert dropped
    steady.assert_never_refused()


async def test_a_client_that_keeps_sending_but_never_reads_is_dropped_while_a_steady_visitor_is_served(
    abuse_server, frames
):
    async with SteadyVisitor(abuse_server, frames[0]) as steady:
        deaf = raw_websocket(abuse_server.port, abuse_server.url)
        # Sending for far longer than ping interval + timeout: the server's pings go unanswered even
        # though the connection is never quiet.
        dropped = await send_until_dropped(deaf, frames[2], seconds=20)
        deaf.close()
        await steady.served_after(time.monotonic())

    assert dropped
    steady.assert_never_refused()


async def test_a_client_flooding_control_messages_is_closed_while_a_steady_visitor_keeps_being_served(
    abuse_server, frames
):
    async with SteadyVisitor(abuse_server, frames[0]) as steady:
        chatty = await open_live(abuse_server)

        try:
            for _ in range(500):
                await chatty.send(json.dumps({"type": "ping"}))
        except ConnectionClosed:
            pass
        code = await close_code(chatty)
        await steady.served_after(time.monotonic())

    assert code == CLOSE_POLICY_VIOLATION
    steady.assert_never_refused()
