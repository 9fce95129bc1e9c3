"""The per-connection limits of the live stream, on a clock the tests drive."""

from __future__ import annotations

from emotions.live import RateGate, Throttle


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
