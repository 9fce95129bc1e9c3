"""The load generator of bench/live_load.py, run briefly against a real server with the fake model."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO
from tests.reliability.conftest import ws_url

pytestmark = [pytest.mark.slow]


def test_the_load_generator_reports_round_trips_frames_and_the_servers_memory(abuse_server):
    command = [sys.executable, "bench/live_load.py", "--url", ws_url(abuse_server), "--clients", "3"]
    command += ["--fps", "4", "--seconds", "3", "--json", "--server-pid", str(abuse_server.process.pid)]

    finished = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=240)

    report = json.loads(finished.stdout)
    run = report["runs"][0]
    assert run["clients"] == 3
    assert run["errors"] == {}, run
    assert run["frames"]["answered"] > 0
    assert (
        run["frames"]["sent"]
        == run["frames"]["answered"] + run["frames"]["refused"] + run["frames"]["unanswered"]
    )
    assert 0 < run["rtt_ms"]["p50"] <= run["rtt_ms"]["p95"] <= run["rtt_ms"]["p99"]
    assert run["server"]["rss_mb_before"] > 0 and run["server"]["rss_mb_after"] > 0
    assert finished.returncode == (0 if run["holds"] else 1)
