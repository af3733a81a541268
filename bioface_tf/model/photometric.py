"""Exposure-free network input: the photo's relative brightness and chromaticity.

A face's pigments set the *colour* of its skin and the light sets its
*brightness*: halving the exposure halves every linear pixel and leaves
melanin and haemoglobin where they were. A network fed the preprocessed
image directly has to learn that invariance from data, and on photos it
does not (docs/TRAINING.md, "Photometric input"). These two layers build it in:

- :class:`PhotometricInput` turns the preprocessed image into features that
  do not change when every linear pixel is scaled by one factor — the log of
  each pixel relative to the image's mean luminance, and its chromaticity
  ``rgb / (r + g + b)`` — and returns that factor's log apart
  (``log_exposure``);
- :class:`ExposureGain` gives it back to the two maps that carry light,
  adding ``log_exposure`` to the raw diffuse and specular shading before
  :class:`~bioface_tf.physics.ParameterScaling` exponentiates them.

So the network predicts shading relative to the photo's exposure; the
reconstruction, and every edit, stay in absolute units.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from bioface_tf.data.pipeline import MEAN_RGB, PREPROCESSING, REFERENCE, REFERENCE_GAMMA
from bioface_tf.errors import BioFaceError

INPUT_FEATURES = ("image", "photometric")
"""What the backbone sees: the preprocessed image as is, or :class:`PhotometricInput`'s features."""
PHOTOMETRIC_CHANNELS = 6
LUMINANCE = (0.2126, 0.7152, 0.0722)
RELATIVE_FLOOR = 1.0 / 64.0
"""Added to the relative linear pixel before the log: noise in near-black pixels stays small."""
CHROMATICITY_FLOOR = 0.02
"""Share of the mean luminance added to ``r + g + b``: dark pixels get a grey, not a noisy, chromaticity."""
EXPOSURE_FLOOR = 1e-4
SRGB_KNEE = 0.04045


def input_channels(input_features: str) -> int:
    """Channels the backbone reads for ``input_features`` (:data:`INPUT_FEATURES`): 3 or 6.

    Raises:
        BioFaceError: an unknown ``input_features``.
    """
    if input_features not in INPUT_FEATURES:
        raise BioFaceError(f"input_features must be one of {INPUT_FEATURES}, got {input_features!r}")
    return PHOTOMETRIC_CHANNELS if input_features == "photometric" else 3


@keras.saving.register_keras_serializable(package="bioface")
class PhotometricInput(keras.layers.Layer):
    """Preprocessed image → exposure-invariant features and the log exposure.

    With ``L`` the image's linear RGB (the preprocessing undone) and ``e``
    the mean Rec. 709 luminance of the whole image:

    - channels 0–2: ``log(L / e + 1/64)``;
    - channels 3–5: ``3·L / (r + g + b + 0.02·e) − 1`` (the chromaticity,
      centred on grey).

    Scaling ``L`` by any factor ``k > 0`` leaves the features unchanged and
    adds ``log k`` to ``log_exposure`` (exactly, up to float rounding;
    8-bit photos add their quantisation and clipping).

    Args:
        preprocessing: how the input was prepared, ``"reference"``
            (``255·srgb^2.2 − mean``) or ``"display"`` (``255·srgb − mean``);
            either way the photo is linearised with the exact sRGB curve.

    Call arguments:
        image: (B, H, W, 3) preprocessed image.

    Returns:
        dict with ``features`` (B, H, W, 6) and ``log_exposure`` (B, 1, 1, 1),
        float32.
    """

    def __init__(self, preprocessing: str = REFERENCE, **kwargs):
        if preprocessing not in PREPROCESSING:
            raise BioFaceError(f"preprocessing must be one of {PREPROCESSING}, got {preprocessing!r}")
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.preprocessing = preprocessing

    def linear(self, image: tf.Tensor) -> tf.Tensor:
        """Linear RGB in [0, 1] from the preprocessed image, (B, H, W, 3).

        The preprocessing is undone back to the sRGB-encoded photo, which is
        then decoded with the exact sRGB curve (IEC 61966-2-1) — the curve
        the decoder encodes with, and the one a camera's exposure acts through.
        """
        intensity = tf.maximum((tf.cast(image, tf.float32) + tf.constant(MEAN_RGB)) / 255.0, 0.0)
        srgb = tf.pow(intensity, 1.0 / REFERENCE_GAMMA) if self.preprocessing == REFERENCE else intensity
        return tf.where(srgb <= SRGB_KNEE, srgb / 12.92, tf.pow((srgb + 0.055) / 1.055, 2.4))

    def call(self, image):
        linear = self.linear(image)
        luminance = tf.reduce_sum(linear * tf.constant(LUMINANCE), axis=-1, keepdims=True)
        exposure = tf.maximum(tf.reduce_mean(luminance, axis=(1, 2), keepdims=True), EXPOSURE_FLOOR)
        relative = tf.math.log(linear / exposure + RELATIVE_FLOOR)
        total = tf.reduce_sum(linear, axis=-1, keepdims=True) + CHROMATICITY_FLOOR * exposure
        chromaticity = 3.0 * linear / total - 1.0
        return {"features": tf.concat([relative, chromaticity], axis=-1), "log_exposure": tf.math.log(exposure)}

    def compute_output_shape(self, input_shape):
        batch, height, width = tuple(input_shape)[:3]
        return {"features": (batch, height, width, PHOTOMETRIC_CHANNELS), "log_exposure": (batch, 1, 1, 1)}

    def get_config(self):
        return {**super().get_config(), "preprocessing": self.preprocessing}


@keras.saving.register_keras_serializable(package="bioface")
class ExposureGain(keras.layers.Layer):
    """Give the exposure back to the light-carrying raw maps.

    Call arguments:
        raw: the backbone's outputs (``shading_raw`` and ``spec_raw``
            (B, H, W, 1) among them).
        log_exposure: (B, 1, 1, 1) from :class:`PhotometricInput`.

    Returns:
        ``raw`` with ``log_exposure`` added to ``shading_raw`` and
        ``spec_raw`` (so ``shading = exp(shading_raw)·exposure``); the other
        entries unchanged.
    """

    LIGHT_MAPS = ("shading_raw", "spec_raw")

    def __init__(self, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)

    def call(self, raw, log_exposure):
        gain = tf.cast(log_exposure, tf.float32)
        return {
            key: tf.cast(value, tf.float32) + gain if key in self.LIGHT_MAPS else value for key, value in raw.items()
        }

    def compute_output_shape(self, raw_shape, log_exposure_shape):
        return dict(raw_shape)
