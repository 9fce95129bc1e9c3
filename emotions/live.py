"""Per-connection limits of the live stream, in plain Python: a rate gate that spots floods, a throttle.

The consumer (:mod:`emotions.consumers`) owns one of each per connection; they
take a clock so tests can drive time.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable


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
