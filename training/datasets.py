"""FER-2013 loaders: the Kaggle folder layout and the original ``fer2013.csv``.

Both produce the same :class:`Dataset`: uint8 faces ``(n, 48, 48)`` and integer
labels ``(n,)`` in the order of :data:`emotions.labels.EMOTIONS`. Decoding 30k
JPEGs takes a while on 2 cores, so decoded arrays are cached as ``.npz`` keyed
by the files' names, sizes and modification times.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from emotions.labels import EMOTIONS, UnknownLabelError, canonical_label
from emotions.preprocessing import FACE_SIZE

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp"}
CSV_USAGE_SPLITS = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}


class DatasetError(Exception):
    """A dataset that cannot be used, with a message naming what and where."""


@dataclass
class Split:
    x: np.ndarray  # (n, 48, 48) uint8
    y: np.ndarray  # (n,) int64 class indices
    # (n,) each image's path inside the dataset folder ("train/angry/x.jpg"), where it came from files:
    # how other annotations of the same images (FER+ votes) find them. None for CSV datasets.
    names: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.y)

    def class_counts(self) -> dict[str, int]:
        counts = np.bincount(self.y, minlength=len(EMOTIONS))
        return {label: int(count) for label, count in zip(EMOTIONS, counts, strict=True)}

    def limited(self, max_per_class: int, *, seed: int) -> Split:
        """Return a random sample of at most ``max_per_class`` faces of each class, in the original order."""
        rng = np.random.default_rng(seed)
        keep = []
        for label in np.unique(self.y):
            indices = np.flatnonzero(self.y == label)
            if len(indices) > max_per_class:
                indices = rng.choice(indices, size=max_per_class, replace=False)
            keep.append(indices)
        order = np.sort(np.concatenate(keep)) if keep else np.zeros(0, dtype=np.int64)
        return self._picked(order)

    def fraction(self, share: float, *, seed: int) -> Split:
        """Return a random ``share`` of the faces (at least one), whatever their class, in order."""
        count = min(len(self), max(1, round(len(self) * share)))
        return self._picked(np.sort(np.random.default_rng(seed).choice(len(self), size=count, replace=False)))

    def _picked(self, order: np.ndarray) -> Split:
        return Split(self.x[order], self.y[order], None if self.names is None else self.names[order])


@dataclass
class Dataset:
    source: str
    train: Split
    val: Split
    test: Split | None = None
    val_from_train: bool = False
    skipped: list[str] = field(default_factory=list)

    def describe(self) -> dict:
        """Return a JSON-able summary: sizes and class counts per split."""
        splits = {"train": self.train, "val": self.val}
        if self.test is not None:
            splits["test"] = self.test
        return {
            "source": self.source,
            "val_from_train": self.val_from_train,
            "skipped_files": len(self.skipped),
            "splits": {name: {"n": len(s), "classes": s.class_counts()} for name, s in splits.items()},
        }


Progress = Callable[[int, int], None]


def load_dataset(
    path: str | Path,
    *,
    val_fraction: float = 0.2,
    seed: int = 1337,
    cache_dir: str | Path | None = None,
    on_bad_image: str = "skip",
    progress: Progress | None = None,
) -> Dataset:
    """Load a folder-layout or CSV dataset, splitting a validation set off train when there is none."""
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"dataset not found: {path}")
    if path.is_file():
        if path.suffix.lower() != ".csv":
            raise DatasetError(f"{path} is neither a folder nor a .csv file")
        splits, skipped = _load_csv(path)
    else:
        splits, skipped = _load_folders(
            path, cache_dir=cache_dir, on_bad_image=on_bad_image, progress=progress
        )
    if "train" not in splits:
        raise DatasetError(f"{path} has no training split (a train/ folder or 'Training' rows)")
    val_from_train = "val" not in splits
    if val_from_train:
        if not 0.0 < val_fraction < 1.0:
            raise DatasetError(
                f"{path} has no validation split and val_fraction={val_fraction} is not in (0, 1)"
            )
        splits["train"], splits["val"] = _stratified_split(splits["train"], val_fraction, seed)
    for name, split in splits.items():
        if len(split) == 0:
            raise DatasetError(f"the {name} split of {path} is empty")
    return Dataset(
        source=str(path),
        train=splits["train"],
        val=splits["val"],
        test=splits.get("test"),
        val_from_train=val_from_train,
        skipped=skipped,
    )


def load_folder_split(
    folder: str | Path,
    *,
    cache_dir: str | Path | None = None,
    on_bad_image: str = "skip",
    progress: Progress | None = None,
) -> tuple[Split, list[str]]:
    """Load one ``<split>/<class>/*.jpg`` folder; return the split and the skipped files."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"folder not found: {folder}")
    files = _class_files(folder)
    if not files:
        raise DatasetError(f"{folder} holds no images in class folders")
    cache_file = _cache_file(cache_dir, folder, files)
    if cache_file is not None and cache_file.exists():
        with np.load(cache_file, allow_pickle=False) as cached:
            if "names" in cached:  # caches written before names were kept are read afresh
                split = Split(cached["x"], cached["y"], cached["names"])
                return split, [str(s) for s in cached["skipped"]]

    faces, labels, names, skipped = [], [], [], []
    for done, (file, label) in enumerate(files, start=1):
        image = cv2.imread(str(file), cv2.IMREAD_GRAYSCALE)
        if image is None:
            if on_bad_image == "fail":
                raise DatasetError(f"unreadable image: {file}")
            logger.warning("skipping unreadable image %s", file)
            skipped.append(str(file))
        else:
            if image.shape != (FACE_SIZE, FACE_SIZE):
                image = cv2.resize(image, (FACE_SIZE, FACE_SIZE), interpolation=cv2.INTER_AREA)
            faces.append(image)
            labels.append(label)
            names.append(f"{folder.name}/{file.parent.name}/{file.name}")
        if progress is not None and (done % 500 == 0 or done == len(files)):
            progress(done, len(files))
    split = Split(
        np.stack(faces) if faces else np.zeros((0, FACE_SIZE, FACE_SIZE), np.uint8),
        np.asarray(labels, dtype=np.int64),
        np.asarray(names, dtype=str),
    )
    if cache_file is not None and len(split):
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_file.with_suffix(".tmp.npz")
        np.savez(tmp, x=split.x, y=split.y, names=split.names, skipped=np.asarray(skipped, dtype=str))
        tmp.replace(cache_file)
    return split, skipped


def _load_folders(
    root: Path, *, cache_dir: str | Path | None, on_bad_image: str, progress: Progress | None
) -> tuple[dict[str, Split], list[str]]:
    # Kaggle's layout has train/ and test/; Attune's shared copy has val/ too.
    names = {"train": "train", "val": "val", "validation": "val", "test": "test"}
    splits: dict[str, Split] = {}
    skipped: list[str] = []
    for folder_name, split_name in names.items():
        folder = root / folder_name
        if folder.is_dir() and split_name not in splits:
            split, bad = load_folder_split(
                folder, cache_dir=cache_dir, on_bad_image=on_bad_image, progress=progress
            )
            splits[split_name] = split
            skipped.extend(bad)
    if not splits:
        raise DatasetError(f"{root} has none of the folders train/, val/ or test/")
    return splits, skipped


def folder_split_counts(root: str | Path) -> dict[str, int]:
    """Return how many images each split folder of a folder-layout dataset holds, without reading them.

    Empty when ``root`` has none of train/, val/ (or validation/) and test/.
    """
    root = Path(root)
    counts: dict[str, int] = {}
    for folder_name in ("train", "val", "validation", "test"):
        folder = root / folder_name
        if not folder.is_dir():
            continue
        n = 0
        for class_dir in os.scandir(folder):
            if class_dir.is_dir():
                n += sum(
                    1
                    for f in os.scandir(class_dir.path)
                    if os.path.splitext(f.name)[1].lower() in IMAGE_SUFFIXES
                )
        counts[folder_name] = n
    return counts


def _class_files(folder: Path) -> list[tuple[Path, int]]:
    files: list[tuple[Path, int]] = []
    for class_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
        try:
            label = EMOTIONS.index(canonical_label(class_dir.name))
        except UnknownLabelError:
            raise DatasetError(
                f"unknown class folder {class_dir}: expected one of {', '.join(EMOTIONS)} "
                "(or anger, happiness, sadness, ...)"
            ) from None
        files.extend(
            (file, label) for file in sorted(class_dir.iterdir()) if file.suffix.lower() in IMAGE_SUFFIXES
        )
    return files


def _cache_file(cache_dir: str | Path | None, folder: Path, files: Iterable[tuple[Path, int]]) -> Path | None:
    if cache_dir is None:
        return None
    digest = hashlib.sha256(str(folder.resolve()).encode())
    for file, label in files:
        stat = file.stat()
        digest.update(f"{file.name}:{label}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return Path(cache_dir) / f"{folder.name}-{digest.hexdigest()[:16]}.npz"


def _load_csv(path: Path) -> tuple[dict[str, Split], list[str]]:
    rows: dict[str, tuple[list[np.ndarray], list[int]]] = {}
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        missing = {"emotion", "pixels"} - set(reader.fieldnames or ())
        if missing:
            raise DatasetError(f"{path} lacks the column(s) {', '.join(sorted(missing))}")
        for line, row in enumerate(reader, start=2):
            usage = row.get("Usage") or "Training"
            split = CSV_USAGE_SPLITS.get(usage)
            if split is None:
                raise DatasetError(f"{path}:{line}: unknown Usage {usage!r}")
            try:
                label = int(row["emotion"])
                pixels = np.asarray(row["pixels"].split(), dtype=np.uint8)
            except ValueError:
                raise DatasetError(f"{path}:{line}: emotion or pixels are not numbers") from None
            if not 0 <= label < len(EMOTIONS) or pixels.size != FACE_SIZE * FACE_SIZE:
                raise DatasetError(f"{path}:{line}: expected a label 0-6 and {FACE_SIZE * FACE_SIZE} pixels")
            faces, labels = rows.setdefault(split, ([], []))
            faces.append(pixels.reshape(FACE_SIZE, FACE_SIZE))
            labels.append(label)
    splits = {
        name: Split(np.stack(faces), np.asarray(labels, np.int64)) for name, (faces, labels) in rows.items()
    }
    return splits, []


def _stratified_split(split: Split, fraction: float, seed: int) -> tuple[Split, Split]:
    rng = np.random.default_rng(seed)
    val_idx: list[np.ndarray] = []
    for label in np.unique(split.y):
        idx = np.flatnonzero(split.y == label)
        rng.shuffle(idx)
        val_idx.append(idx[: max(1, round(len(idx) * fraction))])
    val_mask = np.zeros(len(split.y), bool)
    val_mask[np.concatenate(val_idx)] = True

    def part(mask: np.ndarray) -> Split:
        return Split(split.x[mask], split.y[mask], None if split.names is None else split.names[mask])

    return part(~val_mask), part(val_mask)


def load_evaluation_split(
    path: str | Path, *, split: str = "auto", progress: Progress | None = None
) -> tuple[Split, str]:
    """Load one labelled split to evaluate on: a ``<class>/`` folder, a dataset folder, or a CSV."""
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"dataset not found: {path}")
    if path.is_dir() and not any((path / name).is_dir() for name in ("train", "val", "validation", "test")):
        data, _ = load_folder_split(path, progress=progress)
        return data, path.name
    if path.is_file():
        if path.suffix.lower() != ".csv":
            raise DatasetError(f"{path} is neither a folder nor a .csv file")
        splits, _ = _load_csv(path)
    else:
        splits = {}
        for folder_name, split_name in (
            ("test", "test"),
            ("val", "val"),
            ("validation", "val"),
            ("train", "train"),
        ):
            if (path / folder_name).is_dir() and split_name not in splits and split in ("auto", split_name):
                splits[split_name], _ = load_folder_split(path / folder_name, progress=progress)
                if split == "auto":
                    break
    wanted = [split] if split != "auto" else ["test", "val"]
    for name in wanted:
        if name in splits and len(splits[name]):
            return splits[name], name
    raise DatasetError(f"{path} has no non-empty {' or '.join(wanted)} split")


# FER+ (Barsoum et al. 2016) vote columns, by the names of emotions.labels.EMOTIONS; contempt, unknown and
# NF ("not a face") have no class here and are left out.
FERPLUS_COLUMNS = {
    "angry": "anger",
    "disgust": "disgust",
    "fear": "fear",
    "happy": "happiness",
    "sad": "sadness",
    "surprise": "surprise",
    "neutral": "neutral",
}


def ferplus_votes(folder: str | Path, names: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return FER+ crowd votes for the images ``names`` (paths inside the dataset folder), from the CSV
    files (train.csv, val.csv: a ``path`` column, then one column of votes per label) in ``folder``.

    Returns (n, 7) vote shares in EMOTIONS order and an (n,) mask of the images that have votes: an image
    missing from the files, or whose votes all went to contempt, unknown or not-a-face, has none.
    """
    import csv

    folder = Path(folder)
    files = sorted(folder.glob("*.csv"))
    if not files:
        raise DatasetError(f"{folder} holds no FER+ vote files (*.csv)")
    votes: dict[str, list[float]] = {}
    for file in files:
        with open(file, newline="") as handle:
            reader = csv.DictReader(handle)
            missing = {"path", *FERPLUS_COLUMNS.values()} - set(reader.fieldnames or ())
            if missing:
                raise DatasetError(f"{file} lacks the column(s) {', '.join(sorted(missing))}")
            for row in reader:
                votes[row["path"]] = [float(row[FERPLUS_COLUMNS[label]]) for label in EMOTIONS]
    shares = np.zeros((len(names), len(EMOTIONS)), np.float32)
    for i, name in enumerate(names):
        shares[i] = votes.get(str(name), shares[i])
    totals = shares.sum(axis=1)
    found = totals > 0
    shares[found] /= totals[found, None]
    return shares, found
