from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from emotions.labels import EMOTIONS

KAGGLE_NAMES = EMOTIONS
WRITEUP_NAMES = ("anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral")


def make_folder_dataset(
    root: Path, *, per_class: int = 4, splits=("train", "val"), names=KAGGLE_NAMES, seed=0
) -> Path:
    """Write small random 48×48 grayscale JPEGs in the Kaggle layout; each class has its own brightness."""
    rng = np.random.default_rng(seed)
    for split in splits:
        for index, name in enumerate(names):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                base = 20 + index * 30
                image = np.clip(rng.normal(base, 10, (48, 48)), 0, 255).astype(np.uint8)
                cv2.imwrite(str(folder / f"{split}_{i}.jpg"), image)
    return root


def make_csv_dataset(
    path: Path, *, per_class: int = 3, usages=("Training", "PublicTest", "PrivateTest")
) -> Path:
    rng = np.random.default_rng(1)
    lines = ["emotion,pixels,Usage"]
    for usage in usages:
        for label in range(len(EMOTIONS)):
            for _ in range(per_class):
                pixels = " ".join(str(v) for v in rng.integers(0, 256, 48 * 48))
                lines.append(f"{label},{pixels},{usage}")
    path.write_text("\n".join(lines) + "\n")
    return path


def train_tiny(data: Path, run_dir: Path, **options):
    """Train a quarter-width custom_cnn for one epoch on ``data`` through the `train` command (``options``
    add or replace its keyword options) and return the run it made."""
    from django.core.management import call_command

    from training.models import TrainingRun

    defaults = {"arch": "custom_cnn", "width": 0.25, "epochs": 1, "batch_size": 4}
    call_command("train", data=str(data), run_dir=str(run_dir), **{**defaults, **options})
    return TrainingRun.objects.latest("pk")


@pytest.fixture
def tiny_dataset(tmp_path) -> Path:
    return make_folder_dataset(tmp_path / "fer")
