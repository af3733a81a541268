"""Camera spectral sensitivity from two PCA parameters (PHYSICS.md §4)."""

from __future__ import annotations

import keras
import tensorflow as tf

from bioface_tf import spectra
from bioface_tf.physics._base import PhysicsLayer

B_RANGE = 3.0


@keras.saving.register_keras_serializable(package="bioface")
class CameraSensitivity(PhysicsLayer):
    """Camera R, G, B spectral sensitivities ``S = max(PC·b + μ, 0)``.

    A two-component PCA model of 28 measured cameras (Jiang et al., WACV
    2013). Each channel of each database camera is normalised to sum 1, so
    the sensitivities are relative (unitless per 10 nm sample).

    Call arguments:
        b: (B, 2) camera parameters, clipped to [-3, 3].

    Returns:
        ``camera_sensitivity`` (B, 3, 33), rows R, G, B.
    """

    def build(self, input_shape=None):
        pca = spectra.camera_pca()
        self._mean = self.constant(pca.mean)
        self._components = self.constant(pca.components)
        self.built = True

    def call(self, b):
        b = tf.clip_by_value(b, -B_RANGE, B_RANGE)
        stacked = tf.nn.relu(tf.matmul(b, self._components) + self._mean)
        return tf.reshape(stacked, (-1, 3, spectra.N_WAVELENGTHS))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 3, spectra.N_WAVELENGTHS)
