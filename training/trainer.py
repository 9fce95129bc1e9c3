"""Train a Keras model on a :class:`~training.datasets.Dataset`, resumably.

A run lives in one folder::

    state.json        phase, epochs done, history, early-stopping and LR state
    last.keras        the training model with its optimizer, saved every epoch (resume)
    best.keras        the serving model at its best validation accuracy so far
    model.keras       the final serving model (written when the run ends)

Calling :func:`train` again on the same folder continues where it stopped,
so a killed worker or an interrupted session loses at most one epoch.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import keras
import numpy as np

from emotions.compile import MIRROR_LAYER, SHIFT_CROP
from emotions.labels import NUM_CLASSES
from emotions.preprocessing import to_model_input
from training.architectures import build_model
from training.config import TrainConfig  # declared without Keras, so that web code can validate
from training.datasets import Dataset, ferplus_votes

logger = logging.getLogger(__name__)

STATE_FILE = "state.json"
LAST_CHECKPOINT = "last.keras"
BEST_MODEL = "best.keras"
FINAL_MODEL = "model.keras"


class Hooks:
    """What a trainer reports to, and asks, whoever runs it. Override what you need."""

    def on_epoch_end(self, *, epoch: int, total_epochs: int, logs: dict, history: dict) -> None:
        pass

    def on_batch_end(self, *, epoch: int, batch: int, steps: int) -> None:
        pass

    def should_cancel(self) -> bool:
        return False

    def log(self, message: str) -> None:
        logger.info(message)


@dataclass
class TrainResult:
    model_path: Path
    best_epoch: int
    best_val_accuracy: float
    history: dict[str, list[float]]
    epochs_done: int
    cancelled: bool
    seconds: float
    weights_note: str
    notes: list[str] = field(default_factory=list)


def augmentation_layers(seed: int) -> keras.Sequential:
    """Return the random augmentation applied to training batches only: (n, 48, 48, 1) in [0, 1]."""
    return keras.Sequential(
        [
            keras.layers.RandomFlip("horizontal", seed=seed),
            keras.layers.RandomRotation(0.04, fill_mode="nearest", seed=seed),
            keras.layers.RandomZoom(0.1, fill_mode="nearest", seed=seed),
            keras.layers.RandomTranslation(0.1, 0.1, fill_mode="nearest", seed=seed),
            keras.layers.RandomContrast(0.2, value_range=(0.0, 1.0), seed=seed),
        ],
        name=AUGMENTATION,
    )


AUGMENTATION = "augmentation"
TRAINING_MODEL = "train"  # what fit trains, saved as a run's last.keras checkpoint


def train(
    config: TrainConfig, dataset: Dataset, run_dir: str | Path, hooks: Hooks | None = None
) -> TrainResult:
    """Train (or resume training) ``config`` on ``dataset`` in ``run_dir``; return the outcome."""
    hooks = hooks or Hooks()
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    keras.utils.set_random_seed(config.seed)

    train_split = dataset.train
    if config.max_per_class:
        train_split = dataset.train.limited(config.max_per_class, seed=config.seed)
        hooks.log(
            f"training on a sample of {len(train_split)} of {len(dataset.train)} images "
            f"(at most {config.max_per_class} per class)"
        )
    x_train, y_train = to_model_input(train_split.x), _one_hot(train_split.y)
    x_val, y_val = to_model_input(dataset.val.x), _one_hot(dataset.val.y)
    if config.ferplus_dir:
        y_train = _crowd_targets(config, train_split, y_train, hooks)
    steps = math.ceil(len(x_train) / config.batch_size)
    class_weight = _class_weights(train_split.y) if config.class_weights else None

    state = _read_state(run_dir)
    if state is not None and (run_dir / LAST_CHECKPOINT).exists():
        # Options added since the run started take their defaults, so the run can still be resumed.
        if {**asdict(TrainConfig()), **state["config"]} != asdict(config):
            raise ValueError(f"{run_dir} holds a run with another configuration; use a new folder")
        train_model = keras.models.load_model(run_dir / LAST_CHECKPOINT)
        model = served_network(train_model, config.architecture)
        weights_note = state["weights_note"]
        hooks.log(
            f"resuming {config.architecture} after epoch {state['epochs_done']} of {config.total_epochs}"
        )
    else:
        built = build_model(config.architecture, weights_path=config.weights_path, width=config.width)
        model, weights_note = built.model, built.weights_note
        if config.init_model:
            _load_initial_weights(model, config.init_model)
            weights_note = f"started from {Path(config.init_model).name}"
        teacher = _teacher(config, x_val, dataset.val.y, hooks) if config.teacher_model else None
        train_model = _training_model(model, config, teacher)  # a resumed one holds its teacher
        _compile(train_model, config, config.learning_rate, decay_steps=steps * config.epochs)
        state = {
            "config": asdict(config),
            "phase": "train",
            "epochs_done": 0,
            "history": {},
            "best_val_accuracy": -1.0,
            "best_epoch": 0,
            "weights_note": weights_note,
            "early_stopping": {"wait": 0, "best": None},
            "reduce_lr": {"wait": 0, "best": None, "cooldown_counter": 0},
            "stopped_early": False,
            "seconds": 0.0,
        }
        hooks.log(f"training {config.architecture}: {model.count_params():,} parameters; {weights_note}")
    hooks.log(f"{len(x_train)} training and {len(x_val)} validation images")

    cancelled = False
    for phase, last, lr in _phases(config):
        if state["epochs_done"] >= last or state["stopped_early"]:
            continue
        if phase == "fine_tune" and state["phase"] != "fine_tune":
            _unfreeze(model)
            _compile(train_model, config, lr, decay_steps=steps * config.fine_tune_epochs)
            state.update(phase="fine_tune", early_stopping={"wait": 0, "best": None})
            state["reduce_lr"] = {"wait": 0, "best": None, "cooldown_counter": 0}
            hooks.log(f"fine-tuning: backbone unfrozen, learning rate {lr:g}")
        recorder = _EpochRecorder(run_dir, model, train_model, state, hooks, config, started)
        early = keras.callbacks.EarlyStopping(
            monitor="val_accuracy", mode="max", patience=config.early_stopping_patience
        )
        reduce = keras.callbacks.ReduceLROnPlateau(
            monitor="val_loss",
            factor=config.reduce_lr_factor,
            patience=config.reduce_lr_patience,
            min_lr=config.min_learning_rate,
        )
        recorder.watch(early, reduce)
        callbacks = [early, reduce, recorder] if config.lr_schedule == "plateau" else [early, recorder]
        train_model.fit(
            _train_data(x_train, y_train, config.batch_size, config.seed + state["epochs_done"]),
            steps_per_epoch=steps,
            validation_data=(x_val, y_val),
            validation_batch_size=256,
            initial_epoch=state["epochs_done"],
            epochs=last,
            class_weight=class_weight,
            callbacks=callbacks,  # recorder last: it restores the others' state
            verbose=0,
        )
        cancelled = recorder.cancelled
        if cancelled:
            break
        if early.stopped_epoch:
            state["stopped_early"] = phase == "train" and config.fine_tune_epochs == 0
            hooks.log(f"early stopping after epoch {state['epochs_done']}")
            _write_state(run_dir, state)

    best = run_dir / BEST_MODEL
    final = run_dir / FINAL_MODEL
    if not cancelled:
        if not best.exists():
            model.save(best)
        if config.mirror_average:
            _atomic_save(mirror_averaged(keras.models.load_model(best)), final)
        else:
            final.write_bytes(best.read_bytes())
    return TrainResult(
        model_path=final if not cancelled else best,
        best_epoch=state["best_epoch"],
        best_val_accuracy=state["best_val_accuracy"],
        history=state["history"],
        epochs_done=state["epochs_done"],
        cancelled=cancelled,
        seconds=state["seconds"],
        weights_note=weights_note,
    )


def _phases(config: TrainConfig) -> list[tuple[str, int, float]]:
    """Return (phase, last epoch, learning rate) for training and the optional fine-tuning."""
    phases = [("train", config.epochs, config.learning_rate)]
    if config.fine_tune_epochs:
        phases.append(("fine_tune", config.total_epochs, config.fine_tune_learning_rate))
    return phases


def _training_model(
    model: keras.Model, config: TrainConfig, teacher: keras.Model | None = None
) -> keras.Model:
    """Return what ``fit`` trains: augmentation, then the serving model (and the frozen teacher, if any).

    Augmentation wraps the serving model during training only, so saved serving models stay lean. A
    teacher answers on the same augmented batch as the student, its answer concatenated after the
    student's: :class:`DistillationLoss` splits the two.
    """
    inputs = keras.Input(model.input_shape[1:])
    faces = augmentation_layers(config.seed)(inputs) if config.augment else inputs
    outputs = model(faces)
    if teacher is not None:
        answers = FrozenTeacher(teacher, name=TEACHER)(faces)
        outputs = keras.layers.Concatenate(name=TEACHER_OUTPUT)([outputs, answers])
    return keras.Model(inputs, outputs, name=TRAINING_MODEL)


TEACHER = "teacher"
TEACHER_OUTPUT = "student_and_teacher"


@keras.saving.register_keras_serializable(package="attune")
class FrozenTeacher(keras.layers.Layer):
    """A model that always answers in inference mode (no dropout, BatchNorm's stored statistics) and
    never learns, even inside a model being trained (a functional call's ``training=False`` is not
    kept when the outer model trains)."""

    def __init__(self, model: keras.Model, **kwargs) -> None:
        super().__init__(**kwargs)
        self.model = model
        self.model.trainable = False
        self.trainable = False

    def call(self, faces):
        return self.model(faces, training=False)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], NUM_CLASSES)

    def get_config(self) -> dict:
        return {**super().get_config(), "model": keras.saving.serialize_keras_object(self.model)}

    @classmethod
    def from_config(cls, config: dict) -> FrozenTeacher:
        model = keras.saving.deserialize_keras_object(config.pop("model"))
        return cls(model, **config)


@keras.saving.register_keras_serializable(package="attune")
class DistillationLoss(keras.losses.Loss):
    """Cross-entropy of the student's answer against a mix of the label and the teacher's answer.

    ``y_pred`` holds the student's probabilities, then the teacher's (see :func:`_training_model`);
    the target is ``(1 - weight)`` × the (smoothed) label + ``weight`` × the teacher's answer.
    """

    def __init__(
        self, weight: float = 0.5, label_smoothing: float = 0.0, name: str = "distillation", **kwargs
    ):
        super().__init__(name=name, **kwargs)
        self.weight, self.label_smoothing = float(weight), float(label_smoothing)

    def call(self, y_true, y_pred):
        student, teacher = y_pred[..., :NUM_CLASSES], y_pred[..., NUM_CLASSES:]
        label = y_true * (1.0 - self.label_smoothing) + self.label_smoothing / NUM_CLASSES
        target = (1.0 - self.weight) * label + self.weight * keras.ops.stop_gradient(teacher)
        return keras.losses.categorical_crossentropy(target, student)

    def get_config(self) -> dict:
        return {**super().get_config(), "weight": self.weight, "label_smoothing": self.label_smoothing}


@keras.saving.register_keras_serializable(package="attune")
def student_accuracy(y_true, y_pred):
    """Accuracy of the student's answer, the first NUM_CLASSES columns of a distillation output."""
    return keras.metrics.categorical_accuracy(y_true, y_pred[..., :NUM_CLASSES])


def _compile(model: keras.Model, config: TrainConfig, learning_rate: float, *, decay_steps: int) -> None:
    # XLA made small convnets several times slower on CPU TensorFlow; JAX always compiles.
    jit = keras.backend.backend() != "tensorflow" or _tensorflow_sees_gpu()
    rate = learning_rate
    if config.lr_schedule == "cosine":
        # Per step, and stored in the optimizer, so a resumed run continues on the same curve.
        rate = keras.optimizers.schedules.CosineDecay(
            learning_rate,
            decay_steps=max(1, decay_steps),
            alpha=min(1.0, config.min_learning_rate / learning_rate),
        )
    if jit and keras.backend.backend() == "jax":
        # Keras marks its random rotation, zoom and translation layers as not compilable (TensorFlow's
        # XLA lacks their kernel), which would run the whole step op by op; JAX compiles them fine.
        for layer in model._flatten_layers():
            layer.supports_jit = True
    loss = keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing)
    metric = "accuracy"
    if config.teacher_model:
        loss = DistillationLoss(config.distill_weight, config.label_smoothing)
        metric = keras.metrics.MeanMetricWrapper(student_accuracy, name="accuracy")
    model.compile(optimizer=keras.optimizers.Adam(rate), loss=loss, metrics=[metric], jit_compile=jit)


