"""Output heads: one raw map per decoder, and the light/camera vector."""

from __future__ import annotations

import keras

from bioface_tf.physics.scaling import N_LIGHT_CAMERA

VECTOR_POOLING = ("flatten", "average")


HEAD_INITIALIZERS = ("glorot_uniform", "zeros")
"""Initialisers of the final map convolutions (``BioFaceBackbone(head_initializer=…)``)."""


def map_head(features, name: str, initializer: str = "glorot_uniform"):
    """Final 3×3 convolution to one raw map channel, in float32.

    Args:
        features: (B, H, W, C) decoder features.
        name: the raw map's name (``fmel_raw``, …).
        initializer: its kernel's initializer, one of
            :data:`HEAD_INITIALIZERS`: ``"glorot_uniform"`` (Keras's default)
            or ``"zeros"`` (every raw map starts at 0: mid-range pigment,
            diffuse and specular shading exp(0) = 1 before the exposure
            gain).

    Returns:
        (B, H, W, 1) float32, unconstrained (squashed by ``ParameterScaling``).
    """
    return keras.layers.Conv2D(1, 3, padding="same", dtype="float32", name=name, kernel_initializer=initializer)(
        features
    )


def light_camera_head(bottleneck, units: int, pooling: str = "flatten"):
    """The fully connected branch from the bottleneck to the 17-vector.

    Args:
        bottleneck: (B, h, w, C) features.
        units: width of the two hidden dense layers.
        pooling: ``"flatten"`` (the reference: every bottleneck pixel has
            its own weights, so the input size is fixed) or ``"average"``
            (global mean first: far fewer weights, any input size).

    Returns:
        ``light_camera_raw`` (B, 17) float32: 15 lighting then 2 camera
        parameters, unconstrained.
    """
    if pooling == "flatten":
        x = keras.layers.Flatten(name="light_camera_flatten")(bottleneck)
    elif pooling == "average":
        x = keras.layers.GlobalAveragePooling2D(name="light_camera_pool")(bottleneck)
    else:
        raise ValueError(f"vector_pooling must be one of {VECTOR_POOLING}, got {pooling!r}")
    for i in (1, 2):
        x = keras.layers.Dense(units, activation="relu", name=f"light_camera_dense_{i}")(x)
    return keras.layers.Dense(N_LIGHT_CAMERA, dtype="float32", name="light_camera_raw")(x)
