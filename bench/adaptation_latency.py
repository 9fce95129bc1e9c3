"""Measure how soon the live page's content follows a face, over the WebSocket /ws/live/, with the demo rules.

    python bench/adaptation_latency.py                  # its own server on a fresh database (demo rules)
    python bench/adaptation_latency.py --trials 10 --json   # and bench/results/<date>-adaptation-latency.json
    python bench/adaptation_latency.py --url ws://127.0.0.1:8000/ws/live/   # a running server, its own rules

Each trial is a new visitor. It connects with an accepted ``Origin``, reads ``ready`` and the content for
no camera, then behaves like the live page (frames at 5 a second, the next only after the reply): it shows
a happy face, then a sad one, then no face, and times each change from the first frame of the new state to
the ``content`` message chosen for it:

- first happy face → happy content (target ≤ 2.5 s: no cool-down is inherited from the no-camera content);
- happy → sad face → sad content (bound: what is left of the happy content's ``hold_s`` + 2 s);
- the face leaves → no-face content (target ≤ 12 s).

The faces are FER-2013 validation faces (``../shared/data/fer2013/val/<class>/``, never in the repository),
drawn as webcam frames by the same code as the tests (``tests/live/media.py``); the first faces the server
reads surely as happy and as sad are picked over the WebSocket itself. With ``--serve`` (the default without
``--url``) the server runs ``manage.py serve`` on a fresh SQLite database in a temporary folder with the demo
content loaded, the in-memory channel layer and the default engine, as on a first start.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from websockets.asyncio.client import connect

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.live_load import free_port, wait_until_up  # noqa: E402
from tests.live.media import SHIFTS, fer_frame, noise_jpeg, rgb_jpeg  # noqa: E402

FER_VAL = REPO.parent / "shared" / "data" / "fer2013" / "val"
RESULTS = REPO / "bench" / "results"
FPS = 5.0
STEP_TIMEOUT_S = 20.0
TARGETS = {"first_face": 2.5, "face_left": 12.0}
MARGIN_S = 2.0
PICK = {"happy": 0.8, "sad": 0.6}  # how surely the server must read a face to play that expression


async def messages_until(ws, test, wait_s: float) -> dict:
    """Return the first message that passes ``test``."""
    async with asyncio.timeout(wait_s):
        while True:
            message = json.loads(await ws.recv())
            if test(message):
                return message


class Visitor:
    """A live page without a browser: paced frames, one in flight, every message timed as it arrives."""

    def __init__(self, ws, fps: float = FPS) -> None:
        self.ws = ws
        self.period = 1.0 / fps
        self.contents: list[tuple[float, dict]] = []
        self.replied = asyncio.Event()
        self.reader = asyncio.create_task(self.read())

    async def read(self) -> None:
        async for text in self.ws:
            message = json.loads(text)
            if message["type"] == "content":
                self.contents.append((time.monotonic(), message))
            elif message["type"] in ("emotion", "error"):
                self.replied.set()

    async def show(
        self, frame: bytes, until, wait_s: float = STEP_TIMEOUT_S
    ) -> tuple[float | None, dict | None]:
        """Send ``frame`` until a content message passes ``until``; return the seconds since the first frame
        and that message (None, None after ``wait_s``)."""
        first = time.monotonic()
        seen = len(self.contents)
        while time.monotonic() - first < wait_s:
            sent = time.monotonic()
            self.replied.clear()
            await self.ws.send(frame)
            await asyncio.wait_for(self.replied.wait(), 10)
            for at, message in self.contents[seen:]:
                if until(message):
                    return at - first, message
            await asyncio.sleep(max(0.0, self.period - (time.monotonic() - sent)))
        return None, None

    async def keep_showing(self, frame: bytes, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            sent = time.monotonic()
            self.replied.clear()
            await self.ws.send(frame)
            await asyncio.wait_for(self.replied.wait(), 10)
            await asyncio.sleep(max(0.0, self.period - (time.monotonic() - sent)))

    async def close(self) -> None:
        self.reader.cancel()
        await asyncio.gather(self.reader, return_exceptions=True)


async def pick_face(url: str, origin: str, label: str, *, at_least: float, limit: int = 60) -> Path:
    """Return the first FER-2013 face of ``label`` the server reads as it at ``at_least``, at every shift."""
    async with connect(url, origin=origin, max_size=2**20) as ws:
        ready = await messages_until(ws, lambda m: m["type"] == "ready", 30)
        period = 1.0 / min(FPS, float(ready["max_fps"]))
        for path in sorted((FER_VAL / label).glob("*.jpg"))[:limit]:
            for shift in SHIFTS:
                sent = time.monotonic()
                await ws.send(rgb_jpeg(fer_frame(path, shift=shift)))
                reply = await messages_until(ws, lambda m: m["type"] in ("emotion", "error"), 30)
                await asyncio.sleep(max(0.0, period - (time.monotonic() - sent)))
                faces = reply.get("faces") or []
                if not faces or faces[0]["probabilities"][label] < at_least:
                    break
            else:
                return path
    raise SystemExit(f"the server reads none of the first {limit} FER-2013 {label} faces as {label}")


async def trial(url: str, origin: str, frames: dict[str, bytes], dwell_s: float) -> dict:
    """Run one visitor through happy → sad → no face; return each change's seconds and what came."""
    async with connect(url, origin=origin, max_size=2**20) as ws:
        await messages_until(ws, lambda m: m["type"] == "content", 30)  # the content for no camera
        visitor = Visitor(ws)
        try:
            first_face, happy = await visitor.show(frames["happy"], lambda m: m["mood"] == "happy")
            await visitor.keep_showing(frames["happy"], dwell_s)
            to_sad, sad = await visitor.show(frames["sad"], lambda m: m["mood"] == "sad")
            await visitor.keep_showing(frames["sad"], dwell_s)
            face_left, gone = await visitor.show(frames["none"], lambda m: m["mood"] == "no_face")
        finally:
            await visitor.close()
    happy_hold = float(happy["hold_s"]) if happy else None
    return {
        "first_face_s": _round(first_face),
        "happy_rule": happy and happy["rule"],
        "happy_hold_s": happy_hold,
        "to_sad_s": _round(to_sad),
        "sad_rule": sad and sad["rule"],
        # What was left of the happy content's hold when the sad face came, plus the margin.
        "to_sad_bound_s": None if happy_hold is None else round(max(0.0, happy_hold - dwell_s) + MARGIN_S, 2),
        "face_left_s": _round(face_left),
        "no_face_rule": gone and gone["rule"],
    }


