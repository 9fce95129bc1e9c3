"""The architectures an operator can train, built by name in backend-neutral Keras 3.

Every model takes ``(n, 48, 48, 1)`` float32 in [0, 1] (see
:func:`emotions.preprocessing.to_model_input`) and returns ``(n, 7)``
probabilities. Transfer models upscale to RGB inside the model, so serving
code never needs to know which architecture it runs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import keras
from keras import layers, regularizers

from emotions.labels import NUM_CLASSES
from emotions.preprocessing import INPUT_SHAPE
from training.config import ARCHITECTURES, TRANSFER_ARCHITECTURES

logger = logging.getLogger(__name__)

TRANSFER_INPUT_SIZE = 96


@dataclass
class BuiltModel:
    model: keras.Model
    # The pretrained part that fine-tuning unfreezes; None for models trained from scratch.
    backbone: keras.Model | None
    weights_note: str


def _scaled(filters: int, width: float) -> int:
    return max(1, round(filters * width))


def custom_cnn(num_classes: int = NUM_CLASSES, *, width: float = 1.0) -> BuiltModel:
    """Return the write-ups' VGG-style CNN: Conv2D/BatchNorm/MaxPool/Dropout blocks, then Dense."""
    inputs = keras.Input(INPUT_SHAPE)
    x = inputs
    for filters in (32, 64, 128, 256):
        for _ in range(2):
            x = layers.Conv2D(_scaled(filters, width), 3, padding="same", use_bias=False)(x)
            x = layers.BatchNormalization()(x)
            x = layers.Activation("relu")(x)
        x = layers.MaxPooling2D()(x)
        x = layers.Dropout(0.25)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(_scaled(256, width), activation="relu")(x)
    x = layers.BatchNormalization()(x)
    x = layers.Dropout(0.5)(x)
    outputs = layers.Dense(num_classes, activation="softmax")(x)
    return BuiltModel(keras.Model(inputs, outputs, name="custom_cnn"), None, "trained from scratch")


def mini_xception(num_classes: int = NUM_CLASSES, *, l2: float = 0.01, width: float = 1.0) -> BuiltModel:
    """Return mini-Xception (Arriaga et al. 2017): about 58k parameters at width 1."""
    reg = regularizers.l2(l2)
    inputs = keras.Input(INPUT_SHAPE)
    x = inputs
    for _ in range(2):
        x = layers.Conv2D(_scaled(8, width), 3, use_bias=False, kernel_regularizer=reg)(x)
        x = layers.BatchNormalization()(x)
        x = layers.Activation("relu")(x)
    for filters in (_scaled(f, width) for f in (16, 32, 64, 128)):
        residual = layers.Conv2D(filters, 1, strides=2, padding="same", use_bias=False)(x)
        residual = layers.BatchNormalization()(residual)
        x = layers.SeparableConv2D(filters, 3, padding="same", use_bias=False, depthwise_regularizer=reg)(x)
        x = layers.BatchNormalization()(x)
        x = layers.Activation("relu")(x)
        x = layers.SeparableConv2D(filters, 3, padding="same", use_bias=False, depthwise_regularizer=reg)(x)
        x = layers.BatchNormalization()(x)
        x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
        x = layers.Add()([x, residual])
    x = layers.Conv2D(num_classes, 3, padding="same")(x)
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Activation("softmax", dtype="float32")(x)
    return BuiltModel(keras.Model(inputs, outputs, name="mini_xception"), None, "trained from scratch")


def _gray_to_rgb(inputs: keras.KerasTensor, size: int) -> keras.KerasTensor:
    x = layers.Resizing(size, size, interpolation="bilinear")(inputs)
    return layers.Concatenate(axis=-1)([x, x, x])


def _transfer(
    name: str,
    application: Callable[..., keras.Model],
    scale_layers: list[layers.Layer],
    head: Callable[[keras.KerasTensor], keras.KerasTensor],
    *,
    num_classes: int,
    weights_path: str | Path | None,
    input_size: int,
) -> BuiltModel:
    weights, note = _imagenet_weights(name, application, weights_path)
    backbone = application(include_top=False, weights=weights, input_shape=(input_size, input_size, 3))
    backbone.trainable = weights is None  # frozen for transfer, trainable when learning from scratch
    inputs = keras.Input(INPUT_SHAPE)
    x = _gray_to_rgb(inputs, input_size)
    for layer in scale_layers:
        x = layer(x)
    x = backbone(x, training=False if weights is not None else None)
    x = head(x)
    outputs = layers.Dense(num_classes, activation="softmax", dtype="float32")(x)
    return BuiltModel(keras.Model(inputs, outputs, name=name), backbone, note)


