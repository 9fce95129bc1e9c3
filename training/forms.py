from __future__ import annotations

from pathlib import Path
from typing import Any

from django import forms
from django.conf import settings

from training.config import OPTIONS, Option, cross_problems
from training.selectors import training_datasets_available

# The options an operator sets when starting a run from the admin, in the order the page shows them; the
# others keep their defaults there (the API and the train command take every option).
FORM_OPTIONS = (
    "epochs",
    "max_per_class",
    "batch_size",
    "learning_rate",
    "augment",
    "class_weights",
    "label_smoothing",
    "early_stopping_patience",
    "width",
    "lr_schedule",
    "fine_tune_epochs",
    "fine_tune_learning_rate",
    "weights_path",
    "init_model",
    "mirror_average",
    "refit_batchnorm",
    "teacher_model",
    "distill_weight",
    "ferplus_dir",
    "ferplus_weight",
    "calibrate",
)
# Numbers an operator may leave empty for their default.
OPTIONAL_NUMBERS = ("max_per_class", "distill_weight", "ferplus_weight")


def option_field(option: Option) -> forms.Field:
    """Return the form field of a training option, typed, bounded and worded as training.config says."""
    common = {
        "label": option.label or None,
        "help_text": option.description,
        "initial": option.default,
        "error_messages": option.messages,
    }
    if option.type is bool:
        return forms.BooleanField(required=False, **common)
    if option.choices:
        return forms.ChoiceField(choices=[(c, c) for c in option.choices], **common)
    if option.type is str:
        return forms.CharField(required=not option.nullable, max_length=option.max_length, **common)
    number = forms.IntegerField if option.type is int else forms.FloatField
    validators = [option_rule_validator(option)] if option.rule else []
    return number(min_value=option.min, max_value=option.max, validators=validators, **common)


def option_rule_validator(option: Option):
    """Return a validator of ``option``'s own rule; Django's forms and DRF's serializers both take it."""

    def validate(value: Any) -> None:
        problem = option.rule_problem(value)
        if problem:
            raise forms.ValidationError(problem)

    return validate


class TrainingRunStartForm(forms.Form):
    """What an operator chooses when starting a run from the admin."""

    name = forms.CharField(required=False, max_length=100, help_text="Optional label for comparing runs.")
    architecture = option_field(OPTIONS["architecture"])
    dataset = forms.ChoiceField(
        required=False,
        widget=forms.RadioSelect,
        help_text="The datasets found in the data folders (API_TRAINING_DATA_ROOTS, TRAINING_DATA_DIR), "
        "with their images per split.",
    )
    dataset_path = forms.CharField(
        required=False,
        max_length=500,
        label="Or another dataset path",
        help_text="Folder with train/ and val/ or test/ class folders, or a fer2013.csv file, on the worker.",
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.datasets = training_datasets_available()
        choices = [(str(d.path), d.label) for d in self.datasets if d.usable]
        self.fields["dataset"].choices = choices
        preferred = [str(d.path) for d in self.datasets if d.path == Path(settings.TRAINING_DATA_DIR)]
        self.fields["dataset"].initial = (preferred or [value for value, _ in choices] or [""])[0]
        self.fields.update({name: option_field(OPTIONS[name]) for name in FORM_OPTIONS})
        # Empty means the default ("all of them" for max_per_class).
        for name in OPTIONAL_NUMBERS:
            self.fields[name].required = False

    def clean_dataset_path(self) -> str:
        value = self.cleaned_data["dataset_path"]
        if value and not Path(value).exists():
            raise forms.ValidationError(f"{value} does not exist on this server.")
        return value

    def clean_ferplus_dir(self) -> str | None:
        value = self.cleaned_data.get("ferplus_dir") or None
        if value and not Path(value).is_dir():
            raise forms.ValidationError(f"{value} is not a folder on this server.")
        return value

    def clean_weights_path(self) -> str | None:
        return _file_on_server(self.cleaned_data.get("weights_path"))

    def clean_init_model(self) -> str | None:
        return _file_on_server(self.cleaned_data.get("init_model"))

    def clean_teacher_model(self) -> str | None:
        return _file_on_server(self.cleaned_data.get("teacher_model"))

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        for name in OPTIONAL_NUMBERS:
            if name in cleaned and cleaned[name] is None:
                cleaned[name] = OPTIONS[name].default
        # A typed path wins over the picked one: it is what the operator changed last.
        path = cleaned.get("dataset_path") or cleaned.get("dataset")
        if path:
            cleaned["dataset_path"] = path
        elif "dataset_path" in cleaned:
            self.add_error("dataset", "Pick a dataset, or type the path of another one.")
        names = ("architecture", *FORM_OPTIONS)
        if all(name in cleaned for name in names):  # the rules across options need each one valid
            for name, messages in cross_problems({name: cleaned[name] for name in names}).items():
                for message in messages:
                    self.add_error(name, message)
        return cleaned

    def training_config(self) -> dict:
        """Return the trainer options from the cleaned form."""
        return {name: self.cleaned_data[name] for name in FORM_OPTIONS}


def _file_on_server(value: str | None) -> str | None:
    if value and not Path(value).is_file():
        raise forms.ValidationError(f"{value} is not a file on this server.")
    return value or None