def _load_initial_weights(model: keras.Model, path: str) -> None:
    source = Path(path)
    if not source.is_file():
        raise FileNotFoundError(f"initial model not found: {source}")
    initial = served_network(keras.models.load_model(source, safe_mode=True), model.name)
    try:
        model.set_weights(initial.get_weights())
    except ValueError as exc:
        raise ValueError(f"{source.name} does not fit {model.name}: {exc}") from None


def _crowd_targets(config: TrainConfig, split, y_train: np.ndarray, hooks: Hooks) -> np.ndarray:
    """Return the training targets mixed with FER+ crowd votes where an image has them."""
    if split.names is None:
        raise ValueError("FER+ votes need a dataset of image files (a folder), not a CSV")
    shares, found = ferplus_votes(config.ferplus_dir, split.names)
    agree = float((shares[found].argmax(axis=1) == split.y[found]).mean()) if found.any() else 0.0
    hooks.log(
        f"FER+ votes for {int(found.sum())} of {len(found)} training images (the crowd's majority agrees "
        f"with the label for {agree:.0%}); targets {config.ferplus_weight:g} crowd where voted"
    )
    mixed = y_train.copy()
    mixed[found] = (1.0 - config.ferplus_weight) * y_train[found] + config.ferplus_weight * shares[found]
    return mixed


