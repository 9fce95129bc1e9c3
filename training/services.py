"""Training workflows: create, claim, execute, cancel and reap runs; register models."""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from emotions.classifier import file_sha256, litert_record_path
from emotions.models import ModelVersion
from training.config import ARCHITECTURES, TrainConfig
from training.models import TrainingRun

if TYPE_CHECKING:
    from training.datasets import Dataset

logger = logging.getLogger(__name__)

HEARTBEAT_EVERY_S = 5.0
# What the registry keeps of a model's evaluation (the confusion matrix stays in the run's folder).
REGISTERED_METRICS = ("accuracy", "accuracy_ci95", "loss", "macro_f1", "n", "per_class", "calibration")
SERVED_MODEL = "served.keras"  # in a run's folder: the trained model, calibrated


def _worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@transaction.atomic
def training_run_create(
    *,
    architecture: str,
    dataset_path: str,
    config: dict | None = None,
    name: str = "",
    run_dir: str = "",
    enqueue: bool = True,
) -> TrainingRun:
    """Validate the options, create a queued run and enqueue it once the transaction commits."""
    if architecture not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {architecture!r}; choose one of {', '.join(ARCHITECTURES)}")
    options = {**(config or {}), "architecture": architecture}
    train_config = TrainConfig.from_dict(options)
    run = TrainingRun.objects.create(
        name=name,
        architecture=architecture,
        dataset_path=str(dataset_path),
        config=options,
        total_epochs=train_config.total_epochs,
        run_dir=run_dir,
    )
    if enqueue:
        _enqueue(run.pk)
    return run


def training_run_claim(*, run_id: int, worker: str | None = None) -> bool:
    """Atomically take a queued run, or a running one whose worker went silent; False if not ours."""
    now = timezone.now()
    claimed = TrainingRun.objects.filter(
        Q(status=TrainingRun.Status.QUEUED)
        | Q(status=TrainingRun.Status.RUNNING, heartbeat_at__lt=now - _stale_after()),
        pk=run_id,
        cancel_requested=False,
    ).update(
        status=TrainingRun.Status.RUNNING,
        worker=worker or _worker_name(),
        heartbeat_at=now,
        started_at=now,
        attempts=F("attempts") + 1,
    )
    return claimed == 1


@transaction.atomic
def training_run_cancel(*, run: TrainingRun) -> TrainingRun:
    """Ask a run to stop: a queued one is cancelled at once, a running one within an epoch."""
    run = TrainingRun.objects.select_for_update().get(pk=run.pk)
    if run.status == TrainingRun.Status.QUEUED:
        run.status = TrainingRun.Status.CANCELLED
        run.finished_at = timezone.now()
    if not run.is_finished or run.status == TrainingRun.Status.CANCELLED:
        run.cancel_requested = True
    run.save()
    return run


def training_runs_recover(
    *, stale_after: timedelta | None = None, max_attempts: int = 3
) -> dict[str, list[int]]:
    """Resume runs whose worker went silent from their checkpoint, or fail them with the reason."""
    stale_after = stale_after if stale_after is not None else _stale_after()
    outcome: dict[str, list[int]] = {"requeued": [], "failed": []}
    for run in TrainingRun.objects.stale(older_than=stale_after):
        silent = f"worker {run.worker or '?'} stopped reporting at {run.heartbeat_at:%Y-%m-%d %H:%M:%S %Z}"
        resumable = (run.folder / "state.json").exists() and run.attempts < max_attempts
        same_run = TrainingRun.objects.filter(
            pk=run.pk, status=TrainingRun.Status.RUNNING, heartbeat_at=run.heartbeat_at
        )
        if resumable and not run.cancel_requested:
            run.append_log(f"{silent}; resuming from the last checkpoint")
            if same_run.update(status=TrainingRun.Status.QUEUED, log_tail=run.log_tail):
                _enqueue(run.pk)
                outcome["requeued"].append(run.pk)
            continue
        reason = f"{silent}; " + (
            "cancelled while its worker was gone"
            if run.cancel_requested
            else f"gave up after {run.attempts} attempts"
            if run.attempts >= max_attempts
            else "no checkpoint to resume from"
        )
        status = TrainingRun.Status.CANCELLED if run.cancel_requested else TrainingRun.Status.FAILED
        if same_run.update(status=status, error=reason, finished_at=timezone.now()):
            outcome["failed"].append(run.pk)
    return outcome


