"""Training runs through a real Celery worker process sharing the test database."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from datetime import timedelta

import pytest
from django.conf import settings

from emotions.models import ModelVersion
from tests.conftest import database_url
from tests.processes import start_celery_worker, stop_process
from tests.training.conftest import make_folder_dataset
from training.models import TrainingRun
from training.services import training_run_create, training_runs_recover
from training.tasks import training_run_task
from training.trainer import STATE_FILE

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def start_worker() -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "ATTUNE_VAR_DIR": str(settings.VAR_DIR),
        "DJANGO_SETTINGS_MODULE": "fer_site.settings",
    }
    return start_celery_worker(env)


def wait_for(predicate, timeout: float, what: str, worker: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if worker.poll() is not None:
            pytest.fail(f"the worker exited while waiting for {what}:\n{stop_process(worker)[-4000:]}")
        time.sleep(0.5)
    pytest.fail(f"timed out waiting for {what}:\n{stop_process(worker)[-4000:]}")


def status(run: TrainingRun) -> str:
    run.refresh_from_db()
    return run.status


def test_a_run_trains_in_a_real_worker_registers_an_activatable_model_and_ignores_a_second_delivery(tmp_path):
    data = make_folder_dataset(tmp_path / "fer", per_class=3)
    run = training_run_create(
        architecture="mini_xception",
        dataset_path=str(data),
        config={"epochs": 2, "batch_size": 6},
        run_dir=str(tmp_path / "run"),
    )
    duplicate = training_run_task.delay(run.pk)  # a redelivery of the same run
    worker = start_worker()
    try:
        wait_for(lambda: status(run) in TrainingRun.FINISHED, 240, "the run to finish", worker)
        # The two deliveries may be taken in either order (the embedded broker orders two messages written
        # in the same millisecond at random): whichever comes second is ignored, so the run trains once.
        assert duplicate.get(timeout=60) in ("ignored", TrainingRun.Status.SUCCEEDED)
    finally:
        log = stop_process(worker)

    run.refresh_from_db()
    assert run.status == TrainingRun.Status.SUCCEEDED, run.error + log[-3000:]
    assert run.attempts == 1
    assert run.epoch == 2 and run.progress == 1.0
    assert set(run.artifacts) >= {"model", "curves", "confusion_matrix", "evaluation", "model_card"}
    assert (run.folder / "curves.png").read_bytes()[:4] == b"\x89PNG"
    version = run.model_version
    assert version is not None and not version.is_active
    version.activate()
    assert ModelVersion.objects.active() == version


def test_a_worker_killed_mid_run_leaves_no_run_stuck_and_the_run_resumes_in_a_new_worker(tmp_path):
    data = make_folder_dataset(tmp_path / "fer", per_class=3)
    run = training_run_create(
        architecture="mini_xception",
        dataset_path=str(data),
        config={"epochs": 40, "batch_size": 6},
        run_dir=str(tmp_path / "run"),
    )
    worker = start_worker()
    wait_for(lambda: (run.refresh_from_db() or run.epoch) >= 2, 240, "two epochs", worker)

    stop_process(worker, signal.SIGKILL)
    run.refresh_from_db()
    # The checkpoint is written before the run's row learns of the epoch, so a kill between the
    # two leaves the checkpoint one epoch ahead of what the row said: that epoch is kept, not lost.
    checkpointed = json.loads((run.folder / STATE_FILE).read_text())["epochs_done"]
    assert checkpointed in (run.epoch, run.epoch + 1)
    assert run.status == TrainingRun.Status.RUNNING  # what a dead worker leaves behind...
    outcome = training_runs_recover(stale_after=timedelta(0))  # ...until recovery notices its silence

    assert outcome["requeued"] == [run.pk]
    assert status(run) == TrainingRun.Status.QUEUED
    worker = start_worker()
    try:
        wait_for(lambda: status(run) in TrainingRun.FINISHED, 300, "the resumed run to finish", worker)
    finally:
        log = stop_process(worker)

    run.refresh_from_db()
    assert run.status == TrainingRun.Status.SUCCEEDED, run.error + log[-3000:]
    assert run.attempts == 2
    assert f"resuming mini_xception after epoch {checkpointed} of 40" in run.log_tail
    assert len(run.history["val_accuracy"]) == run.epoch
