"""Reads for operators starting runs: which datasets the server holds, and how big they are."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from training.datasets import folder_split_counts

README_DATA_SECTION = "README.md, section “FER-2013”"


@dataclass(frozen=True)
class DatasetFolder:
    path: Path
    splits: dict[str, int]  # images per split folder, e.g. {"train": 28709, "val": 3589}

    @property
    def label(self) -> str:
        counts = " · ".join(f"{split} {n:,}" for split, n in self.splits.items())
        return f"{self.path.name} ({counts} images)" if counts else f"{self.path.name} (CSV file)"

    @property
    def usable(self) -> bool:
        """Whether training can run on it: a CSV file, or a train/ folder holding images."""
        return not self.splits or self.splits.get("train", 0) > 0


def training_data_roots() -> list[Path]:
    """Return the folders datasets are picked from: API_TRAINING_DATA_ROOTS, TRAINING_DATA_DIR's parent."""
    roots = [Path(root) for root in settings.API_TRAINING_DATA_ROOTS]
    roots.append(Path(settings.TRAINING_DATA_DIR).parent)
    unique: dict[Path, Path] = {}
    for root in roots:
        unique.setdefault(root.resolve(), root)
    return list(unique.values())


def training_datasets_available() -> list[DatasetFolder]:
    """Return every dataset under the data roots (a root itself or one level down), by path.

    A dataset is a folder with train/, val/ or test/ class folders, or a ``.csv`` file.
    """
    found: dict[Path, DatasetFolder] = {}
    for root in training_data_roots():
        if not root.is_dir():
            continue
        candidates = [root, *sorted(root.iterdir())]
        for candidate in candidates:
            try:
                if candidate.is_file() and candidate.suffix.lower() == ".csv":
                    found.setdefault(candidate.resolve(), DatasetFolder(candidate, {}))
                elif candidate.is_dir():
                    splits = folder_split_counts(candidate)
                    if splits:
                        found.setdefault(candidate.resolve(), DatasetFolder(candidate, splits))
            except OSError:  # an unreadable folder is no dataset
                continue
    return list(found.values())