def _stale_after() -> timedelta:
    return timedelta(seconds=settings.TRAINING_STALE_AFTER_S)


def _enqueue(run_id: int) -> None:
    from training.tasks import training_run_task

    transaction.on_commit(lambda: training_run_task.delay(run_id))


class RunHooks:
    """Trainer hooks that write progress, a heartbeat and the log to the run's row."""

    def __init__(self, run: TrainingRun, *, echo=None, on_batch=None) -> None:
        self.run = run
        self.echo = echo
        self.on_batch = on_batch
        self.last_beat = 0.0

    def _save(self, *fields: str) -> None:
        self.run.heartbeat_at = timezone.now()
        TrainingRun.objects.filter(pk=self.run.pk).update(
            heartbeat_at=self.run.heartbeat_at, **{f: getattr(self.run, f) for f in fields}
        )
        self.last_beat = time.monotonic()

    def on_epoch_end(self, *, epoch: int, total_epochs: int, logs: dict, history: dict) -> None:
        self.run.epoch = epoch
        self.run.history = history
        self.run.progress = epoch / max(total_epochs, 1)
        self._save("epoch", "history", "progress")

    def on_batch_end(self, *, epoch: int, batch: int, steps: int) -> None:
        if self.on_batch:
            self.on_batch(epoch, batch, steps)
        if time.monotonic() - self.last_beat >= HEARTBEAT_EVERY_S:
            self.run.progress = (epoch - 1 + batch / max(steps, 1)) / max(self.run.total_epochs, 1)
            self._save("progress")

    def should_cancel(self) -> bool:
        return TrainingRun.objects.filter(pk=self.run.pk, cancel_requested=True).exists()

    def log(self, message: str) -> None:
        logger.info("run %s: %s", self.run.pk, message)
        if self.echo:
            self.echo(message)
        self.run.append_log(message)
        self._save("log_tail")


def training_run_execute(
    *, run_id: int, command: str | None = None, echo=None, load_progress=None, batch_progress=None
) -> TrainingRun:
    """Train a claimed run to its end and register its model; the run ends succeeded, failed or cancelled."""
    run = TrainingRun.objects.get(pk=run_id)
    hooks = RunHooks(run, echo=echo, on_batch=batch_progress)
    try:
        # Everything the run imports at its end too, now: a run takes hours, and code upgraded meanwhile
        # must not meet the modules this process loaded before it (an ImportError after the training).
        import emotions.compile  # noqa: F401
        import training.evaluation  # noqa: F401
        from training.datasets import load_dataset
        from training.trainer import train

        config = TrainConfig.from_dict(run.config)
        if not run.run_dir:
            run.run_dir = str(run.folder)
            TrainingRun.objects.filter(pk=run.pk).update(run_dir=run.run_dir)
        hooks.log(f"loading {run.dataset_path}")
        dataset = load_dataset(
            run.dataset_path,
            seed=config.seed,
            cache_dir=Path(settings.TRAINING_ARTIFACTS_DIR) / "cache",
            progress=load_progress,
        )
        result = train(config, dataset, run.folder, hooks)
        if result.cancelled:
            return _finish(run, TrainingRun.Status.CANCELLED, hooks, "cancelled by request")

        hooks.log("evaluating the best checkpoint on the validation split")
        # The trainer's model.keras stays as trained, so that export_model can calibrate it afresh.
        served = run.folder / SERVED_MODEL
        metrics, files = _evaluation_write(
            source=result.model_path,
            target=served,
            dataset=dataset,
            folder=run.folder,
            name=_version_name(run),
            architecture=config.architecture,
            config=run.config,
            outcome=asdict(result),
            command=command,
            log=hooks.log,
        )
        run.artifacts = {"model": served.name, **files}
        run.metrics = metrics
        run.history = result.history
        run.model_version = model_version_register(
            name=_version_name(run),
            architecture=config.architecture,
            path=served,
            metrics=metrics,
            activate=False,
        )
        hooks.log(f"registered {run.model_version} with validation accuracy {metrics['accuracy']:.4f}")
        run.progress = 1.0
        return _finish(run, TrainingRun.Status.SUCCEEDED, hooks)
    except Exception as exc:  # any failure ends the run as failed, with its reason
        logger.exception("training run %s failed", run.pk)
        run.error = f"{type(exc).__name__}: {exc}"
        return _finish(run, TrainingRun.Status.FAILED, hooks, run.error)


