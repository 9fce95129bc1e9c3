"""Frames are analysed in memory and thrown away: after a stream through a real server, no trace is left.

The server runs with LOG_LEVEL=DEBUG (which also logs every SQL statement), so whatever it would log about a
frame is in its log. Each frame sent is fingerprinted (a slice of its bytes, raw, hex and base64) and the
files written since the stream began, the database and the log are searched for those fingerprints and
for anything that looks like an image.
"""

from __future__ import annotations

import base64
import json
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import pytest
from django.apps import apps
from django.conf import settings
from django.core.management import call_command
from websockets.sync.client import connect

from tests.conftest import REPO
from tests.live.media import astronaut_rgb, face_jpeg, noise_jpeg
from tests.live.server import serve

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n")
# A JPEG's first bytes in base64 ("/9j/4"), a PNG's ("iVBORw0KGgo"), and data URLs.
IMAGE_TEXT_MARKERS = (b"/9j/4", b"iVBORw0KGgo", b"data:image/")
SKIP_DIRS = {".git", ".venv", "node_modules"}
# Other test runs on the machine write their own var folders (screenshots...): the server's is scanned apart.
SKIP_TOP_DIRS = {"var"}


def frames_to_send() -> list[bytes]:
    ok, png = cv2.imencode(".png", cv2.cvtColor(astronaut_rgb(), cv2.COLOR_RGB2BGR))
    assert ok
    sizes = [(320, 240), (360, 270), (400, 300), (480, 360), (640, 480)]
    good = [face_jpeg(w, h, quality=q) for w, h in sizes for q in (60, 70, 85)]
    # Over LIVE_MAX_FRAME_BYTES (128 KiB), under daphne's WEBSOCKET_MAX_MESSAGE_SIZE (256 KiB).
    oversized = (face_jpeg(640, 480, quality=100) * 8)[: 200 * 1024]
    return [*good, png.tobytes(), noise_jpeg(), face_jpeg()[:4000], oversized]


def fingerprints(frames: list[bytes]) -> set[bytes]:
    prints = set()
    for frame in frames:
        middle = len(frame) // 2
        chunk = frame[middle : middle + 32]
        prints.update({chunk, chunk.hex().encode()})
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            encoded = encode(frame)
            start = len(encoded) // 2 // 4 * 4  # base64 of the whole frame, whatever slice a log would cut
            prints.add(encoded[start : start + 40])
    return prints


def image_trace(data: bytes, prints: set[bytes]) -> str | None:
    """Return what in ``data`` looks like a frame or an image, or None."""
    if data.startswith(IMAGE_MAGIC):
        return "an image file"
    for marker in (*IMAGE_TEXT_MARKERS, IMAGE_MAGIC[0]):
        if marker in data:
            return f"the image marker {marker!r}"
    if any(p in data for p in prints):
        return "bytes of a frame that was sent"
    return None


def files_changed_since(since: float, roots: list[Path]) -> Iterator[Path]:
    for root in roots:
        for folder, dirs, names in os.walk(root):
            dirs[:] = [
                d for d in dirs if d not in SKIP_DIRS and not (folder == str(REPO) and d in SKIP_TOP_DIRS)
            ]
            for name in names:
                path = Path(folder, name)
                try:
                    info = path.lstat()
                except OSError:
                    continue  # gone already
                if stat.S_ISREG(info.st_mode) and info.st_mtime >= since:
                    yield path


def database_values() -> Iterator[tuple[str, object]]:
    for model in apps.get_models():
        fields = [f.attname for f in model._meta.concrete_fields]
        for row in model.objects.values_list(*fields):
            for field, value in zip(fields, row, strict=True):
                yield f"{model._meta.label}.{field}", value


def test_a_stream_of_frames_leaves_no_image_on_disk_in_the_database_or_in_the_logs(tmp_path):
    frames = frames_to_send()
    prints = fingerprints(frames)
    # File times have a coarse grain on some file systems; a second of margin costs nothing.
    started = time.time() - 1
    replies = []
    call_command("load_demo_content", verbosity=0)  # rules fire, so decisions and counts are written

    # The server gets a temporary folder of its own: the machine's /tmp is shared with other programs.
    server_tmp = tmp_path / "server-tmp"
    server_tmp.mkdir()
    with serve(
        tmp_path / "server.log",
        TMPDIR=str(server_tmp),
        EMOTIONS_BACKEND="emotions.fake.FakeClassifier",
        EMOTIONS_MOOD_MIN_CONFIDENCE="0.1",  # so the fake's moods fire rules and get counted
        LOG_LEVEL="DEBUG",
        LIVE_MAX_FPS="60",
    ) as server:
        with connect(f"ws://127.0.0.1:{server.port}/ws/live/", origin=server.url, max_size=2**20) as ws:
            for frame in frames * 2:
                ws.send(frame)
                while (reply := json.loads(ws.recv(timeout=30)))["type"] not in ("emotion", "error"):
                    pass
                replies.append(reply)
            ws.send(json.dumps({"type": "ping"}))
            while json.loads(ws.recv(timeout=10))["type"] != "pong":
                pass
        deadline = time.monotonic() + 10
        while b"live session closed" not in server.log and time.monotonic() < deadline:
            time.sleep(0.1)  # the consumer's disconnect runs just after daphne logs the close
        log = server.log

    kinds = [r["type"] if r["type"] == "emotion" else r["code"] for r in replies]
    assert kinds.count("emotion") >= 2 * 16 and {"undecodable", "too_large"} <= set(kinds)
    assert any(r["type"] == "emotion" and r["faces"] for r in replies)

    found = {}
    for path in files_changed_since(started, [REPO, Path(settings.VAR_DIR), server_tmp]):
        try:
            data = path.read_bytes()
        except OSError:
            continue
        if trace := image_trace(data, prints):
            found[str(path)] = trace
    assert found == {}, f"files holding image data: {found}"

    rows = {
        where: trace
        for where, value in database_values()
        if isinstance(value, bytes | memoryview | str)
        and (trace := image_trace(value.encode() if isinstance(value, str) else bytes(value), prints))
    }
    assert rows == {}, f"database values holding image data: {rows}"

    assert b"live session closed" in log  # the log is the server's at DEBUG, to the end of the session
    assert image_trace(log, prints) is None