def _teacher(config: TrainConfig, x_val: np.ndarray, val_labels: np.ndarray, hooks: Hooks) -> keras.Model:
    """Load the model to distil from (knowledge distillation); log its accuracy on the validation split.

    It answers on every augmented training batch, the same view the student sees ("consistent"
    distillation, Beyer et al. 2022): what it learned about which expressions look alike reaches the
    student on every crop, not only on the clean faces. That costs one teacher pass per training face
    and epoch.
    """
    source = Path(config.teacher_model)
    if not source.is_file():
        raise FileNotFoundError(f"teacher model not found: {source}")
    teacher = keras.models.load_model(source, safe_mode=True)
    if tuple(teacher.input_shape[1:]) != tuple(x_val.shape[1:]) or teacher.output_shape[-1] != NUM_CLASSES:
        raise ValueError(f"{source.name} does not take 48x48 faces and answer {NUM_CLASSES} classes")
    val_accuracy = float((_predict(teacher, x_val).argmax(axis=1) == val_labels).mean())
    hooks.log(
        f"distilling from {source.name} (validation accuracy {val_accuracy:.4f}) on each augmented batch; "
        f"targets {config.distill_weight:g} teacher, {1 - config.distill_weight:g} label"
    )
    return teacher


def _predict(model: keras.Model, x: np.ndarray, batch: int = 256) -> np.ndarray:
    out = [np.asarray(model.predict_on_batch(x[i : i + batch]), np.float32) for i in range(0, len(x), batch)]
    return np.concatenate(out) if out else np.zeros((0, NUM_CLASSES), np.float32)