def _pooled_head(x: keras.KerasTensor) -> keras.KerasTensor:
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(256, activation="relu")(x)
    return layers.Dropout(0.5)(x)


def _flatten_head(x: keras.KerasTensor) -> keras.KerasTensor:
    x = layers.Flatten()(x)
    x = layers.Dense(256, activation="relu")(x)
    x = layers.BatchNormalization()(x)
    return layers.Dropout(0.5)(x)


def vgg16(num_classes: int = NUM_CLASSES, *, weights_path=None, input_size=TRANSFER_INPUT_SIZE) -> BuiltModel:
    """Return VGG16 on upscaled gray-as-RGB input with a flatten head."""
    # VGG's "caffe" preprocessing: 0-255 pixels minus the ImageNet channel means (BGR order;
    # the three channels are the same gray here, so the order does not matter).
    scale = [
        layers.Rescaling(255.0),
        layers.Normalization(mean=[103.939, 116.779, 123.68], variance=[1.0, 1.0, 1.0]),
    ]
    return _transfer(
        "vgg16",
        keras.applications.VGG16,
        scale,
        _flatten_head,
        num_classes=num_classes,
        weights_path=weights_path,
        input_size=input_size,
    )


def resnet50v2(
    num_classes: int = NUM_CLASSES, *, weights_path=None, input_size=TRANSFER_INPUT_SIZE
) -> BuiltModel:
    """Return ResNet50V2 on upscaled gray-as-RGB input with a pooled head."""
    scale = [layers.Rescaling(2.0, offset=-1.0)]  # [0, 1] -> [-1, 1], the "tf" mode
    return _transfer(
        "resnet50v2",
        keras.applications.ResNet50V2,
        scale,
        _pooled_head,
        num_classes=num_classes,
        weights_path=weights_path,
        input_size=input_size,
    )


def efficientnetb2(
    num_classes: int = NUM_CLASSES, *, weights_path=None, input_size=TRANSFER_INPUT_SIZE
) -> BuiltModel:
    """Return EfficientNetB2 on upscaled gray-as-RGB input with a pooled head."""
    scale = [layers.Rescaling(255.0)]  # EfficientNet normalises 0-255 input itself
    return _transfer(
        "efficientnetb2",
        keras.applications.EfficientNetB2,
        scale,
        _pooled_head,
        num_classes=num_classes,
        weights_path=weights_path,
        input_size=input_size,
    )


# The names, and which of them are pretrained, are declared once in training.config; each names its builder.
BUILDERS: dict[str, Callable[..., BuiltModel]] = {name: globals()[name] for name in ARCHITECTURES}

# File names keras.applications downloads into ~/.keras/models; used when already there.
_CACHED_WEIGHTS = {
    "vgg16": "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
    "resnet50v2": "resnet50v2_weights_tf_dim_ordering_tf_kernels_notop.h5",
    "efficientnetb2": "efficientnetb2_notop.h5",
}


def build_model(
    name: str, *, num_classes: int = NUM_CLASSES, weights_path: str | Path | None = None, width: float = 1.0
) -> BuiltModel:
    """Build the architecture ``name``.

    ``weights_path`` is a local ImageNet weights file (transfer models only); ``width`` multiplies the
    filters of the models trained from scratch (2.0: twice the filters, about four times the parameters).
    """
    try:
        builder = BUILDERS[name]
    except KeyError:
        raise ValueError(f"unknown architecture {name!r}; choose one of {', '.join(ARCHITECTURES)}") from None
    if name in TRANSFER_ARCHITECTURES:
        if width != 1.0:
            raise ValueError(f"{name} is a pretrained architecture of fixed width; leave width at 1")
        return builder(num_classes, weights_path=weights_path)
    if weights_path:
        raise ValueError(f"{name} is trained from scratch and takes no ImageNet weights file")
    return builder(num_classes, width=width)


def _imagenet_weights(name: str, application, weights_path: str | Path | None) -> tuple[str | None, str]:
    if weights_path:
        path = Path(weights_path)
        if not path.is_file():
            raise FileNotFoundError(f"ImageNet weights file not found: {path}")
        return str(path), f"ImageNet weights from {path.name}"
    cached = Path(
        keras.config.keras_home() if hasattr(keras.config, "keras_home") else "~/.keras"
    ).expanduser()
    cached = cached / "models" / _CACHED_WEIGHTS[name]
    if cached.is_file():
        return str(cached), f"ImageNet weights from the Keras cache ({cached.name})"
    note = (
        f"no ImageNet weights for {name} (give a local weights file; nothing is downloaded at run time): "
        "training from scratch"
    )
    logger.warning(note)
    return None, note