def _version_name(run: TrainingRun) -> str:
    return f"{run.architecture}-run{run.pk}"


def _finish(run: TrainingRun, status: str, hooks: RunHooks, message: str | None = None) -> TrainingRun:
    if message:
        hooks.log(message)
    run.status = status
    run.finished_at = timezone.now()
    run.heartbeat_at = run.finished_at
    run.save()
    return run


@transaction.atomic
def model_version_register(
    *, name: str, architecture: str, path: Path, metrics: dict, activate: bool = False
) -> ModelVersion:
    """Record a model file in the registry (path kept relative to the artifacts folder when inside it).

    Also compiles it to LiteRT beside it, checked against Keras on sample faces (TensorFlow is imported
    here, in the worker or command that trained it); a model that does not compile is still registered,
    with the reason, and only the Keras backend can serve it.
    """
    from emotions.labels import EMOTIONS
    from emotions.preprocessing import INPUT_SHAPE
    from emotions.services import model_version_compile

    path = Path(path).resolve()
    root = Path(settings.TRAINING_ARTIFACTS_DIR).resolve()
    stored = str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
    version = ModelVersion.objects.create(
        name=name,
        architecture=architecture,
        file_path=stored,
        sha256=file_sha256(path),
        input_spec={"shape": list(INPUT_SHAPE), "scale": "[0, 1]", "classes": list(EMOTIONS)},
        metrics={
            k: metrics[k]
            for k in ("accuracy", "accuracy_ci95", "loss", "macro_f1", "n", "per_class", "calibration")
            if k in metrics
        },
    )
    model_version_compile(version=version)
    if not version.litert_error and (path.parent / "MODEL_CARD.md").is_file():
        # The run's model card (beside the model) states what the compiled file costs per face here.
        record = json.loads(litert_record_path(path).read_text())
        _serving_cost_into_card(path.with_suffix(".tflite"), weights=record["weights"], seconds=0.5)
    if activate:
        from emotions.services import model_version_activate

        model_version_activate(version=version)  # checks the file, switches processes, tells live pages
    return version


def model_package(
    *, run_dir: Path, data_path: str, target_model: Path, train_command: str = "", note: str = ""
) -> dict:
    """Evaluate a run folder's best model on the validation split; write it with its pictures and model card.

    Works on a finished run or on one still training (its best checkpoint so far), so a model can be
    shipped while a longer run goes on; ``note`` is added to the model card to say so.
    """
    import json

    from training.datasets import load_dataset

    run_dir = Path(run_dir)
    source = run_dir / "model.keras" if (run_dir / "model.keras").exists() else run_dir / "best.keras"
    state = json.loads((run_dir / "state.json").read_text())
    dataset = load_dataset(data_path, cache_dir=Path(settings.TRAINING_ARTIFACTS_DIR) / "cache")
    metrics, _ = _evaluation_write(
        source=source,
        target=target_model,
        dataset=dataset,
        folder=target_model.parent,
        name=target_model.stem,
        architecture=state["config"]["architecture"],
        config=state["config"],
        outcome=state,
        command=train_command or None,
        note=note,
    )
    return {"model": str(target_model), "accuracy": metrics["accuracy"], "epochs_done": state["epochs_done"]}


