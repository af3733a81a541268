"""Published specular / diffuse separation methods, as baselines for the face targets.

NumPy + OpenCV, vectorised over a batch of same-sized faces; no TensorFlow.
Both take linear, illuminant-normalised images (``J = I_lin / Γ``, so the
specular adds the same ``s`` to every channel) and return ``s`` `(N, H, W)`
in the units of :mod:`bioface_tf.specular` (the mean over channels of the
specular image), zero outside the mask.

* :func:`yang2010` — Q. Yang, S. Wang, N. Ahuja, "Real-time specular
  highlight removal using bilateral filtering", ECCV 2010. The maximum
  diffuse chromaticity ``σ_max`` of every pixel is raised towards that of
  neighbours whose specular-free chromaticity ``λ_max`` is alike (a joint
  bilateral filter of ``σ_max`` guided by ``λ_max``, taking the pointwise
  maximum, repeated until it changes by less than a threshold); the
  specular then follows from the dichromatic model.
* :func:`kim2013` — H. Kim, H. Jin, S. Hadap, I. Kweon, "Specular reflection
  separation using dark channel prior", CVPR 2013: the dark channel as the
  initial specular, then a MAP estimate of the specular ``s`` and the
  diffuse chromaticity ``Λ`` with a Gaussian data term, a sparse and smooth
  specular and a piecewise-constant (total variation) chromaticity, solved
  by alternating between the two unknowns. Our reading of the paper: the
  structure (variables, priors, alternation) is theirs; the norms, weights
  and inner solvers are stated in :class:`KimParams` and were set on the
  tuning families (``docs/SPECULAR_METHOD.md`` §10), not copied from it.

Example:

>>> import numpy as np
>>> from bioface_tf import specular_separation as sep
>>> balanced = np.full((1, 8, 8, 3), 0.2, np.float32) + [0.2, 0.1, 0.0]
>>> sep.yang2010(balanced, np.ones((1, 8, 8), bool)).shape
(1, 8, 8)
"""

from __future__ import annotations

import dataclasses

import numpy as np

_EPS = 1e-6


# --------------------------------------------------------------------------
# Yang, Wang & Ahuja (ECCV 2010)
# --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class YangParams:
    """Parameters of :func:`yang2010`.

    Attributes:
        sigma_range: range σ of the joint bilateral filter, in chromaticity
            (the paper's 0.04).
        sigma_spatial: spatial σ in pixels (the paper filters whole images;
            ours are 64×64 faces).
        radius: half-width of the filter window in pixels.
        threshold: stop when no ``σ_max`` changes by more than this (the
            paper's 0.03).
        max_iterations: at most this many filter passes.
        dark: pixels whose channel sum is below this fraction of the face's
            mean sum are left as they are (too dark for a chromaticity).
    """

    sigma_range: float = 0.04
    sigma_spatial: float = 3.0
    radius: int = 4
    threshold: float = 0.03
    max_iterations: int = 10
    dark: float = 0.1


def yang2010(balanced: np.ndarray, masks: np.ndarray, params: YangParams = YangParams()) -> np.ndarray:
    """Specular map by bilateral filtering of the maximum chromaticity (Yang et al. 2010).

    Args:
        balanced: `(N, H, W, 3)` linear images divided by the illuminant.
        masks: `(N, H, W)` bool; only pixels in the mask take part.
        params: filter parameters.

    Returns:
        `(N, H, W)` float32 specular, in ``[0, min_c J_c]`` inside the mask, 0 outside.
    """
    j = np.maximum(np.asarray(balanced, np.float32), 0.0)
    masks = np.asarray(masks, bool)
    total = j.sum(axis=-1)
    mean_total = (total * masks).sum(axis=(1, 2)) / np.maximum(masks.sum(axis=(1, 2)), 1)
    usable = masks & (total > params.dark * mean_total[:, None, None])
    sigma = j / np.maximum(total, _EPS)[..., None]
    sigma_min, sigma_max = sigma.min(axis=-1), sigma.max(axis=-1)
    # Maximum chromaticity of the specular-free image J − min_c J_c.
    lam_max = (sigma_max - sigma_min) / np.maximum(1.0 - 3.0 * sigma_min, _EPS)
    lam_max = np.where(usable, lam_max, 0.0)
    for _ in range(params.max_iterations):
        filtered = _joint_bilateral(sigma_max, lam_max, usable, params)
        raised = np.where(usable, np.maximum(sigma_max, filtered), sigma_max)
        change = float(np.max(raised - sigma_max, initial=0.0))
        sigma_max = raised
        if change < params.threshold:
            break
    # J_max = d·Λ_max + s and ΣJ = d + 3s  ⇒  s = (J_max − Λ_max ΣJ) / (1 − 3Λ_max).
    denominator = np.minimum(1.0 - 3.0 * sigma_max, -_EPS)
    specular = (j.max(axis=-1) - sigma_max * total) / denominator
    return (np.clip(specular, 0.0, j.min(axis=-1)) * usable).astype(np.float32)


