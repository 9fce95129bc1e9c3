"""The options of a training run, declared once: no Keras, no Django.

:class:`TrainConfig` is the table. Each field carries its type, default, bounds, choices and help text;
the trainer reads it, and the admin form, the REST serializer and the ``train`` command derive their
fields from :data:`OPTIONS`. Every refusal is worded here once, so that the form, the API and
``TrainConfig`` itself say the same thing about the same value.

Messages are sentences about the value ("Must be at most 0.5."); ``TrainConfig`` prefixes the option's
name ("label_smoothing must be at most 0.5.").
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, get_type_hints

# The names training.architectures builds; here so that web code can offer them without importing Keras.
ARCHITECTURES = ("custom_cnn", "mini_xception", "vgg16", "resnet50v2", "efficientnetb2")
TRANSFER_ARCHITECTURES = frozenset({"vgg16", "resnet50v2", "efficientnetb2"})
LR_SCHEDULES = ("plateau", "cosine")
PATH_MAX_LENGTH = 500

NOT_A_NUMBER = "Must be a number."
NOT_A_WHOLE_NUMBER = "Must be a whole number."


def at_least(limit: float) -> str:
    return f"Must be at least {_number(limit)}."


def at_most(limit: float) -> str:
    return f"Must be at most {_number(limit)}."


def too_long(length: int) -> str:
    return f"Must be at most {length} characters."


def one_of(choices: tuple[str, ...]) -> str:
    return f"Must be one of {', '.join(choices)}."


def _even_batch(value: int) -> str | None:
    # TensorFlow 2.21's oneDNN CPU kernels corrupt the heap when training mini-Xception with an odd
    # batch (1, 3, 5, 7, 9, 63 crashed here; every even size tried was fine). Refusing is kinder than a
    # worker dying mid-run, and oneDNN trains 1.5-2x faster than without it.
    return "Must be even: odd batch sizes crash TensorFlow's CPU kernels." if value % 2 else None


def option(
    default: Any,
    *,
    help: str,
    min: float | None = None,
    max: float | None = None,
    choices: tuple[str, ...] = (),
    rule: Callable[[Any], str | None] | None = None,
    label: str = "",
    flag: str = "",
) -> Any:
    """Return a TrainConfig field whose metadata describes it as an option (see :class:`Option`)."""
    spec = {
        "help": help,
        "min": min,
        "max": max,
        "choices": choices,
        "rule": rule,
        "label": label,
        "flag": flag,
    }
    return field(default=default, metadata={"option": spec})


@dataclass
class TrainConfig:
    architecture: str = option(
        "mini_xception",
        choices=ARCHITECTURES,
        flag="--arch",
        help="mini_xception trains on CPU in hours; vgg16, resnet50v2 and efficientnetb2 want a GPU.",
    )
    epochs: int = option(60, min=1, max=1000, help="Epochs of training, before any fine-tuning.")
    batch_size: int = option(
        64, min=2, max=1024, rule=_even_batch, help="Even: odd batch sizes crash TensorFlow's CPU kernels."
    )
    learning_rate: float = option(1e-3, min=1e-9, max=1.0, flag="--lr", help="Initial learning rate.")
    augment: bool = option(True, help="Random flips, rotations, zoom, shifts, contrast.")
    class_weights: bool = option(False, help="Weight rare classes (disgust) up, by inverse frequency.")
    label_smoothing: float = option(
        0.0, min=0.0, max=0.5, help="Share of each target spread evenly over all classes; 0.1 is common."
    )
    early_stopping_patience: int = option(
        15,
        min=0,
        max=1000,
        flag="--patience",
        help="Epochs without a better validation accuracy before the phase stops.",
    )
    reduce_lr_patience: int = option(
        6,
        min=0,
        max=1000,
        help="Epochs of stalled validation loss before the plateau schedule cuts the rate.",
    )
    reduce_lr_factor: float = option(
        0.5, min=0.01, max=0.99, help="What the plateau schedule multiplies the rate by."
    )
    min_learning_rate: float = option(
        1e-5,
        min=0.0,
        max=1.0,
        flag="--min-lr",
        help="The floor of either schedule: plateau stops cutting there, cosine ends there.",
    )
    fine_tune_epochs: int = option(
        0, min=0, max=1000, help="Epochs with the pretrained backbone unfrozen (transfer models)."
    )
    fine_tune_learning_rate: float = option(
        1e-5, min=1e-9, max=1.0, flag="--fine-tune-lr", help="Learning rate while fine-tuning."
    )
    weights_path: str | None = option(
        None,
        flag="--weights",
        help="Local ImageNet weights file (.h5) for transfer models; none is downloaded.",
    )
    width: float = option(
        1.0,
        min=0.25,
        max=4.0,
        help="Filter multiplier for custom_cnn and mini_xception (2: about four times the parameters); "
        "1 for the pretrained models.",
    )
    lr_schedule: str = option(
        "plateau",
        choices=LR_SCHEDULES,
        label="Learning-rate schedule",
        help="plateau halves the rate when validation loss stalls; cosine decays it smoothly to the "
        "minimum over each phase, ending a fixed budget of epochs at a low rate.",
    )
    init_model: str | None = option(
        None,
        label="Start from model",
        help="A .keras model of the same architecture to start from instead of fresh weights.",
    )
    mirror_average: bool = option(
        False,
        help="Serve the mean of each face and its mirror image: usually a little more accurate, "
        "twice the compute per face.",
    )
    refit_batchnorm: bool = option(
        True,
        label="Gather BatchNorm statistics again",
        help="After training, measure the network's BatchNorm statistics again on the training faces as "
        "the model serves them (not augmented; mirrored too where it averages mirror images): training "
        "gathered them on augmented faces. Nothing is learned; about a minute on a CPU.",
    )
    calibrate: bool = option(
        True,
        help="After training, fit a temperature on the validation split so that stated confidence "
        "matches accuracy (written into the model; no extra cost per face).",
    )
    teacher_model: str | None = option(
        None,
        label="Distil from model",
        help="A .keras model (any architecture, an ensemble too) whose answers on the training faces "
        "become soft targets: the new network learns to answer as it does.",
    )
    distill_weight: float = option(
        0.5,
        min=0.0,
        max=1.0,
        help="With a teacher: the share of each target taken from the teacher's answer; the rest is the "
        "dataset's label.",
    )
    ferplus_dir: str | None = option(
        None,
        label="FER+ votes folder",
        help="A folder of FER+ crowd votes (train.csv: image path, then ten votes per image) for the "
        "dataset's images: each training target takes a share from the crowd's answer.",
    )
    ferplus_weight: float = option(
        0.5,
        min=0.0,
        max=1.0,
        label="FER+ weight",
        help="With FER+ votes: the share of each target taken from the crowd's votes, where the image has "
        "them; the rest is the dataset's label.",
    )
    seed: int = option(1337, min=0, max=2**31 - 1, help="Seeds the split, the shuffling and the weights.")
    max_per_class: int = option(
        0,
        min=0,
        max=1_000_000,
        label="Training images per class, at most",
        help="Train on a sample of at most this many images of each class (0: all of them): a quick "
        "trial finishes in minutes; validation always uses the whole split.",
    )

    def __post_init__(self) -> None:
        problems = config_problems(asdict(self))
        if problems:
            raise ValueError(
                " ".join(f"{name} {_lower_first(m)}" for name, messages in problems.items() for m in messages)
            )

    @property
    def total_epochs(self) -> int:
        return self.epochs + self.fine_tune_epochs

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        unknown = unknown_options(data)
        if unknown:
            raise ValueError(f"unknown training option(s): {', '.join(unknown)}")
        return cls(**data)


@dataclass(frozen=True)
class Option:
    """One training option as the interfaces see it."""

    name: str
    type: type  # int, float, bool or str
    default: Any
    help: str
    nullable: bool = False  # a str option that may be None (the paths)
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] = ()
    # A check beyond bounds and choices: returns the refusal, or None.
    rule: Callable[[Any], str | None] | None = None
    label: str = ""  # for forms, where the name does not say it
    flag: str = ""  # the train command's flag, where it is not --name-with-dashes

    @property
    def max_length(self) -> int | None:
        return PATH_MAX_LENGTH if self.type is str and not self.choices else None

    @property
    def command_flag(self) -> str:
        if self.flag:
            return self.flag
        dashed = self.name.replace("_", "-")
        return f"--no-{dashed}" if self.type is bool and self.default else f"--{dashed}"

    @property
    def description(self) -> str:
        """Return the help text with the accepted range, for forms, the API and the command."""
        if self.min is not None and self.max is not None:
            return f"{self.help} From {_number(self.min)} to {_number(self.max)}."
        return self.help

    @property
    def messages(self) -> dict[str, str]:
        """Return the refusals by Django's and DRF's error codes, so both say what this module says."""
        if self.type is bool:
            return {}
        if self.choices:
            return {"invalid_choice": one_of(self.choices)}
        if self.type is str:
            return {"max_length": too_long(PATH_MAX_LENGTH)}
        messages = {"invalid": NOT_A_WHOLE_NUMBER if self.type is int else NOT_A_NUMBER}
        if self.min is not None:
            messages["min_value"] = at_least(self.min)
        if self.max is not None:
            messages["max_value"] = at_most(self.max)
        return messages

    def problems(self, value: Any) -> list[str]:
        """Return what is wrong with ``value`` for this option: its type, bounds, choices and rule."""
        if value is None:
            return [] if self.nullable else ["Must be given."]
        if self.type is bool:
            return [] if isinstance(value, bool) else ["Must be true or false."]
        if self.type is int and (isinstance(value, bool) or not isinstance(value, int)):
            return [NOT_A_WHOLE_NUMBER]
        if self.type is float and (
            isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value)
        ):
            return [NOT_A_NUMBER]
        if self.type is str and not isinstance(value, str):
            return ["Must be text."]
        if self.choices and value not in self.choices:
            return [one_of(self.choices)]
        if self.max_length and len(value) > self.max_length:
            return [too_long(self.max_length)]
        if self.min is not None and value < self.min:
            return [at_least(self.min)]
        if self.max is not None and value > self.max:
            return [at_most(self.max)]
        problem = self.rule_problem(value)
        return [problem] if problem else []

    def rule_problem(self, value: Any) -> str | None:
        """Return the refusal of this option's own rule, for a value already of its type and in bounds."""
        in_bounds = (self.min is None or value >= self.min) and (self.max is None or value <= self.max)
        return self.rule(value) if self.rule and in_bounds else None


