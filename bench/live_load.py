"""Load the live WebSocket with many simulated visitors and measure each frame's round trip.

    python bench/live_load.py --url ws://127.0.0.1:8000/ws/live/ --clients 20 --fps 5 --seconds 60 [--json]
    python bench/live_load.py --serve --clients 20 --fps 5 --seconds 60      # starts `manage.py serve` itself
    python bench/live_load.py --serve --find-max --clients 10 --step 10 --seconds 30
    python bench/live_load.py --serve --backends keras,litert --clients 20 --seconds 30   # one server each

Each client behaves like the live page: it connects with an ``Origin`` the site
accepts, reads ``ready`` and ``content``, then sends real 320×240 JPEG frames
(``skimage.data.astronaut()`` at quality 70, shifted by a few pixels each time)
at most ``--fps`` a second, and only once the previous frame was answered (at
most one in flight). A tick that finds the previous frame still unanswered is
skipped and counted as dropped, as the page would skip it.

Reports the per-frame round trip (send → ``emotion``) p50, p95 and p99, the
p95 per 10-second window (flat windows mean no backlog builds up), frames sent,
answered and dropped, errors by kind, the server's warnings (``rate_limited``,
``frame_replaced``) and the server process's memory (RSS) and CPU time before
and after. The server is the process given by ``--server-pid``, else the one
listening on the URL's port (found with psutil), else the one ``--serve`` started.

``--find-max`` runs ``--clients``, then ``--step`` more, and so on, until the
p95 exceeds ``--target-p95-ms`` or a run has errors, and reports the largest N
that held. The frames and the page's behaviour come from the README ("The live
WebSocket"); nothing here imports Django.

``--backends keras,litert`` (with ``--serve``) measures the same runs against
one fresh server per emotion backend, one after the other, and compares them:
p95 at ``--clients``, the largest N (with ``--find-max``) and the server's
memory, the peak RSS sampled during the runs. ``--server-env KEY=VALUE`` sets
more of the served process's environment (e.g. ``EMOTIONS_LITERT_THREADS=1``).
``fake-inline`` among the backends serves a stand-in classifier that costs next to
nothing, as LiteRT is served (``emotions.fake.InlineFakeClassifier``): what a
process would hold with any model, however fast, given what the rest of a frame costs.

``--server-cpus 0`` (with ``--serve``) pins the served process to those cores and
this load generator to the others, so that neither takes the other's CPU: what a
process can hold then depends on the process, not on how much of the machine the
simulated visitors took at that step. A process per core is how ``manage.py
cluster`` is meant to be run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import cv2
import numpy as np
import psutil
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

REPO = Path(__file__).resolve().parent.parent
TARGET_P95_MS = 150.0
BACKENDS = {
    "keras": "emotions.classifier.KerasClassifier",
    "litert": "emotions.classifier.LiteRTClassifier",
    "fake": "emotions.fake.FakeClassifier",
    # Served inline as LiteRT is, at next to no cost: what a frame costs besides the classifier.
    "fake-inline": "emotions.fake.InlineFakeClassifier",
}
WINDOW_S = 10.0
FRAME_SIZE = (320, 240)
JPEG_QUALITY = 70


def make_frames(count: int = 16, seed: int = 0) -> list[bytes]:
    """Return ``count`` 320×240 JPEG frames (quality 70) of the astronaut, each shifted by a few pixels."""
    from skimage import data

    astronaut = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)[:384]  # 4:3, the face in the upper half
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(count):
        dx, dy = rng.integers(-8, 9, size=2)
        shift = np.float32([[1, 0, dx], [0, 1, dy]])
        moved = cv2.warpAffine(astronaut, shift, (512, 384), borderMode=cv2.BORDER_REPLICATE)
        small = cv2.resize(moved, FRAME_SIZE, interpolation=cv2.INTER_AREA)
        ok, buffer = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        assert ok
        frames.append(buffer.tobytes())
    return frames


def percentile(values: list[float], q: float) -> float | None:
    """Return the ``q``-th percentile (0–100) of ``values`` by linear interpolation, None if empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass
class ClientStats:
    sent: int = 0
    answered: int = 0  # an "emotion" for the frame in flight
    refused: int = 0  # an "error" for the frame in flight (overloaded, model_unavailable, ...)
    dropped: int = 0  # ticks skipped because the previous frame was not answered yet
    unanswered: int = 0  # frames still in flight when the run ended
    rtts: list[tuple[float, float]] = field(default_factory=list)  # (seconds since start, round trip ms)
    stages: list[dict[str, float]] = field(default_factory=list)  # each answer's timings_ms (server side)
    errors: dict[str, int] = field(default_factory=dict)
    warnings: dict[str, int] = field(default_factory=dict)

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1


