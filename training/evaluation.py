"""Evaluate a model on a split: metrics as JSON, pictures as PNG, and a model card."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from scipy.stats import binomtest
from sklearn.metrics import accuracy_score, confusion_matrix, log_loss, precision_recall_fscore_support

from emotions.classifier import INT8_MUST_SAVE
from emotions.labels import EMOTIONS
from emotions.preprocessing import to_model_input
from training.datasets import Split

EVAL_BATCH = 256


def predict_probabilities(model, faces: np.ndarray) -> np.ndarray:
    """Return (n, 7) probabilities for (n, 48, 48) uint8 faces, in batches."""
    x = to_model_input(faces)
    out = [np.asarray(model.predict_on_batch(x[i : i + EVAL_BATCH])) for i in range(0, len(x), EVAL_BATCH)]
    return np.concatenate(out) if out else np.zeros((0, len(EMOTIONS)), np.float32)


def compute_metrics(y_true: np.ndarray, probabilities: np.ndarray) -> dict:
    """Return accuracy, loss, per-class precision/recall/F1/support and the confusion matrix."""
    labels = list(range(len(EMOTIONS)))
    y_pred = probabilities.argmax(axis=1)
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    counts = confusion_matrix(y_true, y_pred, labels=labels)
    with np.errstate(invalid="ignore", divide="ignore"):
        normalised = np.nan_to_num(counts / counts.sum(axis=1, keepdims=True))
    clipped = np.clip(probabilities, 1e-7, 1.0)
    correct = int((y_pred == np.asarray(y_true)).sum())
    return {
        "n": int(len(y_true)),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "accuracy_ci95": _wilson_interval(correct, len(y_true)),
        "loss": float(log_loss(y_true, clipped / clipped.sum(axis=1, keepdims=True), labels=labels)),
        "macro_f1": float(np.mean(f1)),
        "labels": list(EMOTIONS),
        "per_class": {
            label: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, label in enumerate(EMOTIONS)
        },
        "confusion_matrix": counts.tolist(),
        "confusion_matrix_normalised": np.round(normalised, 4).tolist(),
    }


def _wilson_interval(successes: int, n: int) -> list[float]:
    """Return the 95 % Wilson score interval of a proportion (the sampling error of an accuracy)."""
    if n == 0:
        return [0.0, 1.0]
    interval = binomtest(successes, n).proportion_ci(confidence_level=0.95, method="wilson")
    return [round(float(interval.low), 4), round(float(interval.high), 4)]


def evaluate(model, split: Split) -> dict:
    """Return :func:`compute_metrics` for ``model`` on ``split``."""
    return compute_metrics(split.y, predict_probabilities(model, split.x))


def format_report(metrics: dict) -> str:
    """Return a plain-text report: accuracy, per-class table and confusion matrix."""
    lines = [
        f"accuracy {metrics['accuracy']:.4f} on {metrics['n']} images (macro F1 {metrics['macro_f1']:.4f})",
        "",
    ]
    lines.append(f"{'class':<10}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>10}")
    for label, row in metrics["per_class"].items():
        lines.append(
            f"{label:<10}{row['precision']:>10.3f}{row['recall']:>10.3f}{row['f1']:>10.3f}{row['support']:>10}"
        )
    lines += ["", "confusion matrix (rows: true, columns: predicted)"]
    lines.append(" " * 10 + "".join(f"{label[:8]:>9}" for label in metrics["labels"]))
    for label, row in zip(metrics["labels"], metrics["confusion_matrix"], strict=True):
        lines.append(f"{label:<10}" + "".join(f"{v:>9}" for v in row))
    return "\n".join(lines)


def plot_curves(history: dict[str, list[float]], path: Path) -> None:
    """Save accuracy and loss per epoch, training against validation, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, metric in zip(axes, ("accuracy", "loss"), strict=True):
        for key, style in ((metric, "-"), (f"val_{metric}", "--")):
            if history.get(key):
                ax.plot(range(1, len(history[key]) + 1), history[key], style, label=key)
        ax.set_xlabel("epoch")
        ax.set_title(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_confusion_matrix(metrics: dict, path: Path) -> None:
    """Save the normalised confusion matrix, with counts, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    normalised = np.asarray(metrics["confusion_matrix_normalised"])
    counts = np.asarray(metrics["confusion_matrix"])
    fig, ax = plt.subplots(figsize=(7, 6))
    image = ax.imshow(normalised, cmap="Blues", vmin=0.0, vmax=1.0)
    labels = metrics["labels"]
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(len(labels)):
        for j in range(len(labels)):
            colour = "white" if normalised[i, j] > 0.5 else "black"
            ax.text(
                j,
                i,
                f"{normalised[i, j]:.2f}\n{counts[i, j]}",
                ha="center",
                va="center",
                fontsize=7,
                color=colour,
            )
    ax.set_title(f"accuracy {metrics['accuracy']:.3f} (n={metrics['n']})")
    fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def model_card(
    *,
    name: str,
    architecture: str,
    parameters: int,
    dataset: dict,
    metrics: dict,
    config: dict,
    training_seconds: float,
    best_epoch: int,
    epochs_done: int,
    weights_note: str,
    command: str | None = None,
    best_val_accuracy: float | None = None,
    batchnorm: dict | None = None,
) -> str:
    """Return a Markdown model card: what the model is, how it was made, how well it does, and its limits.

    ``parameters`` counts the trainable network; ``best_val_accuracy`` is its best single pass during
    training, quoted when the served model averages it over mirrored faces.
    """
    splits = dataset.get("splits", {})
    data_name = Path(dataset.get("source", "?")).name
    val_note = "; validation split from train" if dataset.get("val_from_train") else ""
    sizes = ", ".join(f"{name} {info['n']:,}" for name, info in splits.items())
    serving = ""
    if config.get("mirror_average"):
        single = (
            f" (its best single pass scored {best_val_accuracy:.4f})" if best_val_accuracy is not None else ""
        )
        serving = (
            "- **Serving**: the mean of the network's answers for the face and its mirror image (test-time\n"
            f"  augmentation, two passes per face); the validation metrics below are of that mean{single}.\n"
        )
    if batchnorm:
        serving += (
            f"- **BatchNorm statistics** gathered again after training, on {batchnorm['faces']:,} training\n"
            "  faces as served (not augmented), nothing learned (FixRes); the validation metrics below are\n"
            "  after it.\n"
        )
    return f"""# Model card: {name}

- **Architecture**: {architecture} ({parameters:,} parameters); {weights_note}.
- **Input**: one face, 48×48 grayscale, float32 in [0, 1] (`emotions.preprocessing.to_model_input`).
- **Output**: probabilities over {", ".join(metrics["labels"])}.
{serving}- **Data**: `{data_name}` ({sizes}){val_note}.
- **Training**: {epochs_done} epochs, best at epoch {best_epoch},
  {training_seconds / 60:.0f} minutes of training; configuration `{json.dumps(config, sort_keys=True)}`.
{f"- **Command**: `{command}`" if command else ""}

{_results(metrics)}"""


def _results(metrics: dict) -> str:
    """Return a card's sections on how well the model does: metrics, calibration, limits."""
    per_class = "\n".join(
        f"| {label} | {row['precision']:.3f} | {row['recall']:.3f} | {row['f1']:.3f} | {row['support']} |"
        for label, row in metrics["per_class"].items()
    )
    return f"""## Validation metrics

Accuracy **{metrics["accuracy"]:.4f}** on {metrics["n"]:,} images{_interval(metrics)}
(macro F1 {metrics["macro_f1"]:.4f}).

| class | precision | recall | F1 | support |
|---|---|---|---|---|
{per_class}
{calibration_section(metrics.get("calibration"))}
{_limits(metrics)}"""


def _limits(metrics: dict) -> str:
    weakest = min(metrics["per_class"].items(), key=lambda item: item[1]["f1"])[0]
    return f"""## Limits

- It reads **facial expressions, not feelings**: a smile is not happiness, and a neutral face hides a lot.
- FER-2013 human agreement is about 65 ± 5 %: its labels are noisy, and so is this model. The weakest class
  here is **{weakest}**; `disgust` is rare in the data (under 2 % of training images).
- Trained on 48×48 grayscale web images, mostly frontal, of unknown demographic balance; accuracy on
  other populations, poses, lighting and cameras is not measured here and will be lower.
- Not for decisions about people: no identity, age or gender, no use in workplaces or education
  (banned by the EU AI Act), always with the person's explicit consent.
"""


def ensemble_card(
    *,
    name: str,
    members: list[dict],
    mirror: bool,
    parameters: int,
    metrics: dict,
    zoom: float = 1.0,
    shift: int = 0,
    command: str = "",
    batchnorm: dict | None = None,
) -> str:
    """Return the model card of an ensemble: its members (file, accuracy alone) and how well it does
    (and, where ``batchnorm`` says they were, that its BatchNorm statistics were gathered again)."""
    rows = "\n".join(
        f"| `{m['file']}` | {m['architecture']} | {m['parameters']:,} | {m['accuracy']:.4f} |"
        for m in members
    )
    face = (
        f"each face enlarged {zoom:g} times about its centre (a test-time zoom)"
        if zoom != 1.0
        else "each face"
    )
    if shift:
        face += f" and on the same crop {shift} px up, down, left and right of it (five crops)"
    views = face
    if mirror:
        views += ", and on the mirror image of each" if shift else " and on its mirror image"
    passes = len(members) * (5 if shift else 1) * (2 if mirror else 1)
    made = f"\n- **Command**: `{command}`" if command else ""
    if batchnorm:
        made += (
            f"\n- **BatchNorm statistics** gathered again on {batchnorm['faces']:,} training faces as served "
            f"({batchnorm['views']} view(s) each, batches of {batchnorm['batch_size']}, seed "
            f"{batchnorm['seed']}; FixRes): validation accuracy {batchnorm['accuracy_before']:.4f} before, "
            "the figures below after."
        )
    return f"""# Model card: {name}

- **Ensemble** of {len(members)} network(s) ({parameters:,} parameters in all), served as one file: the
  mean of every member's answer on {views} ({passes} passes per face).{made}
- **Input**: one face, 48×48 grayscale, float32 in [0, 1]; **output**: probabilities over
  {", ".join(metrics["labels"])}.

| member | architecture | parameters | validation accuracy alone |
|---|---|---|---|
{rows}

{_results(metrics)}"""


def _interval(metrics: dict) -> str:
    low_high = metrics.get("accuracy_ci95")
    return f" (95 % interval {low_high[0]:.3f}–{low_high[1]:.3f})" if low_high else ""


def calibration_section(calibration: dict | None) -> str:
    """Return the model card's calibration section ('' for a model that was not calibrated)."""
    if not calibration:
        return ""
    return f"""
## Calibration

Temperature scaling fitted on the validation split (T = {calibration["temperature"]:.3f}, written into the
last layer, so serving costs nothing more). Expected calibration error over {calibration["bins"]} confidence
bins: **{calibration["ece_before"]:.3f} before, {calibration["ece_after"]:.3f} after**; negative
log-likelihood {calibration["nll_before"]:.4f} → {calibration["nll_after"]:.4f}. A stated confidence of
0.6 now means about 6 in 10 such answers are right (`reliability.png`). Fitted and measured on the same
split, so the figure after is slightly optimistic.
"""


def serving_section(cost: dict, weights: str) -> str:
    """Return the model card's serving-cost section for a LiteRT file's measured ``cost``."""
    one_view = (
        "A live stream's frame shows it each face from one side (the face or its mirror image, in turn)\n"
        f"through its one-view file: **{cost['one_view_ms_per_face']:.2f} ms per face**; the mood averages "
        "the two.\n"
        if "one_view_ms_per_face" in cost
        else ""
    )
    int8 = cost.get("int8")
    int8_line = (
        f"Its file with int8 weights: **{int8['batch_1_ms_per_face']:.2f} ms per face** alone, "
        f"{int8['batch_32_ms_per_face']:.2f} in a batch of 32"
        + (f", {int8['one_view_ms_per_face']:.2f} per stream frame" if "one_view_ms_per_face" in int8 else "")
        + "; each web process times both when the model loads and serves int8 only where it takes at most\n"
        f"{INT8_MUST_SAVE:g} of float32's time (`EMOTIONS_LITERT_WEIGHTS`).\n"
        if int8
        else ""
    )
    return f"""
## Serving cost

Served by the web processes as a LiteRT file ({weights} weights) with XNNPACK, one interpreter on
{cost["threads"]} thread: **{cost["batch_1_ms_per_face"]:.2f} ms per face** alone (a lone image),
{cost["batch_32_ms_per_face"]:.2f} ms per face in a batch of 32, measured when it was compiled on
{cost["machine"]} (a shared machine: expect ±30 %).
{one_view}{int8_line}`bench/emotion_engine.py --model FILE` times it in the whole pipeline, beside the Keras
backend and `fer`.
"""


def write_evaluation(folder: Path, *, metrics: dict, history: dict, card: str) -> dict[str, str]:
    """Write evaluation.json, curves.png, confusion_matrix.png and MODEL_CARD.md; return their names."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "evaluation.json").write_text(json.dumps(metrics, indent=1))
    plot_curves(history, folder / "curves.png")
    plot_confusion_matrix(metrics, folder / "confusion_matrix.png")
    (folder / "MODEL_CARD.md").write_text(card)
    return {
        "evaluation": "evaluation.json",
        "curves": "curves.png",
        "confusion_matrix": "confusion_matrix.png",
        "model_card": "MODEL_CARD.md",
    }
