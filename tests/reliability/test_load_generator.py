"""The load generator of bench/live_load.py, run briefly against a real server with the fake model."""

from __future__ import annotations

import json
import os
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


@pytest.mark.skipif(
    not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2, reason="needs two usable cores"
)
def test_it_can_pin_the_server_it_starts_to_some_cores_and_itself_to_the_others(tmp_path):
    core = min(os.sched_getaffinity(0))
    command = [sys.executable, "bench/live_load.py", "--serve", "--backends", "fake"]
    command += ["--server-cpus", str(core), "--clients", "2", "--fps", "4", "--seconds", "2", "--json"]
    environment = {**os.environ, "ATTUNE_VAR_DIR": str(tmp_path), "BENCH_QUIET_SERVER": "1"}

    finished = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=240, env=environment)

    report = json.loads(finished.stdout)["backends"]["fake"]
    assert report["machine"]["server_cpus"] == [core]
    assert core not in report["machine"]["load_generator_cpus"]
    run = report["runs"][0]
    assert run["frames"]["answered"] > 0 and run["errors"] == {}
    assert run["server"]["cores_allowed"] == [core]  # read off the running server, not what was asked
    assert run["server"]["cpu_ms_per_answer"] > 0


def test_it_refuses_to_pin_the_server_to_every_core_or_without_starting_it():
    every = ",".join(str(core) for core in sorted(os.sched_getaffinity(0)))
    for extra in (["--serve", "--server-cpus", every], ["--server-cpus", "0"]):
        command = [sys.executable, "bench/live_load.py", *extra]
        finished = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=60)

        assert finished.returncode == 2 and "--server-cpus" in finished.stderr
