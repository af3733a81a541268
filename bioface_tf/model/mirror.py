"""Mirror averaging: estimate a face and its left–right mirror image, and average.

A face's pigments, shading and highlights mirror with the face: the maps of
the mirrored photo, mirrored back, estimate the same maps, and the camera
and the light are the same. The network's errors do not mirror that way,
so the average of the two estimates is closer to the truth than either:
on the validation family (300 faces) the shipped model's per-face r rose
by 0.009 (melanin), 0.009 (haemoglobin), 0.010 (shading) and 0.020
(specular), and the reconstruction's PSNR by 0.3 dB
(benchmarks/results/mirror_average.md). The cost is a second pass of the
network.

:class:`BioFaceNet` averages this way at inference (not in training), and
the on-device encoder (:func:`mobile_export.encoder.build_encoder`) has the
second pass in its graph.
"""

from __future__ import annotations

import keras
import tensorflow as tf

MAPS = ("fmel", "fblood", "shading", "specmask")
"""Per-pixel parameters, (B, H, W, 1): mirrored back before averaging."""


def mirror(image):
    """:class:`Mirror` as a function: (B, H, W, C) → (B, H, W, C), columns reversed."""
    return tf.reverse(image, axis=[2])


def mirror_average(parameters: dict, mirrored: dict) -> dict:
    """:class:`MirrorAverage` as a function: same arguments, float32 results."""
    averaged = {}
    for name, value in parameters.items():
        other = tf.cast(mirrored[name], tf.float32)
        if name in MAPS:
            other = mirror(other)
        averaged[name] = 0.5 * (tf.cast(value, tf.float32) + other)
    return averaged


@keras.saving.register_keras_serializable(package="bioface")
class Mirror(keras.layers.Layer):
    """Left–right mirror image of a batch of images or maps.

    Call arguments:
        image: (B, H, W, C).

    Returns:
        (B, H, W, C), column ``w`` of the result is column ``W − 1 − w`` of ``image``.
    """

    def call(self, image):
        return mirror(image)


@keras.saving.register_keras_serializable(package="bioface")
class MirrorAverage(keras.layers.Layer):
    """Average the physical parameters of a face and of its mirror image.

    Averaged in the units the decoder takes (maps in [-1, 1], shading and
    specular > 0, light weights summing to 1, ``cct``, ``b``), so every
    range is kept; the maps of the mirrored face are mirrored back first.

    Call arguments:
        parameters: :class:`~bioface_tf.physics.ParameterScaling`'s output
            for the photo: ``fmel``, ``fblood``, ``shading``, ``specmask``
            (B, H, W, 1), ``light_weights`` (B, 14), ``cct`` (B, 1), ``b`` (B, 2).
        mirrored: the same for the mirrored photo.

    Returns:
        dict with the same keys and shapes.
    """

    def __init__(self, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)

    def call(self, parameters, mirrored):
        return mirror_average(parameters, mirrored)

    def compute_output_shape(self, parameters_shape, mirrored_shape):
        return dict(parameters_shape)
