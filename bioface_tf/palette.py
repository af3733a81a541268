"""Skin-tone palettes rendered through the physics decoder.

A palette is a grid of flat skin patches: melanin increases along columns,
haemoglobin along rows, under a chosen illuminant and camera. It shows what
the biophysical model can express before any network is trained.
"""

from __future__ import annotations

import numpy as np

from bioface_tf import spectra

ILLUMINANT_CHOICES = {
    "D65": ("D", 3.5),
    "A": ("A", 1.0),
    **{name: (name, 1.0) for name in spectra.FLUORESCENT_NAMES},
}


def illuminant_parameters(name: str) -> tuple[np.ndarray, float]:
    """``(light_weights (14,), cct)`` for a named illuminant.

    ``D65`` is the daylight mixture at cct 3.5 (halfway between the tabulated
    6000 K and 7000 K, i.e. 6500 K); ``A`` and ``F1``..``F12`` are the pure
    CIE illuminants.
    """
    if name not in ILLUMINANT_CHOICES:
        raise ValueError(f"unknown illuminant {name!r}; choose from {', '.join(ILLUMINANT_CHOICES)}")
    base, cct = ILLUMINANT_CHOICES[name]
    weights = np.zeros(len(spectra.ILLUMINANT_NAMES), np.float32)
    weights[spectra.ILLUMINANT_NAMES.index(base)] = 1.0
    return weights, cct


def render_palette(
    n: int = 8, illuminant: str = "D65", b: tuple[float, float] = (0.0, 0.0), patch: int = 24
) -> np.ndarray:
    """Render an n × n palette of skin patches.

    Args:
        n: patches per side; melanin fmel and haemoglobin fblood each step
            evenly over [-1, 1].
        illuminant: a name from :data:`ILLUMINANT_CHOICES`.
        b: camera parameters (0, 0 is the mean of the 28 cameras).
        patch: side of one patch in pixels.

    Returns:
        (n·patch, n·patch, 3) display sRGB in [0, 1], float32; rows are
        haemoglobin (low at the top), columns melanin (low at the left).
    """
    from bioface_tf.physics import PhysicsDecoder

    values = np.linspace(-1.0, 1.0, n, dtype=np.float32)
    fblood, fmel = np.meshgrid(values, values, indexing="ij")
    weights, cct = illuminant_parameters(illuminant)
    out = PhysicsDecoder()(
        {
            "fmel": fmel[None, ..., None],
            "fblood": fblood[None, ..., None],
            "shading": np.ones((1, n, n, 1), np.float32),
            "specmask": np.zeros((1, n, n, 1), np.float32),
            "b": np.float32([b]),
            "light_weights": weights[None],
            "cct": np.float32([[cct]]),
        }
    )
    colours = out["srgb"].numpy()[0]
    return np.repeat(np.repeat(colours, patch, axis=0), patch, axis=1)
