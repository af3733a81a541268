"""Illuminant spectral power distribution (PHYSICS.md §3)."""

from __future__ import annotations

import keras
import tensorflow as tf

from bioface_tf import spectra
from bioface_tf.physics._base import PhysicsLayer, safe_positive

D_SERIES_MODES = ("table", "continuous")


@keras.saving.register_keras_serializable(package="bioface")
class IlluminantSpectrum(PhysicsLayer):
    """Mixture of CIE illuminants: ``e = wA·A + wD·D(cct) + Σ wFi·Fi``.

    Each base illuminant is normalised to sum 1 over 400..720 nm and the
    mixture is renormalised to sum 1, so ``e`` is a relative spectral power
    distribution (unitless).

    The daylight component is indexed by ``cct`` ∈ [1, 22]: 1 → 4000 K,
    22 → 25000 K. With ``d_series="table"`` (the contract) it interpolates
    linearly in ``cct`` between the 22 tabulated CIE D illuminants, which keeps
    a gradient with respect to ``cct``. ``d_series="continuous"`` evaluates the
    CIE daylight basis S0 + M1·S1 + M2·S2 at ``4000 + (cct − 1)·1000`` K
    instead.

    Args:
        d_series: ``"table"`` (default) or ``"continuous"``.

    Call arguments:
        inputs: dict with ``light_weights`` (B, 14), order [A, D, F1..F12],
            non-negative, summing to 1; and ``cct`` (B, 1) in [1, 22].

    Returns:
        ``illuminant_spd`` (B, 33).

    Example:

    >>> spd = IlluminantSpectrum()({"light_weights": tf.one_hot([0], 14),
    ...                             "cct": tf.ones((1, 1))})
    >>> spd.shape
    TensorShape([1, 33])
    """

    def __init__(self, d_series: str = "table", **kwargs):
        super().__init__(**kwargs)
        if d_series not in D_SERIES_MODES:
            raise ValueError(f"d_series must be one of {D_SERIES_MODES}, got {d_series!r}")
        self.d_series = d_series

    def build(self, input_shape=None):
        tables = spectra.illuminants()
        self._illuminant_a = self.constant(tables.a)
        self._fluorescent = self.constant(tables.fluorescent)
        self._d_series = self.constant(tables.d_series)
        self._d_basis = self.constant(tables.d_basis)
        self.built = True

    def daylight(self, cct: tf.Tensor) -> tf.Tensor:
        """Normalised CIE daylight for ``cct`` (B, 1); returns (B, 33)."""
        cct = tf.clip_by_value(cct, 1.0, 22.0)
        if self.d_series == "continuous":
            return self._daylight_from_basis(4000.0 + (cct - 1.0) * 1000.0)
        position = cct - 1.0
        lower = tf.clip_by_value(tf.floor(position), 0.0, 20.0)
        fraction = position - lower
        index = tf.cast(lower[:, 0], tf.int32)
        below = tf.gather(self._d_series, index)
        above = tf.gather(self._d_series, index + 1)
        return (1.0 - fraction) * below + fraction * above

    def _daylight_from_basis(self, kelvin: tf.Tensor) -> tf.Tensor:
        t = kelvin
        xd_low = -4.6070e9 / t**3 + 2.9678e6 / t**2 + 0.09911e3 / t + 0.244063
        xd_high = -2.0064e9 / t**3 + 1.9018e6 / t**2 + 0.24748e3 / t + 0.237040
        xd = tf.where(t <= 7000.0, xd_low, xd_high)
        yd = -3.000 * xd**2 + 2.870 * xd - 0.275
        m = 0.0241 + 0.2562 * xd - 0.7341 * yd
        m1 = (-1.3515 - 1.7703 * xd + 5.9114 * yd) / m
        m2 = (0.0300 - 31.4424 * xd + 30.0717 * yd) / m
        spd = self._d_basis[0] + m1 * self._d_basis[1] + m2 * self._d_basis[2]
        return spd / safe_positive(tf.reduce_sum(spd, axis=-1, keepdims=True))

    def call(self, inputs):
        weights = tf.maximum(inputs["light_weights"], 0.0)
        daylight = self.daylight(inputs["cct"])
        spd = (
            weights[:, 0:1] * self._illuminant_a
            + weights[:, 1:2] * daylight
            + tf.matmul(weights[:, 2:], self._fluorescent)
        )
        return spd / safe_positive(tf.reduce_sum(spd, axis=-1, keepdims=True))

    def compute_output_shape(self, input_shape):
        return (input_shape["light_weights"][0], spectra.N_WAVELENGTHS)

    def get_config(self):
        return {**super().get_config(), "d_series": self.d_series}