class LiveClient:
    """One simulated visitor: at most one frame in flight, at most ``fps`` frames a second."""

    def __init__(self, url: str, origin: str, frames: list[bytes], fps: float, seed: int) -> None:
        self.url = url
        self.origin = origin
        self.frames = frames
        self.period = 1.0 / fps
        self.random = random.Random(seed)
        self.stats = ClientStats()
        self.ws = None
        self._in_flight: float | None = None  # perf_counter() when the unanswered frame was sent
        self._answered = asyncio.Event()
        self._start = 0.0

    async def open(self) -> None:
        """Connect and read ``ready`` and the first ``content``."""
        self.ws = await connect(self.url, origin=self.origin, open_timeout=60, max_size=2**22)
        seen = set()
        async with asyncio.timeout(60):
            while not {"ready", "content"} <= seen:
                seen.add(json.loads(await self.ws.recv()).get("type"))

    async def run(self, start: float, seconds: float) -> ClientStats:
        """Send frames from ``start`` (a perf_counter time) for ``seconds``; return what happened."""
        self._start = start
        reader = asyncio.create_task(self._read())
        try:
            await self._send_loop(start, seconds)
            if self._in_flight is not None:  # give the last frame a fair chance to be answered
                try:
                    async with asyncio.timeout(5):
                        await self._answered.wait()
                except TimeoutError:
                    pass
            if self._in_flight is not None:
                self.stats.unanswered += 1
        except ConnectionClosed as closed:
            self.stats.error(f"closed {closed.rcvd.code if closed.rcvd else 'abnormally'}")
        finally:
            reader.cancel()
            await self.ws.close()
        return self.stats

    async def _send_loop(self, start: float, seconds: float) -> None:
        # Visitors are not synchronised: each starts at its own phase within the first period.
        tick = start + self.random.uniform(0, self.period)
        end = start + seconds
        while tick < end:
            await asyncio.sleep(max(0.0, tick - time.perf_counter()))
            if self.ws.state.name != "OPEN":
                self.stats.error("connection lost")
                return
            if self._in_flight is not None:
                self.stats.dropped += 1
            else:
                frame = self.frames[self.stats.sent % len(self.frames)]
                self._answered.clear()
                self._in_flight = time.perf_counter()
                self.stats.sent += 1
                await self.ws.send(frame)
            tick += self.period

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                message = json.loads(raw)
                kind = message.get("type")
                if kind in ("emotion", "error") and self._in_flight is not None:
                    now = time.perf_counter()
                    if kind == "emotion":
                        self.stats.answered += 1
                        self.stats.rtts.append(
                            (self._in_flight - self._start, (now - self._in_flight) * 1000)
                        )
                        self.stats.stages.append(message.get("timings_ms") or {})
                    else:
                        self.stats.refused += 1
                        self.stats.error(f"error {message.get('code')}")
                    self._in_flight = None
                    self._answered.set()
                elif kind == "error":
                    self.stats.error(f"error {message.get('code')}")
                elif kind == "warning":
                    code = message.get("code", "?")
                    self.stats.warnings[code] = self.stats.warnings.get(code, 0) + 1
        except ConnectionClosed as closed:
            if closed.rcvd is None or closed.rcvd.code != 1000:
                self.stats.error(f"closed {closed.rcvd.code if closed.rcvd else 'abnormally'}")


def server_process(url: str, pid: int | None) -> psutil.Process | None:
    """Return the server process: ``pid``, else the one listening on the URL's port (None if not found)."""
    if pid:
        return psutil.Process(pid)
    port = urlsplit(url).port or 80
    try:
        for conn in psutil.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port and conn.pid:
                return psutil.Process(conn.pid)
    except psutil.AccessDenied:
        pass
    return None


def process_sample(process: psutil.Process | None) -> dict | None:
    if process is None:
        return None
    try:
        with process.oneshot():
            cpu = process.cpu_times()
            return {"rss_mb": round(process.memory_info().rss / 2**20, 1), "cpu_s": cpu.user + cpu.system}
    except psutil.Error:
        return None


