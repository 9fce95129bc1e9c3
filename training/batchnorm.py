"""BatchNorm statistics gathered again on faces as the model serves them. Keras, no Django.

A network with BatchNormalization keeps, for each channel, a moving mean and variance gathered while it
trained, on augmented faces: randomly zoomed, shifted and turned. A served model shows it something else:
the plain face, enlarged about its centre by the test-time zoom, and its mirror image. Normalising those
with the statistics of augmented faces shifts every layer's activations a little, and the shifts add up.
Gathering the statistics again on the training faces as the model serves them removes that mismatch
without learning anything: FixRes (Touvron et al., 2019) corrects the train/test zoom discrepancy the same
way.

:func:`refit_batchnorm` does what training does to those statistics, on those faces only: one pass over
the training faces in a seeded random order, in batches, each view of a batch through the network in
training mode (each BatchNormalization layer normalising by the batch's own statistics, dropout dropping,
as the layers after it saw in training), no weight learned. Each layer's moving mean and variance become
the plain average of its batches' statistics over the pass, not training's exponential average of the
last few hundred. Only the statistics change: the learned scale and offset stay, and so does the file's
structure. Layers that training leaves alone (``trainable`` False, as in a frozen pretrained backbone) stay
as they are.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np

from emotions.preprocessing import to_model_input
from training.trainer import leaf_networks, served_shift, served_views, served_zoom

BATCH = 128

Progress = Callable[[int, int], None]


def refit_batchnorm(
    model: keras.Model,
    faces: np.ndarray,
    *,
    batch_size: int = BATCH,
    seed: int = 0,
    progress: Progress | None = None,
) -> dict:
    """Gather the moving statistics of ``model``'s networks' BatchNormalization layers again on ``faces``
    ((n, 48, 48) uint8 training faces) in the views ``model`` serves (its zoom, shifted crops and mirror
    images); return what was done: faces, batch size, views, seed and the layers refitted.

    Batches are ``batch_size`` faces, or all of them where there are fewer (a remainder smaller than a
    batch is left out, as its statistics would be noisier); ``progress(done, total)`` is called after each.
    """
    if not len(faces):
        raise ValueError("re-estimating BatchNorm statistics needs training faces; there are none")
    batch_size = min(batch_size, len(faces))
    networks, mirror = leaf_networks(model)
    views = served_views(
        model.input_shape[1:], zoom=served_zoom(model), shift=served_shift(model), mirror=mirror
    )
    refitted = [(network, _updated_batchnorms(network)) for network in networks]
    momenta = {id(layer): layer.momentum for _, layers in refitted for layer in layers}
    order = np.random.default_rng(seed).permutation(len(faces))
    batches = len(faces) // batch_size
    seen = 0  # batches of one view through the networks so far
    try:
        for index in range(batches):
            picked = order[index * batch_size : (index + 1) * batch_size]
            for view in _as_list(views.predict_on_batch(to_model_input(faces[picked]))):
                for network, layers in refitted:
                    for layer in layers:
                        layer.momentum = seen / (seen + 1)  # the plain mean of the batches so far
                    network(view, training=True)
                seen += 1
            if progress is not None:
                progress(index + 1, batches)
    finally:
        for _, layers in refitted:
            for layer in layers:
                layer.momentum = momenta[id(layer)]
    return {
        "faces": batches * batch_size,
        "batch_size": batch_size,
        "views": len(views.outputs),
        "seed": seed,
        "layers": [f"{network.name}/{layer.name}" for network, layers in refitted for layer in layers],
    }


def _updated_batchnorms(model: keras.Model) -> list[keras.layers.BatchNormalization]:
    """Return the BatchNormalization layers that training updates, nested models' included."""
    found = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            found += _updated_batchnorms(layer) if layer.trainable else []
        elif isinstance(layer, keras.layers.BatchNormalization) and layer.trainable:
            found.append(layer)
    return found


def _as_list(values) -> list:
    return list(values) if isinstance(values, list | tuple) else [values]
