"""Throttle rates such as ``120/min``: parsed here, with no Django import, so settings can check them."""

from __future__ import annotations

import re

_PERIODS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60}
_PERIODS |= {"h": 3600, "hour": 3600, "d": 86400, "day": 86400}
_RATE = re.compile(r"(\d{1,9})/(\d{0,6})([a-z]+)")

RATE_HELP = "a number of requests per period: e.g. 120/min, 10/s, 5000/day or 30/10s (s, min, hour, day)"


def parse_rate(rate: str) -> tuple[int, int]:
    """Return ``(requests, seconds)`` for a rate like ``120/min`` or ``30/10s``; else raise ValueError."""
    match = _RATE.fullmatch(rate.strip().lower()) if isinstance(rate, str) else None
    if match is None or match.group(3) not in _PERIODS:
        raise ValueError(f"{rate!r} is not a rate: use {RATE_HELP}")
    requests, multiplier, unit = int(match.group(1)), int(match.group(2) or 1), match.group(3)
    if requests < 1 or multiplier < 1:
        raise ValueError(f"{rate!r} must allow at least one request in a period of at least one second")
    return requests, multiplier * _PERIODS[unit]