async def warm_up(url: str, origin: str, frame: bytes, timeout_s: float = 300) -> float:
    """Send one frame and wait for its ``emotion`` (the server may still be loading its model); return s."""
    started = time.perf_counter()
    async with connect(url, origin=origin, open_timeout=60) as ws:
        async with asyncio.timeout(timeout_s):
            while True:
                await ws.send(frame)
                while (message := json.loads(await ws.recv())).get("type") not in ("emotion", "error"):
                    pass
                if message["type"] == "emotion":
                    return time.perf_counter() - started
                await asyncio.sleep(1)  # model_unavailable while it loads: try again


async def measure(args: argparse.Namespace, clients: int, frames: list[bytes], server) -> dict:
    """Run ``clients`` visitors for ``args.seconds`` and return the report."""
    visitors = [LiveClient(args.url, args.origin, frames, args.fps, seed=i) for i in range(clients)]
    opened = await asyncio.gather(*(visitor.open() for visitor in visitors), return_exceptions=True)
    connect_errors = [repr(result) for result in opened if isinstance(result, BaseException)]
    running = [visitor for visitor, result in zip(visitors, opened, strict=True) if result is None]

    before = process_sample(server)
    load_before = os.getloadavg()
    start = time.perf_counter() + 0.5
    peak_rss = [before["rss_mb"]] if before else []
    sampler = asyncio.create_task(_sample_rss(server, peak_rss))
    results = await asyncio.gather(*(visitor.run(start, args.seconds) for visitor in running))
    wall = time.perf_counter() - start
    sampler.cancel()
    after = process_sample(server)

    rtts = [rtt for stats in results for rtt in stats.rtts]
    times = [rtt for _, rtt in rtts]
    errors: dict[str, int] = {}
    warnings: dict[str, int] = {}
    for stats in results:
        for kind, count in stats.errors.items():
            errors[kind] = errors.get(kind, 0) + count
        for kind, count in stats.warnings.items():
            warnings[kind] = warnings.get(kind, 0) + count
    if connect_errors:
        errors["connect failed"] = len(connect_errors)
    windows = []
    for low in np.arange(0, args.seconds, WINDOW_S):
        inside = [rtt for at, rtt in rtts if low <= at < low + WINDOW_S]
        windows.append({"from_s": float(low), "frames": len(inside), "p95_ms": _ms(percentile(inside, 95))})
    sent = sum(stats.sent for stats in results)
    answered = sum(stats.answered for stats in results)
    p95 = percentile(times, 95)
    report = {
        "clients": clients,
        "fps": args.fps,
        "seconds": args.seconds,
        "rtt_ms": {
            "p50": _ms(percentile(times, 50)),
            "p95": _ms(p95),
            "p99": _ms(percentile(times, 99)),
            "max": _ms(max(times, default=None)),
        },
        "frames": {
            "sent": sent,
            "answered": answered,
            "refused": sum(stats.refused for stats in results),
            "dropped": sum(stats.dropped for stats in results),
            "unanswered": sum(stats.unanswered for stats in results),
            "answered_per_s": round(answered / wall, 1),
        },
        "p95_ms_per_window": windows,
        "server_stages_ms": _stages(results),
        "errors": errors,
        "server_warnings": warnings,
        "server": None,
        "load_average": {"before": [round(x, 2) for x in load_before], "after": _load()},
    }
    if before and after:
        report["server"] = {
            "pid": server.pid,
            "rss_mb_before": before["rss_mb"],
            "rss_mb_after": after["rss_mb"],
            "rss_mb_peak": max([*peak_rss, after["rss_mb"]]),
            "cpu_cores_used": round((after["cpu_s"] - before["cpu_s"]) / wall, 2),
            "cpu_ms_per_answer": round((after["cpu_s"] - before["cpu_s"]) * 1000 / max(1, answered), 2),
            "cores_allowed": _cores_allowed(server),
        }
    report["holds"] = not errors and p95 is not None and p95 <= args.target_p95_ms
    if connect_errors:
        report["connect_errors"] = connect_errors[:5]
    return report


def _stages(results: list[ClientStats]) -> dict[str, dict[str, float | None]]:
    """Return the median and p95 of each stage the server timed (its ``timings_ms``: decode, detect,
    preprocess, classify and their total, wall time in its pipeline: a perception thread's, or the event
    loop's on one core, the total from the frame's arrival in the pipeline) over every answer."""
    stages: dict[str, list[float]] = {}
    for stats in results:
        for timings in stats.stages:
            for stage, ms in timings.items():
                stages.setdefault(stage, []).append(ms)
    return {
        stage: {"p50": _ms(percentile(values, 50)), "p95": _ms(percentile(values, 95))}
        for stage, values in stages.items()
    }


