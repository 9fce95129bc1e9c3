from __future__ import annotations

import json

import pytest
from django.core.management import call_command

from training.datasets import load_dataset

pytestmark = [pytest.mark.slow, pytest.mark.django_db]


def test_export_model_ships_a_checkpoint_with_its_evaluation_and_card(tiny_dataset, tmp_path, capsys):
    from training.trainer import TrainConfig, train

    train(
        TrainConfig(architecture="mini_xception", epochs=1, batch_size=4),
        load_dataset(tiny_dataset),
        tmp_path / "run",
    )
    target = tmp_path / "shipped" / "default.keras"

    call_command(
        "export_model",
        run_dir=str(tmp_path / "run"),
        data=str(tiny_dataset),
        to=str(target),
        train_command="python manage.py train --epochs 1",
        note="Interim model.",
    )

    evaluation = json.loads((target.parent / "evaluation.json").read_text())
    card = (target.parent / "MODEL_CARD.md").read_text()
    assert target.is_file()
    assert (target.parent / "confusion_matrix.png").read_bytes()[:4] == b"\x89PNG"
    assert evaluation["n"] == 28
    assert f"Accuracy **{evaluation['accuracy']:.4f}**" in card
    assert "python manage.py train --epochs 1" in card and "Interim model." in card
    assert "validation accuracy" in capsys.readouterr().out


def test_train_with_export_writes_the_model_and_a_card_naming_the_command(tiny_dataset, tmp_path):
    target = tmp_path / "shipped" / "model.keras"

    call_command(
        "train",
        data=str(tiny_dataset),
        arch="mini_xception",
        epochs=1,
        batch_size=4,
        run_dir=str(tmp_path / "run"),
        export=str(target),
    )

    card = (target.parent / "MODEL_CARD.md").read_text()
    assert target.is_file() and (target.parent / "curves.png").is_file()
    assert "1 epochs" in card and "**Command**" in card
