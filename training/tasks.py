from __future__ import annotations

import logging

from celery import shared_task

logger = logging.getLogger(__name__)


@shared_task(name="training.tasks.training_run_task", acks_late=True, reject_on_worker_lost=True)
def training_run_task(run_id: int) -> str:
    """Claim the run and train it; a second delivery of a run already in hand does nothing."""
    from training.services import training_run_claim, training_run_execute

    if not training_run_claim(run_id=run_id):
        logger.info("run %s is not claimable (finished, cancelled or taken); ignoring this delivery", run_id)
        return "ignored"
    return training_run_execute(run_id=run_id).status


@shared_task(name="training.tasks.training_runs_recover_task")
def training_runs_recover_task() -> dict:
    """Resume or fail runs whose worker died (scheduled every minute by the worker's beat)."""
    from training.services import training_runs_recover

    return training_runs_recover()
