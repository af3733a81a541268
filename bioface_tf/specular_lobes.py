"""Specular maps constrained to be a function of the surface normal.

Under distant lights and a distant viewer a glossy lobe depends on the pixel
only through its normal ``n``: ``s(x) = F(n(x))`` (times the skin's
oiliness, which this model takes as constant over the face). Pigment —
freckles, moles, flushed patches, brows — does not depend on the normal, so
projecting a noisy per-pixel specular evidence onto functions of the normal
keeps the lobes and drops most pigment and sensor noise. ``F`` is a
non-negative combination of Phong-like lobes ``max(n·h, 0)^p`` for half
vectors ``h`` on a grid over the hemisphere facing the camera and a few
exponents ``p``, plus a non-negative constant; the weights are the
non-negative least-squares fit to the evidence inside the mask.

NumPy only (no TensorFlow). The solver is FISTA (projected, accelerated
gradient) on each face's normal equations, batched over faces.

Example:

>>> import numpy as np
>>> from bioface_tf.specular_lobes import fit_lobes
>>> normals = np.zeros((1, 8, 8, 3), np.float32); normals[..., 2] = 1.0
>>> fit_lobes(np.full((1, 8, 8), 0.1, np.float32), normals, np.ones((1, 8, 8), bool)).shape
(1, 8, 8)
"""

from __future__ import annotations

import dataclasses

import numpy as np

_EPS = 1e-12


@dataclasses.dataclass(frozen=True)
class LobeParams:
    """The lobe dictionary and its solver.

    Attributes:
        spacing: angular spacing of the half vectors, radians.
        max_elevation: largest angle of a half vector from the camera axis,
            degrees (a half vector at θ lights normals facing up to ~θ away).
        exponents: Phong exponents of the lobes (sharper than Lambertian
            shading, so that a diffuse-floor residual, which follows the
            shading, is not taken for a lobe).
        iterations: FISTA iterations.
    """

    spacing: float = 0.15
    max_elevation: float = 50.0
    exponents: tuple[float, ...] = (10.0, 30.0)
    iterations: int = 150


def half_vectors(params: LobeParams = LobeParams()) -> np.ndarray:
    """`(K, 3)` unit vectors on rings of constant elevation, about ``spacing`` apart."""
    out = []
    for elevation in np.arange(0.0, np.radians(params.max_elevation), params.spacing):
        count = 1 if elevation == 0 else int(round(2 * np.pi * np.sin(elevation) / params.spacing))
        for azimuth in np.linspace(0.0, 2 * np.pi, count, endpoint=False):
            out.append([np.sin(elevation) * np.cos(azimuth), np.sin(elevation) * np.sin(azimuth), np.cos(elevation)])
    return np.asarray(out, np.float32)


def lobe_basis(normals: np.ndarray, params: LobeParams = LobeParams()) -> np.ndarray:
    """`(..., K·E + 1)` lobes ``max(n·h, 0)^p`` for every half vector and exponent, then a constant 1.

    Args:
        normals: `(..., 3)` unit normals, camera frame with z towards the camera.
    """
    cosine = np.clip(np.asarray(normals, np.float32) @ half_vectors(params).T, 0.0, None)
    logs = np.log(np.maximum(cosine, 1e-30))
    lobes = [np.exp(p * logs) for p in params.exponents]
    return np.concatenate(lobes + [np.ones(cosine.shape[:-1] + (1,), np.float32)], axis=-1)


def fit_lobes(evidence: np.ndarray, normals: np.ndarray, masks: np.ndarray, params: LobeParams = LobeParams()):
    """Non-negative lobe fit of a specular evidence map, per face.

    Args:
        evidence: `(N, H, W)` per-pixel specular estimate (may be negative).
        normals: `(N, H, W, 3)` unit normals, camera frame, z towards the camera.
        masks: `(N, H, W)` bool, the pixels that enter the fit.
        params: dictionary and solver.

    Returns:
        `(N, H, W)` float32 ``F(n)`` without the constant term (the lobes
        alone), ≥ 0, zero outside the mask.
    """
    normals = np.asarray(normals, np.float32)
    if normals.shape != np.shape(evidence) + (3,):
        raise ValueError(f"normals must be (N, H, W, 3) matching the evidence {np.shape(evidence)}, got {normals.shape}")
    n = len(evidence)
    weight = np.asarray(masks, np.float32).reshape(n, -1, 1)
    basis = lobe_basis(normals, params).reshape(n, -1, lobe_count(params) + 1) * weight  # (N, P, K+1)
    target = np.asarray(evidence, np.float32).reshape(n, -1, 1) * weight
    gram = np.matmul(basis.transpose(0, 2, 1), basis)  # (N, K+1, K+1)
    rhs = np.matmul(basis.transpose(0, 2, 1), target)  # (N, K+1, 1)
    coefficients = _nonnegative_least_squares(gram, rhs, params.iterations)
    lobes = np.matmul(basis[..., :-1], coefficients[:, :-1])[..., 0]
    return np.maximum(lobes, 0.0).reshape(np.shape(evidence)).astype(np.float32)


def lobe_count(params: LobeParams = LobeParams()) -> int:
    """Number of lobes (columns of :func:`lobe_basis` without the constant)."""
    return len(half_vectors(params)) * len(params.exponents)


def _nonnegative_least_squares(gram, rhs, iterations: int) -> np.ndarray:
    """``argmin_{w ≥ 0} ½wᵀGw − wᵀb`` per face by FISTA, `(N, K, 1)`."""
    lipschitz = _largest_eigenvalue(gram)[:, None, None]
    step = 1.0 / np.maximum(lipschitz, _EPS)
    w = np.zeros_like(rhs)
    y, t = w, 1.0
    for _ in range(iterations):
        new = np.maximum(y - step * (np.matmul(gram, y) - rhs), 0.0)
        t_next = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * t * t))
        y = new + ((t - 1.0) / t_next) * (new - w)
        w, t = new, t_next
    return w


def _largest_eigenvalue(gram, iterations: int = 30) -> np.ndarray:
    """Power iteration on symmetric positive semi-definite `(N, K, K)` matrices, with a 10% margin."""
    v = np.ones(gram.shape[:2] + (1,), np.float32)
    for _ in range(iterations):
        v = np.matmul(gram, v)
        v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), _EPS)
    return 1.1 * np.linalg.norm(np.matmul(gram, v), axis=1)[:, 0]