def summarize(trials: list[dict]) -> dict:
    rows = {}
    for key, target in (
        ("first_face_s", TARGETS["first_face"]),
        ("to_sad_s", None),
        ("face_left_s", TARGETS["face_left"]),
    ):
        values = [t[key] for t in trials if t[key] is not None]
        bounds = [t["to_sad_bound_s"] for t in trials if t["to_sad_bound_s"] is not None]
        bound = target if target is not None else (max(bounds) if bounds else None)
        rows[key] = {
            "target_s": bound,
            "median_s": _round(statistics.median(values)) if values else None,
            "max_s": _round(max(values)) if values else None,
            "answered": len(values),
            "trials": len(trials),
            "holds": bool(values)
            and len(values) == len(trials)
            and bound is not None
            and max(values) <= bound,
        }
    return rows


def print_table(result: dict) -> None:
    names = {
        "first_face_s": "first happy face → happy content",
        "to_sad_s": "happy → sad face → sad content",
        "face_left_s": "face leaves → no-face content",
    }
    print(
        f"adaptation latency over {result['url']} ({result['rules']}), {len(result['trials'])} trials, "
        f"frames at {FPS:g} fps, {result['dwell_s']:g} s per face"
    )
    print(f"{'change':<36} {'target':>8} {'median':>8} {'max':>8}  answered  holds")
    for key, row in result["summary"].items():
        target = f"≤ {row['target_s']:g} s" if row["target_s"] is not None else "-"
        median = f"{row['median_s']:.2f} s" if row["median_s"] is not None else "-"
        worst = f"{row['max_s']:.2f} s" if row["max_s"] is not None else "-"
        print(
            f"{names[key]:<36} {target:>8} {median:>8} {worst:>8}  "
            f"{row['answered']:>3}/{row['trials']:<4}  {'yes' if row['holds'] else 'NO'}"
        )
    rules = {(t["happy_rule"], t["sad_rule"], t["no_face_rule"]) for t in result["trials"]}
    print("rules that fired (happy, sad, no face): " + "; ".join(", ".join(map(str, r)) for r in rules))


