"""Temperature scaling: make a model's stated confidence mean what it says. Keras, no Django.

A network trained with cross-entropy is usually over- or under-confident: of the faces it reads as
"happy, 0.8", far more or fewer than 80 % are happy. Temperature scaling (Guo et al., 2017) divides the
network's logits by one number ``T`` fitted on held-out data, which changes every stated probability and
no single-pass decision. The temperature is written into the model itself: the last linear layer before
the softmax (a Dense or Conv2D, possibly followed by pooling) has its kernel and bias divided by ``T``, so
the calibrated file is the same stock-Keras graph, costs the same to serve and compiles to LiteRT as
before.

A served model may average several answers (a face and its mirror image, or an ensemble): each member's
softmax is tempered, then averaged, and ``T`` is fitted for exactly that.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import keras
import numpy as np
from scipy.optimize import minimize_scalar

from emotions.labels import NUM_CLASSES
from emotions.preprocessing import to_model_input
from training.trainer import leaf_networks

ECE_BINS = 15
TEMPERATURE_BOUNDS = (0.05, 20.0)
EVAL_BATCH = 256
# Layers that may sit between the last linear layer and the softmax without changing what scaling does.
_LINEAR_IN_BETWEEN = (
    keras.layers.GlobalAveragePooling2D,
    keras.layers.Flatten,
    keras.layers.Dropout,
    keras.layers.Reshape,
)


class CalibrationError(Exception):
    """The model's structure does not allow temperature scaling in place."""


@dataclass(frozen=True)
class Calibration:
    temperature: float
    ece_before: float
    ece_after: float
    nll_before: float
    nll_after: float
    accuracy_before: float
    accuracy_after: float
    n: int
    bins: int = ECE_BINS

    def as_dict(self) -> dict:
        return {k: round(v, 6) if isinstance(v, float) else v for k, v in asdict(self).items()}


# --- Measuring ---------------------------------------------------------------------------------------


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> float:
    """Return the ECE: the mean gap between confidence and accuracy over equal-width confidence bins,
    weighted by how many answers fall in each bin."""
    table = reliability_table(probabilities, labels, bins)
    n = max(int(sum(row["count"] for row in table)), 1)
    return float(sum(row["count"] * abs(row["accuracy"] - row["confidence"]) for row in table) / n)


