from __future__ import annotations

import json

import pytest
from django.conf import settings

from training.datasets import load_folder_split

pytestmark = pytest.mark.slow


def test_the_shipped_default_model_loads_and_scores_at_least_67_percent_on_val(fer2013_dir):
    import keras

    from training.calibration import expected_calibration_error
    from training.evaluation import evaluate, predict_probabilities

    model = keras.models.load_model(settings.EMOTIONS_DEFAULT_MODEL, safe_mode=True)
    split, _ = load_folder_split(fer2013_dir / "val")

    metrics = evaluate(model, split)
    probabilities = predict_probabilities(model, split.x)

    shipped = json.loads((settings.EMOTIONS_DEFAULT_MODEL.parent / "evaluation.json").read_text())
    card = (settings.EMOTIONS_DEFAULT_MODEL.parent / "MODEL_CARD.md").read_text()
    assert metrics["n"] == 3589
    assert metrics["accuracy"] >= 0.67  # the aim (README, "The default model")
    assert metrics["accuracy"] == pytest.approx(shipped["accuracy"], abs=1e-4)  # the card tells the truth
    assert f"Accuracy **{shipped['accuracy']:.4f}**" in card
    # Calibrated: its stated confidence matches its accuracy, as the card says.
    ece = expected_calibration_error(probabilities, split.y)
    assert ece == pytest.approx(shipped["calibration"]["ece_after"], abs=1e-4)
    assert ece <= 0.03
    assert "## Calibration" in card
    assert "## Serving cost" in card and "ms per face** alone" in card
