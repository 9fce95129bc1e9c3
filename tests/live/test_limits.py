"""The per-connection limits of the live stream, on a clock the tests drive."""

from __future__ import annotations

import asyncio

from fer_site.live.limits import ClientConnectionLimits, RateGate, Throttle


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_it_admits_a_burst_then_the_rate():
    clock = Clock()
    gate = RateGate(5, burst=2, flood_drops=100, clock=clock)

    burst = [gate.admit() for _ in range(3)]
    clock.now += 0.2
    after_one_interval = gate.admit()

    assert burst == [True, True, False]
    assert after_one_interval is True
    assert gate.dropped == 1


def test_it_admits_a_client_that_keeps_to_the_rate_forever():
    clock = Clock()
    gate = RateGate(5, burst=5, flood_drops=0, clock=clock)

    admitted = []
    for _ in range(500):
        admitted.append(gate.admit())
        clock.now += 0.2

    assert all(admitted)
    assert not gate.flooded


def test_it_calls_a_flood_only_when_drops_are_sustained():
    clock = Clock()
    gate = RateGate(5, burst=5, flood_drops=25, clock=clock)

    # Twice the rate: about 5 drops a second once the burst is spent.
    for _ in range(30):
        gate.admit()
        clock.now += 0.1
    not_yet = gate.flooded
    for _ in range(40):
        gate.admit()
        clock.now += 0.1
    flooded = gate.flooded
    clock.now += 11
    forgotten = gate.flooded

    assert not_yet is False
    assert flooded is True
    assert forgotten is False


def test_it_lets_each_key_through_once_per_interval():
    clock = Clock()
    throttle = Throttle(1.0, clock=clock)

    first = [throttle.ready("a"), throttle.ready("a"), throttle.ready("b")]
    clock.now += 1.0
    later = throttle.ready("a")

    assert first == [True, False, True]
    assert later is True


def websocket_app(hold: asyncio.Event):
    async def app(scope, receive, send):
        await receive()
        await send({"type": "websocket.accept"})
        await hold.wait()

    return app


async def handshake(limits: ClientConnectionLimits, client: str) -> tuple[asyncio.Task, asyncio.Queue]:
    """Start one WebSocket through ``limits``; return its task and what it sent."""
    sent: asyncio.Queue = asyncio.Queue()
    incoming: asyncio.Queue = asyncio.Queue()
    await incoming.put({"type": "websocket.connect"})
    scope = {"type": "websocket", "client": (client, 5000), "path": "/ws/live/"}
    task = asyncio.create_task(limits(scope, incoming.get, sent.put))
    return task, sent


async def test_it_caps_the_open_websockets_of_one_client_address_and_no_other():
    hold = asyncio.Event()
    limits = ClientConnectionLimits(websocket_app(hold), max_open=3, per_minute=1000, clock=Clock())

    answers = [await (await handshake(limits, "203.0.113.7"))[1].get() for _ in range(4)]
    other = await (await handshake(limits, "198.51.100.2"))[1].get()
    hold.set()

    assert [a["type"] for a in answers] == ["websocket.accept"] * 3 + ["websocket.close"]
    assert other["type"] == "websocket.accept"


async def test_it_admits_a_client_again_once_its_connections_close():
    hold = asyncio.Event()
    limits = ClientConnectionLimits(websocket_app(hold), max_open=1, per_minute=1000, clock=Clock())
    first, sent_first = await handshake(limits, "203.0.113.7")
    await sent_first.get()
    hold.set()
    await first
    closed = dict(limits.open)

    _, sent = await handshake(limits, "203.0.113.7")

    assert closed == {}
    assert (await sent.get())["type"] == "websocket.accept"


async def test_it_limits_the_rate_of_new_connections_per_client_address():
    hold = asyncio.Event()
    hold.set()  # each connection closes at once: only the rate can refuse
    clock = Clock()
    limits = ClientConnectionLimits(websocket_app(hold), max_open=100, per_minute=60, clock=clock)

    burst = [await (await handshake(limits, "203.0.113.7"))[1].get() for _ in range(12)]
    clock.now += 1.0
    later = await (await handshake(limits, "203.0.113.7"))[1].get()

    assert [a["type"] for a in burst] == ["websocket.accept"] * 10 + ["websocket.close"] * 2
    assert burst[-1]["code"] == 4429
    assert later["type"] == "websocket.accept"