def serve_fresh(folder: Path, port: int) -> subprocess.Popen:
    """Start ``manage.py serve`` on a fresh SQLite database with the demo content, as on a first start."""
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in ("REDIS_URL", "DATABASE_URL", "DJANGO_DEBUG")
    }
    environment |= {"ATTUNE_VAR_DIR": str(folder), "DATABASE_URL": f"sqlite:///{folder / 'attune.sqlite3'}"}
    python = sys.executable
    for command in (["migrate", "--noinput", "-v0"], ["load_demo_content", "-v0"]):
        subprocess.run(
            [python, "manage.py", *command], cwd=REPO, env=environment, check=True, stdout=subprocess.DEVNULL
        )
    process = subprocess.Popen(
        [python, "manage.py", "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=REPO,
        env=environment,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return wait_until_up(process, port)


async def run(args: argparse.Namespace) -> dict:
    # The shipped model reads happy faces far more surely than sad ones (see its model card).
    faces = {label: await pick_face(args.url, args.origin, label, at_least=p) for label, p in PICK.items()}
    frames = {label: rgb_jpeg(fer_frame(path)) for label, path in faces.items()}
    frames["none"] = noise_jpeg()
    await trial(args.url, args.origin, frames, args.dwell)  # warm-up: first frames after start are slower
    trials = []
    for _ in range(args.trials):
        trials.append(await trial(args.url, args.origin, frames, args.dwell))
    return {
        "machine": {
            "cpus": os.cpu_count(),
            "cpu": platform.processor() or platform.machine(),
            "python": platform.python_version(),
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        },
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "url": args.url,
        "rules": "demo rules of a fresh start" if args.serve else "the server's rules",
        "faces": {label: path.name for label, path in faces.items()},
        "dwell_s": args.dwell,
        "trials": trials,
        "summary": summarize(trials),
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="a running server's ws://host/ws/live/ (default: start one)")
    parser.add_argument("--origin", help="the Origin header (default: the URL's host over http)")
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--dwell", type=float, default=2.0, help="seconds each face stays after its content")
    parser.add_argument("--json", action="store_true", help="print JSON and save it in bench/results/")
    args = parser.parse_args()
    if not (FER_VAL / "happy").is_dir():
        sys.exit(f"needs FER-2013 at {FER_VAL} (see ../shared/data/README.md)")
    args.serve = args.url is None
    process = None
    with tempfile.TemporaryDirectory(prefix="attune-bench-") as folder:
        try:
            if args.serve:
                port = free_port()
                process = serve_fresh(Path(folder), port)
                args.url = f"ws://127.0.0.1:{port}/ws/live/"
            if not args.origin:
                parts = urlsplit(args.url)
                args.origin = f"{'https' if parts.scheme == 'wss' else 'http'}://{parts.netloc}"
            result = asyncio.run(run(args))
        finally:
            if process is not None and process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=30)
    if args.json:
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / f"{datetime.now(UTC):%Y-%m-%d}-adaptation-latency.json"
        path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        print(json.dumps(result, indent=2))
        print(f"saved {path.relative_to(REPO)}", file=sys.stderr)
    else:
        print_table(result)
    if not all(row["holds"] for row in result["summary"].values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
