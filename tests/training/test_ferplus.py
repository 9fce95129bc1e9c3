"""FER+ crowd votes as soft targets: read by image path, mapped onto Attune's classes, mixed into training."""

from __future__ import annotations

import numpy as np
import pytest

from emotions.labels import EMOTIONS
from tests.training.conftest import train_tiny
from training.datasets import DatasetError, ferplus_votes, load_dataset
from training.models import TrainingRun

HEADER = "path,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF,match\n"


def test_votes_are_found_by_path_and_mapped_onto_the_classes(tmp_path):
    (tmp_path / "train.csv").write_text(
        HEADER
        + "train/angry/a.jpg,4,0,0,1,3,2,0,0,0,0,0\n"  # 10 votes, 10 on Attune's classes
        + "train/happy/b.jpg,0,0,0,0,0,0,0,2,3,5,2\n"  # contempt, unknown, not a face only
    )

    shares, found = ferplus_votes(tmp_path, np.array(["train/angry/a.jpg", "train/happy/b.jpg", "x.jpg"]))

    assert found.tolist() == [True, False, False]
    expected = dict(neutral=0.4, sad=0.1, angry=0.3, disgust=0.2)
    np.testing.assert_allclose(shares[0], [expected.get(label, 0.0) for label in EMOTIONS])
    assert not shares[1:].any()


def test_a_folder_without_vote_files_is_refused(tmp_path):
    with pytest.raises(DatasetError, match="FER\\+ vote files"):
        ferplus_votes(tmp_path, np.array(["train/angry/a.jpg"]))


def test_a_folder_dataset_keeps_each_image_path(tiny_dataset, tmp_path):
    first = load_dataset(tiny_dataset, cache_dir=tmp_path / "cache")
    cached = load_dataset(tiny_dataset, cache_dir=tmp_path / "cache")

    assert first.train.names[0] == "train/angry/train_0.jpg"
    assert cached.train.names.tolist() == first.train.names.tolist()
    sample = first.train.limited(2, seed=0)
    where = {name: i for i, name in enumerate(first.train.names)}
    assert len(sample.names) == 14
    for name, face in zip(sample.names, sample.x, strict=True):  # each name stays with its face
        np.testing.assert_array_equal(first.train.x[where[name]], face)


@pytest.mark.slow
@pytest.mark.django_db
def test_a_run_trains_on_the_crowds_votes(tiny_dataset, tmp_path, settings):
    settings.TRAINING_ARTIFACTS_DIR = str(tmp_path / "artifacts")
    votes = tmp_path / "ferplus"
    votes.mkdir()
    rows = [f"train/{label}/train_{i}.jpg,5,0,0,0,5,0,0,0,0,0,0" for label in EMOTIONS[:3] for i in range(2)]
    (votes / "train.csv").write_text(HEADER + "\n".join(rows) + "\n")

    run = train_tiny(tiny_dataset, tmp_path / "run", ferplus_dir=str(votes), ferplus_weight=0.8)
    assert run.status == TrainingRun.Status.SUCCEEDED, run.error
    assert "FER+ votes for 6 of 28 training images" in run.log_tail
