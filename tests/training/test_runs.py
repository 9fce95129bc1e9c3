from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from emotions.models import ModelVersion
from training.models import TrainingRun
from training.services import (
    training_run_cancel,
    training_run_claim,
    training_run_create,
    training_runs_recover,
)

pytestmark = pytest.mark.django_db


def make_run(tmp_path, **fields) -> TrainingRun:
    run = training_run_create(
        architecture="mini_xception", dataset_path=str(tmp_path), config={"epochs": 3}, enqueue=False
    )
    TrainingRun.objects.filter(pk=run.pk).update(run_dir=str(tmp_path / f"run-{run.pk}"), **fields)
    run.refresh_from_db()
    return run


def test_it_validates_options_before_creating_a_run(tmp_path):
    with pytest.raises(ValueError, match="unknown architecture"):
        training_run_create(architecture="lenet", dataset_path=str(tmp_path), enqueue=False)
    with pytest.raises(ValueError, match="unknown training option"):
        training_run_create(
            architecture="vgg16", dataset_path=str(tmp_path), config={"epoch": 3}, enqueue=False
        )

    with pytest.raises(ValueError, match="batch_size must be even"):
        training_run_create(
            architecture="vgg16", dataset_path=str(tmp_path), config={"batch_size": 7}, enqueue=False
        )

    assert not TrainingRun.objects.exists()


def test_a_run_is_claimed_once(tmp_path):
    run = make_run(tmp_path)

    first = training_run_claim(run_id=run.pk, worker="a")
    second = training_run_claim(run_id=run.pk, worker="b")

    run.refresh_from_db()
    assert (first, second) == (True, False)
    assert run.status == TrainingRun.Status.RUNNING
    assert run.worker == "a" and run.attempts == 1


def test_a_running_run_whose_worker_went_silent_can_be_claimed_again(tmp_path, settings):
    run = make_run(tmp_path)
    training_run_claim(run_id=run.pk, worker="a")
    TrainingRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))

    assert training_run_claim(run_id=run.pk, worker="b")
    run.refresh_from_db()
    assert run.worker == "b" and run.attempts == 2


def test_cancelling_a_queued_run_ends_it_and_a_running_one_is_asked_to_stop(tmp_path):
    queued, running = make_run(tmp_path), make_run(tmp_path)
    training_run_claim(run_id=running.pk)

    training_run_cancel(run=queued)
    training_run_cancel(run=running)

    queued.refresh_from_db()
    running.refresh_from_db()
    assert queued.status == TrainingRun.Status.CANCELLED
    assert not training_run_claim(run_id=queued.pk)
    assert running.status == TrainingRun.Status.RUNNING and running.cancel_requested


def test_recovery_resumes_a_dead_workers_run_that_has_a_checkpoint(
    tmp_path, django_capture_on_commit_callbacks
):
    run = make_run(tmp_path, status=TrainingRun.Status.RUNNING, attempts=1, worker="gone:1")
    run.folder.mkdir(parents=True)
    (run.folder / "state.json").write_text(json.dumps({"epochs_done": 1}))
    TrainingRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=10))

    with django_capture_on_commit_callbacks() as callbacks:
        outcome = training_runs_recover()

    run.refresh_from_db()
    assert outcome == {"requeued": [run.pk], "failed": []}
    assert run.status == TrainingRun.Status.QUEUED
    assert "resuming from the last checkpoint" in run.log_tail
    assert len(callbacks) == 1  # the task is enqueued again


def test_recovery_fails_a_dead_workers_run_with_the_reason_when_it_cannot_resume(tmp_path):
    fresh = make_run(tmp_path, status=TrainingRun.Status.RUNNING, attempts=1, worker="gone:1")
    exhausted = make_run(tmp_path, status=TrainingRun.Status.RUNNING, attempts=3, worker="gone:2")
    (exhausted.folder).mkdir(parents=True)
    (exhausted.folder / "state.json").write_text("{}")
    alive = make_run(tmp_path, status=TrainingRun.Status.RUNNING, attempts=1, worker="here:1")
    TrainingRun.objects.exclude(pk=alive.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=10))
    TrainingRun.objects.filter(pk=alive.pk).update(heartbeat_at=timezone.now())

    outcome = training_runs_recover()

    fresh.refresh_from_db()
    exhausted.refresh_from_db()
    alive.refresh_from_db()
    assert sorted(outcome["failed"]) == sorted([fresh.pk, exhausted.pk])
    assert fresh.status == exhausted.status == TrainingRun.Status.FAILED
    assert "worker gone:1 stopped reporting" in fresh.error and "no checkpoint" in fresh.error
    assert "gave up after 3 attempts" in exhausted.error
    assert alive.status == TrainingRun.Status.RUNNING


def test_exactly_one_model_version_is_active_and_rollback_is_activating_an_older_one():
    old = ModelVersion.objects.create(
        name="old", architecture="mini_xception", file_path="a", sha256="0" * 64
    )
    new = ModelVersion.objects.create(
        name="new", architecture="mini_xception", file_path="b", sha256="1" * 64
    )

    old.activate()
    new.activate()
    assert list(ModelVersion.objects.filter(is_active=True)) == [new]
    old.activate()

    assert list(ModelVersion.objects.filter(is_active=True)) == [old]
