from __future__ import annotations

import numpy as np
import pytest

from tests.training.conftest import WRITEUP_NAMES, make_csv_dataset, make_folder_dataset
from training.datasets import DatasetError, load_dataset, load_evaluation_split


def test_it_loads_the_kaggle_folder_layout(tmp_path):
    root = make_folder_dataset(tmp_path / "fer", per_class=3)

    data = load_dataset(root)

    assert data.train.x.shape == (21, 48, 48) and data.train.x.dtype == np.uint8
    assert data.val.class_counts() == dict.fromkeys(data.val.class_counts(), 3)
    assert not data.val_from_train
    assert data.test is None


def test_it_accepts_the_writeups_class_names(tmp_path):
    root = make_folder_dataset(tmp_path / "fer", per_class=2, names=WRITEUP_NAMES)

    data = load_dataset(root)

    assert data.train.class_counts() == {
        "angry": 2,
        "disgust": 2,
        "fear": 2,
        "happy": 2,
        "sad": 2,
        "surprise": 2,
        "neutral": 2,
    }


def test_it_splits_a_stratified_validation_fraction_off_train_when_there_is_none(tmp_path):
    root = make_folder_dataset(tmp_path / "fer", per_class=10, splits=("train", "test"))

    data = load_dataset(root, val_fraction=0.2)

    assert data.val_from_train
    assert len(data.val) == 14 and len(data.train) == 56
    assert set(data.val.class_counts().values()) == {2}
    assert len(data.test) == 70


def test_it_loads_fer2013_csv_with_its_three_usages(tmp_path):
    path = make_csv_dataset(tmp_path / "fer2013.csv", per_class=2)

    data = load_dataset(path)

    assert (len(data.train), len(data.val), len(data.test)) == (14, 14, 14)
    assert data.train.x.shape[1:] == (48, 48)


def test_it_names_an_unknown_class_folder(tmp_path):
    root = make_folder_dataset(tmp_path / "fer", per_class=1)
    (root / "train" / "contempt").mkdir()

    with pytest.raises(DatasetError, match="unknown class folder .*contempt"):
        load_dataset(root)


def test_it_refuses_a_missing_folder_and_an_empty_split(tmp_path):
    with pytest.raises(DatasetError, match="dataset not found"):
        load_dataset(tmp_path / "nowhere")
    root = make_folder_dataset(tmp_path / "fer", per_class=1)
    for file in (root / "val").rglob("*.jpg"):
        file.unlink()

    with pytest.raises(DatasetError, match="holds no images"):
        load_dataset(root)


def test_it_skips_or_fails_on_an_unreadable_image_by_option(tmp_path):
    root = make_folder_dataset(tmp_path / "fer", per_class=2)
    bad = root / "train" / "happy" / "broken.jpg"
    bad.write_bytes(b"not a jpeg at all")

    data = load_dataset(root)
    with pytest.raises(DatasetError, match="unreadable image: .*broken.jpg"):
        load_dataset(root, on_bad_image="fail")

    assert data.skipped == [str(bad)]
    assert len(data.train) == 14


def test_it_caches_decoded_arrays_and_notices_changed_files(tmp_path):
    root = make_folder_dataset(tmp_path / "fer", per_class=2)
    cache = tmp_path / "cache"

    first = load_dataset(root, cache_dir=cache)
    cached = sorted(cache.glob("*.npz"))
    second = load_dataset(root, cache_dir=cache)
    make_folder_dataset(tmp_path / "fer", per_class=3)
    third = load_dataset(root, cache_dir=cache)

    assert len(cached) == 2
    np.testing.assert_array_equal(first.train.x, second.train.x)
    assert len(third.train) == 21


def test_it_picks_the_split_to_evaluate_on(tmp_path):
    root = make_folder_dataset(tmp_path / "fer", per_class=2, splits=("train", "val", "test"))

    split, name = load_evaluation_split(root)
    val, val_name = load_evaluation_split(root, split="val")
    flat, flat_name = load_evaluation_split(root / "val")

    assert (name, len(split)) == ("test", 14)
    assert (val_name, len(val)) == ("val", 14)
    assert (flat_name, len(flat)) == ("val", 14)
