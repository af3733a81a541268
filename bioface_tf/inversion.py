"""Per-pixel inversion of the skin table: a baseline without a network.

Without specular light the decoder renders each pixel as ``shading ×
colour(fmel, fblood)``, where ``colour`` is the white-balanced, T(b)-mapped
linear sRGB of one skin-table entry under the face's camera and light
(PHYSICS.md §5–§8). So, given the camera ``b`` and the light
(``light_weights``, ``cct``) — the true ones or a model's estimate — the
chromaticity of a linearised pixel picks out the table entry, and the
luminance ratio gives the diffuse shading:

1. render all 256 × 256 table entries once per face at shading 1, no
   specular (:func:`table_colours`, NumPy, float64);
2. linearise the photo with the sRGB curve and, optionally, blur it inside
   the mask (``blur_sigma``, default 0.8 px) to tame sensor noise;
3. per masked pixel, find the (fmel, fblood) of nearest normalised-rgb
   chromaticity ``rgb / (r + g + b)`` on the table as the decoder renders
   it between nodes (colours interpolated bilinearly, then the ReLU, so the
   answer is continuous): an exhaustive search on a 32 × 32 subgrid, then
   Levenberg–Marquardt; again from the face's median answer where that
   could matter, kept where it fits as well (:func:`solve_positions`);
4. ``shading = Y(pixel) / Y(colour(fmel, fblood))`` with Y the Rec. 709
   luminance.

Noise-free and without specular light the maps come back exactly where the
table is well conditioned. It is not everywhere: chromaticity hardly
changes with melanin where there is little of it (fmel near −1: the volume
fraction grows as ``u³``) nor with haemoglobin under dark skin; the table
folds at low haemoglobin (two entries, one chromaticity); and at high
melanin the decoder's ReLU can clip a channel to 0, leaving one degree of
freedom. Specular highlights (white after white balance: they desaturate,
read as less melanin), sensor noise (amplified where the table is flat) and
a wrong camera or light bias the answer further.

Example:

>>> import numpy as np
>>> from bioface_tf.inversion import invert_face
>>> srgb = np.full((8, 8, 3), [0.8, 0.6, 0.5])
>>> out = invert_face(srgb, np.ones((8, 8)), b=np.zeros(2), light_weights=np.eye(14)[1], cct=3.0)
>>> sorted(out), out["fmel"].shape
(['fblood', 'fmel', 'shading'], (8, 8))
"""

from __future__ import annotations

import numpy as np

from bioface_tf import spectra
from bioface_tf.transfer_curve import linearise

GRID = spectra.N_SKIN_GRID
COARSE = 32
COARSE_MARGIN = 4
PIXEL_CHUNK = 2048
REFINE_ITERATIONS = 30
MAX_STEP = 32.0
CONVERGED = 1e-16
STALLED = 1e-3
TIE = 1e-10
NEAR_TYPICAL = 16.0
LUMINANCE = np.array([0.2126, 0.7152, 0.0722])
DARK = 1e-6
LIGHT_FLOOR = 1e-8


def illuminant_spd(light_weights: np.ndarray, cct: float) -> np.ndarray:
    """The illuminant mixture as :class:`~bioface_tf.physics.IlluminantSpectrum` makes it.

    Args:
        light_weights: (14,) weights, order [A, D, F1..F12] (negatives count as 0).
        cct: daylight index in [1, 22] (table interpolation, clipped).

    Returns:
        (33,) spectrum normalised to sum 1.
    """
    tables = spectra.illuminants()
    weights = np.maximum(np.asarray(light_weights, np.float64).reshape(-1), 0.0)
    position = float(np.clip(np.asarray(cct, np.float64).reshape(-1)[0], 1.0, 22.0)) - 1.0
    lower = int(np.clip(np.floor(position), 0, 20))
    fraction = position - lower
    daylight = (1.0 - fraction) * tables.d_series[lower] + fraction * tables.d_series[lower + 1]
    spd = weights[0] * tables.a + weights[1] * daylight + weights[2:] @ tables.fluorescent
    return spd / max(spd.sum(), 1e-12)


def table_colours(b: np.ndarray, light_weights: np.ndarray, cct: float) -> np.ndarray:
    """Linear sRGB of every skin-table entry at shading 1, no specular.

    The decoder's pipeline on the table's nodes: ``albedo_c = Σλ R·e·S_c``,
    white balance by the light colour, ``XYZ→sRGB · T(b)``, ReLU.

    Args:
        b: (2,) camera parameters (clipped to [-3, 3]).
        light_weights: (14,) illuminant weights, order [A, D, F1..F12].
        cct: daylight index in [1, 22].

    Returns:
        (256, 256, 3) float64 ≥ 0; rows index fblood, columns fmel, node
        ``k`` at map value ``2k/255 − 1``.
    """
    return np.maximum(_unclipped_colours(b, light_weights, cct), 0.0)


