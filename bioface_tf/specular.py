"""Specular / diffuse separation of face images (Kim et al., CVPR 2013).

H. Kim, H. Jin, S. Hadap, I. Kweon, "Specular reflection separation using
dark channel prior", CVPR 2013. NumPy only; importing this module does not
import TensorFlow. The energy, the solver and every parameter are documented
in ``docs/SPECULAR_METHOD.md``; the summary:

1. **Linearise** the sRGB image with the exact sRGB transfer curve (IEC
   61966-2-1; ``curve="gamma2.2"`` gives the reference's ``img ** 2.2``).
   The dichromatic model holds in linear intensity only.
2. **Normalise the illuminant**: divide by the illuminant colour Γ (given, or
   estimated by :func:`estimate_illuminant`), normalised to channel mean 1, so
   that the specular term adds the same amount ``s`` to every channel:
   ``J(x) = d(x)·Λ(x) + s(x)·(1, 1, 1)``.
3. **Dark channel**: ``s_dark = min_c J_c`` — the plain estimate, and an upper
   bound of any physically valid specular map.
4. **MAP refinement**: skin's dark channel is not zero, so ``s_dark`` carries a
   diffuse floor over the whole face. Write ``J = g·1 + u`` (grey level plus
   chromatic part). The chromatic part is specular-free, and for a diffuse
   chromaticity of inverse saturation ``κ`` the specular is
   ``s = g − κ·|u|``. The refined estimate minimises, over the field ``κ``,

   ``E(κ) = Σ φ(s) + β/2 Σ |∇s|² + γ Σ |∇κ|₁``,  ``κ ≥ κ_dark``,

   with ``φ(s) = α·s`` for ``s ≥ 0`` (sparse specular) and ``s²/(2σ²)`` for
   ``s < 0`` (data term: a negative specular is a residual of size ``|s|``
   against the observed image), ``β`` the smoothness of the specular map and
   ``γ`` the total variation of the diffuse chromaticity (piecewise
   constant). ``E`` is convex; it is solved from the dark-channel start by a
   per-face constant ``κ`` (stage 1) and then primal-dual iterations
   (Condat–Vũ) on the whole field (stage 2), many faces at once.

   That is the ``chromaticity="piecewise"`` model. The default,
   ``chromaticity="smooth"``, suits skin (whose chromaticity varies
   smoothly): the chromatic part ``u`` is bilateral-filtered inside the mask
   (it carries no specular), κ is a cubic polynomial in image coordinates
   fitted by quantile regression (cost ``q·s`` for ``s ≥ 0``, ``(1 − q)·|s|``
   for ``s < 0``; iteratively reweighted least squares), and the specular
   ``g − κ·|u|`` is median-filtered (3×3) and clipped to ``[0, s_dark]``.

The target a network compares with is ``specular`` (H, W): the specular
component in linear intensity of the linearised image, as the mean over
channels (the specular *image* is ``specular[..., None] * illuminant``).

Example:

>>> import numpy as np
>>> from bioface_tf import specular
>>> image = np.full((8, 8, 3), 0.5, np.float32)
>>> result = specular.separate(image, illuminant=(1.0, 1.0, 1.0))
>>> result.diffuse.shape, result.specular.shape
((8, 8, 3), (8, 8))
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np

from bioface_tf.specular_lobes import fit_lobes
# linearise, encode and LINEARISATION_CURVES stay importable from here (the separation API uses them)
from bioface_tf.transfer_curve import LINEARISATION_CURVES, as_unit_float, encode, linearise  # noqa: F401

_EPS = 1e-6
_DUAL_STEP = 0.5


# --------------------------------------------------------------------------
# Illuminant colour
# --------------------------------------------------------------------------

_XYZ_TO_LINEAR_SRGB = np.array(
    [[3.2406, -1.5372, -0.4986], [-0.9689, 1.8758, 0.0415], [0.0557, -0.2040, 1.0570]]
)


def planckian_locus_rgb(kelvin: np.ndarray) -> np.ndarray:
    """Colour of a black body in linear sRGB, normalised to channel mean 1.

    Uses the cubic-spline approximation of the Planckian locus in CIE xy of
    Kang et al. (2002), valid for 1667–25000 K.

    Args:
        kelvin: colour temperatures, shape `(T,)`.

    Returns:
        `(T, 3)` linear sRGB colours (may have small negative components for
        very warm temperatures, outside the sRGB gamut).
    """
    t = np.asarray(kelvin, dtype=np.float64)
    x = np.where(
        t <= 4000,
        -0.2661239e9 / t**3 - 0.2343589e6 / t**2 + 0.8776956e3 / t + 0.179910,
        -3.0258469e9 / t**3 + 2.1070379e6 / t**2 + 0.2226347e3 / t + 0.240390,
    )
    y = np.select(
        [t <= 2222, t <= 4000],
        [
            -1.1063814 * x**3 - 1.34811020 * x**2 + 2.18555832 * x - 0.20219683,
            -0.9549476 * x**3 - 1.37418593 * x**2 + 2.09137015 * x - 0.16748867,
        ],
        3.0817580 * x**3 - 5.87338670 * x**2 + 3.75112997 * x - 0.37001483,
    )
    xyz = np.stack([x / y, np.ones_like(x), (1.0 - x - y) / y], axis=-1)
    rgb = xyz @ _XYZ_TO_LINEAR_SRGB.T
    return rgb / rgb.mean(axis=-1, keepdims=True)


_LOCUS_KELVIN = np.geomspace(1700.0, 20000.0, 400)
_LOCUS_RGB = planckian_locus_rgb(_LOCUS_KELVIN)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def illuminant_from_highlights(
    image_linear: np.ndarray,
    mask: np.ndarray,
    specular_white: np.ndarray,
    *,
    highlight_fraction: float = 0.2,
    min_peak: float = 0.8,
    min_pixels: int = 16,
) -> tuple[np.ndarray, bool]:
    """Illuminant colour from the dichromatic plane around the highlights.

    Pixels of one diffuse colour Λ under one illuminant Γ lie in the plane
    spanned by Λ and Γ (Shafer's dichromatic model). The plane is fitted
    (least squares through the origin) to the pixels in and around the
    highlights, where the diffuse colour is nearly constant; a single surface
    colour leaves Γ one degree of freedom within that plane, fixed here by
    the Planckian locus (Finlayson & Schaefer, IJCV 2001): Γ is where the plane
    crosses the locus, the crossing nearest to white when there are two.

    For skin the plane meets the locus at a shallow angle, so the position
    along the locus is uncertain by several degrees for daylight; see
    ``docs/SPECULAR_METHOD.md`` for measurements. Without highlights, or
    without a crossing, white is returned.

    Args:
        image_linear: `(H, W, 3)` linear intensities.
        mask: `(H, W)` bool, the face.
        specular_white: `(H, W)` a specular estimate under white light, used
            only to locate the highlights.
        highlight_fraction: pixels above this fraction of the peak specular
            are highlights; the region is dilated by 3 pixels.
        min_peak: smallest peak of ``specular_white``, as a fraction of the
            mean dark channel in the mask, that counts as a highlight (the
            refined map of a face without highlights peaks at about 0.3–0.7
            of it from skin-colour variation alone).
        min_pixels: fewest usable pixels to fit the plane.

    Returns:
        ``(illuminant, estimated)``: `(3,)` float32 linear sRGB colour with
        channel mean 1, and whether it came from the image (``False``: white).
    """
    white = np.ones(3, np.float32)
    peak = float(np.max(specular_white * mask, initial=0.0))
    mean_dark = float(image_linear[mask].min(axis=-1).mean()) if mask.any() else 0.0
    if peak <= min_peak * mean_dark or peak <= 0.0:
        return white, False
    highlights = ((specular_white > highlight_fraction * peak) & mask).astype(np.uint8)
    region = cv2.dilate(highlights, np.ones((7, 7), np.uint8)) > 0
    region &= mask & np.all((image_linear > 0.0) & (image_linear < 0.98), axis=-1)
    if region.sum() < min_pixels:
        return white, False
    _, _, vt = np.linalg.svd(image_linear[region].astype(np.float64), full_matrices=False)
    normal = _unit(np.cross(vt[0], vt[1]))
    locus = _unit(_LOCUS_RGB)
    signed = locus @ normal
    crossings = np.flatnonzero(np.sign(signed[1:]) != np.sign(signed[:-1]))
    if len(crossings) == 0:
        return white, False
    w = signed[crossings] / (signed[crossings] - signed[crossings + 1])
    candidates = (1 - w)[:, None] * locus[crossings] + w[:, None] * locus[crossings + 1]
    colour = candidates[np.argmax(_unit(candidates) @ _unit(white.astype(np.float64)))]
    colour = colour - (colour @ normal) * normal
    if np.any(colour <= 0):
        return white, False
    return (colour / colour.mean()).astype(np.float32), True


# --------------------------------------------------------------------------
# Separation
# --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class RefinementParams:
    """Parameters of the MAP refinement, in units of the face's mean grey level.

    Attributes:
        sparsity: α, cost per unit of specular (L1 prior: specular is sparse).
            Pulls the diffuse chromaticity towards the most saturated pixels,
            which removes the diffuse floor of the dark channel.
        noise: σ, image noise; a negative specular of size σ costs 1/2.
        smoothness: β, weight of the squared gradient of the specular map.
        chromaticity_tv: γ, weight of the total variation of the diffuse
            inverse saturation κ (piecewise-constant diffuse chromaticity).
        iterations: primal-dual iterations of stage 2.
        chromaticity: ``"smooth"`` (default): κ is a low-order polynomial
            in image coordinates over the mask, fitted with an asymmetric L1
            (quantile) data term, followed by a robust (median) smoothing of
            the specular map — suited to skin, whose chromaticity varies
            smoothly; ``"piecewise"``: the TV model above (α, σ, β, γ,
            iterations), suited to piecewise-constant diffuse colours;
            ``"skin"``: the smooth model's separation, its diffuse
            chromaticity smoothed (``skin_chroma_blur``), a per-pixel
            least-squares split into shading × that colour plus grey,
            kept inside the skin gamut (the range of grey additions that
            leave a colour of the skin table under some typical camera
            and daylight) and smoothed (``skin_blur``); see
            :func:`skin_gamut_bounds`.
        quantile: q of the smooth model: the cost of a pixel's specular
            ``s = g − κa`` is ``q·s`` for ``s ≥ 0`` (sparse specular) and
            ``(1 − q)·|s|`` for ``s < 0`` (robust data term).
        order: total degree of the polynomial κ field (smooth model).
        chroma_blur: spatial σ in pixels of the bilateral filter applied,
            inside the mask, to the chromatic part ``u`` before taking
            ``a = |u|`` (smooth model; ``u`` carries no specular, so this only
            denoises ``a``; 0: none).
        chroma_range: range σ of that filter, as a fraction of the face's
            median ``|u|``.
        median: size of the median filter applied to ``g − κa`` inside the
            mask (smooth model; 0 or 1: none).
        irls_iterations: reweighted least-squares iterations of the fit.
        skin_chroma_blur: ``chromaticity="skin"``: spatial σ in pixels of
            the Gaussian (normalised inside the mask) that smooths the
            diffuse chromaticity of the smooth model's separation before the
            per-pixel decomposition ``J = shading·c + s·(1, 1, 1)``.
        skin_blur: ``chromaticity="skin"``: σ in pixels of the final
            Gaussian smoothing of the specular map inside the mask (0: none).
        geometry: ``"none"`` (default), ``"lobes"`` or ``"light"``; both
            need the faces' normals. ``"lobes"``: the specular map (from the
            chosen chromaticity model, without its median filter) is
            projected onto non-negative lobes in the space of surface
            normals (:mod:`bioface_tf.specular_lobes`). ``"light"``
            (:func:`light_lobe_prior`): the light direction is fitted from
            the shading (grey level against the normals), and the map is
            ``light_weight ×`` the dark channel weighted by the Blinn–Phong
            lobe of that light and by the surface's convexity (scaled to
            the chromaticity model's total specular, at most the dark
            channel) plus ``1 − light_weight ×`` the chromaticity model's
            map (``docs/SPECULAR_METHOD.md`` §10d).
        light_exponent: ``geometry="light"``: Blinn–Phong exponent of the lobe.
        light_weight: ``geometry="light"``: share of the geometric map in
            the average with the chromaticity model's map.
        convexity_blur: ``geometry="light"``: σ in pixels of the Gaussian
            that smooths the convexity (divergence of the normals' image
            components) before weighting.
        convexity_floor: ``geometry="light"``: the weight is
            ``√(max(convexity, 0) + convexity_floor)``, so flat and concave
            regions keep a small weight.
    """

    sparsity: float = 0.05
    noise: float = 0.02
    smoothness: float = 0.3
    chromaticity_tv: float = 0.3
    iterations: int = 150
    chromaticity: str = "smooth"
    quantile: float = 0.3
    order: int = 3
    chroma_blur: float = 1.5
    chroma_range: float = 0.5
    median: int = 3
    irls_iterations: int = 40
    skin_chroma_blur: float = 8.0
    skin_blur: float = 1.0
    geometry: str = "none"
    light_exponent: float = 16.0
    light_weight: float = 0.5
    convexity_blur: float = 1.5
    convexity_floor: float = 0.02


@dataclasses.dataclass(frozen=True)
class Separation:
    """The two components of linearised images (one, or a batch).

    Shapes below are for one image; a batch has a leading `N` axis on every
    field.

    Attributes:
        diffuse: `(H, W, 3)` diffuse image, linear intensity, ≥ 0.
        specular: `(H, W)` refined specular map, linear intensity (channel
            mean of the specular image), ≥ 0, ≤ ``specular_dark``; zero
            outside the mask.
        specular_dark: `(H, W)` plain dark-channel estimate, same units.
        illuminant: `(3,)` illuminant colour used, channel mean 1.
        illuminant_estimated: `()` bool, whether ``illuminant`` was estimated
            from the image (``False``: given, or white).
    """

    diffuse: np.ndarray
    specular: np.ndarray
    specular_dark: np.ndarray
    illuminant: np.ndarray
    illuminant_estimated: np.ndarray

    def specular_image(self) -> np.ndarray:
        """`(H, W, 3)` specular image, linear intensity (``specular · Γ``)."""
        return self.specular[..., None] * self.illuminant[..., None, None, :]


def dark_channel(image_linear: np.ndarray, illuminant=(1.0, 1.0, 1.0)) -> np.ndarray:
    """Plain dark-channel specular estimate ``min_c I_c / Γ_c``.

    Args:
        image_linear: `(..., H, W, 3)` linear intensities.
        illuminant: `(3,)` or `(..., 3)` colour, any positive scale.

    Returns:
        `(..., H, W)` float32, ≥ 0.
    """
    gamma = _normalised(illuminant)[..., None, None, :]
    return np.maximum(np.min(np.asarray(image_linear, np.float32) / gamma, axis=-1), 0.0)


def separate(
    image_srgb: np.ndarray,
    mask: np.ndarray | None = None,
    illuminant=None,
    *,
    params: RefinementParams = RefinementParams(),
    curve: str = "srgb",
) -> Separation:
    """Separate one sRGB image into diffuse and specular components.

    Args:
        image_srgb: `(H, W, 3)` sRGB-encoded values in [0, 1] (uint8 is
            divided by 255).
        mask: `(H, W)`, nonzero on the face; ``None`` uses the whole image.
        illuminant: ``None`` for white (the image is white-balanced, as
            camera sRGB output is), ``"estimate"`` to estimate it with
            :func:`illuminant_from_highlights`, or a `(3,)` linear sRGB
            colour of any scale.
        params: refinement parameters.
        curve: linearisation curve, see :func:`linearise`.

    Returns:
        A :class:`Separation` in linear intensity.
    """
    image = as_unit_float(image_srgb)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"expected an (H, W, 3) image, got shape {image.shape}")
    masks = None if mask is None else np.asarray(mask)[None]
    if illuminant is not None and not isinstance(illuminant, str):
        illuminant = np.asarray(illuminant, np.float32)[None]
    batch = separate_batch(image[None], masks, illuminant, params=params, curve=curve)
    return Separation(*(np.asarray(field)[0] for field in dataclasses.astuple(batch)))


def separate_batch(
    images_srgb: np.ndarray,
    masks: np.ndarray | None = None,
    illuminants=None,
    *,
    params: RefinementParams = RefinementParams(),
    curve: str = "srgb",
    normals: np.ndarray | None = None,
) -> Separation:
    """Separate many same-sized sRGB images, solved together.

    Args:
        images_srgb: `(N, H, W, 3)` sRGB values in [0, 1] (or uint8).
        masks: `(N, H, W)`, nonzero on the faces; ``None`` for whole images.
        illuminants: ``None`` (white), ``"estimate"`` (per image), or `(3,)` /
            `(N, 3)` linear sRGB colours.
        params: refinement parameters.
        curve: linearisation curve, see :func:`linearise`.
        normals: `(N, H, W, 3)` unit normals, camera frame, z towards the
            camera; needed when ``params.geometry`` is ``"lobes"`` or ``"light"``.

    Returns:
        A :class:`Separation` with a leading `N` axis.
    """
    linear = linearise(as_unit_float(images_srgb), curve)
    if linear.ndim != 4 or linear.shape[-1] != 3:
        raise ValueError(f"expected (N, H, W, 3) images, got shape {linear.shape}")
    n = len(linear)
    masks = np.ones(linear.shape[:3], bool) if masks is None else np.asarray(masks) > 0
    estimated = np.zeros(n, bool)
    if illuminants is None:
        gammas = np.ones((n, 3), np.float32)
    elif isinstance(illuminants, str):
        if illuminants != "estimate":
            raise ValueError(f"illuminants must be None, 'estimate' or colours, got {illuminants!r}")
        white = np.ones((n, 3), np.float32)
        # Highlights are located with the piecewise model (§6 of the method doc).
        locator = dataclasses.replace(params, chromaticity="piecewise")
        specular_white, _ = specular_maps(linear, masks, white, locator)
        found = [illuminant_from_highlights(linear[i], masks[i], specular_white[i]) for i in range(n)]
        gammas = np.stack([colour for colour, _ in found])
        estimated = np.array([flag for _, flag in found])
    else:
        gammas = np.broadcast_to(np.asarray(illuminants, np.float32), (n, 3))
    gammas = _normalised(gammas)
    specular, dark = specular_maps(linear, masks, gammas, params, normals)
    diffuse = np.maximum(linear - specular[..., None] * gammas[:, None, None, :], 0.0)
    return Separation(diffuse, specular, dark, gammas, estimated)


def specular_maps(
    linear: np.ndarray,
    masks: np.ndarray,
    illuminants: np.ndarray,
    params: RefinementParams = RefinementParams(),
    normals: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Refined and dark-channel specular maps of linear images.

    Args:
        linear: `(N, H, W, 3)` linear intensities.
        masks: `(N, H, W)` bool, the pixels to explain.
        illuminants: `(N, 3)` illuminant colours (any positive scale).
        params: refinement parameters.
        normals: `(N, H, W, 3)` unit normals (camera frame, z towards the
            camera), for ``params.geometry == "lobes"``.

    Returns:
        ``(specular, specular_dark)``, each `(N, H, W)` float32, linear
        intensity, ≥ 0, ``specular ≤ specular_dark``; ``specular`` is zero
        outside the mask.
    """
    if params.geometry == "lobes":
        if normals is None:
            raise ValueError("geometry='lobes' needs the faces' normals (N, H, W, 3); none were given")
        evidence, dark = specular_maps(linear, masks, illuminants, dataclasses.replace(params, geometry="none", median=0))
        lobes = fit_lobes(evidence, normals, np.asarray(masks, bool))
        return (np.clip(lobes, 0.0, dark) * masks).astype(np.float32), dark
    if params.geometry == "light":
        if normals is None:
            raise ValueError("geometry='light' needs the faces' normals (N, H, W, 3); none were given")
        colour, dark = specular_maps(linear, masks, illuminants, dataclasses.replace(params, geometry="none"))
        masks = np.asarray(masks, bool)
        balanced = np.asarray(linear, np.float32) / _normalised(illuminants)[:, None, None, :]
        prior = light_lobe_prior(balanced.mean(axis=-1), normals, masks, params)
        geometric = dark * prior
        total = (geometric * masks).sum(axis=(1, 2))
        scale = np.where(total > _EPS, (colour * masks).sum(axis=(1, 2)) / np.maximum(total, _EPS), 0.0)
        geometric = np.minimum(scale[:, None, None] * geometric, dark)
        mixed = params.light_weight * geometric + (1.0 - params.light_weight) * colour
        return (np.clip(mixed, 0.0, dark) * masks).astype(np.float32), dark
    if params.geometry != "none":
        raise ValueError(f"geometry must be 'none', 'lobes' or 'light', got {params.geometry!r}")
    balanced = np.asarray(linear, np.float32) / _normalised(illuminants)[:, None, None, :]
    dark = np.maximum(balanced.min(axis=-1), 0.0)
    masks = np.asarray(masks, bool)
    grey = balanced.mean(axis=-1)
    if params.chromaticity == "smooth":
        return _smooth_model(grey, balanced - grey[..., None], dark, masks, params), dark.astype(np.float32)
    if params.chromaticity == "skin":
        return _skin_model(balanced, grey, dark, masks, params), dark.astype(np.float32)
    if params.chromaticity != "piecewise":
        raise ValueError(f"chromaticity must be 'smooth', 'skin' or 'piecewise', got {params.chromaticity!r}")
    chroma = np.sqrt(np.sum((balanced - grey[..., None]) ** 2, axis=-1))
    # Parameters are in units of each face's mean grey level.
    count = np.maximum(masks.sum(axis=(1, 2)), 1)
    scale = np.maximum((grey * masks).sum(axis=(1, 2)) / count, _EPS)[:, None, None].astype(np.float32)
    kappa = _refine_inverse_saturation(
        grey / scale, chroma / scale, (grey - np.minimum(dark, grey)) / scale, masks, params
    )
    specular = np.clip(grey - kappa * chroma, 0.0, dark) * masks
    return specular.astype(np.float32), dark.astype(np.float32)


