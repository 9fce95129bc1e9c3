from __future__ import annotations

from pathlib import Path

from django import forms
from django.conf import settings

from training.services import ARCHITECTURE_CHOICES, LR_SCHEDULE_CHOICES


class TrainingRunStartForm(forms.Form):
    """What an operator chooses when starting a run from the admin."""

    name = forms.CharField(required=False, max_length=100, help_text="Optional label for comparing runs.")
    architecture = forms.ChoiceField(
        choices=[(a, a) for a in ARCHITECTURE_CHOICES],
        initial="mini_xception",
        help_text="mini_xception trains on CPU in hours; vgg16, resnet50v2 and efficientnetb2 want a GPU.",
    )
    dataset_path = forms.CharField(
        max_length=500,
        help_text="Folder with train/ and val/ or test/ class folders, or a fer2013.csv file, on the worker.",
    )
    epochs = forms.IntegerField(min_value=1, max_value=500, initial=60)
    batch_size = forms.IntegerField(
        min_value=2,
        max_value=1024,
        initial=64,
        help_text="Even: odd batch sizes crash TensorFlow's CPU kernels.",
    )
    learning_rate = forms.FloatField(min_value=1e-6, max_value=1.0, initial=1e-3)
    augment = forms.BooleanField(
        required=False, initial=True, help_text="Random flips, rotations, zoom, shifts, contrast."
    )
    class_weights = forms.BooleanField(required=False, help_text="Weight rare classes (disgust) up.")
    label_smoothing = forms.FloatField(min_value=0.0, max_value=0.5, initial=0.0)
    early_stopping_patience = forms.IntegerField(min_value=1, max_value=500, initial=15)
    width = forms.FloatField(
        min_value=0.25,
        max_value=4.0,
        initial=1.0,
        help_text="Filter multiplier for custom_cnn and mini_xception (2: about four times the parameters); "
        "1 for the pretrained models.",
    )
    lr_schedule = forms.ChoiceField(
        choices=[(s, s) for s in LR_SCHEDULE_CHOICES],
        initial="plateau",
        label="Learning-rate schedule",
        help_text="plateau halves the rate when validation loss stalls; cosine decays it smoothly.",
    )
    fine_tune_epochs = forms.IntegerField(
        min_value=0,
        max_value=500,
        initial=0,
        help_text="Epochs with the pretrained backbone unfrozen (transfer models).",
    )
    fine_tune_learning_rate = forms.FloatField(min_value=1e-8, max_value=1.0, initial=1e-5)
    weights_path = forms.CharField(
        required=False,
        max_length=500,
        help_text="Local ImageNet weights file (.h5) for transfer models; none is downloaded.",
    )

    init_model = forms.CharField(
        required=False,
        max_length=500,
        label="Start from model",
        help_text="A .keras model of the same architecture on the worker, to continue training it.",
    )
    mirror_average = forms.BooleanField(
        required=False,
        help_text="Serve the mean of each face and its mirror image: usually a little more accurate, "
        "twice the compute per face.",
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["dataset_path"].initial = str(settings.TRAINING_DATA_DIR)

    def clean_dataset_path(self) -> str:
        path = Path(self.cleaned_data["dataset_path"])
        if not path.exists():
            raise forms.ValidationError(f"{path} does not exist on this server.")
        return str(path)

    def clean_weights_path(self) -> str | None:
        value = self.cleaned_data.get("weights_path") or None
        if value and not Path(value).is_file():
            raise forms.ValidationError(f"{value} is not a file on this server.")
        return value

    def clean_init_model(self) -> str | None:
        value = self.cleaned_data.get("init_model") or None
        if value and not Path(value).is_file():
            raise forms.ValidationError(f"{value} is not a file on this server.")
        return value

    def training_config(self) -> dict:
        """Return the trainer options from the cleaned form."""
        keys = (
            "epochs",
            "batch_size",
            "learning_rate",
            "augment",
            "class_weights",
            "label_smoothing",
            "early_stopping_patience",
            "fine_tune_epochs",
            "fine_tune_learning_rate",
            "weights_path",
            "width",
            "lr_schedule",
            "init_model",
            "mirror_average",
        )
        return {key: self.cleaned_data[key] for key in keys}
