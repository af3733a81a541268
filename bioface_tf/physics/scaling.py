"""From raw network outputs to physical parameters (PHYSICS.md §2)."""

from __future__ import annotations

import keras
import tensorflow as tf

from bioface_tf.physics._base import PhysicsLayer

N_LIGHT_WEIGHTS = 14
N_LIGHT_CAMERA = 17
LOG_SHADING_RANGE = 30.0


@keras.saving.register_keras_serializable(package="bioface")
class ParameterScaling(PhysicsLayer):
    """The reference "scaling net": squash raw outputs into physical ranges.

    - ``fmel = 2·sigmoid(fmel_raw) − 1`` and ``fblood`` alike, in [-1, 1];
    - ``shading = exp(shading_raw)``, ``specmask = exp(spec_raw)``, > 0 (the
      raw values are clipped to ±30 so exp stays finite in float32);
    - light: softmax over the first 14 of ``light_camera_raw`` gives the
      weights of [A, D, F1..F12]; ``cct = 21·sigmoid(l15) + 1`` in [1, 22];
    - camera: ``b = 6·sigmoid(b_raw) − 3`` in [-3, 3]².

    Call arguments:
        inputs: dict with ``fmel_raw``, ``fblood_raw``, ``shading_raw``,
            ``spec_raw`` (B, H, W, 1) and ``light_camera_raw`` (B, 17)
            (15 lighting parameters, then 2 camera parameters).

    Returns:
        dict with ``fmel``, ``fblood``, ``shading``, ``specmask``
        (B, H, W, 1), ``light_weights`` (B, 14), ``cct`` (B, 1), ``b`` (B, 2):
        exactly the inputs of :class:`PhysicsDecoder`.
    """

    def call(self, inputs):
        vector = inputs["light_camera_raw"]
        log_range = (-LOG_SHADING_RANGE, LOG_SHADING_RANGE)
        return {
            "fmel": 2.0 * tf.sigmoid(inputs["fmel_raw"]) - 1.0,
            "fblood": 2.0 * tf.sigmoid(inputs["fblood_raw"]) - 1.0,
            "shading": tf.exp(tf.clip_by_value(inputs["shading_raw"], *log_range)),
            "specmask": tf.exp(tf.clip_by_value(inputs["spec_raw"], *log_range)),
            "light_weights": tf.nn.softmax(vector[:, :N_LIGHT_WEIGHTS], axis=-1),
            "cct": 21.0 * tf.sigmoid(vector[:, N_LIGHT_WEIGHTS : N_LIGHT_WEIGHTS + 1]) + 1.0,
            "b": 6.0 * tf.sigmoid(vector[:, N_LIGHT_WEIGHTS + 1 : N_LIGHT_CAMERA]) - 3.0,
        }

    def compute_output_shape(self, input_shape):
        image = tuple(input_shape["fmel_raw"])
        batch = input_shape["light_camera_raw"][0]
        return {
            "fmel": image,
            "fblood": image,
            "shading": image,
            "specmask": image,
            "light_weights": (batch, N_LIGHT_WEIGHTS),
            "cct": (batch, 1),
            "b": (batch, 2),
        }