# --------------------------------------------------------------------------
# The light-lobe prior (geometry="light")
# --------------------------------------------------------------------------


def light_directions(grey: np.ndarray, normals: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Per face, the direction ``l`` of the least-squares fit ``g ≈ c₀ + c·n`` inside the mask, `(N, 3)`.

    A first-order (linear) shading model: the grey level's gradient over
    normals points at the dominant light. Faces with fewer than 4 mask
    pixels, or no fitted direction, get the camera axis ``(0, 0, 1)``.
    """
    out = np.tile(np.array([0.0, 0.0, 1.0]), (len(grey), 1))
    for i, (g, n, m) in enumerate(zip(grey, normals, masks)):
        if m.sum() < 4:
            continue
        design = np.concatenate([np.ones((int(m.sum()), 1)), n[m].astype(np.float64)], axis=1)
        coefficients = np.linalg.lstsq(design, g[m].astype(np.float64), rcond=None)[0][1:]
        length = np.linalg.norm(coefficients)
        if np.isfinite(length) and length > 1e-12:
            out[i] = coefficients / length
    return out


def light_lobe_prior(grey, normals, masks, params: RefinementParams = RefinementParams()) -> np.ndarray:
    """Where highlights can be: `(N, H, W)` in [0, ~1], zero outside the mask.

    ``max(n·h, 0)^p × √(max(convexity, 0) + floor)`` with ``h`` the half
    vector between the light fitted by :func:`light_directions` and the
    camera axis (distant viewer), ``p = light_exponent``, and the convexity
    the divergence of the normals' image components (``∂n_x/∂col −
    ∂n_y/∂row``, y up), smoothed by ``convexity_blur`` px. Highlights sit on
    light-facing, convex regions; pigment does not follow either.

    Args:
        grey: `(N, H, W)` grey level of the white-balanced linear image.
        normals: `(N, H, W, 3)` camera-frame normals (x right, y up, z to the camera).
        masks: `(N, H, W)` bool.
    """
    normals = np.asarray(normals, np.float32)
    if normals.shape != np.shape(grey) + (3,):
        raise ValueError(f"normals must be (N, H, W, 3) matching the images {np.shape(grey)}, got {normals.shape}")
    normals = normals / np.maximum(np.linalg.norm(normals, axis=-1, keepdims=True), 1e-6)
    masks = np.asarray(masks, bool)
    half = light_directions(grey, normals, masks) + np.array([0.0, 0.0, 1.0])
    half /= np.maximum(np.linalg.norm(half, axis=1, keepdims=True), 1e-12)
    cosine = np.maximum(np.einsum("nhwc,nc->nhw", normals, half.astype(np.float32)), 0.0)
    lobe = cosine**params.light_exponent
    convexity = np.gradient(normals[..., 0], axis=2) - np.gradient(normals[..., 1], axis=1)
    if params.convexity_blur > 0:
        convexity = np.stack([cv2.GaussianBlur(c.astype(np.float32), (0, 0), params.convexity_blur) for c in convexity])
    weight = np.sqrt(np.maximum(convexity, 0.0) + params.convexity_floor)
    return (lobe * weight * masks).astype(np.float32)


# --------------------------------------------------------------------------
# The smooth-chromaticity model
# --------------------------------------------------------------------------


def _smooth_model(grey, chromatic, dark, masks, params: RefinementParams) -> np.ndarray:
    """Specular map under a polynomial κ field (``docs/SPECULAR_METHOD.md`` §3b).

    Only the pixels inside the masks enter the fit, so they are gathered
    first: face by face in raster order, padded (with weight 0) to the
    largest face of the batch. Each reweighted least-squares step is then one
    batched product ``[design | g]·W·[design | g]ᵀ`` (normal matrix and
    right-hand side together) and one small solve per face.

    Args:
        grey: `(N, H, W)` grey level ``g`` of the white-balanced image.
        chromatic: `(N, H, W, 3)` its chromatic part ``u``.
        dark: `(N, H, W)` dark channel.
        masks: `(N, H, W)` bool.
        params: refinement parameters.

    Returns:
        `(N, H, W)` float32 specular, in ``[0, dark]`` inside the mask, 0 outside.
    """
    n = len(grey)
    weight = masks.astype(np.float32)
    if params.chroma_blur > 0:
        chromatic = np.stack(
            [_edge_preserving_blur(c, w, params.chroma_blur, params.chroma_range) for c, w in zip(chromatic, weight)]
        )
    a = np.sqrt(np.sum(chromatic**2, axis=-1)).astype(np.float32)

    flat = masks.reshape(n, -1)
    counts = flat.sum(axis=1)
    width = max(int(counts.max(initial=0)), 1)
    index = np.argsort(~flat, axis=1, kind="stable")[:, :width]  # (N, P): mask pixels first, raster order
    inside = (np.arange(width)[None, :] < counts[:, None]).astype(np.float32)
    basis = _polynomial_basis(masks, params.order, index)  # (N, K, P)
    k = basis.shape[1]
    g = np.take_along_axis(grey.astype(np.float32).reshape(n, -1), index, axis=1) * inside
    system = np.empty((n, k + 1, width), np.float32)  # rows: the design a·xⁱyʲ, then g
    np.multiply(basis, np.take_along_axis(a.reshape(n, -1), index, axis=1)[:, None, :], out=system[:, :k])
    system[:, k] = g
    design = system[:, :k]
    count = np.maximum(counts, 1)
    scale = np.maximum(g.sum(axis=1) / count, _EPS)
    floor = (1e-3 * scale)[:, None].astype(np.float32)
    above, below = np.float32(params.quantile), np.float32(1.0 - params.quantile)
    w = inside
    ridge = 1e-9 * np.eye(k)
    weighted = np.empty_like(system)
    residual = g
    for _ in range(params.irls_iterations):
        # (√w·S)(√w·S)ᵀ: NumPy hands a product of an array with its own transpose to BLAS syrk.
        np.multiply(system, np.sqrt(w)[:, None, :], out=weighted)
        normal = np.matmul(weighted, weighted.transpose(0, 2, 1)).astype(np.float64)  # (N, K+1, K+1)
        coefficients = np.linalg.solve(normal[:, :k, :k] + ridge, normal[:, :k, k:]).astype(np.float32)
        residual = g - np.matmul(coefficients.transpose(0, 2, 1), design)[:, 0]
        w = np.where(residual > 0, above, below) / np.maximum(np.abs(residual), floor) * inside
    full = np.zeros((n, masks[0].size), np.float32)
    np.put_along_axis(full, index, residual * inside, axis=1)
    full = full.reshape(grey.shape)
    if params.median > 1:
        full = np.stack([cv2.medianBlur(r, params.median) for r in full])
    return (np.clip(full, 0.0, dark) * masks).astype(np.float32)


def _polynomial_basis(masks, order: int, index) -> np.ndarray:
    """Monomials ``xⁱyʲ`` (i + j ≤ order) at the pixels ``index`` `(N, P)` (flat, per face), `(N, K, P)`.

    Coordinates are scaled to [−1, 1] over each mask's bounding box (the
    whole image for an empty mask).
    """
    n, h, w = masks.shape
    rows_any, cols_any = masks.any(axis=2), masks.any(axis=1)
    empty = ~rows_any.any(axis=1)
    top = np.where(empty, 0, np.argmax(rows_any, axis=1))
    bottom = np.where(empty, h - 1, h - 1 - np.argmax(rows_any[:, ::-1], axis=1))
    left = np.where(empty, 0, np.argmax(cols_any, axis=1))
    right = np.where(empty, w - 1, w - 1 - np.argmax(cols_any[:, ::-1], axis=1))
    yy, xx = np.divmod(index, w)
    x = (2.0 * xx - (left + right)[:, None]) / np.maximum(right - left, 1)[:, None]
    y = (2.0 * yy - (top + bottom)[:, None]) / np.maximum(bottom - top, 1)[:, None]
    x_powers, y_powers = [np.ones_like(x)], [np.ones_like(y)]
    for _ in range(order):
        x_powers.append(x_powers[-1] * x)
        y_powers.append(y_powers[-1] * y)
    terms = [(i, j) for i in range(order + 1) for j in range(order + 1 - i)]
    out = np.empty((n, len(terms), index.shape[1]), np.float32)
    for t, (i, j) in enumerate(terms):
        np.multiply(x_powers[i], y_powers[j], out=out[:, t], casting="same_kind")
    return out


def _edge_preserving_blur(chromatic, weight, sigma, colour_range):
    """Bilateral filter of a face's chromatic part `(H, W, 3)` inside its mask.

    Spatial Gaussian σ = ``sigma`` pixels (5×5 window); range σ =
    ``colour_range`` × the median ``|u|`` in the mask, so colour edges
    (piecewise-constant diffuse colours) are kept while pixel noise is averaged.
    """
    inside = weight > 0
    if not inside.any():
        return chromatic
    reference = float(np.median(np.sqrt(np.sum(chromatic[inside] ** 2, axis=-1))))
    masked = (chromatic * weight[..., None]).astype(np.float32)
    filtered = cv2.bilateralFilter(masked, 5, max(colour_range * reference, _EPS), sigma)
    return filtered * weight[..., None]


# --------------------------------------------------------------------------
# The skin model
# --------------------------------------------------------------------------

# Cameras (the decoder's b) and daylights (D-series index) whose skin tables
# make the gamut: the database mean and ±2 along each camera axis, under
# 4000 K, ~6500 K and 13000 K daylight. No face's true camera or light is used.
SKIN_GAMUT_CAMERAS = ((0.0, 0.0), (-2.0, 0.0), (2.0, 0.0), (0.0, -2.0), (0.0, 2.0))
SKIN_GAMUT_DAYLIGHTS = (1.0, 3.5, 10.0)
_HUE_BINS = 360
_PLANE = np.array([[1.0, -1.0, 0.0], [1.0, 1.0, -2.0]]) / np.array([[np.sqrt(2.0)], [np.sqrt(6.0)]])


def _grey_chroma_hue(x):
    """Grey level ``g``, chroma ``a = |u|`` and hue angle of ``u`` (in the plane ⟂ grey) of `(..., 3)` colours."""
    grey = x.mean(axis=-1)
    plane = (x - grey[..., None]) @ _PLANE.T
    return grey, np.sqrt(np.sum(plane**2, axis=-1)), np.arctan2(plane[..., 1], plane[..., 0])


def _hue_bin(hue):
    return ((hue + np.pi) * (_HUE_BINS / (2.0 * np.pi))).astype(np.int64) % _HUE_BINS


_SKIN_GAMUT = None


def skin_gamut_bounds() -> tuple[np.ndarray, np.ndarray]:
    """Inverse-saturation range of skin per hue, `(2, 360)` float64 ``(κ_min, κ_max)``.

    Every entry of the skin table (256 × 256 melanin × haemoglobin, shading 1,
    white-balanced linear sRGB, :func:`bioface_tf.inversion.table_colours`)
    under each camera of ``SKIN_GAMUT_CAMERAS`` and daylight of
    ``SKIN_GAMUT_DAYLIGHTS`` is a diffuse skin colour ``g·1 + u``; per hue
    bin of ``u`` (1°) the smallest and largest ``κ = g / |u|`` of those
    colours. A pixel ``J = g·1 + u`` of that hue is skin plus a grey ``s``
    only if ``κ_min ≤ (g − s) / |u| ≤ κ_max``, so
    ``g − κ_max·|u| ≤ s ≤ g − κ_min·|u|``. Bins no table colour reaches take
    the nearest bin that one does. Computed once per process.
    """
    global _SKIN_GAMUT
    if _SKIN_GAMUT is None:
        from bioface_tf.inversion import table_colours

        low = np.full(_HUE_BINS, np.inf)
        high = np.full(_HUE_BINS, -np.inf)
        for b in SKIN_GAMUT_CAMERAS:
            for daylight in SKIN_GAMUT_DAYLIGHTS:
                colours = table_colours(np.asarray(b), np.eye(14)[1], daylight).reshape(-1, 3)
                grey, chroma, hue = _grey_chroma_hue(colours)
                keep = (grey > 1e-4) & (chroma > 1e-9)
                kappa, bins = grey[keep] / chroma[keep], _hue_bin(hue[keep])
                np.minimum.at(low, bins, kappa)
                np.maximum.at(high, bins, kappa)
        filled = np.flatnonzero(np.isfinite(low))
        offset = np.arange(_HUE_BINS)[:, None] - filled[None, :]
        nearest = filled[np.abs((offset + _HUE_BINS // 2) % _HUE_BINS - _HUE_BINS // 2).argmin(axis=1)]
        _SKIN_GAMUT = np.stack([low[nearest], high[nearest]])
    return _SKIN_GAMUT


def _skin_model(balanced, grey, dark, masks, params: RefinementParams) -> np.ndarray:
    """Specular map of the ``"skin"`` chromaticity model (``docs/SPECULAR_METHOD.md`` §3c).

    1. Start: the smooth model's specular (no median), so the diffuse image
       ``J − s₀`` and its chromaticity ``J − s₀ / Σ``.
    2. Smooth that chromaticity inside the mask (Gaussian, σ =
       ``skin_chroma_blur``): skin's colour varies slowly, pixel noise and
       the start's errors do not.
    3. Per pixel, least squares ``J ≈ t·c + s·(1, 1, 1)`` in ``(t, s)`` (shading
       times the smoothed colour, plus a grey specular): the part of ``J``
       off the plane of ``c`` and grey is dropped, not read as specular.
    4. Clip ``s`` to the skin gamut's range for the pixel's hue
       (:func:`skin_gamut_bounds`) and to ``[0, dark]``; smooth the map
       (σ = ``skin_blur``) and clip to ``[0, dark]`` again.
    """
    start = _smooth_model(grey, balanced - grey[..., None], dark, masks, dataclasses.replace(params, median=0))
    diffuse = np.maximum(balanced - start[..., None], _EPS)
    colour = diffuse / diffuse.sum(axis=-1, keepdims=True)
    colour = np.stack([_masked_gaussian(c, m, params.skin_chroma_blur) for c, m in zip(colour, masks)])
    cc, c1 = np.sum(colour * colour, axis=-1), colour.sum(axis=-1)
    jc, j1 = np.sum(balanced * colour, axis=-1), balanced.sum(axis=-1)
    specular = (cc * j1 - c1 * jc) / np.maximum(3.0 * cc - c1 * c1, _EPS)
    g, a, hue = _grey_chroma_hue(balanced)
    kappa_min, kappa_max = skin_gamut_bounds()[:, _hue_bin(hue)]
    specular = np.clip(specular, g - kappa_max * a, g - kappa_min * a)
    specular = np.clip(specular, 0.0, dark) * masks
    specular = np.stack([_masked_gaussian(s, m, params.skin_blur) for s, m in zip(specular, masks)])
    return (np.clip(specular, 0.0, dark) * masks).astype(np.float32)


def _masked_gaussian(image, mask, sigma):
    """Gaussian blur of `(H, W)` or `(H, W, C)` inside ``mask`` (normalised convolution); 0 outside."""
    weight = mask.astype(np.float32)
    if sigma <= 0:
        return image * (weight if image.ndim == 2 else weight[..., None])
    spread = cv2.GaussianBlur(weight, (0, 0), sigma)
    inside = np.where(weight > 0, 1.0 / np.maximum(spread, _EPS), 0.0).astype(np.float32)
    if image.ndim == 2:
        return cv2.GaussianBlur((image * weight).astype(np.float32), (0, 0), sigma) * inside
    blurred = cv2.GaussianBlur((image * weight[..., None]).astype(np.float32), (0, 0), sigma)
    return blurred.reshape(image.shape) * inside[..., None]


# --------------------------------------------------------------------------
# The solver
# --------------------------------------------------------------------------


def _refine_inverse_saturation(g, a, floor_gap, mask, params: RefinementParams) -> np.ndarray:
    """Minimise E(κ) (module docstring) for a batch of faces.

    Args:
        g: `(N, H, W)` grey level of the white-balanced image.
        a: `(N, H, W)` magnitude of its chromatic part.
        floor_gap: `(N, H, W)` ``g − dark``, so that ``κ_dark = floor_gap / a``.
        mask: `(N, H, W)` bool.
        params: refinement parameters.

    Returns:
        `(N, H, W)` κ, the inverse saturation of the diffuse chromaticity.
    """
    alpha, inv_var = params.sparsity, 1.0 / params.noise**2
    a = np.maximum(a, _EPS).astype(np.float32)
    kappa_dark = (floor_gap / a).astype(np.float32)
    kappa_obs = (g / a).astype(np.float32)
    kappa = np.maximum(kappa_dark, _constant_kappa(g, a, mask, alpha, inv_var)[:, None, None])

    # Stage 2: Condat–Vũ primal-dual iterations.
    #   smooth part  F(κ) = β/2 |D (g − aκ)|²   (D: masked forward differences)
    #   prox part    G(κ) = Σ φ(g − aκ) + ι[κ ≥ κ_dark]   (per pixel, closed form)
    #   dual part    H(Dκ) = γ |Dκ|₁                     (prox of H*: clip to ±γ)
    # Diagonal preconditioning: per-pixel primal steps τ from the Gershgorin
    # bounds of ∇²F and of DᵀD, so that a face's result does not depend on
    # the other faces solved with it.
    ex = (mask[:, :, 1:] & mask[:, :, :-1]).astype(np.float32)
    ey = (mask[:, 1:, :] & mask[:, :-1, :]).astype(np.float32)
    beta, tv = params.smoothness, params.chromaticity_tv
    degree = _neighbour_count(ex, ey)
    a_masked = a * mask
    neighbour_a = _neighbour_sum(a_masked, ex, ey)
    curvature = beta * a * (a * degree + neighbour_a)
    sigma = np.float32(_DUAL_STEP)
    tau = (1.0 / (curvature + 2.0 * sigma * degree + _EPS)).astype(np.float32)
    px = np.zeros_like(ex)
    py = np.zeros_like(ey)
    inactive = ~mask
    for _ in range(params.iterations):
        s = g - a * kappa
        sx, sy = _diff(s, ex, ey)
        grad = -beta * a * _diff_adjoint(sx, sy) + _diff_adjoint(px, py)
        new = _prox_data(kappa - tau * grad, g, a, kappa_obs, kappa_dark, tau, alpha, inv_var)
        new[inactive] = kappa[inactive]
        qx, qy = _diff(2.0 * new - kappa, ex, ey)
        np.clip(px + sigma * qx, -tv, tv, out=px)
        np.clip(py + sigma * qy, -tv, tv, out=py)
        kappa = new
    return kappa


def _constant_kappa(g, a, mask, alpha, inv_var, steps: int = 40) -> np.ndarray:
    """Stage 1: the best κ constant over each face, by bisection.

    dE/dκ for a constant κ is ``Σ a·(−α·[s > 0] + (aκ − g)/σ²·[s < 0])``,
    increasing in κ; its root lies between 0 and the largest observed
    ``g / a``.
    """
    n = len(g)
    weight = (a * mask).reshape(n, -1)
    gg = g.reshape(n, -1)
    aa = a.reshape(n, -1)
    kappa_obs = gg / aa
    lo = np.zeros(n, np.float32)
    hi = np.array([np.max(k[m.reshape(-1)], initial=1.0) for k, m in zip(kappa_obs, mask)], np.float32)
    for _ in range(steps):
        mid = 0.5 * (lo + hi)
        residual = aa * mid[:, None] - gg
        slope = np.where(residual < 0, -alpha, residual * inv_var)
        up = (weight * slope).sum(axis=1) < 0
        lo = np.where(up, mid, lo)
        hi = np.where(up, hi, mid)
    return 0.5 * (lo + hi)


def _prox_data(v, g, a, kappa_obs, kappa_dark, tau, alpha, inv_var) -> np.ndarray:
    """Per-pixel prox of ``τ·φ(g − aκ)`` restricted to ``κ ≥ κ_dark``."""
    up = v + (tau * alpha) * a
    down = (v + (tau * inv_var) * a * g) / (1.0 + (tau * inv_var) * a * a)
    out = np.where(up < kappa_obs, up, np.where(down > kappa_obs, down, kappa_obs))
    return np.maximum(out, kappa_dark)


def _diff(x, ex, ey):
    """Masked forward differences of `(N, H, W)` along W and H."""
    return (x[:, :, 1:] - x[:, :, :-1]) * ex, (x[:, 1:, :] - x[:, :-1, :]) * ey


def _neighbour_count(ex, ey):
    """Number of in-mask neighbours of every pixel, `(N, H, W)`."""
    return _neighbour_sum(None, ex, ey)


def _neighbour_sum(x, ex, ey):
    """Sum of ``x`` over each pixel's in-mask neighbours (``x=None``: count)."""
    n, h, w1 = ex.shape
    out = np.zeros((n, h, w1 + 1), np.float32)
    right = ex if x is None else ex * x[:, :, 1:]
    left = ex if x is None else ex * x[:, :, :-1]
    down = ey if x is None else ey * x[:, 1:, :]
    up = ey if x is None else ey * x[:, :-1, :]
    out[:, :, :-1] += right
    out[:, :, 1:] += left
    out[:, :-1, :] += down
    out[:, 1:, :] += up
    return out


def _diff_adjoint(dx, dy):
    """Adjoint of :func:`_diff` (minus the divergence)."""
    n, h, w1 = dx.shape
    out = np.zeros((n, h, w1 + 1), np.float32)
    out[:, :, :-1] -= dx
    out[:, :, 1:] += dx
    out[:, :-1, :] -= dy
    out[:, 1:, :] += dy
    return out


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------


def _normalised(illuminant) -> np.ndarray:
    """`(..., 3)` illuminant colours scaled to channel mean 1."""
    gamma = np.asarray(illuminant, np.float32)
    if gamma.shape[-1:] != (3,) or not np.all(np.isfinite(gamma)) or np.any(gamma <= 0):
        raise ValueError(f"an illuminant is three positive numbers, got {gamma.tolist()}")
    return gamma / gamma.mean(axis=-1, keepdims=True)
