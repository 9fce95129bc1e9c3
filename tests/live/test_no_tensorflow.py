"""A web process serves expressions with LiteRT and never loads TensorFlow (about 0.6 GB it does not hold).

The real server (``manage.py serve``, daphne) with the default backend answers frames over /ws/live/ with
the shipped model; then the libraries mapped into its memory (``/proc/<pid>/maps``) show that TensorFlow
was never loaded, and that LiteRT was. (``tests/emotions/test_litert.py`` checks ``sys.modules`` and the
health report's ``tensorflow_loaded`` in a process that serves the same way.)
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from websockets.sync.client import connect

from tests.live.media import face_jpeg
from tests.live.server import serve

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def mapped_libraries(pid: int) -> set[str]:
    """Return the paths of the files mapped into process ``pid``'s memory."""
    lines = Path(f"/proc/{pid}/maps").read_text().splitlines()
    return {line.split(maxsplit=5)[5] for line in lines if len(line.split(maxsplit=5)) == 6}


def is_tensorflow(path: str) -> bool:
    # LiteRT's own wheel has files named _pywrap_tensorflow_lite_*: only TensorFlow's package counts.
    return "/site-packages/tensorflow/" in path or "/site-packages/keras/" in path or "libtensorflow" in path


def test_a_web_process_answers_frames_without_ever_loading_tensorflow(tmp_path):
    if not Path("/proc/self/maps").exists():
        pytest.skip("needs /proc (Linux) to read a process's mapped libraries")
    replies = []

    with serve(tmp_path / "server.log", EMOTIONS_BACKEND="emotions.classifier.LiteRTClassifier") as server:
        with connect(f"ws://127.0.0.1:{server.port}/ws/live/", origin=server.url, max_size=2**20) as ws:
            for _ in range(10):
                ws.send(face_jpeg(320, 240))
                while (reply := json.loads(ws.recv(timeout=60)))["type"] not in ("emotion", "error"):
                    pass
                replies.append(reply)
                if reply["type"] == "emotion" and reply["faces"]:
                    break
        libraries = mapped_libraries(server.process.pid)

    readings = [r for r in replies if r["type"] == "emotion" and r["faces"]]
    assert readings, f"no emotion reading came back: {replies}"
    assert readings[-1]["faces"][0]["probabilities"]
    assert [path for path in libraries if is_tensorflow(path)] == []
    assert any("ai_edge_litert" in path for path in libraries), "LiteRT is not loaded either"