def served_network(model: keras.Model, architecture: str) -> keras.Model:
    """Return the network named ``architecture`` inside ``model`` (a training, mirror-averaged or zoomed
    wrapper), its one network when it wraps one under another name (``ensemble`` names them member_N),
    or ``model`` itself when it is that network."""
    inner, _ = leaf_networks(model)
    for layer in inner:
        if layer.name == architecture:
            return layer
    return inner[0] if len(inner) == 1 else model


def mirror_averaged(model: keras.Model) -> keras.Model:
    """Return a model that averages ``model`` on each face and on its mirror image.

    Built from stock layers only (the mirror is a fixed anti-diagonal Dense over the width axis), so the
    saved file loads anywhere with ``safe_mode`` and needs no custom code.
    """
    return averaged([model], mirror=True, name=f"{model.name}_mirror_average")


def averaged(
    networks: list[keras.Model],
    *,
    mirror: bool,
    zoom: float = 1.0,
    shift: int = 0,
    name: str = "ensemble",
) -> keras.Model:
    """Return one model that serves the mean of ``networks``' answers (on each face and, with ``mirror``,
    on its mirror image too): an ensemble in one file, of stock layers only.

    ``zoom`` > 1 first enlarges the face about its centre by about that much (the centre cut out and
    resized back, bilinear): a test-time zoom, which makes up for training's random zooms and shifts
    showing faces larger on average than the raw test images (FixRes, Touvron et al., 2019). ``shift``
    px (with a zoom, at most the cut's margin) adds four more cuts of the same size, that many pixels
    up, down, left and right of the centre one: five crops (ten with the mirror), as in the ten-crop
    averaging of image classifiers. The networks are used as they are (not copied); give them distinct
    names first.
    """
    inputs = keras.Input(networks[0].input_shape[1:])
    views = _view_tensors(inputs, zoom=zoom, shift=shift, mirror=mirror)
    answers = [network(view) for network in networks for view in views]
    if len(answers) == 1:
        return keras.Model(inputs, answers[0], name=name)
    outputs = keras.layers.Average(dtype="float32")(answers)
    return keras.Model(inputs, outputs, name=name)


