"""Biophysical skin reflectance lookup (PHYSICS.md §6)."""

from __future__ import annotations

import keras
import tensorflow as tf

from bioface_tf import spectra
from bioface_tf.physics._base import PhysicsLayer

GRID = spectra.N_SKIN_GRID


@keras.saving.register_keras_serializable(package="bioface")
class SkinReflectance(PhysicsLayer):
    """Per-pixel diffuse skin reflectance spectrum from melanin and blood.

    Bilinear, align-corners lookup in the precomputed 256 × 256 × 33 table of a
    two-layer Kubelka–Munk skin model (epidermal melanin volume fraction
    0.43·u³, dermal haemoglobin volume fraction 0.07·u³ on the grid
    u = linspace(0.01, 1, 256)). Differentiable with respect to both maps
    (piecewise-linear in each); inputs outside [-1, 1] are clipped.

    Args:
        spectral_rank: None (default) looks up full 33-sample spectra (an
            8.6 MB constant). An integer K stores the table as K coefficients
            per grid node times K basis spectra (its leading singular
            vectors): 256·256·K + 33·K numbers, for small exported models.
            The reconstructed reflectance is clipped at 0.

    Call arguments:
        inputs: dict with ``fmel`` and ``fblood``, each (B, H, W, 1) in [-1, 1].

    Returns:
        ``skin_reflectance`` (B, H, W, 33), in [0, 1).
    """

    def __init__(self, spectral_rank: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if spectral_rank is not None and not 1 <= spectral_rank <= spectra.N_WAVELENGTHS:
            raise ValueError(f"spectral_rank must be None or 1..{spectra.N_WAVELENGTHS}, got {spectral_rank}")
        self.spectral_rank = spectral_rank

    def build(self, input_shape=None):
        if self.spectral_rank is None:
            table = spectra.skin_reflectance_table()
            self._basis = None
        else:
            table, basis = spectra.skin_reflectance_basis(self.spectral_rank)
            self._basis = self.constant(basis)
        self._table = self.constant(table.reshape(GRID * GRID, -1))
        self.built = True

    def call(self, inputs):
        column, column_fraction = _grid_position(tf.squeeze(inputs["fmel"], -1))
        row, row_fraction = _grid_position(tf.squeeze(inputs["fblood"], -1))
        top_left = row * GRID + column
        corners = [
            tf.gather(self._table, top_left + offset)
            for offset in (0, 1, GRID, GRID + 1)
        ]
        fx = tf.expand_dims(column_fraction, -1)
        fy = tf.expand_dims(row_fraction, -1)
        top = corners[0] + fx * (corners[1] - corners[0])
        bottom = corners[2] + fx * (corners[3] - corners[2])
        interpolated = top + fy * (bottom - top)
        if self._basis is None:
            return interpolated
        return tf.nn.relu(tf.matmul(interpolated, self._basis))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape["fmel"][:-1]) + (spectra.N_WAVELENGTHS,)

    def get_config(self):
        return {**super().get_config(), "spectral_rank": self.spectral_rank}


def _grid_position(value: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Map value in [-1, 1] → (lower grid index, fraction towards the next)."""
    position = tf.clip_by_value((value + 1.0) / 2.0 * (GRID - 1), 0.0, GRID - 1.0)
    lower = tf.clip_by_value(tf.floor(position), 0.0, GRID - 2.0)
    return tf.cast(lower, tf.int32), position - lower
