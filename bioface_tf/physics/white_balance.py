"""White balance by the light colour (PHYSICS.md §8)."""

from __future__ import annotations

import keras

from bioface_tf.physics._base import PhysicsLayer, safe_positive

LIGHT_FLOOR = 1e-8


@keras.saving.register_keras_serializable(package="bioface")
class WhiteBalance(PhysicsLayer):
    """Von Kries white balance in camera space: ``wb_c = raw_c / light_c``.

    A surface that reflects the light unchanged (or a pure specular
    highlight) becomes equal in all three channels. The light colour is
    floored at 1e-8 (real values are ~1e-2) so a degenerate black light
    cannot divide by zero.

    Call arguments:
        inputs: dict with ``raw`` (B, H, W, 3) and ``light_colour`` (B, 3).

    Returns:
        ``white_balanced`` (B, H, W, 3).
    """

    def call(self, inputs):
        light = safe_positive(inputs["light_colour"], LIGHT_FLOOR)
        return inputs["raw"] / light[:, None, None, :]

    def compute_output_shape(self, input_shape):
        return tuple(input_shape["raw"])