def _unclipped_colours(b, light_weights, cct) -> np.ndarray:
    """:func:`table_colours` before the ReLU, which the decoder applies after interpolation."""
    b = np.clip(np.asarray(b, np.float64).reshape(2), -3.0, 3.0)
    lit_sensitivity = spectra.camera_sensitivity(b) * illuminant_spd(light_weights, cct)
    light_colour = np.maximum(lit_sensitivity.sum(axis=-1), LIGHT_FLOOR)
    to_srgb = spectra.XYZ_TO_LINEAR_SRGB @ spectra.raw_to_xyz_matrix(b)
    projection = (to_srgb / light_colour) @ lit_sensitivity
    return spectra.skin_reflectance_table() @ projection.T


def chromaticity(rgb: np.ndarray) -> np.ndarray:
    """Normalised rgb ``rgb / (r + g + b)``; near-black values map to grey.

    Args:
        rgb: (..., 3) non-negative linear colours.

    Returns:
        (..., 3) summing to 1.
    """
    rgb = np.maximum(rgb, 0.0)
    total = rgb.sum(axis=-1, keepdims=True)
    return np.where(total > DARK, rgb / np.maximum(total, DARK), 1.0 / 3.0)


def masked_blur(image: np.ndarray, mask: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur inside the mask (normalised convolution).

    Pixels outside the mask neither contribute nor change, so the face's
    border does not take the background's colour.

    Args:
        image: (H, W, C).
        mask: (H, W) weights in [0, 1].
        sigma: standard deviation in pixels; ≤ 0 returns ``image``.

    Returns:
        (H, W, C).
    """
    if sigma <= 0:
        return image
    weight = mask[..., None].astype(np.float64)
    blurred = _gaussian(image * weight, sigma)
    normaliser = _gaussian(weight, sigma)
    inside = (normaliser > 1e-6) & (weight > 0)
    return np.where(inside, blurred / np.maximum(normaliser, 1e-6), image)


def _gaussian(image: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of (H, W, C), zero outside the image."""
    radius = max(1, int(np.ceil(3.0 * sigma)))
    offsets = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (offsets / sigma) ** 2)
    kernel /= kernel.sum()
    for axis in (0, 1):
        padding = [(0, 0)] * image.ndim
        padding[axis] = (radius, radius)
        padded = np.pad(image, padding)
        length = image.shape[axis]
        image = sum(w * np.take(padded, np.arange(k, k + length), axis=axis) for k, w in enumerate(kernel))
    return image


def solve_positions(target: np.ndarray, colours: np.ndarray) -> np.ndarray:
    """Grid positions whose rendered chromaticity matches the pixels'.

    Two starts: each pixel's nearest node on a coarse subgrid
    (:func:`coarse_nodes`); then, for pixels that fit badly or landed more
    than 16 cells from the face's median answer, that median. The second
    answer wins unless it fits worse: it escapes local minima on the grid's
    edges, and where the table folds (two entries of one chromaticity, at
    low haemoglobin) it picks the one nearer the rest of the face.

    Args:
        target: (P, 3) pixel chromaticities of one face.
        colours: (256, 256, 3) table colours before the ReLU
            (rows fblood, columns fmel).

    Returns:
        (P, 2) float positions (row = fblood, column = fmel) in [0, 255].
    """
    flat = colours.reshape(-1, 3)
    nodes = chromaticity(np.maximum(colours, 0.0))
    position = refine_position(target, colours, coarse_nodes(target, nodes))
    residual = _squared_residual(target, flat, position)
    typical = np.median(position, axis=0)
    retry = np.flatnonzero((residual > TIE) | (np.abs(position - typical).max(axis=-1) > NEAR_TYPICAL))
    second = refine_position(target[retry], colours, np.broadcast_to(typical, (len(retry), 2)))
    keep = _squared_residual(target[retry], flat, second) <= residual[retry] + TIE
    position[retry[keep]] = second[keep]
    return position