def reliability_table(probabilities: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> list[dict]:
    """Return, per confidence bin, the answers in it, their mean confidence and their accuracy."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == np.asarray(labels)
    edges = np.linspace(0.0, 1.0, bins + 1)
    # Bin i holds (edges[i], edges[i + 1]]; a confidence of exactly 0 goes to the first bin.
    index = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)
    table = []
    for i in range(bins):
        mask = index == i
        count = int(mask.sum())
        table.append(
            {
                "low": float(edges[i]),
                "high": float(edges[i + 1]),
                "count": count,
                "confidence": float(confidence[mask].mean()) if count else 0.0,
                "accuracy": float(correct[mask].mean()) if count else 0.0,
            }
        )
    return table


def negative_log_likelihood(probabilities: np.ndarray, labels: np.ndarray) -> float:
    picked = np.asarray(probabilities, dtype=np.float64)[np.arange(len(labels)), np.asarray(labels)]
    return float(-np.log(np.clip(picked, 1e-12, 1.0)).mean())


# --- Fitting -----------------------------------------------------------------------------------------


def member_probabilities(model: keras.Model, faces: np.ndarray) -> np.ndarray:
    """Return (members, n, 7): the softmax answers the served model averages (one member when it
    averages nothing), for (n, 48, 48) uint8 faces."""
    members = _member_outputs(model)
    probe = keras.Model(model.inputs, members) if members is not None else model
    x = to_model_input(faces)
    chunks = []
    for start in range(0, len(x), EVAL_BATCH):
        out = probe.predict_on_batch(x[start : start + EVAL_BATCH])
        out = out if isinstance(out, list | tuple) else [out]
        chunks.append(np.stack([np.asarray(o, dtype=np.float64) for o in out]))
    if not chunks:
        return np.zeros((1, 0, NUM_CLASSES))
    return np.concatenate(chunks, axis=1)


def tempered(members: np.ndarray, temperature: float) -> np.ndarray:
    """Return what the served model answers once each member's logits are divided by ``temperature``.

    log(p) differs from the logits by a constant per answer, which the softmax ignores, so the members'
    probabilities are all that is needed.
    """
    logits = np.log(np.clip(members, 1e-12, 1.0)) / temperature
    logits -= logits.max(axis=-1, keepdims=True)
    scaled = np.exp(logits)
    scaled /= scaled.sum(axis=-1, keepdims=True)
    return scaled.mean(axis=0)


def fit_temperature(members: np.ndarray, labels: np.ndarray) -> float:
    """Return the temperature that minimises the negative log-likelihood of ``labels``."""
    low, high = np.log(TEMPERATURE_BOUNDS[0]), np.log(TEMPERATURE_BOUNDS[1])
    result = minimize_scalar(
        lambda log_t: negative_log_likelihood(tempered(members, float(np.exp(log_t))), labels),
        bounds=(low, high),
        method="bounded",
        options={"xatol": 1e-4},
    )
    return float(np.exp(result.x))


def calibration_measure(members: np.ndarray, labels: np.ndarray, temperature: float) -> Calibration:
    """Return the figures of the served model before and after scaling by ``temperature``."""
    before, after = tempered(members, 1.0), tempered(members, temperature)
    labels = np.asarray(labels)
    return Calibration(
        temperature=temperature,
        ece_before=expected_calibration_error(before, labels),
        ece_after=expected_calibration_error(after, labels),
        nll_before=negative_log_likelihood(before, labels),
        nll_after=negative_log_likelihood(after, labels),
        accuracy_before=float((before.argmax(axis=1) == labels).mean()),
        accuracy_after=float((after.argmax(axis=1) == labels).mean()),
        n=int(len(labels)),
    )


# --- Writing the temperature into the model ------------------------------------------------------------


def temperature_apply(model: keras.Model, temperature: float) -> None:
    """Divide the logits of every network inside ``model`` by ``temperature``, in place."""
    for network in leaf_networks(model)[0]:
        layer = _logits_layer(network)
        kernel, *rest = layer.get_weights()
        layer.set_weights([kernel / temperature, *(bias / temperature for bias in rest)])


def calibrate(model: keras.Model, faces: np.ndarray, labels: np.ndarray) -> tuple[Calibration, np.ndarray]:
    """Fit a temperature on (faces, labels), write it into ``model``; return the figures and the members'
    answers before scaling (for :func:`plot_reliability`).

    Raises CalibrationError, leaving the model as it was, when its structure does not allow it.
    """
    for network in leaf_networks(model)[0]:
        _logits_layer(network)  # refuse before fitting anything
    members = member_probabilities(model, faces)
    temperature = fit_temperature(members, labels)
    figures = calibration_measure(members, labels, temperature)
    temperature_apply(model, temperature)
    return figures, members


def _logits_layer(network: keras.Model) -> keras.layers.Layer:
    """Return the linear layer whose output, up to pooling, the network's softmax reads."""
    layers = [layer for layer in network.layers if not isinstance(layer, keras.layers.InputLayer)]
    if not layers:
        raise CalibrationError(f"{network.name} has no layers")
    last = layers[-1]
    if _has_kernel(last) and _activation_name(last) == "softmax":
        return last
    if not (isinstance(last, keras.layers.Softmax) or _activation_name(last) == "softmax"):
        raise CalibrationError(f"{network.name} does not end in a softmax")
    for layer in reversed(layers[:-1]):
        if _has_kernel(layer):
            if _activation_name(layer) not in ("linear", None):
                raise CalibrationError(f"{layer.name} applies {_activation_name(layer)} before the softmax")
            return layer
        if not isinstance(layer, _LINEAR_IN_BETWEEN):
            raise CalibrationError(f"{layer.name} ({type(layer).__name__}) sits between logits and softmax")
    raise CalibrationError(f"{network.name} has no linear layer before its softmax")


def _has_kernel(layer: keras.layers.Layer) -> bool:
    return isinstance(layer, keras.layers.Dense | keras.layers.Conv2D)


def _activation_name(layer: keras.layers.Layer) -> str | None:
    activation = getattr(layer, "activation", None)
    return getattr(activation, "__name__", None) if activation is not None else None


def _member_outputs(model: keras.Model):
    """Return the tensors the model's final Average layer averages, or None when it averages nothing."""
    last = model.layers[-1]
    if not isinstance(last, keras.layers.Average):
        return None
    return list(last.input)


# --- Pictures ----------------------------------------------------------------------------------------


def plot_reliability(members: np.ndarray, labels: np.ndarray, calibration: Calibration, path) -> None:
    """Save a reliability diagram, before and after scaling, with the share of answers per bin."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4.4), sharey=True)
    for ax, temperature, ece, title in (
        (axes[0], 1.0, calibration.ece_before, "as trained"),
        (axes[1], calibration.temperature, calibration.ece_after, f"T = {calibration.temperature:.2f}"),
    ):
        table = reliability_table(tempered(members, temperature), labels)
        centres = [(row["low"] + row["high"]) / 2 for row in table]
        width = 1.0 / len(table)
        filled = [row for row in table if row["count"]]
        ax.bar(
            [(row["low"] + row["high"]) / 2 for row in filled],
            [row["accuracy"] for row in filled],
            width=width * 0.9,
            color="#4c78a8",
            edgecolor="white",
            label="accuracy in bin",
        )
        ax.plot([0, 1], [0, 1], "--", color="#888", label="perfect calibration")
        shares = [row["count"] / max(len(labels), 1) for row in table]
        ax.step(centres, shares, where="mid", color="#f58518", label="share of answers")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("stated confidence (top class)")
        ax.set_title(f"{title}: ECE {ece:.3f}")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("accuracy")
    axes[0].legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
