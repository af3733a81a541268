"""Colour pipeline: camera raw → CIE XYZ → linear sRGB → display sRGB (PHYSICS.md §8, §9)."""

from __future__ import annotations

import keras
import tensorflow as tf

from bioface_tf import spectra
from bioface_tf.physics._base import PhysicsLayer
from bioface_tf.physics.camera import B_RANGE, CameraSensitivity

RAW_TO_XYZ_MODES = ("exact", "table")
TABLE_SIZE = 128
SRGB_LINEAR_LIMIT = 0.0031308


@keras.saving.register_keras_serializable(package="bioface")
class RawToXYZMatrix(PhysicsLayer):
    """The camera's 3×3 raw → CIE XYZ matrix T(b), with ``XYZ = T · wb``.

    T is the least-squares fit of the CIE 1931 colour matching functions by
    the camera's sensitivities, ``T = (pinv(S3ᵀ) · XYZcmf)ᵀ``, rows rescaled
    to sum to 0.3253, 0.3425, 0.3723 (the XYZ of the white-balanced white).

    ``mode="exact"`` (default) computes T at every b in closed form:
    ``T = XYZcmfᵀ S3ᵀ (S3 S3ᵀ)⁻¹`` with the 3×3 inverse by cofactors — only
    elementwise ops and small matmuls, so it also converts to TFLite builtins.
    ``mode="table"`` samples the reference's 128 × 128 × 9 table bilinearly
    (align corners) over b ∈ [-3, 3]².

    Args:
        mode: ``"exact"`` or ``"table"``.

    Call arguments:
        b: (B, 2) camera parameters, clipped to [-3, 3].

    Returns:
        ``T_raw2xyz`` (B, 3, 3).
    """

    def __init__(self, mode: str = "exact", **kwargs):
        super().__init__(**kwargs)
        if mode not in RAW_TO_XYZ_MODES:
            raise ValueError(f"mode must be one of {RAW_TO_XYZ_MODES}, got {mode!r}")
        self.mode = mode

    def build(self, input_shape=None):
        self._row_sums = self.constant(spectra.XYZ_ROW_SUMS[:, None])
        if self.mode == "table":
            self._table = self.constant(spectra.raw_to_xyz_table(TABLE_SIZE))
        else:
            self._camera = CameraSensitivity(name="camera_sensitivity")
            self._camera.build((None, 2))
            self._cmf = self.constant(spectra.colour_matching_functions())
        self.built = True

    def call(self, b):
        b = tf.clip_by_value(b, -B_RANGE, B_RANGE)
        if self.mode == "table":
            return self._from_table(b)
        s3 = self._camera(b)
        gram = tf.matmul(s3, s3, transpose_b=True)
        projection = tf.einsum("bcl,lx->bcx", s3, self._cmf)
        fit = tf.matmul(_inverse_3x3(gram), projection)
        t = tf.transpose(fit, (0, 2, 1))
        row_sum = tf.reduce_sum(t, axis=-1, keepdims=True)
        return t * (self._row_sums / row_sum)

    def _from_table(self, b: tf.Tensor) -> tf.Tensor:
        position = (b + B_RANGE) / (2 * B_RANGE) * (TABLE_SIZE - 1)
        lower = tf.clip_by_value(tf.floor(position), 0.0, TABLE_SIZE - 2.0)
        fraction = position - lower
        i, j = tf.unstack(tf.cast(lower, tf.int32), axis=-1)
        fi, fj = fraction[:, 0:1], fraction[:, 1:2]
        c00, c01, c10, c11 = (
            tf.gather_nd(self._table, tf.stack([i + di, j + dj], -1))
            for di, dj in ((0, 0), (0, 1), (1, 0), (1, 1))
        )
        top = c00 + fj * (c01 - c00)
        bottom = c10 + fj * (c11 - c10)
        return tf.reshape(top + fi * (bottom - top), (-1, 3, 3))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 3, 3)

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


def _inverse_3x3(m: tf.Tensor) -> tf.Tensor:
    """Inverse of (B, 3, 3) matrices by cofactors (adjugate / determinant)."""
    a, b, c = m[:, 0, 0], m[:, 0, 1], m[:, 0, 2]
    d, e, f = m[:, 1, 0], m[:, 1, 1], m[:, 1, 2]
    g, h, i = m[:, 2, 0], m[:, 2, 1], m[:, 2, 2]
    adjugate = tf.stack(
        [
            tf.stack([e * i - f * h, c * h - b * i, b * f - c * e], -1),
            tf.stack([f * g - d * i, a * i - c * g, c * d - a * f], -1),
            tf.stack([d * h - e * g, b * g - a * h, a * e - b * d], -1),
        ],
        axis=-2,
    )
    determinant = a * (e * i - f * h) + b * (f * g - d * i) + c * (d * h - e * g)
    return adjugate / determinant[:, None, None]


@keras.saving.register_keras_serializable(package="bioface")
class RawToLinearSRGB(PhysicsLayer):
    """White-balanced raw → CIE XYZ (by T) → linear sRGB, then ReLU.

    Call arguments:
        inputs: dict with ``white_balanced`` (B, H, W, 3) and ``T_raw2xyz``
            (B, 3, 3).

    Returns:
        ``linear_srgb`` (B, H, W, 3), ≥ 0 (not clipped above).
    """

    def build(self, input_shape=None):
        self._xyz_to_srgb = self.constant(spectra.XYZ_TO_LINEAR_SRGB)
        self.built = True

    def call(self, inputs):
        to_srgb = tf.matmul(self._xyz_to_srgb, inputs["T_raw2xyz"])
        return tf.nn.relu(tf.einsum("bhwc,bkc->bhwk", inputs["white_balanced"], to_srgb))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape["white_balanced"])


@keras.saving.register_keras_serializable(package="bioface")
class SRGBEncoding(PhysicsLayer):
    """The sRGB transfer curve (IEC 61966-2-1): linear light → display values.

    ``12.92·x`` below 0.0031308, ``1.055·x^(1/2.4) − 0.055`` above, with the
    input clipped to [0, 1] so the output is a displayable image in [0, 1].
    The gradient is finite everywhere (the power is never taken near 0).

    Call arguments:
        linear: (B, H, W, 3) linear sRGB.

    Returns:
        ``srgb`` (B, H, W, 3) in [0, 1].
    """

    def call(self, linear):
        return srgb_encode(linear)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)


def srgb_encode(linear):
    """sRGB transfer curve on a tensor; input clipped to [0, 1]."""
    x = tf.clip_by_value(linear, 0.0, 1.0)
    curved = 1.055 * tf.pow(tf.maximum(x, SRGB_LINEAR_LIMIT), 1.0 / 2.4) - 0.055
    return tf.where(x <= SRGB_LINEAR_LIMIT, 12.92 * x, curved)


def srgb_decode(encoded):
    """Inverse sRGB transfer curve on a tensor; input clipped to [0, 1]."""
    x = tf.clip_by_value(encoded, 0.0, 1.0)
    curved = tf.pow((tf.maximum(x, 0.04045) + 0.055) / 1.055, 2.4)
    return tf.where(x <= 0.04045, x / 12.92, curved)
