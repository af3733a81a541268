"""Display transfer curves: sRGB (or the reference's 2.2 power) to linear intensity and back.

Example:

>>> import numpy as np
>>> float(linearise(np.float32(0.5))), float(encode(linearise(np.float32(0.5))))  # doctest: +ELLIPSIS
(0.214..., 0.5...)
"""

from __future__ import annotations

import numpy as np

LINEARISATION_CURVES = ("srgb", "gamma2.2")


def as_unit_float(image) -> np.ndarray:
    """An image as float32; uint8 values 0..255 are scaled to [0, 1]."""
    image = np.asarray(image)
    if image.dtype == np.uint8:
        return image.astype(np.float32) / 255.0
    return image.astype(np.float32)


def linearise(image_srgb: np.ndarray, curve: str = "srgb") -> np.ndarray:
    """Linear intensity of a display-encoded image.

    Args:
        image_srgb: values in [0, 1] (uint8: 0..255), any shape (e.g.
            `(H, W, 3)`).
        curve: ``"srgb"`` for the exact sRGB decoding curve (linear segment
            below 0.04045, then exponent 2.4), ``"gamma2.2"`` for the
            BioFaceNet reference's ``image ** 2.2``.

    Returns:
        float32 array of the same shape, in [0, 1].
    """
    x = np.clip(as_unit_float(image_srgb), 0.0, 1.0)
    if curve == "srgb":
        return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4).astype(np.float32)
    if curve == "gamma2.2":
        return x**2.2
    raise ValueError(f"unknown linearisation curve {curve!r}; expected one of {LINEARISATION_CURVES}")


def encode(image_linear: np.ndarray, curve: str = "srgb") -> np.ndarray:
    """Inverse of :func:`linearise`: display-encoded values in [0, 1]."""
    x = np.clip(np.asarray(image_linear, dtype=np.float32), 0.0, 1.0)
    if curve == "srgb":
        return np.where(x <= 0.0031308, 12.92 * x, 1.055 * x ** (1 / 2.4) - 0.055).astype(np.float32)
    if curve == "gamma2.2":
        return x ** (1 / 2.2)
    raise ValueError(f"unknown linearisation curve {curve!r}; expected one of {LINEARISATION_CURVES}")