def _evaluation_write(
    *,
    source: Path,
    target: Path,
    dataset: Dataset,
    folder: Path,
    name: str,
    architecture: str,
    config: dict,
    outcome: Mapping[str, Any],
    command: str | None,
    note: str = "",
    log=logger.info,
) -> tuple[dict, dict[str, str]]:
    """Gather the BatchNorm statistics of the model at ``source`` again on the training faces (where its
    configuration asks), calibrate it on the validation split (unless its configuration says not to),
    save it to ``target``, evaluate it there; write its metrics, curves, confusion matrix, reliability
    diagram and model card into ``folder``; return the metrics and the names of the files written.

    ``outcome`` tells how training went, by state.json's keys (a TrainResult's fields bear the same names).
    """
    import keras

    from training.calibration import CalibrationError, calibrate, plot_reliability
    from training.evaluation import evaluate, model_card, write_evaluation
    from training.trainer import served_network

    model = keras.models.load_model(source, safe_mode=True)
    options = {**asdict(TrainConfig()), **config}  # a run's configuration holds the options it was given
    refit = None
    if options["refit_batchnorm"]:
        from training.batchnorm import refit_batchnorm

        faces = dataset.train  # the faces it trained on: a quick trial's sample, where it took one
        if options["max_per_class"]:
            faces = faces.limited(options["max_per_class"], seed=options["seed"])
        refit = refit_batchnorm(model, faces.x)
        log(
            f"BatchNorm statistics of {len(refit['layers'])} layer(s) gathered again on {refit['faces']} "
            f"training faces as served ({refit['views']} view(s) each)"
        )
    calibration = members = None
    if config.get("calibrate", True):
        try:
            calibration, members = calibrate(model, dataset.val.x, dataset.val.y)
            log(
                f"calibrated: temperature {calibration.temperature:.3f}, expected calibration error "
                f"{calibration.ece_before:.4f} -> {calibration.ece_after:.4f}"
            )
        except CalibrationError as exc:
            log(f"not calibrated: {exc}")
    _model_save(model, target)
    metrics = evaluate(model, dataset.val)
    if calibration is not None:
        metrics["calibration"] = calibration.as_dict()
    card = model_card(
        name=name,
        architecture=architecture,
        parameters=served_network(model, architecture).count_params(),
        dataset=dataset.describe(),
        metrics=metrics,
        config=config,
        best_val_accuracy=outcome["best_val_accuracy"],
        training_seconds=outcome["seconds"],
        best_epoch=outcome["best_epoch"],
        epochs_done=outcome["epochs_done"],
        weights_note=outcome["weights_note"],
        command=command,
        batchnorm=refit,
    )
    if note:
        card += f"\n## Note\n\n{note}\n"
    files = write_evaluation(folder, metrics=metrics, history=outcome["history"], card=card)
    if calibration is not None:
        plot_reliability(members, dataset.val.y, calibration, folder / "reliability.png")
        files["reliability"] = "reliability.png"
    return metrics, files