def served_views(
    input_shape: tuple, *, zoom: float = 1.0, shift: int = 0, mirror: bool = False
) -> keras.Model:
    """Return a model that turns faces into the views :func:`averaged` shows its networks (a list, in
    its order; the faces themselves when there is no zoom or mirror)."""
    inputs = keras.Input(tuple(input_shape))
    return keras.Model(inputs, _view_tensors(inputs, zoom=zoom, shift=shift, mirror=mirror), name="views")


def _view_tensors(
    inputs: keras.KerasTensor, *, zoom: float, shift: int, mirror: bool
) -> list[keras.KerasTensor]:
    height, width, _ = inputs.shape[1:]
    faces = [inputs]
    if zoom != 1.0:
        crop_h, crop_w = _zoom_crop(height, zoom), _zoom_crop(width, zoom)
        centre = keras.layers.CenterCrop(crop_h, crop_w, name=ZOOM_CROP)(inputs)
        faces = [_enlarged(centre, height, width, "zoom_resize")]
        margin_h, margin_w = (height - crop_h) // 2, (width - crop_w) // 2
        if shift > min(margin_h, margin_w):
            raise ValueError(f"a {shift} px shift needs a zoom that leaves that margin around its crop")
        for index, (down, right) in enumerate(SHIFTS if shift else ()):
            top, left = margin_h + down * shift, margin_w + right * shift
            cropping = ((top, height - crop_h - top), (left, width - crop_w - left))
            crop = keras.layers.Cropping2D(cropping, name=f"{SHIFT_CROP}_{index}")(inputs)
            faces.append(_enlarged(crop, height, width, f"shift_resize_{index}"))
    elif shift:
        raise ValueError("shifted crops need a test-time zoom (there is no margin to shift in)")
    views = list(faces)
    if mirror:
        flip = keras.layers.Dense(width, use_bias=False, trainable=False, name=MIRROR_LAYER)
        for face in faces:
            x = keras.layers.Permute((1, 3, 2))(face)  # (height, channels, width): Dense acts on width
            views.append(keras.layers.Permute((1, 3, 2))(flip(x)))
        flip.set_weights([np.eye(width, dtype=np.float32)[::-1]])
    return views


def _enlarged(crop: keras.KerasTensor, height: int, width: int, name: str) -> keras.KerasTensor:
    """Return ``crop`` resized to ``height`` × ``width`` (bilinear): the model's input size."""
    return keras.layers.Resizing(height, width, interpolation="bilinear", name=name)(crop)


