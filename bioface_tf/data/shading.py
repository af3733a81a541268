"""Diffuse shading from surface normals and spherical-harmonics lighting.

The CelebA files of Shu et al. (CVPR 2017) give, per face, surface normals and
9 second-order spherical-harmonics (SH) lighting coefficients per colour
channel. The irradiance a Lambertian surface of normal ``n`` receives is the
quadratic form of Ramamoorthi & Hanrahan, "An Efficient Representation for
Irradiance Environment Maps" (SIGGRAPH 2001), eq. 12::

    E(n) = [n; 1]^T K(L) [n; 1]

with the coefficients ordered ``L00, L1-1, L10, L11, L2-2, L2-1, L20, L21, L22``.
BioFaceNet's pseudo ground-truth shading is that irradiance per channel,
converted to one grey channel with the Rec. 601 luma weights (MATLAB's
``rgb2gray``) and clamped at 0.

Example:

>>> import numpy as np
>>> normals = np.zeros((1, 2, 2, 3)); normals[..., 2] = 1.0
>>> sh = np.zeros((1, 3, 9)); sh[:, :, 0] = 1.0
>>> grey_shading(normals, sh).shape
(1, 2, 2)
"""

from __future__ import annotations

import numpy as np

C1, C2, C3, C4, C5 = 0.429043, 0.511664, 0.743125, 0.886227, 0.247708
N_SH_COEFFICIENTS = 9
REC601_LUMA = np.array([0.2989, 0.5870, 0.1140])


def irradiance_matrix(sh: np.ndarray) -> np.ndarray:
    """The 4×4 matrix ``K`` of the irradiance quadratic form.

    Args:
        sh: SH lighting coefficients, shape `(..., 9)`.

    Returns:
        `(..., 4, 4)` symmetric matrices.
    """
    sh = np.asarray(sh)
    L = [sh[..., i] for i in range(N_SH_COEFFICIENTS)]
    rows = [
        [C1 * L[8], C1 * L[4], C1 * L[7], C2 * L[3]],
        [C1 * L[4], -C1 * L[8], C1 * L[5], C2 * L[1]],
        [C1 * L[7], C1 * L[5], C3 * L[6], C2 * L[2]],
        [C2 * L[3], C2 * L[1], C2 * L[2], C4 * L[0] - C5 * L[6]],
    ]
    return np.stack([np.stack(row, axis=-1) for row in rows], axis=-2)


def irradiance(normals: np.ndarray, sh: np.ndarray) -> np.ndarray:
    """Per-channel irradiance ``[n;1]^T K [n;1]`` (not clamped).

    Args:
        normals: unit normals in the signed encoding, `(B, H, W, 3)`.
        sh: SH coefficients per colour channel, `(B, C, 9)`.

    Returns:
        `(B, H, W, C)` irradiance.
    """
    normals = np.asarray(normals, dtype=np.float32)
    K = irradiance_matrix(np.asarray(sh, dtype=np.float32))  # (B, C, 4, 4)
    homogeneous = np.concatenate([normals, np.ones_like(normals[..., :1])], axis=-1)
    return np.einsum("bhwi,bcij,bhwj->bhwc", homogeneous, K, homogeneous, optimize=True)


def grey_shading(normals: np.ndarray, sh: np.ndarray) -> np.ndarray:
    """BioFaceNet's pseudo ground-truth shading: grey irradiance, clamped at 0.

    The irradiance is linear in the lighting, so the luma-weighted sum of the
    three channels' quadratic forms is one quadratic form, evaluated once.

    Args:
        normals: unit normals in the signed encoding, `(B, H, W, 3)`.
        sh: SH coefficients for the R, G, B channels, `(B, 3, 9)`.

    Returns:
        `(B, H, W)` shading, >= 0.
    """
    normals = np.asarray(normals, dtype=np.float32)
    grey_sh = np.einsum("c,bck->bk", REC601_LUMA, np.asarray(sh, dtype=np.float64))
    K = irradiance_matrix(grey_sh).astype(np.float32)  # (B, 4, 4)
    b, h, w, _ = normals.shape
    homogeneous = np.concatenate([normals, np.ones_like(normals[..., :1])], axis=-1).reshape(b, h * w, 4)
    grey = np.einsum("bpi,bpi->bp", homogeneous @ K, homogeneous)
    return np.maximum(grey, 0.0).reshape(b, h, w)


def directional_sh(direction: np.ndarray, intensity, ambient) -> np.ndarray:
    """SH coefficients of a distant point light plus uniform ambient light.

    A light of radiance ``intensity`` from unit ``direction`` projects onto the
    SH basis as ``intensity · Y_lm(direction)``; uniform ambient light adds to
    ``L00`` so that it contributes ``ambient`` to the irradiance everywhere.

    Args:
        direction: unit vectors towards the light, `(B, 3)` (x right, y up,
            z towards the camera).
        intensity: `(B,)` or scalar.
        ambient: irradiance added everywhere, `(B,)` or scalar.

    Returns:
        `(B, 9)` coefficients in the order of :func:`irradiance_matrix`.
    """
    d = np.asarray(direction, dtype=np.float64)
    x, y, z = d[:, 0], d[:, 1], d[:, 2]
    basis = np.stack(
        [
            np.full_like(x, 0.282095),
            0.488603 * y,
            0.488603 * z,
            0.488603 * x,
            1.092548 * x * y,
            1.092548 * y * z,
            0.315392 * (3.0 * z * z - 1.0),
            1.092548 * x * z,
            0.546274 * (x * x - y * y),
        ],
        axis=-1,
    )
    sh = np.asarray(intensity, dtype=np.float64).reshape(-1, 1) * basis
    sh[:, 0] += np.asarray(ambient, dtype=np.float64) / C4
    return sh