def _model_save(model, target: Path) -> None:
    """Save ``model`` to ``target`` through a temporary file, so no reader sees half a file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.stem}.tmp.keras")
    model.save(tmp)
    os.replace(tmp, target)


def model_calibrate(*, source: Path, data_path: str, target: Path) -> dict:
    """Calibrate an existing model file on a dataset's validation split and write it to ``target``.

    Beside ``target`` go its reliability diagram, its evaluation.json (metrics of the calibrated model,
    with the calibration figures) and, where a model card is already there, that card with its
    calibration section added or replaced. Raises CalibrationError for a model that cannot be scaled.
    """

    import keras

    from training.datasets import load_evaluation_split
    from training.evaluation import calibration_section

    split, _ = load_evaluation_split(data_path, split="val")
    model = keras.models.load_model(source, safe_mode=True)
    metrics = _calibrated_write(model, split, target)
    card = target.parent / "MODEL_CARD.md"
    if card.is_file():
        card.write_text(_card_with_section(card.read_text(), calibration_section(metrics["calibration"])))
    return {"model": str(target), "accuracy": metrics["accuracy"], "calibration": metrics["calibration"]}


def _calibrated_write(model, split, target: Path) -> dict:
    """Calibrate ``model`` on ``split``, save it to ``target`` and write its evaluation.json and
    reliability.png beside it; return its metrics, with the calibration figures."""
    import json

    from training.calibration import calibrate, plot_reliability
    from training.evaluation import evaluate

    calibration, answers = calibrate(model, split.x, split.y)
    _model_save(model, target)
    metrics = {**evaluate(model, split), "calibration": calibration.as_dict()}
    (target.parent / "evaluation.json").write_text(json.dumps(metrics, indent=1))
    plot_reliability(answers, split.y, calibration, target.parent / "reliability.png")
    return metrics


def model_card_serving_cost(*, compiled) -> dict:
    """Measure what serving ``compiled`` (an ``emotions.compile.CompiledModel``) costs per face and write it
    into the model card beside its model, where there is one (its '## Serving cost' section); return it."""
    return _serving_cost_into_card(compiled.path, weights=compiled.weights)


def _serving_cost_into_card(tflite: Path, *, weights: str, seconds: float = 1.0) -> dict:
    from emotions.compile import serving_cost
    from training.evaluation import serving_section

    cost = serving_cost(tflite, seconds=seconds)
    card = tflite.parent / "MODEL_CARD.md"
    if card.is_file():
        section = serving_section(cost, weights)
        card.write_text(_card_with_section(card.read_text(), section, title="Serving cost"))
    return cost


def _card_with_section(card: str, section: str, *, title: str = "Calibration") -> str:
    """Return ``card`` with its '## <title>' section replaced by ``section``, or ``section`` put
    before '## Limits' (or at the end) when it has none."""
    title = f"\n## {title}\n"
    if title in card:
        start = card.index(title)
        end = card.find("\n## ", start + len(title))
        return card[:start] + section.rstrip("\n") + ("\n" + card[end:] if end != -1 else "\n")
    if "\n## Limits\n" in card:
        at = card.index("\n## Limits\n")
        return card[:at] + section + card[at:]
    return card.rstrip("\n") + "\n" + section


def model_ensemble(
    *,
    sources: list[Path],
    data_path: str,
    target: Path,
    mirror: bool | None = None,
    zoom: float | None = None,
    shift: int | None = None,
    refit_batchnorm: bool = False,
    command: str = "",
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Average model files into one (:func:`training.trainer.averaged`; a single one is served as it is, with
    the views asked for), calibrate it on the dataset's validation split, and write it to ``target`` with
    evaluation.json, reliability.png and a model card naming its members, their accuracy alone and
    ``command``.

    ``mirror`` None: mirror faces when every member did; ``zoom`` None: the members' test-time zoom when
    they share one, else none; ``shift`` None: likewise the members' shifted crops (with their zoom).
    ``refit_batchnorm``: gather the members' BatchNorm statistics again on the dataset's training faces as
    the ensemble serves them (:func:`training.batchnorm.refit_batchnorm`), before calibrating;
    ``progress(done, total)`` follows its batches.
    """

    import keras

    from training.datasets import load_evaluation_split
    from training.evaluation import ensemble_card, evaluate, plot_confusion_matrix
    from training.trainer import averaged, leaf_networks, served_shift, served_zoom, trained_network

    if not sources:
        raise ValueError("an ensemble needs at least one model")
    split, _ = load_evaluation_split(data_path, split="val")
    networks, members, mirrors, zooms, shifts = [], [], [], [], []
    for index, source in enumerate(sources, start=1):
        model = trained_network(keras.models.load_model(source, safe_mode=True))
        leaves, mirrored = leaf_networks(model)
        mirrors.append(mirrored)
        zooms.append(served_zoom(model))
        shifts.append(served_shift(model))
        members.append(
            {
                "file": Path(source).name,
                "architecture": " + ".join(leaf.name for leaf in leaves),
                "parameters": sum(leaf.count_params() for leaf in leaves),
                "accuracy": evaluate(model, split)["accuracy"],
            }
        )
        for leaf_index, leaf in enumerate(leaves, start=1):
            leaf.name = f"member_{index}" + (f"_{leaf_index}" if len(leaves) > 1 else "")
            networks.append(leaf)
    mirror = all(mirrors) if mirror is None else mirror
    shared = len(set(zip(zooms, shifts, strict=True))) == 1  # the members' own views, when they share them
    if zoom is None:
        zoom, own_shift = (zooms[0], shifts[0]) if shared else (1.0, 0)
    else:
        own_shift = shifts[0] if shared and zooms[0] == zoom else 0
    shift = own_shift if shift is None else shift
    model = averaged(networks, mirror=mirror, zoom=zoom, shift=shift, name=target.stem)
    refit = None
    if refit_batchnorm:
        from training.batchnorm import refit_batchnorm as refit_statistics
        from training.datasets import load_dataset

        before = evaluate(model, split)["accuracy"]
        refit = refit_statistics(model, load_dataset(data_path).train.x, progress=progress)
        refit["accuracy_before"] = before
    metrics = _calibrated_write(model, split, target)
    folder = target.parent
    plot_confusion_matrix(metrics, folder / "confusion_matrix.png")
    card = ensemble_card(
        name=target.stem,
        members=members,
        mirror=mirror,
        zoom=zoom,
        shift=shift,
        parameters=sum(n.count_params() for n in networks),
        metrics=metrics,
        command=command,
        batchnorm=refit,
    )
    (folder / "MODEL_CARD.md").write_text(card)
    return {
        "model": str(target),
        "accuracy": metrics["accuracy"],
        "members": members,
        "calibration": metrics["calibration"],
        "batchnorm": refit,
    }