def _width_fixed_for_transfer(values: Mapping[str, Any]) -> tuple[str, str] | None:
    architecture = values["architecture"]
    if architecture in TRANSFER_ARCHITECTURES and values["width"] != 1.0:
        return "width", f"Must be 1 for {architecture}: a pretrained architecture has a fixed width."
    return None


def _weights_only_for_transfer(values: Mapping[str, Any]) -> tuple[str, str] | None:
    architecture = values["architecture"]
    if values["weights_path"] and architecture not in TRANSFER_ARCHITECTURES:
        # build_model() would refuse it only once the run had started on a worker.
        return "weights_path", f"Must be empty for {architecture}: it is trained from scratch."
    return None


# Rules across options: each takes every option's value and returns (the option to blame, the refusal)
# or None.
CROSS_RULES: tuple[Callable[[Mapping[str, Any]], tuple[str, str] | None], ...] = (
    _width_fixed_for_transfer,
    _weights_only_for_transfer,
)


def _options() -> dict[str, Option]:
    hints = get_type_hints(TrainConfig)
    table = {}
    for f in fields(TrainConfig):
        kind = hints[f.name]
        nullable = kind not in (int, float, bool, str)  # str | None
        table[f.name] = Option(
            name=f.name,
            type=str if nullable else kind,
            default=f.default,
            nullable=nullable,
            **f.metadata["option"],
        )
    return table