def coarse_nodes(target: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Node of nearest chromaticity on a 32 × 32 subgrid of the table.

    The subgrid keeps 4 nodes off the table's edges, where the chromaticity
    is flattest and a Gauss–Newton start would crawl.

    Args:
        target: (P, 3) pixel chromaticities.
        table: (256, 256, 3) chromaticities of the table's nodes.

    Returns:
        (P, 2) int node indices (row = fblood, column = fmel).
    """
    nodes = np.linspace(COARSE_MARGIN, GRID - 1 - COARSE_MARGIN, COARSE).round().astype(np.int64)
    coarse = table[nodes][:, nodes].reshape(-1, 3).astype(np.float32)
    squared_norm = (coarse * coarse).sum(axis=-1)
    best = np.empty(len(target), np.int64)
    for start in range(0, len(target), PIXEL_CHUNK):
        chunk = target[start : start + PIXEL_CHUNK].astype(np.float32)
        best[start : start + PIXEL_CHUNK] = (squared_norm - 2.0 * chunk @ coarse.T).argmin(axis=-1)
    return np.stack([nodes[best // COARSE], nodes[best % COARSE]], axis=-1)


def refine_position(target: np.ndarray, colours: np.ndarray, start: np.ndarray) -> np.ndarray:
    """Continuous grid position of nearest chromaticity, by Levenberg–Marquardt.

    The table is searched as the decoder renders it: colours interpolated
    bilinearly between nodes, then the ReLU, then the chromaticity. Where it
    is anisotropic (chromaticity changes little along one map) the nearest
    node can lie many cells from the answer, so a node is only a start:
    damped Gauss–Newton steps of at most 32 cells, each kept only where it
    lowers the pixel's residual (at most 30 iterations; pixels drop out once
    they fit exactly or move less than 0.001 cell).

    Args:
        target: (P, 3) pixel chromaticities.
        colours: (256, 256, 3) table colours before the ReLU.
        start: (P, 2) starting positions (row = fblood, column = fmel).

    Returns:
        (P, 2) float positions (row, column) in [0, 255].
    """
    flat = colours.reshape(-1, 3)
    position = start.astype(np.float64)
    residual = _squared_residual(target, flat, position)
    damping = np.full(len(target), 1e-3)
    active = np.flatnonzero(residual > CONVERGED)
    for _ in range(REFINE_ITERATIONS):
        if not active.size:
            break
        candidate = _gauss_newton_step(target[active], flat, position[active], damping[active])
        candidate_residual = _squared_residual(target[active], flat, candidate)
        better = candidate_residual < residual[active]
        moving = np.abs(candidate - position[active]).max(axis=-1) > STALLED
        position[active[better]] = candidate[better]
        residual[active[better]] = candidate_residual[better]
        damping[active] = np.where(better, damping[active] / 3.0, damping[active] * 4.0)
        active = active[(residual[active] > CONVERGED) & moving]
    return position


def _cell(flat: np.ndarray, position: np.ndarray):
    """Bilinear value and its derivatives at (P, 2) positions of a (256², C) table.

    Returns:
        ``(value, d_row, d_column)``, each (P, C).
    """
    lower = np.clip(np.floor(position), 0, GRID - 2).astype(np.int64)
    fraction = position - lower
    fy, fx = fraction[:, :1], fraction[:, 1:]
    corner = lower[:, 0] * GRID + lower[:, 1]
    c00, c01, c10, c11 = (np.take(flat, corner + offset, axis=0) for offset in (0, 1, GRID, GRID + 1))
    top = c00 + fx * (c01 - c00)
    bottom = c10 + fx * (c11 - c10)
    d_column = (1.0 - fy) * (c01 - c00) + fy * (c11 - c10)
    return top + fy * (bottom - top), bottom - top, d_column


def rendered_colour(colours: np.ndarray, position: np.ndarray) -> np.ndarray:
    """Linear sRGB the decoder renders at (P, 2) grid positions, shading 1; (P, 3).

    Args:
        colours: (256, 256, 3) table colours before the ReLU.
        position: (P, 2) float (row = fblood, column = fmel) in [0, 255].
    """
    return np.maximum(_cell(colours.reshape(GRID * GRID, -1), position)[0], 0.0)


def _rendered_chromaticity(flat, position):
    """Chromaticity of the rendered colour and its derivatives, each (P, 3)."""
    value, d_row, d_column = _cell(flat, position)
    lit = value > 0.0
    value, d_row, d_column = np.maximum(value, 0.0), d_row * lit, d_column * lit
    total = value.sum(axis=-1, keepdims=True)
    bright = total > DARK
    total = np.maximum(total, DARK)
    chroma = np.where(bright, value / total, 1.0 / 3.0)
    derivatives = [(d - chroma * d.sum(axis=-1, keepdims=True)) / total for d in (d_row, d_column)]
    return (chroma, *(np.where(bright, d, 0.0) for d in derivatives))


def _squared_residual(target, flat, position):
    """``|target − chromaticity(position)|²`` per pixel, (P,)."""
    difference = target - _rendered_chromaticity(flat, position)[0]
    return (difference * difference).sum(axis=-1)


def _gauss_newton_step(target, flat, position, damping):
    """Position after one damped Gauss–Newton step (P, 2), kept on the grid."""
    value, d_row, d_column = _rendered_chromaticity(flat, position)
    residual = target - value
    rr, rc, cc = ((u * v).sum(axis=-1) for u, v in ((d_row, d_row), (d_row, d_column), (d_column, d_column)))
    g_row, g_column = (d_row * residual).sum(axis=-1), (d_column * residual).sum(axis=-1)
    damped = damping * (rr + cc) + 1e-18
    rr, cc = rr + damped, cc + damped
    determinant = rr * cc - rc * rc
    step = np.stack([cc * g_row - rc * g_column, rr * g_column - rc * g_row], axis=-1) / determinant[:, None]
    return np.clip(position + np.clip(step, -MAX_STEP, MAX_STEP), 0.0, GRID - 1.0)


def invert_face(
    srgb: np.ndarray,
    mask: np.ndarray,
    b: np.ndarray,
    light_weights: np.ndarray,
    cct: float,
    blur_sigma: float = 0.8,
) -> dict[str, np.ndarray]:
    """Melanin, haemoglobin and shading of one face by table inversion.

    Args:
        srgb: (H, W, 3) sRGB-encoded photo in [0, 1].
        mask: (H, W) face mask (> 0.5 is inside; also the blur's weights).
        b: (2,) camera parameters.
        light_weights: (14,) illuminant weights, order [A, D, F1..F12].
        cct: daylight index in [1, 22].
        blur_sigma: Gaussian blur (px) of the linearised photo inside the
            mask before inversion; 0 for none.

    Returns:
        dict of float32 (H, W) maps, 0 outside the mask, never NaN:
        ``fmel``, ``fblood`` in [-1, 1] and ``shading`` ≥ 0 (the luminance
        ratio of the pixel to its table entry; 0 on black pixels).
    """
    mask = np.asarray(mask, np.float64).reshape(np.shape(srgb)[:2])
    inside = mask > 0.5
    out = {name: np.zeros(mask.shape, np.float32) for name in ("fmel", "fblood", "shading")}
    if not inside.any():
        return out
    linear = linearise(np.nan_to_num(np.asarray(srgb, np.float64))).astype(np.float64)
    pixels = masked_blur(linear, np.clip(mask, 0.0, 1.0), blur_sigma)[inside]
    colours = _unclipped_colours(b, light_weights, cct)
    position = solve_positions(chromaticity(pixels), colours)
    luminance = rendered_colour(colours, position) @ LUMINANCE
    values = 2.0 * position / (GRID - 1) - 1.0
    out["fblood"][inside] = values[:, 0]
    out["fmel"][inside] = values[:, 1]
    out["shading"][inside] = np.maximum(pixels @ LUMINANCE, 0.0) / np.maximum(luminance, 1e-12)
    return out


def invert_faces(
    srgb: np.ndarray,
    mask: np.ndarray,
    b: np.ndarray,
    light_weights: np.ndarray,
    cct: np.ndarray,
    blur_sigma: float = 0.8,
) -> dict[str, np.ndarray]:
    """:func:`invert_face` over a batch, each face with its own camera and light.

    Args:
        srgb: (N, H, W, 3) sRGB photos in [0, 1].
        mask: (N, H, W, 1) face masks.
        b: (N, 2) camera parameters.
        light_weights: (N, 14) illuminant weights.
        cct: (N, 1) daylight indices.
        blur_sigma: see :func:`invert_face`.

    Returns:
        dict with ``fmel``, ``fblood``, ``shading``, each (N, H, W, 1) float32.
    """
    cct = np.asarray(cct, np.float64).reshape(len(srgb), -1)
    faces = [
        invert_face(srgb[i], mask[i][..., 0], b[i], light_weights[i], cct[i, 0], blur_sigma)
        for i in range(len(srgb))
    ]
    return {name: np.stack([f[name] for f in faces])[..., None] for name in ("fmel", "fblood", "shading")}
