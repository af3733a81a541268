"""Synthetic face-like images with a known specular component.

A test and benchmark scene for :mod:`bioface_tf.specular`, built directly in
the dichromatic model (not a spectral render): an ellipsoidal "face" under one
directional light plus ambient light, with

* a skin-coloured diffuse albedo whose chromaticity varies smoothly (a
  melanin-like gradient) and piecewise (a redder mouth patch, darker and less
  saturated brows) — so the dark channel of the diffuse part is far from 0;
* Lambertian shading;
* a sparse Blinn–Phong specular lobe;
* the illuminant colour applied to both terms, then noise and sRGB encoding.

Example:

>>> from bioface_tf.dichromatic_scene import render_face
>>> scene = render_face(size=64, seed=0)
>>> scene.image_srgb.shape, scene.specular.shape
((64, 64, 3), (64, 64))
"""

from __future__ import annotations

import dataclasses

import numpy as np

from bioface_tf.transfer_curve import encode

SKIN_LINEAR = np.array([0.60, 0.33, 0.22], np.float32)
LIPS_LINEAR = np.array([0.55, 0.18, 0.16], np.float32)
BROWS_LINEAR = np.array([0.12, 0.08, 0.06], np.float32)


@dataclasses.dataclass(frozen=True)
class DichromaticFace:
    """A rendered scene and its ground truth.

    Attributes:
        image_srgb: `(H, W, 3)` float32 sRGB-encoded image in [0, 1].
        mask: `(H, W)` bool face mask.
        diffuse: `(H, W, 3)` true diffuse image, linear intensity.
        specular: `(H, W)` true specular map, linear intensity (channel mean of
            the specular image, the convention of :mod:`bioface_tf.specular`).
        illuminant: `(3,)` illuminant colour, channel mean 1.
        normals: `(H, W, 3)` unit surface normals, camera frame (x right,
            y down the image, z towards the camera).
    """

    image_srgb: np.ndarray
    mask: np.ndarray
    diffuse: np.ndarray
    specular: np.ndarray
    illuminant: np.ndarray
    normals: np.ndarray


def render_face(
    size: int = 64,
    seed: int = 0,
    illuminant=(1.0, 1.0, 1.0),
    specular_strength: float = 0.35,
    noise: float = 0.004,
) -> DichromaticFace:
    """Render one face-like dichromatic scene.

    Args:
        size: image height and width in pixels.
        seed: randomises light direction, lobe sharpness, skin tone and layout.
        illuminant: `(3,)` linear sRGB light colour (normalised to mean 1).
        specular_strength: peak specular intensity (linear, white light).
        noise: standard deviation of Gaussian noise added in linear intensity.

    Returns:
        A :class:`DichromaticFace`.
    """
    rng = np.random.default_rng(seed)
    gamma = np.asarray(illuminant, np.float32)
    gamma = gamma / gamma.mean()
    v, u = np.mgrid[-1:1:size * 1j, -1:1:size * 1j].astype(np.float32)
    cx, cy = rng.uniform(-0.08, 0.08, 2)
    rx, ry = rng.uniform(0.62, 0.75), rng.uniform(0.80, 0.92)
    x, y = (u - cx) / rx, (v - cy) / ry
    r2 = x**2 + y**2
    mask = r2 < 1.0
    # Ellipsoid normals with a nose ridge for a second curvature.
    z = np.sqrt(np.clip(1.0 - r2, 0.0, 1.0)) + 0.25 * np.exp(-(x**2) / 0.02 - (y - 0.05) ** 2 / 0.15)
    dzdy, dzdx = np.gradient(z, 2.0 / size)
    normal = np.stack([-dzdx * 0.35, -dzdy * 0.35, np.ones_like(z)], axis=-1)
    normal /= np.linalg.norm(normal, axis=-1, keepdims=True)
    light = np.array([rng.uniform(-0.5, 0.5), rng.uniform(-0.6, 0.1), 1.0], np.float32)
    light /= np.linalg.norm(light)
    shading = 0.25 + 0.75 * np.clip(normal @ light, 0.0, None)
    halfway = light + np.array([0.0, 0.0, 1.0], np.float32)
    halfway /= np.linalg.norm(halfway)
    shininess = rng.uniform(25.0, 60.0)
    specular = specular_strength * np.clip(normal @ halfway, 0.0, None) ** shininess

    # Skin albedo: a smooth melanin-like tint plus mouth and brow patches.
    tone = rng.uniform(0.7, 1.1)
    tint = np.exp(-(0.25 * (y + 0.3 * x) + 0.1 * rng.standard_normal())[..., None] * np.array([0.1, 0.5, 0.8]))
    albedo = tone * SKIN_LINEAR * tint
    mouth = ((x / 0.35) ** 2 + ((y - 0.55) / 0.09) ** 2) < 1.0
    albedo[mouth] = tone * LIPS_LINEAR
    for side in (-1.0, 1.0):
        brow = (((x - side * 0.4) / 0.25) ** 2 + ((y + 0.38) / 0.06) ** 2) < 1.0
        albedo[brow] = BROWS_LINEAR
    diffuse = albedo * shading[..., None] * gamma
    specular = specular * mask
    linear = diffuse + specular[..., None] * gamma
    linear = np.where(mask[..., None], linear, 0.05 * gamma)
    linear = linear + noise * rng.standard_normal(linear.shape).astype(np.float32)
    peak = max(float(linear.max()) / 0.95, 1.0)
    linear = np.clip(linear / peak, 0.0, 1.0)
    return DichromaticFace(
        image_srgb=encode(linear),
        mask=mask,
        diffuse=(diffuse * mask[..., None] / peak).astype(np.float32),
        specular=(specular / peak).astype(np.float32),
        illuminant=gamma,
        normals=normal.astype(np.float32),
    )