ZOOM_CROP = "zoom_crop"
# The shifted crops (layers SHIFT_CROP_<n>), in units of the shift: down, right.
SHIFTS = ((-1, 0), (1, 0), (0, -1), (0, 1))


def _zoom_crop(side: int, zoom: float) -> int:
    """Return the side of the centre cut out for ``zoom``: same parity as ``side``, so margins are even."""
    if not 1.0 <= zoom <= 1.5:
        raise ValueError(f"a test-time zoom must be between 1 and 1.5, got {zoom}")
    crop = round(side / zoom)
    return crop - (side - crop) % 2


def served_zoom(model: keras.Model) -> float:
    """Return the test-time zoom a model built by :func:`averaged` applies (1.0 for none)."""
    for layer in model.layers:
        if layer.name == ZOOM_CROP:
            return round(model.input_shape[1] / layer.get_config()["height"], 4)
    return 1.0


def served_shift(model: keras.Model) -> int:
    """Return the shift of the crops a model built by :func:`averaged` adds around its zoom's (0 for none)."""
    for layer in model.layers:
        if (
            layer.name == f"{SHIFT_CROP}_0"
        ):  # SHIFTS[0]: the crop moved up, its margin below grown by two shifts
            (top, bottom), _ = layer.get_config()["cropping"]
            return (bottom - top) // 2
    return 0


def leaf_networks(model: keras.Model) -> tuple[list[keras.Model], bool]:
    """Return the networks inside a served model (itself when it wraps none) and whether it mirrors faces."""
    inner = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    mirrors = any(layer.name == MIRROR_LAYER for layer in model.layers)
    return (inner or [model]), mirrors


def trained_network(model: keras.Model) -> keras.Model:
    """Return the network a training checkpoint trains (a run's ``last.keras``: augmentation, the network
    and any teacher), or ``model`` itself when it is none: the last epoch served, where the run's own
    model is its best epoch on the validation split."""
    if model.name != TRAINING_MODEL:
        return model
    return next(
        layer for layer in model.layers if isinstance(layer, keras.Model) and layer.name != AUGMENTATION
    )


def _tensorflow_sees_gpu() -> bool:
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def _unfreeze(model: keras.Model) -> None:
    for layer in model.layers:
        layer.trainable = True
        # BatchNorm statistics from ImageNet stay fixed, as Keras' fine-tuning guide advises.
        if isinstance(layer, keras.Model):
            for inner in layer.layers:
                if isinstance(inner, keras.layers.BatchNormalization):
                    inner.trainable = False


def _one_hot(labels: np.ndarray) -> np.ndarray:
    return np.eye(NUM_CLASSES, dtype=np.float32)[labels]


def _class_weights(labels: np.ndarray) -> dict[int, float]:
    counts = np.bincount(labels, minlength=NUM_CLASSES).astype(np.float64)
    weights = len(labels) / (NUM_CLASSES * np.maximum(counts, 1.0))
    return {i: float(w) for i, w in enumerate(weights)}


def _train_data(x: np.ndarray, y: np.ndarray, batch_size: int, seed: int):
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        # A repeating tf.data pipeline avoids the multi-second stall fit() has between epochs on arrays.
        return (
            tf.data.Dataset.from_tensor_slices((x, y))
            .shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
            .repeat()
            .batch(batch_size)
            .prefetch(tf.data.AUTOTUNE)
        )
    return _ShuffledBatches(x, y, batch_size, seed)


class _ShuffledBatches(keras.utils.PyDataset):
    """Batches for backends without tf.data (JAX on a GPU machine)."""

    def __init__(self, x: np.ndarray, y: np.ndarray, batch_size: int, seed: int) -> None:
        super().__init__()
        self.x, self.y, self.batch_size = x, y, batch_size
        self.rng = np.random.default_rng(seed)
        self.order = self.rng.permutation(len(x))

    def __len__(self) -> int:
        return math.ceil(len(self.x) / self.batch_size)

    def __getitem__(self, index: int):
        idx = self.order[index * self.batch_size : (index + 1) * self.batch_size]
        return self.x[idx], self.y[idx]

    def on_epoch_end(self) -> None:
        self.order = self.rng.permutation(len(self.x))