def _joint_bilateral(values, guide, valid, params: YangParams) -> np.ndarray:
    """Joint bilateral filter of `(N, H, W)` ``values`` guided by ``guide`` over ``valid`` pixels."""
    r = params.radius
    pad = ((0, 0), (r, r), (r, r))
    v, gd, w = (np.pad(x, pad) for x in (values, guide, valid.astype(np.float32)))
    h, wd = values.shape[1:]
    num = np.zeros_like(values, dtype=np.float32)
    den = np.zeros_like(values, dtype=np.float32)
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            spatial = np.exp(-(dx * dx + dy * dy) / (2.0 * params.sigma_spatial**2))
            window = (slice(None), slice(r + dy, r + dy + h), slice(r + dx, r + dx + wd))
            weight = spatial * w[window] * np.exp(-((gd[window] - guide) ** 2) / (2.0 * params.sigma_range**2))
            num += weight * v[window]
            den += weight
    return np.where(den > 0, num / np.maximum(den, _EPS), values)


# --------------------------------------------------------------------------
# Kim, Jin, Hadap & Kweon (CVPR 2013)
# --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class KimParams:
    """Parameters of :func:`kim2013`, in units of the face's mean grey level.

    The energy, over the pixels ``x`` of the mask (edges: 4-neighbour pairs
    inside it), with ``d = Σ_c (J − s)_c`` the diffuse magnitude:

    ``E(s, Λ) = Σ |J − d·Λ − s·1|² / (2σ²) + α Σ s + β/2 Σ |∇s|² + γ Σ |∇Λ|₁``,
    ``0 ≤ s ≤ min_c J_c``, ``Λ ≥ 0``, ``Σ_c Λ_c = 1``.

    Attributes:
        noise: σ of the Gaussian data term.
        sparsity: α, L1 weight of the specular.
        smoothness: β, squared-gradient weight of the specular.
        chromaticity_tv: γ, total variation of the diffuse chromaticity.
        outer: alternations between the two unknowns.
        inner: iterations of each sub-problem.
    """

    noise: float = 0.02
    sparsity: float = 50.0
    smoothness: float = 0.3
    chromaticity_tv: float = 0.3
    outer: int = 8
    inner: int = 20


def kim2013(balanced: np.ndarray, masks: np.ndarray, params: KimParams = KimParams()) -> np.ndarray:
    """MAP specular / diffuse-chromaticity separation from the dark channel (Kim et al. 2013).

    Start: ``s = min_c J_c`` (the dark channel) and ``Λ`` the chromaticity of
    the specular-free image ``J − s``. Then ``outer`` times: (1) with ``Λ``
    fixed, ``d`` is eliminated per pixel (least squares) and the specular
    sub-problem — a quadratic data term ``c/(2σ²)·(s − s*)²`` with
    ``c = |P⊥1|²``, ``s* = P⊥1·J / c`` (``P⊥`` the projection orthogonal to
    ``Λ``), plus ``α·s`` and ``β/2·|∇s|²``, boxed to ``[0, min_c J_c]`` — is
    solved by projected Jacobi iterations; (2) with ``s`` fixed, ``Λ`` is
    the weighted TV denoising of the observed diffuse chromaticity
    ``(J − s)/d`` (weights ``d²/σ²``), solved by Chambolle–Pock iterations
    and projected on the simplex.

    Args:
        balanced: `(N, H, W, 3)` linear images divided by the illuminant.
        masks: `(N, H, W)` bool.
        params: energy weights and iteration counts.

    Returns:
        `(N, H, W)` float32 specular, in ``[0, min_c J_c]`` inside the mask, 0 outside.
    """
    masks = np.asarray(masks, bool)
    j = np.maximum(np.asarray(balanced, np.float32), 0.0)
    count = np.maximum(masks.sum(axis=(1, 2)), 1)
    scale = np.maximum((j.mean(axis=-1) * masks).sum(axis=(1, 2)) / count, _EPS)[:, None, None]
    j = j / scale[..., None]
    dark = j.min(axis=-1)
    ex = (masks[:, :, 1:] & masks[:, :, :-1]).astype(np.float32)
    ey = (masks[:, 1:, :] & masks[:, :-1, :]).astype(np.float32)
    s = dark.copy()
    chroma = _simplex(j - s[..., None])
    for _ in range(params.outer):
        s = _specular_step(j, chroma, s, dark, ex, ey, params)
        chroma = _chromaticity_step(j - s[..., None], chroma, ex, ey, params)
    return (np.clip(s, 0.0, dark) * masks * scale).astype(np.float32)