OPTIONS: dict[str, Option] = _options()


@dataclass(frozen=True)
class Preset:
    """Values that fill the start form for a common purpose; options not named keep their defaults."""

    label: str
    help: str
    values: Mapping[str, Any]


PRESETS: dict[str, Preset] = {
    "quick": Preset(
        label="Quick check",
        help="A few minutes on CPU: a small sample, 3 epochs. Checks the data and the pipeline, "
        "not a model to serve.",
        values={
            "architecture": "custom_cnn",
            "width": 0.5,
            "epochs": 3,
            "batch_size": 64,
            "early_stopping_patience": 3,
            "augment": False,
            "max_per_class": 200,
        },
    ),
    "default": Preset(
        label="Default recipe",
        help="The shipped default's first cycle: 63 % on FER-2013, about 50 minutes on 2 CPU cores.",
        values={
            "architecture": "custom_cnn",
            "width": 0.5,
            "epochs": 55,
            "batch_size": 64,
            "learning_rate": 1e-3,
            "lr_schedule": "cosine",
            "label_smoothing": 0.1,
            "early_stopping_patience": 55,
            "augment": True,
            "mirror_average": True,
            "max_per_class": 0,
        },
    ),
}


def unknown_options(data: Mapping[str, Any]) -> list[str]:
    """Return the names in ``data`` that are no training option, sorted."""
    return sorted(set(data) - set(OPTIONS))


def cross_problems(values: Mapping[str, Any]) -> dict[str, list[str]]:
    """Return the refusals of the rules across options, by option; missing options take their defaults."""
    values = {name: option.default for name, option in OPTIONS.items()} | dict(values)
    problems: dict[str, list[str]] = {}
    for rule in CROSS_RULES:
        found = rule(values)
        if found:
            problems.setdefault(found[0], []).append(found[1])
    return problems


def config_problems(values: Mapping[str, Any]) -> dict[str, list[str]]:
    """Return every refusal for a whole configuration, by option (empty when it is valid)."""
    problems = {name: OPTIONS[name].problems(value) for name, value in values.items() if name in OPTIONS}
    problems = {name: found for name, found in problems.items() if found}
    if not problems:  # the rules across options assume each option is valid on its own
        problems = cross_problems(values)
    return problems


def _number(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    short = f"{value:g}"
    return short if float(short) == value else repr(value)


def _lower_first(message: str) -> str:
    return message[:1].lower() + message[1:]