class _EpochRecorder(keras.callbacks.Callback):
    """Save checkpoints and state every epoch, report progress, and honour cancellation."""

    CANCEL_CHECK_EVERY = 20

    def __init__(self, run_dir, serving_model, train_model, state, hooks, config, started) -> None:
        super().__init__()
        self.run_dir, self.serving_model, self.train_model = run_dir, serving_model, train_model
        self.state, self.hooks, self.config = state, hooks, config
        self.started = started
        self.cancelled = False
        self.early: keras.callbacks.EarlyStopping | None = None
        self.reduce: keras.callbacks.ReduceLROnPlateau | None = None
        self.epoch_started = time.monotonic()

    def watch(self, early, reduce) -> None:
        self.early, self.reduce = early, reduce

    def on_train_begin(self, logs=None) -> None:
        # Keras resets these callbacks in their own on_train_begin; put back what a resumed run knew.
        for callback, saved in (
            (self.early, self.state["early_stopping"]),
            (self.reduce, self.state["reduce_lr"]),
        ):
            for key, value in saved.items():
                if value is not None:
                    setattr(callback, key, value)

    def on_epoch_begin(self, epoch, logs=None) -> None:
        self.epoch_started = time.monotonic()
        self.steps = self.params.get("steps") or 0

    def on_train_batch_end(self, batch, logs=None) -> None:
        self.hooks.on_batch_end(epoch=self.state["epochs_done"] + 1, batch=batch + 1, steps=self.steps)
        if (batch + 1) % self.CANCEL_CHECK_EVERY == 0 and self.hooks.should_cancel():
            self.cancelled = True
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None) -> None:
        if self.cancelled:
            return
        logs = {k: float(v) for k, v in (logs or {}).items()}
        logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        logs["seconds"] = round(time.monotonic() - self.epoch_started, 2)
        state = self.state
        for key, value in logs.items():
            state["history"].setdefault(key, []).append(value)
        state["epochs_done"] = epoch + 1
        state["seconds"] = round(state["seconds"] + logs["seconds"], 1)
        if logs.get("val_accuracy", -1.0) > state["best_val_accuracy"]:
            state["best_val_accuracy"] = logs["val_accuracy"]
            state["best_epoch"] = epoch + 1
            _atomic_save(self.serving_model, self.run_dir / BEST_MODEL)
        state["early_stopping"] = {"wait": int(self.early.wait), "best": _plain(self.early.best)}
        state["reduce_lr"] = {
            "wait": int(self.reduce.wait),
            "best": _plain(self.reduce.best),
            "cooldown_counter": int(self.reduce.cooldown_counter),
        }
        _atomic_save(self.train_model, self.run_dir / LAST_CHECKPOINT)
        _write_state(self.run_dir, state)
        self.hooks.on_epoch_end(
            epoch=epoch + 1, total_epochs=self.config.total_epochs, logs=logs, history=state["history"]
        )
        if self.hooks.should_cancel():  # the checkpoint above is complete, so a resume loses nothing
            self.cancelled = True
            self.model.stop_training = True
        self.hooks.log(
            f"epoch {epoch + 1}/{self.config.total_epochs}: "
            + ", ".join(f"{k} {v:.4g}" for k, v in logs.items() if k != "seconds")
            + f" ({logs['seconds']:.0f} s)"
        )


def _plain(value):
    if value is None:  # a callback that has not started (ReduceLROnPlateau under a cosine schedule)
        return None
    value = float(value)
    return None if math.isinf(value) else value


def _atomic_save(model: keras.Model, path: Path) -> None:
    tmp = path.with_name(f".{path.stem}.tmp.keras")
    model.save(tmp)
    os.replace(tmp, path)


def _read_state(run_dir: Path) -> dict | None:
    path = run_dir / STATE_FILE
    return json.loads(path.read_text()) if path.exists() else None


def _write_state(run_dir: Path, state: dict) -> None:
    tmp = run_dir / f".{STATE_FILE}.tmp"
    tmp.write_text(json.dumps(state, indent=1))
    os.replace(tmp, run_dir / STATE_FILE)
