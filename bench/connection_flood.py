"""One address opens 200 live connections: how much does another visitor notice?

Starts daphne (``manage.py serve``, the fake classifier so that only the connection handling is
measured) twice, without and with the per-address caps (LIVE_MAX_CONNECTIONS_PER_CLIENT,
LIVE_CONNECTS_PER_MINUTE_PER_CLIENT); in each, a steady visitor on another loopback address sends a
frame after each answer, at most 5 a second, first on a quiet server, then while the flooder opens
200 connections as fast as it can and holds the accepted ones open. Prints a table (or --json) and
writes it under bench/results/ with --save.

    .venv/bin/python bench/connection_flood.py [--connections 200] [--seconds 15] [--json] [--save]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus, WebSocketException

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.live_load import CAPS_LIFTED, free_port, machine, make_frames, serve  # noqa: E402

OTHER_VISITOR = "127.0.0.2"
CAPS_OFF = CAPS_LIFTED
CAPS_ON = {"LIVE_MAX_CONNECTIONS_PER_CLIENT": "20", "LIVE_CONNECTS_PER_MINUTE_PER_CLIENT": "120"}


async def steady_visitor(url: str, origin: str, frame: bytes, until: float) -> list[float]:
    """Send a frame after each answer (at most 5 a second) until ``until``; return the round trips in ms."""
    rtts: list[float] = []
    async with connect(
        url, origin=origin, local_addr=(OTHER_VISITOR, 0), open_timeout=60, max_size=2**20
    ) as ws:
        while time.monotonic() < until:
            started = time.monotonic()
            await ws.send(frame)
            while json.loads(await ws.recv())["type"] not in ("emotion", "error"):
                pass
            rtts.append((time.monotonic() - started) * 1000)
            await asyncio.sleep(max(0.0, 0.2 - (time.monotonic() - started)))
    return rtts


async def flood(url: str, origin: str, count: int, frame: bytes, until: float) -> dict:
    """Open ``count`` connections at once from 127.0.0.1; each accepted one sends frames at the allowed rate.

    As a page would, one frame in flight, at most 5 a second, until ``until``.
    """
    accepted, refused, failed = [], 0, 0

    async def one() -> None:
        nonlocal refused, failed
        try:
            ws = await connect(url, origin=origin, open_timeout=60, max_size=2**20)
        except InvalidStatus:
            refused += 1
            return
        except (OSError, TimeoutError, WebSocketException):
            failed += 1
            return
        accepted.append(ws)
        try:
            while time.monotonic() < until:
                started = time.monotonic()
                await ws.send(frame)
                while json.loads(await ws.recv())["type"] not in ("emotion", "error"):
                    pass
                await asyncio.sleep(max(0.0, 0.2 - (time.monotonic() - started)))
        except (OSError, WebSocketException):
            pass
        finally:
            await ws.close()

    await asyncio.gather(*(one() for _ in range(count)))
    return {"accepted": len(accepted), "refused": refused, "failed": failed}


def summary(rtts: list[float]) -> dict:
    ordered = sorted(rtts)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))] if ordered else None
    return {
        "frames": len(rtts),
        "p50_ms": round(statistics.median(ordered), 1) if ordered else None,
        "p95_ms": round(p95, 1) if p95 is not None else None,
    }


async def one_server(caps: dict[str, str], connections: int, seconds: float, frame: bytes) -> dict:
    port = free_port()
    url, origin = f"ws://127.0.0.1:{port}/ws/live/", f"http://127.0.0.1:{port}"
    process = serve(port, {"EMOTIONS_BACKEND": "emotions.fake.FakeClassifier", "LIVE_MAX_FPS": "5", **caps})
    try:
        quiet = await steady_visitor(url, origin, frame, time.monotonic() + seconds)
        until = time.monotonic() + seconds
        during, flooded = await asyncio.gather(
            steady_visitor(url, origin, frame, until), flood(url, origin, connections, frame, until)
        )
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    result = {"quiet": summary(quiet), "flood": summary(during), "flooder": flooded}
    quiet_p95, flood_p95 = result["quiet"]["p95_ms"], result["flood"]["p95_ms"]
    result["p95_ratio"] = round(flood_p95 / quiet_p95, 2) if quiet_p95 and flood_p95 else None
    return result


async def main_async(args: argparse.Namespace) -> dict:
    frame = make_frames(1)[0]
    result = {
        "machine": machine(),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "connections": args.connections,
        "seconds": args.seconds,
        "runs": {},
    }
    for name, caps in (("caps off (before)", CAPS_OFF), ("caps on (default)", CAPS_ON)):
        result["runs"][name] = {
            "settings": caps,
            **await one_server(caps, args.connections, args.seconds, frame),
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=15.0, help="length of each phase (default 15)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--save", action="store_true", help="also write them under bench/results/")
    args = parser.parse_args()
    os.environ.setdefault("BENCH_QUIET_SERVER", "1")

    result = asyncio.run(main_async(args))
    if args.save:
        day = datetime.now(UTC).strftime("%Y-%m-%d")
        (REPO / "bench" / "results" / f"{day}-connection-flood.json").write_text(json.dumps(result, indent=2))
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"machine: {result['machine']}; {args.connections} connections from one address")
    print(
        "server             quiet p50/p95 ms   during p50/p95 ms   p95 ratio   "
        "flooder accepted/refused/failed"
    )
    for name, run in result["runs"].items():
        q, f, c = run["quiet"], run["flood"], run["flooder"]
        print(
            f"{name:<18} {q['p50_ms']:>7} / {q['p95_ms']:<7}  {f['p50_ms']:>8} / {f['p95_ms']:<8} "
            f"{run['p95_ratio']!s:>8}   {c['accepted']}/{c['refused']}/{c['failed']}"
        )


if __name__ == "__main__":
    main()