async def _sample_rss(process: psutil.Process | None, peaks: list[float], every_s: float = 0.5) -> None:
    while process is not None:
        await asyncio.sleep(every_s)
        sample = process_sample(process)
        if sample:
            peaks.append(sample["rss_mb"])


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# Every simulated visitor comes from this one address: lift the per-address caps on connections.
CAPS_LIFTED = {"LIVE_MAX_CONNECTIONS_PER_CLIENT": "100000", "LIVE_CONNECTS_PER_MINUTE_PER_CLIENT": "1000000"}


def serve(port: int, env: dict[str, str] | None = None, cpus: set[int] | None = None) -> subprocess.Popen:
    """Migrate and start ``manage.py serve`` (daphne, the real default model unless configured otherwise),
    on ``cpus`` only if given."""
    python = sys.executable
    environment = {**CAPS_LIFTED, **os.environ, **(env or {})}
    subprocess.run(
        [python, "manage.py", "migrate", "--noinput", "-v0"], cwd=REPO, check=True, env=environment
    )
    process = subprocess.Popen(
        [python, "manage.py", "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=REPO,
        env=environment,
        start_new_session=True,
        # The access log goes to stderr, so that stdout holds only the report (--json stays parseable).
        stdout=subprocess.DEVNULL if os.environ.get("BENCH_QUIET_SERVER") else sys.stderr,
        # Before exec, so that every thread the server starts inherits it.
        preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None,
    )
    return wait_until_up(process, port)


def wait_until_up(
    process: subprocess.Popen, port: int, *, timeout_s: float = 120, what: str = "the server"
) -> subprocess.Popen:
    """Return ``process`` once ``/healthz`` on ``port`` answers; exit, stopping it, if it never does."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"{what} exited while starting")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5):
                return process
        except OSError:
            time.sleep(0.5)
    os.killpg(process.pid, signal.SIGTERM)
    sys.exit(f"{what} did not answer within {timeout_s:g} s")


def serve_cluster(port: int, workers: int, env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start ``manage.py cluster`` (nginx on ``port`` in front of ``workers`` daphne processes), no Celery."""
    python = sys.executable
    environment = {**CAPS_LIFTED, **os.environ, **(env or {})}
    if not environment.get("REDIS_URL") or not environment.get("DATABASE_URL", "").startswith("postgres"):
        sys.exit("--cluster needs REDIS_URL and DATABASE_URL=postgres://... (the processes share them)")
    subprocess.run(
        [python, "manage.py", "migrate", "--noinput", "-v0"], cwd=REPO, check=True, env=environment
    )
    process = subprocess.Popen(
        [python, "manage.py", "cluster", "--workers", str(workers), "--no-worker", "--port", str(port),
         "--web-port", str(free_port_block(workers))],
        cwd=REPO, env=environment, start_new_session=True,
        stdout=subprocess.DEVNULL if os.environ.get("BENCH_QUIET_SERVER") else sys.stderr,
    )  # fmt: skip
    wait_until_up(process, port, timeout_s=180, what="the cluster")
    time.sleep(3)  # every web process answers by now, not only the first
    return process


def free_port_block(count: int) -> int:
    """Return the first of ``count`` consecutive free ports."""
    while True:
        first = free_port()
        if all(_port_free(first + i) for i in range(1, count)):
            return first


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _cores_allowed(server: psutil.Process) -> list[int] | None:
    try:
        return sorted(server.cpu_affinity())
    except (psutil.Error, AttributeError):  # gone, or a platform without affinities
        return None


def machine(args: argparse.Namespace | None = None) -> dict:
    pinned = {}
    if args is not None and args.server_cpus:
        pinned = {
            "server_cpus": sorted(args.server_cpus),
            "load_generator_cpus": sorted(os.sched_getaffinity(0)),
        }
    return {
        "cpus": os.cpu_count(),
        **pinned,
        "cpu": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def print_table(reports: list[dict], args: argparse.Namespace) -> None:
    print(f"live WebSocket load: {args.url}, {args.fps:g} fps per client, {args.seconds:g} s per run")
    print("clients  p50 ms  p95 ms  p99 ms  sent   answered  dropped  errors  RSS MB before→after  cores")
    for r in reports:
        server = r["server"] or {}
        rss = f"{server.get('rss_mb_before', '?')}→{server.get('rss_mb_after', '?')}"
        print(
            f"{r['clients']:>7}  {r['rtt_ms']['p50'] or '-':>6}  {r['rtt_ms']['p95'] or '-':>6}  "
            f"{r['rtt_ms']['p99'] or '-':>6}  {r['frames']['sent']:>5}  {r['frames']['answered']:>8}  "
            f"{r['frames']['dropped']:>7}  {sum(r['errors'].values()):>6}  {rss:>20}  "
            f"{server.get('cpu_cores_used', '-'):>5}"
        )
        windows = " ".join(str(w["p95_ms"]) for w in r["p95_ms_per_window"])
        print(f"         p95 per {WINDOW_S:g} s window: {windows}")
        stages = "  ".join(
            f"{stage} {t['p50']}/{t['p95']}" for stage, t in r.get("server_stages_ms", {}).items()
        )
        if stages:
            print(f"         server ms p50/p95: {stages}")
        if r["errors"] or r["server_warnings"]:
            print(f"         errors: {r['errors']}  server warnings: {r['server_warnings']}")


async def main_async(args: argparse.Namespace) -> dict:
    frames = make_frames()
    if args.cluster:
        result = {
            "machine": machine(args),
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "target_p95_ms": args.target_p95_ms,
            "clusters": {},
        }
        for workers in args.cluster:
            if not args.json:
                print(f"--- {workers} web process{'es' if workers > 1 else ''} behind nginx ---")
            result["clusters"][str(workers)] = await one_server(
                args, frames, args.server_env, workers=workers
            )
        result["comparison"] = compare(result["clusters"], args)
        return result
    if not args.backends:
        return await one_server(args, frames, args.server_env)
    result: dict = {
        "machine": machine(args),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "target_p95_ms": args.target_p95_ms,
        "backends": {},
    }
    for backend in args.backends:
        if not args.json:
            print(f"--- backend {backend} ({BACKENDS[backend]}) ---")
        env = {**args.server_env, "EMOTIONS_BACKEND": BACKENDS[backend]}
        result["backends"][backend] = await one_server(args, frames, env)
    result["comparison"] = compare(result["backends"], args)
    return result


def compare(results: dict[str, dict], args: argparse.Namespace) -> dict:
    """Return, per backend, the first run's p95, the largest N that held (with --find-max) and peak RSS."""
    comparison = {}
    for backend, result in results.items():
        first = result["runs"][0]
        comparison[backend] = {
            "clients": first["clients"],
            "p95_ms": first["rtt_ms"]["p95"],
            "errors": sum(first["errors"].values()),
            "max_clients_holding_target": result.get("max_clients_holding_target"),
            "server_rss_mb_peak": max((run["server"] or {}).get("rss_mb_peak", 0) for run in result["runs"]),
            "warm_up_s": result["warm_up_s"],
        }
    return comparison


async def one_server(
    args: argparse.Namespace, frames: list[bytes], env: dict[str, str], *, workers: int = 0
) -> dict:
    """Run the load (once, or rising with --find-max) against ``--url``, a server of its own, or a cluster."""
    process = None
    if args.serve:
        port = free_port()
        args.url = f"ws://127.0.0.1:{port}/ws/live/"
        args.origin = f"http://127.0.0.1:{port}"
        process = serve_cluster(port, workers, env) if workers else serve(port, env, args.server_cpus)
    try:
        if workers:
            server = None  # several processes: their memory is not one figure
        else:
            server = psutil.Process(process.pid) if process else server_process(args.url, args.server_pid)
        warm_up_s = await warm_up(args.url, args.origin, frames[0])
        reports = []
        clients = args.clients
        while True:
            report = await measure(args, clients, frames, server)
            reports.append(report)
            if not args.json:
                print_table([report], args)
            if not args.find_max or not report["holds"] or clients >= args.max_clients:
                break
            clients += args.step
        result = {
            "machine": machine(args),
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "server_env": env,
            "url": args.url,
            "target_p95_ms": args.target_p95_ms,
            "warm_up_s": round(warm_up_s, 1),
            "runs": reports,
        }
        if args.find_max:
            held = [r["clients"] for r in reports if r["holds"]]
            result["max_clients_holding_target"] = max(held, default=0)
        return result
    finally:
        if process is not None and process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="ws://127.0.0.1:8000/ws/live/", help="the live WebSocket")
    parser.add_argument("--origin", help="the Origin header (default: http://host:port of --url)")
    parser.add_argument("--clients", type=int, default=20, help="simultaneous visitors (default 20)")
    parser.add_argument("--fps", type=float, default=5.0, help="most frames a second per visitor (default 5)")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of each run (default 60)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--find-max", action="store_true", help="add --step clients until p95 > target")
    parser.add_argument("--step", type=int, default=10, help="clients added per --find-max run (default 10)")
    parser.add_argument("--max-clients", type=int, default=500, help="where --find-max stops (default 500)")
    parser.add_argument("--target-p95-ms", type=float, default=TARGET_P95_MS, help="default 150")
    parser.add_argument("--server-pid", type=int, help="the server's process id, for its memory and CPU")
    parser.add_argument("--serve", action="store_true", help="start `manage.py serve` on a free port")
    parser.add_argument(
        "--backends",
        help="with --serve: a server per emotion backend, one after the other, e.g. keras,litert",
    )
    parser.add_argument(
        "--cluster",
        help="with --serve: `manage.py cluster` (nginx + N processes) per N, e.g. 1,2; needs REDIS_URL and "
        "a PostgreSQL DATABASE_URL",
    )
    parser.add_argument(
        "--server-cpus",
        help="with --serve (one process): pin the server to these cores, e.g. 0 or 0,1, and this load "
        "generator to the others",
    )
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="environment of the served process (repeatable)",
    )
    args = parser.parse_args()
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()] if args.backends else []
    args.cluster = [int(n) for n in args.cluster.split(",") if n.strip()] if args.cluster else []
    if args.cluster and (not args.serve or args.backends):
        parser.error("--cluster needs --serve and goes without --backends")
    if args.backends and (not args.serve or set(args.backends) - set(BACKENDS)):
        parser.error(f"--backends needs --serve and takes {', '.join(BACKENDS)}")
    if any("=" not in item for item in args.server_env):
        parser.error("--server-env takes KEY=VALUE")
    args.server_env = dict(item.split("=", 1) for item in args.server_env)
    args.server_cpus = {int(n) for n in (args.server_cpus or "").split(",") if n.strip()}
    if args.server_cpus:
        if not args.serve or args.cluster:
            parser.error("--server-cpus needs --serve and one process (no --cluster)")
        others = set(os.sched_getaffinity(0)) - args.server_cpus
        if not others or not args.server_cpus <= set(os.sched_getaffinity(0)):
            parser.error("--server-cpus must name some, not all, of the cores this may use")
        os.sched_setaffinity(0, others)
    if args.origin is None:
        parts = urlsplit(args.url)
        args.origin = f"{'https' if parts.scheme == 'wss' else 'http'}://{parts.netloc}"

    result = asyncio.run(main_async(args))
    if args.json:
        print(json.dumps(result, indent=2))
    elif args.cluster:
        print(f"machine: {result['machine']}")
        print(
            f"processes  p95 ms at {args.clients}×{args.fps:g} fps  "
            f"largest N (p95 ≤ {args.target_p95_ms:g} ms)"
        )
        for workers, row in result["comparison"].items():
            largest = row["max_clients_holding_target"] if args.find_max else "-"
            print(f"{workers:<10} {row['p95_ms'] or '-':>22} {largest!s:>30}")
    elif args.backends:
        print(f"machine: {result['machine']}")
        print(
            f"backend  p95 ms at {args.clients}×{args.fps:g} fps  "
            f"largest N (p95 ≤ {args.target_p95_ms:g} ms)  RSS MB"
        )
        for backend, row in result["comparison"].items():
            largest = row["max_clients_holding_target"] if args.find_max else "-"
            print(f"{backend:<8} {row['p95_ms'] or '-':>22} {largest!s:>30} {row['server_rss_mb_peak']:>7}")
    else:
        print(f"machine: {result['machine']}  model warm-up: {result['warm_up_s']} s")
        if args.find_max:
            print(
                f"largest N holding p95 ≤ {args.target_p95_ms:g} ms: {result['max_clients_holding_target']}"
            )
    servers = (
        result["backends"].values()
        if args.backends
        else result["clusters"].values()
        if args.cluster
        else [result]
    )
    sys.exit(0 if all(run["holds"] for server in servers for run in server["runs"][:1]) else 1)


if __name__ == "__main__":
    main()