def _specular_step(j, chroma, s, dark, ex, ey, params: KimParams) -> np.ndarray:
    """Projected Jacobi iterations of the specular sub-problem with ``Λ`` fixed."""
    norm2 = np.maximum((chroma**2).sum(axis=-1), _EPS)
    ortho_one = 1.0 - chroma * (chroma.sum(axis=-1) / norm2)[..., None]  # P⊥·1
    curvature = np.maximum((ortho_one**2).sum(axis=-1), _EPS)
    target = (ortho_one * j).sum(axis=-1) / curvature
    data = curvature / params.noise**2
    degree = _neighbour_sum(None, ex, ey)
    for _ in range(params.inner):
        neighbours = _neighbour_sum(s, ex, ey)
        s = (data * target - params.sparsity + params.smoothness * neighbours) / (data + params.smoothness * degree)
        s = np.clip(s, 0.0, dark)
    return s


def _chromaticity_step(diffuse, chroma, ex, ey, params: KimParams) -> np.ndarray:
    """Weighted TV denoising of the observed chromaticity (Chambolle–Pock), projected on the simplex."""
    magnitude = np.maximum(diffuse.sum(axis=-1), _EPS)
    observed = diffuse / magnitude[..., None]
    weight = (magnitude / params.noise) ** 2
    tau, sigma = 0.25, 0.5  # τσ‖∇‖² ≤ 1 with ‖∇‖² ≤ 8
    px = np.zeros(ex.shape + (3,), np.float32)
    py = np.zeros(ey.shape + (3,), np.float32)
    x = chroma.copy()
    for _ in range(params.inner):
        divergence = _divergence(px, py)
        new = (x + tau * divergence + tau * weight[..., None] * observed) / (1.0 + tau * weight[..., None])
        bar = 2.0 * new - x
        gx = (bar[:, :, 1:] - bar[:, :, :-1]) * ex[..., None]
        gy = (bar[:, 1:, :] - bar[:, :-1, :]) * ey[..., None]
        px = np.clip(px + sigma * gx, -params.chromaticity_tv, params.chromaticity_tv)
        py = np.clip(py + sigma * gy, -params.chromaticity_tv, params.chromaticity_tv)
        x = new
    return _simplex(x)


def _divergence(px, py) -> np.ndarray:
    """Minus the adjoint of the forward differences, `(N, H, W, C)`."""
    n, h, w1, c = px.shape
    out = np.zeros((n, h, w1 + 1, c), np.float32)
    out[:, :, :-1] += px
    out[:, :, 1:] -= px
    out[:, :-1, :] += py
    out[:, 1:, :] -= py
    return out


def _neighbour_sum(x, ex, ey) -> np.ndarray:
    """Sum of ``x`` `(N, H, W)` over each pixel's in-mask 4-neighbours (``x=None``: their count)."""
    n, h, w1 = ex.shape
    out = np.zeros((n, h, w1 + 1), np.float32)
    out[:, :, :-1] += ex if x is None else ex * x[:, :, 1:]
    out[:, :, 1:] += ex if x is None else ex * x[:, :, :-1]
    out[:, :-1, :] += ey if x is None else ey * x[:, 1:, :]
    out[:, 1:, :] += ey if x is None else ey * x[:, :-1, :]
    return out


def _simplex(colours) -> np.ndarray:
    """Non-negative colours `(..., 3)` scaled to sum 1 (grey where all are 0)."""
    colours = np.maximum(colours, 0.0)
    total = colours.sum(axis=-1, keepdims=True)
    return np.where(total > _EPS, colours / np.maximum(total, _EPS), 1.0 / 3.0).astype(np.float32)
