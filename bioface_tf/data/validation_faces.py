"""A validation family of rendered faces, for choosing training recipes.

Three families of rendered faces with ground truth exist, each with its own
job:

* **training** — :mod:`bioface_tf.data.stream` / ``bioface synth``: what
  models learn from;
* **validation** (this module) — what training *recipes* (generator changes,
  schedules, loss weights, checkpoints) are chosen by: a model's transfer to
  faces unlike its training faces;
* **evaluation** — :mod:`bioface_tf.data.eval_faces`: the final score, never
  used to choose anything.

So this family is made differently from both others. It imports neither of
them (nor :mod:`bioface_tf.data.synth`, nor the Keras decoder); it shares only
the physics — the spectral tables of :mod:`bioface_tf.spectra` and the image
formation of PHYSICS.md, re-implemented here in NumPy — so its ground truth is
in the decoder's units. Each face is made in five steps:

1. **Geometry** — a triangle mesh. A superquadric head (separate vertical and
   horizontal exponents, a tapered jaw) is gridded in its own chart (longitude
   φ, latitude θ; the grid is denser at the face) and displaced along its
   normal by a sum of compactly supported Wendland radial basis functions and
   capsules placed in that chart: nose, alae, brow ridge, eye sockets with lid
   folds, cheekbones, lips, mouth line, nasolabial folds, chin, temples, ears,
   and a hair volume above a jagged hairline. A neck/shoulder surface of
   revolution and, for long hair, a hair curtain are separate meshes. The head
   is posed (yaw, pitch, roll, incl. three-quarter views), projected through a
   perspective pinhole (2.6–14 head units away) and rasterised with a
   z-buffer at 2×2 samples per pixel; normals, chart coordinates, tangents and
   occlusion are interpolated barycentrically.
2. **Skin** — melanin and haemoglobin maps (decoder units, [−1, 1]) built in
   the chart from Gaussian random fields with power-law spectra (FFT
   filtering) plus melasma-like symmetric blotches, rosacea-like redness,
   acne papules with halos (and brown marks on darker skin), café-au-lait,
   port-wine or pale birthmarks, moles, sun spots, tanned and untanned
   regions, dark under-eye skin, lips and brows. Skin colour is the skin
   reflectance table looked up at the ground truth. Hair, sclera, iris,
   pupil, lashes, mouth interior, teeth, clothes and the background have
   their own smooth reflectance spectra and are outside the mask.
3. **Light** — one illuminant spectrum per face, made here (not a CIE
   mixture): a blackbody, a phosphor-converted white LED, or spectrally tilted
   daylight, normalised to sum 1. The grey shading is an environment given by
   random second-order SH coefficients (kept positive) times a cavity
   occlusion term, plus 1–3 disc-shaped "area" lights sampled at 7
   directions each, with soft cast shadows from shadow maps (percentage-closer
   filtering). Specular: Ward's anisotropic BRDF per light with per-region
   gloss (T-zone glossier), an oiliness map, and a glossy reflection of the SH
   environment.
4. **Camera** — one of the 28 measured cameras, most of them perturbed (a
   wavelength shift and a smooth per-channel tilt), each channel renormalised;
   not a PCA camera. ``gt_b`` is its least-squares PCA fit.
5. **Sensor** — in raw camera space: exposure that blends incident and
   (centre-weighted) reflected-light metering, vignetting, blur (Gaussian or
   defocus disc), a one-pixel lateral chromatic aberration sometimes,
   Poisson–Gaussian noise in electrons with clipping at full well, white
   balance for a spectrally mis-estimated light, raw→XYZ→linear sRGB, then a
   tone curve that varies around sRGB, 8 bits and sometimes JPEG.

Where a pixel is all skin, its noise-free linear image times its gain
(exposure × vignetting, folded into ``gt_shading`` and ``gt_specmask``) is
exactly the PHYSICS.md rendering of its ground truth with the true camera and
illuminant. The illuminant is generally not a mixture of the decoder's
illuminants: ``gt_light_weights`` and ``gt_cct`` are its nearest
representation (non-negative least squares on the spectrum over a grid of
``cct``). Face ``i`` depends only on ``(seed, i)``.

:func:`write_validation_faces` writes the layout of
:func:`bioface_tf.data.eval_faces.write_eval_faces` (readable by
:class:`~bioface_tf.data.CelebAFaces`), with ``family="validation_faces"``.
See ``docs/VALIDATION_FACES.md``.

Example:

>>> faces = render_validation_faces(2, size=32, seed=0)   # doctest: +SKIP
>>> faces["image"].shape, faces["gt_b"].shape              # doctest: +SKIP
((2, 32, 32, 3), (2, 2))
"""

from __future__ import annotations

import dataclasses
import functools
import pathlib

import cv2
import h5py
import numpy as np
from tqdm import tqdm

from bioface_tf import spectra
from bioface_tf.data import shading as sh_shading
from bioface_tf.data.celeba import DATASET, EMBEDDED_LIGHTING, N_CHANNELS
from bioface_tf.errors import DataError

FAMILY = "validation_faces"
STREAM = 0x7A11D
CHUNK = 32
N_ILLUMINANTS = 14
B_RANGE = 3.0
SUPERSAMPLE = 2
LIGHT_FLOOR = 1e-8
CCT_STEP = 0.1
LAMBDA = spectra.WAVELENGTHS_NM

BACKGROUND, SKIN, NECK, HAIR, SCLERA, IRIS, PUPIL, MOUTH, TEETH, LASH, CLOTH = range(-1, 10)
N_MATERIALS = 10
HEAD_MESH, NECK_MESH, CURTAIN_MESH = range(3)
DISC_RING = 0.65
SUB_DIRECTIONS = 7


# --------------------------------------------------------------------------
# Spectral image formation (PHYSICS.md §3–§8), for any camera curves
# --------------------------------------------------------------------------


def decoder_illuminant(light_weights: np.ndarray, cct: np.ndarray) -> np.ndarray:
    """The decoder's illuminant model, PHYSICS.md §3: ``wA·A + wD·D(cct) + Σ wFi·Fi``, normalised.

    Args:
        light_weights: (B, 14) non-negative, order [A, D, F1..F12].
        cct: (B,) index in [1, 22], linear interpolation between tabulated D.

    Returns:
        (B, 33), each summing to 1.
    """
    tables = spectra.illuminants()
    weights = np.maximum(np.asarray(light_weights, dtype=np.float64).reshape(-1, N_ILLUMINANTS), 0.0)
    daylight = _daylight(np.asarray(cct, dtype=np.float64).reshape(-1))
    spd = weights[:, :1] * tables.a + weights[:, 1:2] * daylight + weights[:, 2:] @ tables.fluorescent
    return spd / spd.sum(axis=-1, keepdims=True)


def _daylight(cct: np.ndarray) -> np.ndarray:
    """D-series at fractional indices (B,) → (B, 33), linear between table entries."""
    table = spectra.illuminants().d_series
    position = np.clip(cct, 1.0, 22.0) - 1.0
    lower = np.clip(np.floor(position), 0, 20).astype(np.int64)
    fraction = (position - lower)[:, None]
    return (1.0 - fraction) * table[lower] + fraction * table[lower + 1]


def camera_response(reflectance: np.ndarray, sensitivity: np.ndarray, spd: np.ndarray) -> np.ndarray:
    """``Σλ R(λ)·e(λ)·S_c(λ)``: (..., 33), (3, 33), (33,) → (..., 3)."""
    return np.asarray(reflectance) @ (sensitivity * spd).T


def raw_to_linear(raw: np.ndarray, white: np.ndarray, sensitivity: np.ndarray) -> np.ndarray:
    """White balance by ``white`` (3,), raw→XYZ by the camera's T, XYZ→linear sRGB, ReLU; (..., 3)."""
    matrix = spectra.XYZ_TO_LINEAR_SRGB @ spectra.raw_to_xyz_of(sensitivity) / np.maximum(white, LIGHT_FLOOR)[None, :]
    return np.maximum(raw @ matrix.T, 0.0)


@functools.lru_cache(maxsize=None)
def _flat_skin_table() -> np.ndarray:
    return spectra.skin_reflectance_table().reshape(-1, spectra.N_WAVELENGTHS)


def skin_lookup(table: np.ndarray, fmel: np.ndarray, fblood: np.ndarray) -> np.ndarray:
    """Bilinear, align-corners lookup (PHYSICS.md §6) in a (256·256, C) table, haemoglobin-major.

    ``fblood`` picks the row, ``fmel`` the column; both clipped to [−1, 1]. (..., C).
    """
    grid = spectra.N_SKIN_GRID

    def split(value):
        where = np.clip((np.asarray(value, dtype=np.float64) + 1.0) * 0.5 * (grid - 1), 0.0, grid - 1.0)
        lower = np.minimum(np.floor(where), grid - 2.0)
        return lower.astype(np.int64), (where - lower)[..., None]

    column, fx = split(fmel)
    row, fy = split(fblood)
    corner = row * grid + column
    top = table[corner] * (1.0 - fx) + table[corner + 1] * fx
    bottom = table[corner + grid] * (1.0 - fx) + table[corner + grid + 1] * fx
    return top * (1.0 - fy) + bottom * fy


def skin_raw_table(sensitivity: np.ndarray, spd: np.ndarray) -> np.ndarray:
    """The skin table projected by one camera under one light, (256·256, 3) raw albedo.

    Bilinear lookup is linear in the table, so looking this up equals projecting the looked-up spectrum.
    """
    return camera_response(_flat_skin_table(), sensitivity, spd)


def render_skin(fmel, fblood, shading, specmask, sensitivity, spd) -> np.ndarray:
    """PHYSICS.md §6–§8 for one face: ``raw = albedo·shading + specmask·light`` → linear sRGB.

    Args:
        fmel, fblood, shading, specmask: (H, W) maps.
        sensitivity: (3, 33) any camera; spd: (33,) the illuminant.

    Returns:
        (H, W, 3) linear sRGB ≥ 0.
    """
    light = camera_response(np.ones(spectra.N_WAVELENGTHS), sensitivity, spd)
    albedo = skin_lookup(skin_raw_table(sensitivity, spd), fmel, fblood)
    raw = albedo * np.asarray(shading)[..., None] + np.asarray(specmask)[..., None] * light
    return raw_to_linear(raw, light, sensitivity)


def srgb_encode(linear: np.ndarray) -> np.ndarray:
    x = np.clip(linear, 0.0, 1.0)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.maximum(x, 0.0031308) ** (1 / 2.4) - 0.055)


# --------------------------------------------------------------------------
# Illuminants made here, and their nearest decoder representation
# --------------------------------------------------------------------------


def blackbody(kelvin: float) -> np.ndarray:
    """Planck's law at the 33 wavelengths, normalised to sum 1."""
    metres = LAMBDA * 1e-9
    spd = 1.0 / (metres**5 * np.expm1(1.4388e-2 / (metres * kelvin)))
    return spd / spd.sum()


def white_led(pump_nm: float, phosphor_nm: float, phosphor_ratio: float, red: float) -> np.ndarray:
    """Phosphor-converted white LED: a narrow blue pump, a broad skewed phosphor, optionally a red phosphor."""
    pump = np.exp(-0.5 * ((LAMBDA - pump_nm) / 10.0) ** 2)
    width = np.where(LAMBDA < phosphor_nm, 38.0, 62.0)
    phosphor = np.exp(-0.5 * ((LAMBDA - phosphor_nm) / width) ** 2)
    deep_red = np.exp(-0.5 * ((LAMBDA - 630.0) / 24.0) ** 2)
    spd = pump + phosphor_ratio * phosphor + red * deep_red
    return spd / spd.sum()


def tilted_daylight(kelvin: float, tilt: float) -> np.ndarray:
    """CIE daylight from its basis at any temperature, times a linear spectral tilt (shade, glass)."""
    spd = spectra.daylight_from_basis(kelvin) * np.maximum(1.0 + tilt * (LAMBDA - 560.0) / 160.0, 0.05)
    return spd / spd.sum()


def correlated_colour_index(spd: np.ndarray) -> float:
    """McCamy's CCT of a spectrum as a decoder ``cct`` index (1 → 4000 K, 22 → 25000 K), clipped."""
    x_bar, y_bar, z_bar = spd @ spectra.colour_matching_functions()
    x, y = x_bar / (x_bar + y_bar + z_bar), y_bar / (x_bar + y_bar + z_bar)
    n = (x - 0.3320) / (0.1858 - y)
    kelvin = 449.0 * n**3 + 3525.0 * n**2 + 6823.3 * n + 5520.33
    return float(np.clip((kelvin - 4000.0) / 1000.0 + 1.0, 1.0, 22.0))


def nearest_representation(spd: np.ndarray) -> tuple[np.ndarray, float, float]:
    """The decoder illuminant closest to a spectrum.

    For each ``cct`` on a grid of step 0.1 over [1, 22], non-negative least
    squares of the 33 samples on the columns A, D(cct), F1..F12; the ``cct``
    of least residual wins (where D gets no weight the residual does not
    depend on ``cct``; then the spectrum's own correlated colour index is
    taken). Weights are renormalised to sum 1.

    Args:
        spd: (33,) summing to 1.

    Returns:
        ``(weights (14,), cct, relative L2 error of the represented spectrum)``.
    """
    tables = spectra.illuminants()
    grid = np.arange(1.0, 22.0 + 1e-9, CCT_STEP)
    daylight = _daylight(grid)
    basis = np.concatenate([tables.a[:, None], np.zeros((spectra.N_WAVELENGTHS, 1)), tables.fluorescent.T], axis=1)
    residuals, solutions = [], []
    for column in daylight:
        basis[:, 1] = column
        weights, residual = nnls(basis, spd)
        residuals.append(residual)
        solutions.append(weights)
    residuals = np.asarray(residuals)
    tied = np.flatnonzero(residuals <= residuals.min() * (1.0 + 1e-6) + 1e-12)
    best = tied[np.argmin(np.abs(grid[tied] - correlated_colour_index(spd)))]
    weights = solutions[best] / max(solutions[best].sum(), 1e-12)
    fitted = decoder_illuminant(weights[None], grid[best : best + 1])[0]
    return weights, float(grid[best]), float(np.linalg.norm(fitted - spd) / np.linalg.norm(spd))



def nnls(matrix: np.ndarray, target: np.ndarray, tolerance: float = 1e-12) -> tuple[np.ndarray, float]:
    """Non-negative least squares, ``argmin ‖A x − b‖ subject to x ≥ 0`` (Lawson and Hanson's active set).

    Args:
        matrix: (M, N) ``A``.
        target: (M,) ``b``.

    Returns:
        ``(x (N,), ‖A x − b‖)``.
    """
    matrix = np.asarray(matrix, np.float64)
    target = np.asarray(target, np.float64)
    n = matrix.shape[1]
    x = np.zeros(n)
    passive = np.zeros(n, bool)
    for _ in range(3 * n):
        gradient = matrix.T @ (target - matrix @ x)
        candidates = ~passive & (gradient > tolerance)
        if not candidates.any():
            break
        passive[np.argmax(np.where(candidates, gradient, -np.inf))] = True
        while True:
            trial = np.zeros(n)
            trial[passive] = np.linalg.lstsq(matrix[:, passive], target, rcond=None)[0]
            if np.all(trial[passive] > 0):
                x = trial
                break
            blocked = passive & (trial <= 0)
            step = np.min(x[blocked] / np.maximum(x[blocked] - trial[blocked], 1e-300))
            x = x + step * (trial - x)
            passive &= x > tolerance
            x[~passive] = 0.0
    return x, float(np.linalg.norm(matrix @ x - target))


@dataclasses.dataclass
class Illuminant:
    spd: np.ndarray
    kind: str


def random_illuminant(rng: np.random.Generator) -> Illuminant:
    """A blackbody 2300–9000 K (45 %), a white LED (30 %) or tilted daylight 4500–12000 K (25 %)."""
    kind = rng.choice(3, p=[0.45, 0.3, 0.25])
    if kind == 0:
        return Illuminant(blackbody(float(np.exp(rng.uniform(np.log(2300.0), np.log(9000.0))))), "blackbody")
    if kind == 1:
        spd = white_led(
            pump_nm=rng.uniform(443.0, 460.0),
            phosphor_nm=rng.uniform(545.0, 600.0),
            phosphor_ratio=float(np.exp(rng.uniform(np.log(0.35), np.log(2.5)))),
            red=rng.uniform(0.0, 0.6) if rng.random() < 0.4 else 0.0,
        )
        return Illuminant(spd, "led")
    kelvin = float(np.exp(rng.uniform(np.log(4500.0), np.log(12000.0))))
    return Illuminant(tilted_daylight(kelvin, rng.uniform(-0.35, 0.35)), "daylight")


def random_camera(rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """One measured camera, perturbed in 70 % of faces: (3, 33) curves, each channel summing to 1, and its index.

    The perturbation shifts all curves by up to ±5 nm and multiplies each
    channel by ``exp(c₁·x + c₂·(x² − ⅓))``, ``x = (λ − 560)/160``, ``c ~ N(0, 0.12)``.
    """
    database = spectra.camera_database()
    index = int(rng.integers(len(database.names)))
    curves = database.sensitivities[index].copy()
    if rng.random() < 0.7:
        shift = rng.uniform(-5.0, 5.0)
        curves = np.stack([np.interp(LAMBDA - shift, LAMBDA, channel) for channel in curves])
        x = (LAMBDA - 560.0) / 160.0
        c = rng.normal(0.0, 0.12, size=(3, 2))
        curves = curves * np.exp(c[:, :1] * x + c[:, 1:] * (x * x - 1.0 / 3.0))
    return curves / curves.sum(axis=-1, keepdims=True), index


# --------------------------------------------------------------------------
# Smooth reflectance spectra of the materials that are not skin
# --------------------------------------------------------------------------


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.clip(x, -60.0, 60.0)))


def _gauss(centre, width):
    return np.exp(-0.5 * ((LAMBDA - centre) / width) ** 2)


def _smoothstep(edge0, edge1, x):
    t = np.clip((np.asarray(x, dtype=np.float64) - edge0) / (edge1 - edge0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def hair_reflectance(rng: np.random.Generator, skin_type: float) -> np.ndarray:
    """Black, dark brown, brown, auburn, blond or grey hair: ``floor + level·sigmoid((λ − λ₀)/w)``."""
    dark = _smoothstep(-0.6, 0.4, skin_type)
    odds = np.array([0.2 + 0.5 * dark, 0.25, 0.2, 0.1 * (1 - dark), 0.15 * (1 - dark), 0.08])
    kind = rng.choice(6, p=odds / odds.sum())
    floor, level, edge, width = [
        (0.015, 0.02, 620.0, 40.0),
        (0.02, 0.07, 620.0, 35.0),
        (0.03, 0.16, 610.0, 35.0),
        (0.03, 0.32, 595.0, 22.0),
        (0.10, 0.42, 560.0, 55.0),
        (0.30, 0.12, 520.0, 80.0),
    ][kind]
    scale = np.exp(rng.normal(0.0, 0.15))
    return np.clip((floor + level * _sigmoid((LAMBDA - edge - rng.normal(0, 8)) / width)) * scale, 0.005, 0.9)


def iris_reflectance(rng: np.random.Generator, skin_type: float) -> np.ndarray:
    """Brown (a rising edge), blue (a short-wave bump) or green-hazel."""
    brown = 0.55 + 0.45 * _smoothstep(-0.7, 0.2, skin_type)
    kind = rng.choice(3, p=[brown, (1 - brown) * 0.6, (1 - brown) * 0.4])
    if kind == 0:
        return 0.025 + rng.uniform(0.08, 0.25) * _sigmoid((LAMBDA - rng.uniform(570, 620)) / 30.0)
    if kind == 1:
        return 0.04 + rng.uniform(0.08, 0.18) * _gauss(rng.uniform(450, 490), 45.0)
    return 0.04 + rng.uniform(0.06, 0.12) * _gauss(540.0, 40.0) + 0.08 * _sigmoid((LAMBDA - 600) / 30.0)


def random_smooth_reflectance(rng: np.random.Generator, low=0.03, high=0.7) -> np.ndarray:
    """A random smooth reflectance: a base, a Gaussian bump and a sigmoid edge."""
    spectrum = (
        rng.uniform(low, high * 0.5)
        + rng.uniform(0.0, high * 0.5) * _gauss(rng.uniform(420, 700), rng.uniform(25, 90))
        + rng.uniform(-0.15, 0.25) * _sigmoid((LAMBDA - rng.uniform(450, 650)) / rng.uniform(10, 40))
    )
    return np.clip(spectrum, low * 0.5, 0.95)


def material_reflectances(rng: np.random.Generator, skin_type: float) -> np.ndarray:
    """(N_MATERIALS, 33) reflectance per material id (rows for SKIN and NECK are unused)."""
    table = np.zeros((N_MATERIALS, spectra.N_WAVELENGTHS))
    hair = hair_reflectance(rng, skin_type)
    table[HAIR] = hair
    table[LASH] = np.minimum(hair, 0.04) * 0.7
    vessels = 1.0 - 0.1 * _gauss(542.0, 15.0) - 0.1 * _gauss(577.0, 12.0)
    table[SCLERA] = rng.uniform(0.5, 0.72) * vessels * (0.88 + 0.12 * (LAMBDA - 400.0) / 320.0)
    table[IRIS] = iris_reflectance(rng, skin_type)
    table[PUPIL] = rng.uniform(0.012, 0.03)
    table[MOUTH] = 0.02 + rng.uniform(0.06, 0.14) * _sigmoid((LAMBDA - 595.0) / 15.0)
    table[TEETH] = rng.uniform(0.45, 0.68) * (0.78 + 0.22 * _smoothstep(400.0, 560.0, LAMBDA))
    table[CLOTH] = random_smooth_reflectance(rng, 0.02, 0.8)
    return table


# --------------------------------------------------------------------------
# Gaussian random fields in the head's chart
# --------------------------------------------------------------------------


class Chart:
    """The head's (φ, θ) chart as a texture grid: φ ∈ [−π, π) periodic, θ ∈ [−3.1, 1.6].

    θ below −π/2 continues onto the neck. Fields on it are sampled bilinearly.
    """

    PHI_N = 256
    THETA_N = 192
    THETA_MIN = -3.1
    THETA_MAX = 1.6

    @property
    def shape(self):
        return (self.THETA_N, self.PHI_N)

    def sample(self, field: np.ndarray, phi: np.ndarray, theta: np.ndarray) -> np.ndarray:
        u = (np.asarray(phi) + np.pi) / (2 * np.pi) * self.PHI_N
        v = np.clip((np.asarray(theta) - self.THETA_MIN) / (self.THETA_MAX - self.THETA_MIN) * (self.THETA_N - 1),
                    0.0, self.THETA_N - 1.001)
        u0, v0 = np.floor(u), np.floor(v)
        fu, fv = u - u0, v - v0
        j0 = u0.astype(np.int64) % self.PHI_N
        j1 = (j0 + 1) % self.PHI_N
        i0 = v0.astype(np.int64)
        i1 = i0 + 1
        top = field[i0, j0] * (1 - fu) + field[i0, j1] * fu
        bottom = field[i1, j0] * (1 - fu) + field[i1, j1] * fu
        return top * (1 - fv) + bottom * fv


def power_law_field(rng: np.random.Generator, shape, beta: float, stretch=(1.0, 1.0), cutoff: float = 2.0):
    """A Gaussian random field with power spectrum ``(k² + k₀²)^(−β/2)``, by FFT filtering of white noise.

    ``stretch = (s_rows, s_cols)`` elongates the field's structures along rows
    or columns. Zero mean, unit standard deviation.
    """
    ky = np.fft.fftfreq(shape[0])[:, None] * shape[0] / stretch[0]
    kx = np.fft.rfftfreq(shape[1])[None, :] * shape[1] / stretch[1]
    amplitude = (kx * kx + ky * ky + cutoff * cutoff) ** (-beta / 4.0)
    amplitude[0, 0] = 0.0
    field = np.fft.irfft2(np.fft.rfft2(rng.normal(size=shape)) * amplitude, s=shape)
    return (field - field.mean()) / max(field.std(), 1e-12)


def _soft_threshold(field, level, softness=0.25):
    return _sigmoid((field - level) / softness)


# --------------------------------------------------------------------------
# Head geometry in the chart: superquadric base + RBF displacement
# --------------------------------------------------------------------------


def wendland(r):
    """Wendland's C² kernel ``(1 − r)⁴(4r + 1)`` for r < 1, else 0."""
    r = np.clip(r, 0.0, 1.0)
    return (1.0 - r) ** 4 * (4.0 * r + 1.0)


def blob(phi, theta, centre, radii):
    """Wendland bump at ``centre = (φ, θ)`` with radii ``(r_φ, r_θ)`` in the chart."""
    return wendland(np.hypot((phi - centre[0]) / radii[0], (theta - centre[1]) / radii[1]))


def capsule(phi, theta, start, end, radii):
    """Wendland ridge along a chart segment: ``(kernel, position along the segment in [0, 1])``."""
    a = np.array(start, dtype=np.float64)
    d = (np.array(end, dtype=np.float64) - a) / np.array(radii)
    pu, pv = (phi - a[0]) / radii[0], (theta - a[1]) / radii[1]
    t = np.clip((pu * d[0] + pv * d[1]) / max(d @ d, 1e-12), 0.0, 1.0)
    return wendland(np.hypot(pu - t * d[0], pv - t * d[1])), t


def _sgnpow(x, e):
    return np.sign(x) * np.abs(x) ** e


@dataclasses.dataclass
class HeadParams:
    """The numbers of one head; angles in radians of the chart, lengths in head units (half-height ≈ 1)."""

    radii: np.ndarray
    lower_face: float
    exponents: tuple[float, float]
    jaw: float
    eye_phi: float
    eye_theta: float
    eye_half_width: float
    eye_open: tuple[float, float]
    eye_tilt: float
    gaze: np.ndarray
    socket_depth: float
    brow_theta: float
    brow_arch: float
    brow_ridge: float
    nose_tip_theta: float
    nose_length: float
    nose_width: tuple[float, float]
    ala_phi: float
    mouth_theta: float
    mouth_half_width: float
    lip_heights: tuple[float, float]
    lip_fullness: float
    mouth_open: float
    chin_theta: float
    chin: float
    cheekbone: float
    cheek: float
    ear: float
    ear_phi: float
    hair: bool
    hairline: np.ndarray
    hair_thickness: float
    hair_volume: float
    hairline_wiggle: np.ndarray
    long_hair: bool
    hair_length: float
    curtain_start: float
    neck_radii: tuple[float, float]
    collar: float
    clothed: bool

    @classmethod
    def random(cls, rng: np.random.Generator) -> "HeadParams":
        u = rng.uniform
        eye_theta = u(0.03, 0.13)
        brow_theta = eye_theta + u(0.15, 0.21)
        hair = rng.random() > 0.05
        style = rng.choice(3, p=[0.6, 0.22, 0.18])  # ordinary, fringe, receding
        front = [u(0.55, 0.72), u(0.3, 0.42), u(0.78, 0.95)][style]
        hairline = np.array([
            front, front + u(0.0, 0.12), u(0.35, 0.6), u(0.1, 0.3), u(0.15, 0.35), u(-0.95, -0.6),
        ])
        mouth_half_width = u(0.25, 0.33)
        return cls(
            radii=np.array([u(0.7, 0.8), u(0.98, 1.1), u(0.86, 0.98)]),
            lower_face=u(0.95, 1.08),
            exponents=(u(0.85, 1.0), u(0.88, 1.02)),
            jaw=u(0.3, 0.5),
            eye_phi=u(0.35, 0.42),
            eye_theta=eye_theta,
            eye_half_width=u(0.15, 0.19),
            eye_open=(u(0.035, 0.055), u(0.02, 0.035)) if rng.random() > 0.04 else (0.004, 0.002),
            eye_tilt=u(-0.1, 0.2),
            gaze=np.array([rng.normal(0.0, 0.25), rng.normal(0.0, 0.15)]),
            socket_depth=u(0.04, 0.09),
            brow_theta=brow_theta,
            brow_arch=u(0.0, 0.04),
            brow_ridge=u(0.015, 0.05),
            nose_tip_theta=u(-0.34, -0.24),
            nose_length=u(0.12, 0.2),
            nose_width=(u(0.18, 0.24), u(0.26, 0.34)),
            ala_phi=u(0.1, 0.14),
            mouth_theta=u(-0.63, -0.53),
            mouth_half_width=mouth_half_width,
            lip_heights=(u(0.04, 0.065), u(0.05, 0.08)),
            lip_fullness=u(0.02, 0.045),
            mouth_open=u(0.01, 0.035) if rng.random() < 0.3 else 0.0,
            chin_theta=u(-1.12, -0.98),
            chin=u(0.03, 0.08),
            cheekbone=u(0.015, 0.05),
            cheek=u(0.0, 0.04),
            ear=u(0.1, 0.17),
            ear_phi=u(1.55, 1.7),
            hair=hair,
            hairline=hairline,
            hair_thickness=u(0.03, 0.09),
            hair_volume=u(0.0, 0.15),
            hairline_wiggle=rng.normal(0.0, 1.0, size=(3, 2)) * np.array([[0.025], [0.015], [0.01]]),
            long_hair=hair and rng.random() < 0.35,
            hair_length=u(-2.4, -1.1),
            curtain_start=u(1.05, 1.4),
            neck_radii=(u(0.34, 0.44), u(0.36, 0.45)),
            collar=u(-1.65, -1.2),
            clothed=rng.random() < 0.8,
        )

    def hairline_theta(self, phi: np.ndarray) -> np.ndarray:
        """θ of the hairline at longitude φ: front arc, temples, sideburns, over the ears, nape."""
        if not self.hair:
            return np.full(np.shape(phi), 10.0)
        a = np.abs(phi)
        knots = np.array([0.0, 0.7, 1.1, 1.35, 1.5, 1.85, 2.3, np.pi + 0.1])
        h = self.hairline
        values = np.array([h[0], h[1], h[2], h[3], h[3] - 0.15, h[4], h[5], h[5]])
        wiggle = sum(w[0] * np.sin((k + 3) * phi + 2.0 * w[1]) for k, w in enumerate(self.hairline_wiggle))
        return np.interp(a, knots, values) + wiggle

    def eye_coordinates(self, phi, theta):
        """Per eye: (u, v), u along the eye in half-widths, v up in radians."""
        du = np.abs(phi) - self.eye_phi
        return du / self.eye_half_width, theta - self.eye_theta - self.eye_tilt * du

    def eye_opening(self, phi, theta):
        """(inside the lids, upper lid height v_up) at chart points."""
        u, v = self.eye_coordinates(phi, theta)
        shape = np.clip(1.0 - u * u, 0.0, None)
        upper = self.eye_open[0] * shape ** 0.8
        lower = -self.eye_open[1] * shape ** 1.1
        return (np.abs(u) < 1.0) & (v < upper) & (v > lower), upper, u, v

    def lip_profile(self, phi):
        """(upper lip top, lower lip bottom) heights above/below the mouth line, and the mouth's u."""
        u = phi / self.mouth_half_width
        shape = np.clip(1.0 - u * u, 0.0, None)
        bow = 1.0 - 0.25 * np.exp(-((u / 0.12) ** 2))
        return self.lip_heights[0] * shape**0.6 * bow, self.lip_heights[1] * shape**0.5, u

    def mouth_opening(self, phi, theta):
        upper, lower, u = self.lip_profile(phi)
        gap = self.mouth_open * np.clip(1.0 - (u / 0.85) ** 2, 0.0, None) ** 0.5
        v = theta - self.mouth_theta
        return (gap > 0) & (np.abs(v) < gap), v, gap


def base_surface(p: HeadParams, phi: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """Superquadric head, (..., 3) face coordinates (x right, y up, z out of the face).

    Below the equator the jaw tapers (x), the lower face is shorter, and the
    back of the lower head curves in towards the neck.
    """
    e1, e2 = p.exponents
    ct, st = _sgnpow(np.cos(theta), e1), _sgnpow(np.sin(theta), e1)
    cp, sp = _sgnpow(np.cos(phi), e2), _sgnpow(np.sin(phi), e2)
    taper = np.clip((-0.05 - theta) / 1.45, 0.0, 1.0) ** 2.0
    back = np.clip(-cp, 0.0, 1.0)
    x = p.radii[0] * ct * sp * (1.0 - p.jaw * taper)
    y = np.where(theta > 0, p.radii[1], p.lower_face) * st + 0.05
    z = p.radii[2] * ct * cp * (1.0 - (0.15 + 0.5 * back) * taper) - 0.12
    return np.stack([x, y, z], axis=-1)


def displacement(p: HeadParams, phi: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """Displacement along the base normal: a sum of Wendland bumps and ridges placed in the chart."""
    a = np.abs(phi)
    d = np.zeros(np.shape(phi))
    # nose: a ridge from the bridge to the tip growing in height, a tip ball, alae
    top = p.eye_theta + 0.03
    along = np.clip((top - theta) / (top - p.nose_tip_theta), 0.0, 1.0)
    width = p.nose_width[0] + (p.nose_width[1] - p.nose_width[0]) * along
    ridge = wendland(np.hypot(phi / width, (theta - (top - along * (top - p.nose_tip_theta))) / 0.1))
    d += ridge * p.nose_length * (0.15 + 0.85 * along**1.5)
    d += 0.25 * p.nose_length * blob(phi, theta, (0.0, p.nose_tip_theta - 0.01), (0.16, 0.09))
    d += 0.06 * blob(a, theta, (p.ala_phi, p.nose_tip_theta - 0.02), (0.08, 0.065))
    d -= 0.03 * blob(a, theta, (0.045, p.nose_tip_theta - 0.075), (0.03, 0.025))
    # eyes: sockets, lid folds, recessed eyeballs
    d -= p.socket_depth * blob(a, theta, (p.eye_phi - 0.01, p.eye_theta + 0.02), (0.27, 0.19))
    inside, upper, u, v = p.eye_opening(phi, theta)
    lid = np.clip(1.0 - u * u, 0.0, None)
    d += 0.012 * lid * np.exp(-(((v - upper - 0.012) / 0.012) ** 2))
    d -= 0.006 * inside
    # brow ridge, cheekbones, cheeks, temples, forehead slope
    brow, _ = capsule(a, theta, (0.0, p.brow_theta - 0.03), (0.6, p.brow_theta - 0.01), (0.15, 0.1))
    d += p.brow_ridge * brow
    d += p.cheekbone * blob(a, theta, (0.58, -0.1), (0.25, 0.17))
    d += p.cheek * blob(a, theta, (0.42, -0.42), (0.28, 0.24))
    d -= 0.03 * blob(a, theta, (0.98, 0.35), (0.25, 0.25))
    # mouth: lips, the line between them, nasolabial folds, an open mouth's cavity
    top, bottom, _ = p.lip_profile(phi)
    lip_u = np.clip(1.0 - (phi / (p.mouth_half_width * 1.1)) ** 2, 0.0, None)
    upper_lip = (theta - p.mouth_theta - 0.5 * top) / (0.6 * p.lip_heights[0] + 1e-3)
    lower_lip = (theta - p.mouth_theta + 0.5 * bottom) / (0.6 * p.lip_heights[1] + 1e-3)
    d += p.lip_fullness * lip_u * (np.exp(-(upper_lip**2)) + 1.15 * np.exp(-(lower_lip**2)))
    d -= 0.012 * lip_u * np.exp(-(((theta - p.mouth_theta) / 0.01) ** 2))
    fold, _ = capsule(
        a, theta, (p.ala_phi + 0.05, p.nose_tip_theta - 0.03), (p.mouth_half_width + 0.06, p.mouth_theta - 0.03),
        (0.03, 0.03),
    )
    d -= 0.012 * fold
    opening, _, _ = p.mouth_opening(phi, theta)
    d -= 0.05 * opening
    # chin, ears
    d += p.chin * blob(phi, theta, (0.0, p.chin_theta), (0.3, 0.18))
    d += p.ear * blob(a, theta, (p.ear_phi, -0.03), (0.15, 0.3))
    d -= 0.3 * p.ear * blob(a, theta, (p.ear_phi - 0.01, -0.05), (0.06, 0.1))
    # hair volume above the hairline
    hairline = p.hairline_theta(phi)
    cover = _smoothstep(hairline - 0.005, hairline + 0.05, theta)
    d += cover * (p.hair_thickness + p.hair_volume * np.clip(theta - 0.3, 0.0, None))
    return d


def _warped(n: int, half: float, linear: float) -> np.ndarray:
    """``half·(a·t + (1 − a)·t³)`` on a uniform t in [−1, 1]: denser at 0 (the face)."""
    t = np.linspace(-1.0, 1.0, n)
    return half * (linear * t + (1.0 - linear) * t**3)


@dataclasses.dataclass
class Mesh:
    """One surface: vertices (V, 3) in face coordinates, normals and φ-tangents (V, 3), chart
    positions (V, 2), occlusion (V,) and triangles (T, 3)."""

    vertices: np.ndarray
    normals: np.ndarray
    tangents: np.ndarray
    chart: np.ndarray
    occlusion: np.ndarray
    triangles: np.ndarray
    kind: int
    two_sided: bool = False


def _grid_triangles(rows: int, cols: int) -> np.ndarray:
    i, j = np.meshgrid(np.arange(rows - 1), np.arange(cols - 1), indexing="ij")
    v00 = (i * cols + j).ravel()
    v01, v10 = v00 + 1, v00 + cols
    v11 = v10 + 1
    return np.concatenate([np.stack([v00, v01, v10], -1), np.stack([v10, v01, v11], -1)])


def _grid_frame(points: np.ndarray, outward_hint: np.ndarray | None = None):
    """Normals and φ-tangents of a (rows, cols, 3) grid surface by finite differences."""
    d_col = np.gradient(points, axis=1)
    d_row = np.gradient(points, axis=0)
    normals = np.cross(d_col, d_row)
    if outward_hint is not None:
        flip = np.sum(normals * outward_hint, axis=-1, keepdims=True) < 0
        normals = np.where(flip, -normals, normals)
    normals /= np.maximum(np.linalg.norm(normals, axis=-1, keepdims=True), 1e-12)
    tangents = d_col - np.sum(d_col * normals, axis=-1, keepdims=True) * normals
    tangents /= np.maximum(np.linalg.norm(tangents, axis=-1, keepdims=True), 1e-12)
    return normals, tangents


def head_mesh(p: HeadParams, resolution: int) -> Mesh:
    """The displaced superquadric, gridded densely at the face; the φ = ±π seam is duplicated."""
    n_phi, n_theta = 96 + resolution, 64 + (3 * resolution) // 4
    phi = _warped(n_phi, np.pi, 0.4)
    theta = _warped(n_theta, np.pi / 2 - 0.02, 0.55)
    tt, pp = np.meshgrid(theta, phi, indexing="ij")
    base = base_surface(p, pp, tt)
    base_normals, _ = _grid_frame(base, base - np.array([0.0, 0.05, -0.12]))
    d = displacement(p, pp, tt)
    points = base + d[..., None] * base_normals
    normals, tangents = _grid_frame(points, base_normals)
    # occlusion of cavities: displacement below its local (chart-space) average
    smooth = cv2.GaussianBlur(d, (0, 0), sigmaX=max(n_phi / 60.0, 1.0), sigmaY=max(n_theta / 40.0, 1.0),
                              borderType=cv2.BORDER_REFLECT)
    occlusion = np.clip(1.0 + 5.0 * (d - smooth), 0.35, 1.0)
    occlusion *= 1.0 - 0.45 * _smoothstep(-0.9, -1.5, tt)  # under the jaw
    return Mesh(
        vertices=points.reshape(-1, 3),
        normals=normals.reshape(-1, 3),
        tangents=tangents.reshape(-1, 3),
        chart=np.stack([pp, tt], axis=-1).reshape(-1, 2),
        occlusion=occlusion.ravel(),
        triangles=_grid_triangles(n_theta, n_phi),
        kind=HEAD_MESH,
    )


def neck_mesh(p: HeadParams) -> Mesh:
    """A neck widening into shoulders, a surface of revolution from under the head down to y = −3."""
    y = np.linspace(-0.3, -3.0, 40)
    phi = np.linspace(-np.pi, np.pi, 65)
    yy, pp = np.meshgrid(y, phi, indexing="ij")
    shoulders = _smoothstep(p.collar + 0.1, p.collar - 0.7, yy)
    rx = p.neck_radii[0] + 1.25 * shoulders
    rz = p.neck_radii[1] + 0.2 * shoulders
    points = np.stack([rx * np.sin(pp), yy, rz * np.cos(pp) - 0.15], axis=-1)
    normals, tangents = _grid_frame(points, points - np.array([0.0, 0.0, -0.15]) * [1, 0, 1])
    theta = -np.pi / 2 - 0.25 + 0.5 * (yy + 0.3)
    occlusion = 0.55 + 0.45 * _smoothstep(-0.35, -0.9, yy)
    return Mesh(points.reshape(-1, 3), normals.reshape(-1, 3), tangents.reshape(-1, 3),
                np.stack([pp, theta], -1).reshape(-1, 2), occlusion.ravel(), _grid_triangles(*yy.shape), NECK_MESH)


def curtain_mesh(p: HeadParams, rng: np.random.Generator) -> Mesh:
    """Long hair: a sheet hanging around the back and sides, from above the ears to ``hair_length``."""
    y = np.linspace(0.45, p.hair_length, 36)
    phi = np.linspace(p.curtain_start, 2 * np.pi - p.curtain_start, 72)
    yy, pp = np.meshgrid(y, phi, indexing="ij")
    waves = sum(rng.normal(0, 0.02) * np.sin(k * pp + rng.uniform(0, 6.3)) for k in (5, 9, 14))
    flare = 1.0 + 0.12 * np.clip(0.2 - yy, 0.0, None) + waves
    hug = np.clip(np.arcsin(np.clip((yy - 0.05) / p.radii[1], -1.0, 1.0)), 0.0, None)
    ring = base_surface(p, pp, hug)
    t = p.hair_thickness + 0.04
    x = (np.abs(ring[..., 0]) + t) * np.sign(np.sin(pp)) * flare
    z = (ring[..., 2] + 0.12 + t * np.sign(np.cos(pp))) * flare - 0.12
    points = np.stack([x, yy, z], axis=-1)
    normals, tangents = _grid_frame(points, points * [1, 0, 1] + [0, 0, 0.12])
    chart = np.stack([pp, 0.5 + 0.6 * (yy - 0.45)], -1)  # φ beyond π: the chart wraps
    return Mesh(points.reshape(-1, 3), normals.reshape(-1, 3), tangents.reshape(-1, 3), chart.reshape(-1, 2),
                np.full(yy.size, 0.7), _grid_triangles(*yy.shape), CURTAIN_MESH, two_sided=True)


# --------------------------------------------------------------------------
# Pose, projection and rasterisation
# --------------------------------------------------------------------------


@dataclasses.dataclass
class View:
    """Head pose and a perspective pinhole camera at (0, 0, distance) looking down −z.

    Camera coordinates are ``R·p + shift``; the image spans ±``extent`` at z = 0.
    """

    yaw: float
    pitch: float
    roll: float
    distance: float
    extent: float
    shift: np.ndarray

    @classmethod
    def random(cls, rng: np.random.Generator) -> "View":
        if rng.random() < 0.75:
            yaw = rng.uniform(-35.0, 35.0)
        else:
            yaw = rng.choice([-1.0, 1.0]) * rng.uniform(35.0, 60.0)
        return cls(
            yaw=float(yaw),
            pitch=rng.uniform(-15.0, 20.0),
            roll=float(np.clip(rng.normal(0.0, 5.0), -15.0, 15.0)),
            distance=float(np.exp(rng.uniform(np.log(2.6), np.log(14.0)))),
            extent=rng.uniform(1.2, 1.75),
            shift=np.array([rng.uniform(-0.12, 0.12), rng.uniform(-0.25, 0.0), 0.0]),
        )

    @property
    def rotation(self) -> np.ndarray:
        yaw, pitch, roll = np.radians([self.yaw, self.pitch, self.roll])
        ry = np.array([[np.cos(yaw), 0, np.sin(yaw)], [0, 1, 0], [-np.sin(yaw), 0, np.cos(yaw)]])
        rx = np.array([[1, 0, 0], [0, np.cos(pitch), -np.sin(pitch)], [0, np.sin(pitch), np.cos(pitch)]])
        rz = np.array([[np.cos(roll), -np.sin(roll), 0], [np.sin(roll), np.cos(roll), 0], [0, 0, 1]])
        return rz @ ry @ rx

    def project(self, camera_points: np.ndarray, samples: int) -> tuple[np.ndarray, np.ndarray]:
        """Camera-frame points (V, 3) → sample-grid positions (V, 2) (x = column, y = row) and depth (V,)."""
        depth = self.distance - camera_points[:, 2]
        scale = self.distance / np.maximum(depth, 1e-3) / self.extent
        u, v = camera_points[:, 0] * scale, camera_points[:, 1] * scale
        return np.stack([(u + 1.0) * 0.5 * samples, (1.0 - v) * 0.5 * samples], -1), depth


def rasterise(xy: np.ndarray, key: np.ndarray, triangles: np.ndarray, width: int, height: int):
    """Z-buffered coverage of sample centres ``(col + ½, row + ½)`` by triangles.

    Every triangle's bounding box of sample centres is enumerated at once, the
    barycentric coordinates of each candidate found from edge functions, and
    per sample the inside candidate of least ``key`` (depth) kept. Attributes
    are interpolated in screen space (triangles are about a pixel).

    Returns:
        ``(sample (P,) flat row-major index, triangle (P,), barycentric (P, 3))``.
    """
    corners = xy[triangles]
    lo = np.ceil(corners.min(axis=1) - 0.5).astype(np.int64)
    hi = np.floor(corners.max(axis=1) - 0.5).astype(np.int64)
    lo = np.maximum(lo, 0)
    hi = np.minimum(hi, [width - 1, height - 1])
    extent = hi - lo + 1
    a, b, c = corners[:, 0], corners[:, 1], corners[:, 2]
    area = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    keep = np.flatnonzero((extent[:, 0] > 0) & (extent[:, 1] > 0) & (np.abs(area) > 1e-12))
    if keep.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 3))
    counts = extent[keep, 0] * extent[keep, 1]
    tri = np.repeat(keep, counts)
    offset = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    columns = lo[tri, 0] + offset % extent[tri, 0]
    rows = lo[tri, 1] + offset // extent[tri, 0]
    px, py = columns + 0.5, rows + 0.5
    ta, tb, tc, inv = a[tri], b[tri], c[tri], 1.0 / area[tri]
    w0 = ((tb[:, 0] - px) * (tc[:, 1] - py) - (tb[:, 1] - py) * (tc[:, 0] - px)) * inv
    w1 = ((tc[:, 0] - px) * (ta[:, 1] - py) - (tc[:, 1] - py) * (ta[:, 0] - px)) * inv
    w2 = 1.0 - w0 - w1
    inside = np.flatnonzero((w0 >= -1e-9) & (w1 >= -1e-9) & (w2 >= -1e-9))
    tri, weights = tri[inside], np.stack([w0[inside], w1[inside], w2[inside]], -1)
    sample = rows[inside] * width + columns[inside]
    depth = np.einsum("pk,pk->p", weights, key[triangles[tri]])
    order = np.lexsort((depth, sample))
    first = np.ones(order.size, bool)
    first[1:] = sample[order[1:]] != sample[order[:-1]]
    win = order[first]
    return sample[win], tri[win], weights[win]


@dataclasses.dataclass
class Scene:
    """All meshes of one face in the camera frame, concatenated."""

    points: np.ndarray
    normals: np.ndarray
    tangents: np.ndarray
    chart: np.ndarray
    occlusion: np.ndarray
    face_y: np.ndarray
    triangles: np.ndarray
    triangle_kind: np.ndarray
    two_sided: np.ndarray


def assemble(meshes: list[Mesh], view: View) -> Scene:
    rotation = view.rotation
    parts, triangles, kinds, sided, offset = [], [], [], [], 0
    for mesh in meshes:
        parts.append(mesh)
        triangles.append(mesh.triangles + offset)
        kinds.append(np.full(len(mesh.triangles), mesh.kind))
        sided.append(np.full(len(mesh.triangles), mesh.two_sided))
        offset += len(mesh.vertices)
    vertices = np.concatenate([m.vertices for m in parts])
    return Scene(
        points=vertices @ rotation.T + view.shift,
        normals=np.concatenate([m.normals for m in parts]) @ rotation.T,
        tangents=np.concatenate([m.tangents for m in parts]) @ rotation.T,
        chart=np.concatenate([m.chart for m in parts]),
        occlusion=np.concatenate([m.occlusion for m in parts]),
        face_y=vertices[:, 1],
        triangles=np.concatenate(triangles),
        triangle_kind=np.concatenate(kinds),
        two_sided=np.concatenate(sided),
    )


@dataclasses.dataclass
class Samples:
    """What each covered sample of the 2×-supersampled image sees."""

    index: np.ndarray
    pixel: np.ndarray
    points: np.ndarray
    normals: np.ndarray
    tangents: np.ndarray
    chart: np.ndarray
    occlusion: np.ndarray
    face_y: np.ndarray
    kind: np.ndarray
    to_camera: np.ndarray


def trace(scene: Scene, view: View, size: int) -> Samples:
    """Rasterise the scene at ``SUPERSAMPLE``² samples per pixel and interpolate vertex attributes."""
    n = size * SUPERSAMPLE
    xy, depth = view.project(scene.points, n)
    camera = np.array([0.0, 0.0, view.distance])
    to_camera = camera - scene.points
    to_camera /= np.linalg.norm(to_camera, axis=-1, keepdims=True)
    facing = np.einsum("vk,vk->v", scene.normals, to_camera)
    tri = scene.triangles
    visible = scene.two_sided | (facing[tri] > -0.1).any(axis=1)
    visible &= (depth[tri] > 0.2).all(axis=1)
    chosen = np.flatnonzero(visible)
    sample, local, weights = rasterise(xy, depth, tri[chosen], n, n)
    triangle = chosen[local]
    corners = tri[triangle]

    def interpolate(values):
        return np.einsum("pk,pk...->p...", weights, values[corners])

    normals = interpolate(scene.normals)
    normals /= np.maximum(np.linalg.norm(normals, axis=-1, keepdims=True), 1e-12)
    points = interpolate(scene.points)
    rays = camera - points
    rays /= np.linalg.norm(rays, axis=-1, keepdims=True)
    flip = scene.two_sided[triangle] & (np.einsum("pk,pk->p", normals, rays) < 0)
    normals[flip] *= -1.0
    rows, columns = divmod(sample, n)
    return Samples(
        index=sample,
        pixel=(rows // SUPERSAMPLE) * size + columns // SUPERSAMPLE,
        points=points,
        normals=normals,
        tangents=interpolate(scene.tangents),
        chart=interpolate(scene.chart),
        occlusion=interpolate(scene.occlusion),
        face_y=interpolate(scene.face_y),
        kind=scene.triangle_kind[triangle],
        to_camera=rays,
    )


def classify(p: HeadParams, samples: Samples) -> np.ndarray:
    """Material id of each sample from its mesh and (on the head) its chart position."""
    phi, theta = samples.chart[:, 0], samples.chart[:, 1]
    material = np.full(len(phi), SKIN)
    head = samples.kind == HEAD_MESH
    inside, upper, u, v = p.eye_opening(phi, theta)
    material[head & (v > upper) & (v < upper + 0.012) & (np.abs(u) < 1.05) & (p.eye_open[0] > 0.01)] = LASH
    material[head & inside] = SCLERA
    centre_u, centre_v = p.gaze[0] * 0.35, p.gaze[1] * 0.02
    iris_r = np.hypot((u - centre_u) * p.eye_half_width * 0.72, v - centre_v)
    iris_radius = 0.055
    material[head & inside & (iris_r < iris_radius)] = IRIS
    material[head & inside & (iris_r < iris_radius * 0.4)] = PUPIL
    opening, mv, gap = p.mouth_opening(phi, theta)
    material[head & opening] = MOUTH
    material[head & opening & (mv > 0.25 * gap) & (p.mouth_open > 0.015)] = TEETH
    material[head & (theta > p.hairline_theta(phi))] = HAIR
    material[samples.kind == CURTAIN_MESH] = HAIR
    neck = samples.kind == NECK_MESH
    collar = p.collar + 0.25 * np.abs(np.sin(phi))
    material[neck] = np.where(p.clothed & (samples.face_y[neck] < collar[neck]), CLOTH, NECK)
    return material


# --------------------------------------------------------------------------
# Light: SH environment, disc lights with shadow maps, Ward specular
# --------------------------------------------------------------------------


def _orthonormal(direction: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    helper = np.array([0.0, 1.0, 0.0]) if abs(direction[1]) < 0.9 else np.array([1.0, 0.0, 0.0])
    e1 = np.cross(helper, direction)
    e1 /= np.linalg.norm(e1)
    return e1, np.cross(direction, e1)


@dataclasses.dataclass
class Lighting:
    """A random SH environment (9,) and disc lights (camera frame, towards the light)."""

    environment: np.ndarray
    directions: np.ndarray
    radii: np.ndarray
    intensities: np.ndarray

    @classmethod
    def random(cls, rng: np.random.Generator) -> "Lighting":
        def direction(azimuth, elevation):
            az, el = np.radians([azimuth, elevation])
            return np.array([np.sin(az) * np.cos(el), np.sin(el), np.cos(az) * np.cos(el)])

        key = rng.uniform(-80.0, 80.0)
        directions = [direction(key, rng.uniform(-10.0, 60.0))]
        radii = [np.radians(rng.uniform(3.0, 25.0))]
        intensities = [1.0]
        if rng.random() < 0.6:
            directions.append(direction(-np.sign(key) * rng.uniform(15.0, 85.0), rng.uniform(-15.0, 40.0)))
            radii.append(np.radians(rng.uniform(10.0, 35.0)))
            intensities.append(rng.uniform(0.1, 0.5))
        if rng.random() < 0.25:
            if rng.random() < 0.5:
                directions.append(direction(rng.choice([-1, 1]) * rng.uniform(100.0, 170.0), rng.uniform(0.0, 50.0)))
            else:
                directions.append(direction(rng.uniform(-30.0, 30.0), rng.uniform(65.0, 85.0)))
            radii.append(np.radians(rng.uniform(2.0, 10.0)))
            intensities.append(rng.uniform(0.3, 1.0))
        ambient = rng.uniform(0.06, 0.45)
        sky = np.array([rng.normal(0.0, 0.3), rng.uniform(0.2, 1.0), rng.normal(0.0, 0.3)])
        sky /= np.linalg.norm(sky)
        sh = sh_shading.directional_sh(sky[None], ambient * rng.uniform(0.0, 0.8), ambient)[0]
        sh[4:] += rng.normal(0.0, 0.15 * ambient, size=5)
        sphere = rng.normal(size=(256, 3))
        sphere /= np.linalg.norm(sphere, axis=-1, keepdims=True)
        lowest = environment_irradiance(sphere, sh).min()
        if lowest < 0.3 * ambient:
            sh[0] += (0.3 * ambient - lowest) / sh_shading.C4
        return cls(sh, np.array(directions), np.array(radii), np.array(intensities))


def environment_irradiance(normals: np.ndarray, sh: np.ndarray) -> np.ndarray:
    """``[n;1]ᵀ K(L) [n;1]`` for (P, 3) normals, (9,) coefficients."""
    homogeneous = np.concatenate([normals, np.ones((len(normals), 1))], axis=-1)
    return np.einsum("pi,ij,pj->p", homogeneous, sh_shading.irradiance_matrix(sh), homogeneous)


def disc_directions(centre: np.ndarray, radius: float) -> np.ndarray:
    """The centre and six directions on a ring at 0.65 of the disc's angular radius, (7, 3)."""
    e1, e2 = _orthonormal(centre)
    angles = np.arange(SUB_DIRECTIONS - 1) * 2 * np.pi / (SUB_DIRECTIONS - 1)
    ring = np.tan(DISC_RING * radius) * (np.cos(angles)[:, None] * e1 + np.sin(angles)[:, None] * e2)
    out = np.concatenate([centre[None], centre + ring])
    return out / np.linalg.norm(out, axis=-1, keepdims=True)


def shadow_visibility(scene: Scene, samples: Samples, towards: np.ndarray, radius: float, resolution: int):
    """Visibility (P,) of a disc light from a shadow map rendered along its central direction.

    Percentage-closer filtering over 9 taps spread by the disc's angular radius
    (a penumbra that widens with the light's size); a slope-scaled bias.
    """
    e1, e2 = _orthonormal(towards)
    plane = np.stack([scene.points @ e1, scene.points @ e2], -1)
    height = scene.points @ towards
    low, high = plane.min(axis=0) - 0.05, plane.max(axis=0) + 0.05
    texel = float((high - low).max() / resolution)
    xy = (plane - low) / texel
    sample, tri, weights = rasterise(xy, -height, scene.triangles, resolution, resolution)
    depth_map = np.full(resolution * resolution, -np.inf)
    depth_map[sample] = np.einsum("pk,pk->p", weights, height[scene.triangles[tri]])
    depth_map = depth_map.reshape(resolution, resolution)
    s_xy = (np.stack([samples.points @ e1, samples.points @ e2], -1) - low) / texel - 0.5
    s_height = samples.points @ towards
    cosine = np.clip(samples.normals @ towards, 0.05, 1.0)
    bias = texel * (1.5 + 2.0 * np.sqrt(1.0 - cosine**2) / cosine)
    spread = max(1.0, 0.3 * np.tan(radius) / texel)
    visible = np.zeros(len(s_height))
    for dx in (-1, 0, 1):
        for dy in (-1, 0, 1):
            column = np.clip(np.round(s_xy[:, 0] + dx * spread).astype(np.int64), 0, resolution - 1)
            row = np.clip(np.round(s_xy[:, 1] + dy * spread).astype(np.int64), 0, resolution - 1)
            visible += s_height + bias >= depth_map[row, column]
    return visible / 9.0


def ward_specular(normals, tangents, to_camera, towards, rho, alpha_x, alpha_y) -> np.ndarray:
    """Ward's anisotropic lobe in shading units, ``π·f·cos θᵢ``, for unit light irradiance; (P,).

    ``f = ρ / (4π αx αy √(cos θᵢ cos θₒ)) · exp(−((h·t/αx)² + (h·b/αy)²) / (h·n)²)``.
    """
    cos_i = normals @ towards
    cos_o = np.einsum("pk,pk->p", normals, to_camera)
    half = towards + to_camera
    half /= np.maximum(np.linalg.norm(half, axis=-1, keepdims=True), 1e-12)
    bitangents = np.cross(normals, tangents)
    hn = np.maximum(np.einsum("pk,pk->p", half, normals), 1e-3)
    ht = np.einsum("pk,pk->p", half, tangents)
    hb = np.einsum("pk,pk->p", half, bitangents)
    exponent = ((ht / alpha_x) ** 2 + (hb / alpha_y) ** 2) / (hn * hn)
    lobe = rho * np.sqrt(np.clip(cos_i, 0.0, None) / np.maximum(cos_o, 0.15)) / (4 * alpha_x * alpha_y)
    return np.where((cos_i > 0) & (cos_o > 0), lobe * np.exp(-np.minimum(exponent, 50.0)), 0.0)


# --------------------------------------------------------------------------
# Skin maps: melanin and haemoglobin in the chart
# --------------------------------------------------------------------------


def _metric(dphi, dtheta):
    """Approximate head-unit distance of chart offsets near the face."""
    return np.hypot(dphi * 0.75, dtheta)


@dataclasses.dataclass
class Complexion:
    """Skin type, its patterns, and the fields and spots they are made of."""

    skin_type: float
    blood_base: float
    amplitudes: dict
    fields: dict
    mel_spots: np.ndarray
    blood_spots: np.ndarray
    oil: float
    gloss: tuple[float, float]
    anisotropy: float
    neck_offset: float

    @classmethod
    def random(cls, rng: np.random.Generator, chart: Chart) -> "Complexion":
        u = rng.uniform
        if rng.random() < 0.8:
            skin_type = 2.0 * rng.beta(1.35, 1.35) - 1.0
        else:
            skin_type = rng.choice([-1.0, 1.0]) * u(0.7, 1.0)
        dark = _smoothstep(-0.2, 0.6, skin_type)
        shape = chart.shape
        fields = {
            "mel": power_law_field(rng, shape, u(2.6, 3.6)),
            "mel_fine": power_law_field(rng, shape, u(1.4, 2.2), cutoff=8.0),
            "blood": power_law_field(rng, shape, u(2.2, 3.2)),
            "melasma": power_law_field(rng, shape, u(3.2, 4.0), cutoff=4.0),
            "rosacea": power_law_field(rng, shape, u(2.5, 3.2), cutoff=6.0),
            "mark": power_law_field(rng, shape, u(2.0, 3.0), cutoff=6.0),
            "oil": power_law_field(rng, shape, 3.0),
            "brow": power_law_field(rng, shape, 1.5, stretch=(1.0, 0.2), cutoff=10.0),
            "strands": power_law_field(rng, shape, 1.2, stretch=(0.1, 1.0), cutoff=12.0),
        }
        tan = u(0.05, 0.3) if rng.random() < 0.6 else 0.0
        amplitudes = {
            "mel": u(0.04, 0.12),
            "mel_fine": u(0.015, 0.05),
            "blood": u(0.04, 0.1),
            "tan": tan,
            "goggles": tan * u(0.6, 1.0) if rng.random() < 0.12 else 0.0,
            "melasma": u(0.12, 0.35) * (rng.random() < 0.2 + 0.2 * dark),
            "melasma_level": u(0.3, 1.0),
            "under_eye": u(0.04, 0.2) * (rng.random() < 0.3 + 0.4 * dark),
            "flush": u(0.0, 0.25),
            "rosacea": u(0.2, 0.6) * (rng.random() < 0.3 * (1 - 0.5 * dark)),
            "nose_red": u(0.0, 0.3),
            "lip_blood": u(0.3, 0.8),
            "lip_mel": u(-0.15, 0.1) + 0.3 * max(skin_type, 0.0),
            "brow": u(0.5, 1.0),
            "brow_thickness": u(0.018, 0.032),
            "birthmark": rng.choice(4, p=[0.8, 0.1, 0.04, 0.06]),  # none, café-au-lait, port-wine, pale
            "birthmark_level": u(0.2, 0.5),
            "birthmark_centre": np.array([u(-0.8, 0.8), u(-0.9, 0.5)]),
            "birthmark_radius": u(0.05, 0.16),
        }
        mel_spots, blood_spots = [], []
        n_moles = rng.poisson(3.0)
        for _ in range(n_moles):
            mel_spots.append((u(-1.0, 1.0), u(-1.1, 0.7), u(0.005, 0.014), u(0.4, 0.9)))
        if rng.random() < 0.4:
            for _ in range(rng.integers(3, 20)):
                mel_spots.append((u(-0.8, 0.8), u(-0.4, 0.7), u(0.012, 0.03), u(0.08, 0.25)))
        if rng.random() < 0.35:
            for _ in range(rng.integers(4, 40)):
                where = (rng.normal(0.0, 0.45), u(-1.0, 0.6))
                radius = u(0.007, 0.018)
                blood_spots.append((*where, radius, u(0.3, 0.8)))
                if dark > 0.3 and rng.random() < 0.4:
                    mel_spots.append((where[0] + rng.normal(0, 0.01), where[1], radius * 1.3, u(0.1, 0.3)))
        return cls(
            skin_type=float(skin_type),
            blood_base=float(np.clip(rng.normal(-0.15, 0.22), -0.8, 0.5)),
            amplitudes=amplitudes,
            fields=fields,
            mel_spots=np.array(mel_spots).reshape(-1, 4),
            blood_spots=np.array(blood_spots).reshape(-1, 4),
            oil=float(np.exp(rng.uniform(np.log(0.015), np.log(0.06)))),
            gloss=(u(0.12, 0.22), u(0.25, 0.45)),
            anisotropy=u(1.0, 1.6),
            neck_offset=u(-0.25, 0.05),
        )


def _spots(phi, theta, spots: np.ndarray, raised: bool) -> np.ndarray:
    """Sum of spots (φ, θ, radius, amplitude): flat-topped discs, or papules with a red halo."""
    total = np.zeros(len(phi))
    for centre_phi, centre_theta, radius, amplitude in spots:
        r = _metric(phi - centre_phi, theta - centre_theta)
        if raised:
            papule = np.clip(1.0 - (r / radius) ** 2, 0.0, None) ** 1.5
            total += amplitude * (papule + 0.3 * np.exp(-((r / (2.2 * radius)) ** 2)))
        else:
            total += amplitude * _sigmoid((radius - r) / (0.25 * radius))
    return total


def brow_density(head: HeadParams, phi, theta, thickness) -> np.ndarray:
    a = np.abs(phi)
    du = (a - head.eye_phi - 0.01) / 0.24
    centre = head.brow_theta + head.brow_arch * (1.0 - du * du)
    taper = _smoothstep(-1.25, -0.85, du) * (1.0 - _smoothstep(0.75, 1.15, du))
    width = thickness * (1.1 - 0.45 * np.clip(du, 0.0, 1.0))
    return taper * np.exp(-(((theta - centre) / width) ** 4))


def lip_coverage(head: HeadParams, phi, theta) -> np.ndarray:
    top, bottom, _ = head.lip_profile(phi)
    v = theta - head.mouth_theta
    upper = _smoothstep(-0.004, 0.004, top - v) * (v >= 0)
    lower = _smoothstep(-0.004, 0.004, bottom + v) * (v < 0)
    return np.clip(upper + lower, 0.0, 1.0) * (top + bottom > 0)


def t_zone(head: HeadParams, phi, theta) -> np.ndarray:
    """Forehead band, nose and chin: the oily zone."""
    forehead = blob(phi, theta, (0.0, head.brow_theta + 0.2), (0.45, 0.25))
    nose, _ = capsule(phi, theta, (0.0, head.eye_theta), (0.0, head.nose_tip_theta - 0.03), (0.14, 0.1))
    chin = blob(phi, theta, (0.0, head.chin_theta + 0.05), (0.22, 0.14))
    return np.clip(forehead + nose + chin, 0.0, 1.0)


def skin_maps(head: HeadParams, skin: Complexion, chart: Chart, phi, theta) -> tuple[np.ndarray, np.ndarray]:
    """fmel and fblood (P,) in decoder units at chart points (face and neck)."""
    a = np.abs(phi)
    amp, f = skin.amplitudes, skin.fields

    def field(name, at_phi=phi):
        return chart.sample(f[name], at_phi, theta)

    neck = _smoothstep(-np.pi / 2 - 0.05, -np.pi / 2 - 0.35, theta)
    sun = np.clip(
        0.35 + 0.65 * np.maximum.reduce([
            blob(phi, theta, (0.0, head.brow_theta + 0.22), (0.7, 0.3)),
            capsule(phi, theta, (0.0, head.eye_theta), (0.0, head.nose_tip_theta), (0.12, 0.1))[0],
            blob(a, theta, (0.5, -0.12), (0.3, 0.22)),
        ]),
        0.0, 1.0,
    )
    sun = (1 - neck) * sun + neck * 0.4
    goggles = np.clip(blob(a, theta, (head.eye_phi, head.eye_theta + 0.01), (0.3, 0.15))
                      + blob(phi, theta, (0.0, head.eye_theta + 0.03), (0.2, 0.06)), 0.0, 1.0)

    fmel = skin.skin_type + amp["mel"] * field("mel") + amp["mel_fine"] * field("mel_fine")
    fmel += amp["tan"] * sun - amp["goggles"] * goggles + skin.neck_offset * neck
    centrofacial = np.clip(
        blob(phi, theta, (0.0, head.brow_theta + 0.15), (0.5, 0.25))
        + blob(a, theta, (0.45, -0.2), (0.3, 0.25))
        + blob(phi, theta, (0.0, head.mouth_theta + 0.08), (0.2, 0.07)),
        0.0, 1.0,
    )
    symmetric = 0.75 * field("melasma", a) + 0.25 * field("melasma")
    fmel += amp["melasma"] * centrofacial * _soft_threshold(symmetric, amp["melasma_level"], 0.2)
    fmel += amp["under_eye"] * blob(a, theta, (head.eye_phi, head.eye_theta - 0.07), (0.18, 0.05))
    kind, centre = amp["birthmark"], amp["birthmark_centre"]
    if kind:
        r = _metric(phi - centre[0], theta - centre[1]) / amp["birthmark_radius"]
        patch = _soft_threshold(field("mark") + 2.2 * (1.0 - r * r), 1.0, 0.12) * (r < 1.6)
        if kind == 1:
            fmel += amp["birthmark_level"] * patch
        elif kind == 3:
            fmel -= 1.5 * amp["birthmark_level"] * patch
    fmel += _spots(phi, theta, skin.mel_spots, raised=False)
    lips = lip_coverage(head, phi, theta)
    fmel += amp["lip_mel"] * lips
    brows = brow_density(head, phi, theta, amp["brow_thickness"]) * np.clip(0.65 + 0.45 * field("brow"), 0.0, 1.0)
    brow_level = max(skin.skin_type + 0.45, 0.55) + 0.4 * amp["brow"]
    fmel += brows * (brow_level - fmel) * amp["brow"]

    fblood = skin.blood_base + amp["blood"] * field("blood")
    fblood += amp["flush"] * blob(a, theta, (0.48, -0.28), (0.28, 0.22))
    rosacea_zone = np.clip(
        blob(a, theta, (0.4, -0.25), (0.3, 0.25))
        + capsule(phi, theta, (0.0, head.eye_theta), (0.0, head.nose_tip_theta), (0.12, 0.1))[0]
        + blob(phi, theta, (0.0, head.chin_theta + 0.05), (0.2, 0.12))
        + 0.6 * blob(phi, theta, (0.0, head.brow_theta + 0.05), (0.12, 0.1)),
        0.0, 1.0,
    )
    fblood += amp["rosacea"] * rosacea_zone * (0.55 + 0.45 * _soft_threshold(field("rosacea"), 0.0, 0.4))
    fblood += amp["nose_red"] * blob(phi, theta, (0.0, head.nose_tip_theta), (0.1, 0.08))
    fblood += 0.5 * amp["nose_red"] * blob(a, theta, (head.ear_phi, -0.03), (0.15, 0.28))
    if kind == 2:
        fblood += 2.0 * amp["birthmark_level"] * patch
    fblood += _spots(phi, theta, skin.blood_spots, raised=True)
    fblood += amp["lip_blood"] * lips
    return np.clip(fmel, -1.0, 1.0), np.clip(fblood, -1.0, 1.0)


def surface_finish(head: HeadParams, skin: Complexion, chart: Chart, samples: Samples, material: np.ndarray):
    """Ward parameters per sample: ρ (oiliness), αx (across φ) and αy; zero ρ for matte materials."""
    phi, theta = samples.chart[:, 0], samples.chart[:, 1]
    zone = t_zone(head, phi, theta)
    rho = skin.oil * (0.5 + 1.5 * zone) * np.exp(0.35 * chart.sample(skin.fields["oil"], phi, theta))
    alpha = skin.gloss[1] + (skin.gloss[0] - skin.gloss[1]) * zone
    lips = lip_coverage(head, phi, theta)
    rho = rho * (1 - lips) + lips * 0.05
    alpha = alpha * (1 - lips) + lips * 0.15
    alpha_x, alpha_y = alpha, alpha * skin.anisotropy
    rho = np.where(material == NECK, 0.6 * rho, rho)
    for materials, (value_rho, value_x, value_y) in (
        ((SCLERA, IRIS, PUPIL), (0.6, 0.04, 0.04)),  # the cornea's glint
        ((HAIR,), (0.04, 0.35, 0.1)),
        ((TEETH,), (0.08, 0.15, 0.15)),
        ((MOUTH, LASH, CLOTH), (0.0, 0.3, 0.3)),
    ):
        where = np.isin(material, materials)
        rho, alpha_x, alpha_y = (np.where(where, new, old) for new, old in
                                 ((value_rho, rho), (value_x, alpha_x), (value_y, alpha_y)))
    return rho, alpha_x, alpha_y


# --------------------------------------------------------------------------
# Background, sensor
# --------------------------------------------------------------------------


def background_raw(size: int, rng: np.random.Generator, sensitivity, spd) -> np.ndarray:
    """A lit, defocused wall of two random reflectances: raw (H, W, 3)."""
    first, second = random_smooth_reflectance(rng), random_smooth_reflectance(rng)
    level = float(np.exp(rng.uniform(np.log(0.05), np.log(1.0))))
    y, x = np.mgrid[0:size, 0:size] / max(size - 1, 1) * 2.0 - 1.0
    if rng.random() < 0.5:
        angle = rng.uniform(0, 2 * np.pi)
        blend = np.clip(0.5 + 0.6 * (np.cos(angle) * x + np.sin(angle) * y), 0.0, 1.0)
    else:
        blend = _soft_threshold(power_law_field(rng, (size, size), 3.5, cutoff=1.5), 0.0, 0.6)
    falloff = 1.0 - rng.uniform(0.0, 0.5) * np.clip(0.5 - 0.5 * (x * rng.normal() + y * rng.normal()), 0, 1)
    colours = camera_response(np.stack([first, second]), sensitivity, spd)
    return level * falloff[..., None] * ((1 - blend)[..., None] * colours[0] + blend[..., None] * colours[1])


@dataclasses.dataclass
class Sensor:
    """Metering, optics and sensor of one photo."""

    reflected_share: float
    incident_target: float
    reflected_target: float
    vignetting: float
    blur: tuple[str, float] | None
    aberration: tuple[int, int] | None
    full_well: float
    read_noise: float
    headroom: float
    white_balance_tilt: float
    gamma: float
    contrast: float
    jpeg_quality: int | None

    @classmethod
    def random(cls, rng: np.random.Generator) -> "Sensor":
        u = rng.uniform
        blur = None
        if rng.random() < 0.55:
            blur = ("gauss", u(0.3, 0.6)) if rng.random() < 0.6 else ("disc", u(0.55, 0.9))
        aberration = None
        if rng.random() < 0.25:
            aberration = (int(rng.integers(2)), int(rng.choice([-1, 1])))
        plain = rng.random() < 0.35
        return cls(
            reflected_share=u(0.0, 0.6),
            incident_target=u(0.9, 1.5),
            reflected_target=u(0.15, 0.3),
            vignetting=u(0.0, 0.35),
            blur=blur,
            aberration=aberration,
            full_well=float(np.exp(u(np.log(1500.0), np.log(30000.0)))),
            read_noise=u(1.0, 8.0),
            headroom=u(1.1, 1.6),
            white_balance_tilt=rng.normal(0.0, 0.06),
            gamma=1.0 if plain else u(0.88, 1.12),
            contrast=0.0 if plain else u(-0.05, 0.25),
            jpeg_quality=int(rng.integers(55, 93)) if rng.random() < 0.35 else None,
        )


def vignette(size: int, strength: float) -> np.ndarray:
    y, x = (np.mgrid[0:size, 0:size] + 0.5) / size * 2.0 - 1.0
    return 1.0 - strength * 0.5 * (x * x + y * y)


def disc_kernel(radius: float) -> np.ndarray:
    """A defocus disc, area-sampled 8×8 per tap, normalised."""
    half = int(np.ceil(radius))
    fine = (np.arange((2 * half + 1) * 8) + 0.5) / 8.0 - half - 0.5
    yy, xx = np.meshgrid(fine, fine, indexing="ij")
    inside = (xx * xx + yy * yy <= radius * radius).astype(np.float64)
    kernel = inside.reshape(2 * half + 1, 8, 2 * half + 1, 8).mean(axis=(1, 3))
    return kernel / kernel.sum()


def tone_curve(linear: np.ndarray, sensor: Sensor) -> np.ndarray:
    """sRGB encoding, a gamma tweak and an S-shaped contrast around mid-grey; [0, 1]."""
    encoded = srgb_encode(linear) ** sensor.gamma
    return np.clip(encoded + sensor.contrast * (encoded - 0.5) * 4.0 * encoded * (1.0 - encoded), 0.0, 1.0)


def apply_sensor(raw: np.ndarray, gain: np.ndarray, light: np.ndarray, face, rng) -> np.ndarray:
    """Raw (H, W, 3) × gain → optics → Poisson–Gaussian noise → white balance → tone curve → 8 bits → JPEG."""
    sensor = face.sensor
    image = raw * gain[..., None]
    if sensor.blur is not None:
        kind, amount = sensor.blur
        if kind == "gauss":
            image = cv2.GaussianBlur(image, (0, 0), amount, borderType=cv2.BORDER_REFLECT)
        else:
            image = cv2.filter2D(image, -1, disc_kernel(amount), borderType=cv2.BORDER_REFLECT)
    if sensor.aberration is not None:
        axis, step = sensor.aberration
        image = image.copy()
        image[..., 0] = np.roll(image[..., 0], step, axis=axis)
        image[..., 2] = np.roll(image[..., 2], -step, axis=axis)
    white = float(light.max())
    electrons = np.clip(image, 0.0, None) / white * sensor.full_well
    noisy = rng.poisson(electrons) + rng.normal(0.0, sensor.read_noise, size=image.shape)
    image = np.minimum(noisy / sensor.full_well * white, sensor.headroom * white)
    tilted = face.spd * np.maximum(1.0 + sensor.white_balance_tilt * (LAMBDA - 560.0) / 160.0, 0.05)
    balance = camera_response(np.ones(spectra.N_WAVELENGTHS), face.camera, tilted / tilted.sum())
    linear = raw_to_linear(image, balance, face.camera)
    quantised = np.round(tone_curve(linear, sensor) * 255.0).astype(np.uint8)
    if sensor.jpeg_quality is not None:
        ok, encoded = cv2.imencode(".jpg", quantised[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, sensor.jpeg_quality])
        quantised = cv2.imdecode(encoded, cv2.IMREAD_COLOR)[..., ::-1]
    return quantised.astype(np.float64) / 255.0


# --------------------------------------------------------------------------
# One face
# --------------------------------------------------------------------------


@dataclasses.dataclass
class Face:
    """Everything about one face before the sensor."""

    raw: np.ndarray
    unlit_raw: np.ndarray
    shading: np.ndarray
    specular: np.ndarray
    fmel: np.ndarray
    fblood: np.ndarray
    mask: np.ndarray
    skin_fraction: np.ndarray
    material: np.ndarray
    normals: np.ndarray
    camera: np.ndarray
    camera_index: int
    spd: np.ndarray
    light_weights: np.ndarray
    cct: float
    illuminant_error: float
    sensor: Sensor


def _pixel_sums(pixel: np.ndarray, values: np.ndarray, n_pixels: int) -> np.ndarray:
    """Sum per pixel of (P,) or (P, C) values → (n_pixels,) or (n_pixels, C)."""
    if values.ndim == 1:
        return np.bincount(pixel, values, minlength=n_pixels)
    return np.stack([np.bincount(pixel, column, minlength=n_pixels) for column in values.T], -1)


def make_face(size: int, rng: np.random.Generator) -> Face:
    """One random face, rendered to noise-free raw with its ground truth."""
    chart = Chart()
    head = HeadParams.random(rng)
    view = View.random(rng)
    skin = Complexion.random(rng, chart)
    lighting = Lighting.random(rng)
    illuminant = random_illuminant(rng)
    camera, camera_index = random_camera(rng)
    reflectances = material_reflectances(rng, skin.skin_type)
    sensor = Sensor.random(rng)

    meshes = [head_mesh(head, size), neck_mesh(head)]
    if head.long_hair:
        meshes.append(curtain_mesh(head, rng))
    scene = assemble(meshes, view)
    samples = trace(scene, view, size)
    material = classify(head, samples)
    n_pixels, per_pixel = size * size, SUPERSAMPLE * SUPERSAMPLE

    # diffuse shading and specular per sample
    shading = environment_irradiance(samples.normals, lighting.environment) * samples.occlusion
    rho, alpha_x, alpha_y = surface_finish(head, skin, chart, samples, material)
    reflected = 2.0 * np.einsum("pk,pk->p", samples.normals, samples.to_camera)[:, None] * samples.normals
    reflected -= samples.to_camera
    specular = rho * environment_irradiance(reflected, lighting.environment).clip(0.0) * samples.occlusion
    resolution = int(np.clip(2 * size, 96, 256))
    for towards, radius, intensity in zip(lighting.directions, lighting.radii, lighting.intensities):
        visible = intensity * shadow_visibility(scene, samples, towards, radius, resolution)
        for direction in disc_directions(towards, radius):
            shading += visible * np.clip(samples.normals @ direction, 0.0, None) / SUB_DIRECTIONS
            specular += visible * ward_specular(
                samples.normals, samples.tangents, samples.to_camera, direction, rho, alpha_x, alpha_y
            ) / SUB_DIRECTIONS

    # pixel-level ground truth: maps at each pixel's mean skin chart position, mean shading
    is_skin = (material == SKIN) | (material == NECK)
    skin_count = np.bincount(samples.pixel, is_skin, minlength=n_pixels)
    face_count = np.bincount(samples.pixel, material == SKIN, minlength=n_pixels)
    has_skin = skin_count > 0
    chart_mean = _pixel_sums(samples.pixel, samples.chart * is_skin[:, None], n_pixels)
    chart_mean = chart_mean[has_skin] / skin_count[has_skin, None]
    fmel, fblood = np.zeros(n_pixels), np.zeros(n_pixels)
    fmel[has_skin], fblood[has_skin] = skin_maps(head, skin, chart, chart_mean[:, 0], chart_mean[:, 1])
    skin_shading = _pixel_sums(samples.pixel, shading * is_skin, n_pixels) / np.maximum(skin_count, 1)
    skin_specular = _pixel_sums(samples.pixel, specular * is_skin, n_pixels) / np.maximum(skin_count, 1)

    # spectral rendering to raw: sample colours summed per pixel
    spd = illuminant.spd
    light = camera_response(np.ones(spectra.N_WAVELENGTHS), camera, spd)
    skin_albedo = skin_lookup(skin_raw_table(camera, spd), fmel, fblood)
    other_albedo = camera_response(reflectances, camera, spd)
    texture = material_texture(head, skin, chart, samples, material)
    albedo = np.where(
        is_skin[:, None], skin_albedo[samples.pixel], other_albedo[np.clip(material, 0, None)] * texture[:, None]
    )
    raw_sum = _pixel_sums(samples.pixel, albedo * shading[:, None] + specular[:, None] * light, n_pixels)
    unlit_sum = _pixel_sums(samples.pixel, albedo, n_pixels)
    covered = np.bincount(samples.pixel, minlength=n_pixels)
    background = background_raw(size, rng, camera, spd).reshape(n_pixels, 3)
    missing = (per_pixel - covered)[:, None]
    raw = (raw_sum + missing * background) / per_pixel
    unlit = (unlit_sum + missing * background) / per_pixel

    normals = _pixel_sums(samples.pixel, samples.normals, n_pixels)
    normals /= np.maximum(np.linalg.norm(normals, axis=-1, keepdims=True), 1e-12)
    cover = np.stack([np.bincount(samples.pixel, material == m, minlength=n_pixels) for m in range(N_MATERIALS)])
    cover = np.concatenate([(per_pixel - covered)[None], cover])
    dominant = np.argmax(cover, axis=0) - 1
    weights, cct, error = nearest_representation(spd)
    square = (size, size)
    return Face(
        raw=raw.reshape(size, size, 3),
        unlit_raw=unlit.reshape(size, size, 3),
        shading=skin_shading.reshape(square),
        specular=skin_specular.reshape(square),
        fmel=fmel.reshape(square),
        fblood=fblood.reshape(square),
        mask=(face_count > per_pixel / 2).reshape(square),
        skin_fraction=(skin_count / per_pixel).reshape(square),
        material=dominant.reshape(square),
        normals=normals.reshape(size, size, 3),
        camera=camera,
        camera_index=camera_index,
        spd=spd,
        light_weights=weights,
        cct=cct,
        illuminant_error=error,
        sensor=sensor,
    )


def material_texture(head: HeadParams, skin: Complexion, chart: Chart, samples: Samples, material) -> np.ndarray:
    """Brightness factor of non-skin samples: hair strands, iris fibres and limbus, cloth weave."""
    phi, theta = samples.chart[:, 0], samples.chart[:, 1]
    texture = np.ones(len(phi))
    hair = material == HAIR
    texture[hair] = np.exp(0.35 * chart.sample(skin.fields["strands"], phi, theta)[hair])
    eye = np.isin(material, (IRIS, PUPIL))
    u, v = head.eye_coordinates(phi, theta)
    angle = np.arctan2(v, u * head.eye_half_width * 0.72)
    r = np.hypot(u * head.eye_half_width * 0.72, v) / 0.055
    texture[eye] = ((0.8 + 0.2 * np.cos(17 * angle)) * (1.0 - 0.45 * _smoothstep(0.75, 1.0, r)))[eye]
    cloth = material == CLOTH
    texture[cloth] = np.exp(0.25 * chart.sample(skin.fields["mark"], phi * 4.0, theta * 2.0)[cloth])
    return texture


# --------------------------------------------------------------------------
# Batches, ground truth and the file
# --------------------------------------------------------------------------


def fit_sh(normals: np.ndarray, shading: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Least-squares second-order SH (9,) whose grey irradiance fits ``shading`` in the mask.

    Scaled so that :func:`bioface_tf.data.shading.grey_shading` with the
    coefficients repeated for R, G, B reproduces the fit.
    """
    n = normals[mask]
    if len(n) < 9:
        return np.zeros(9)
    homogeneous = np.concatenate([n, np.ones((len(n), 1))], axis=-1)
    basis = np.stack(
        [np.einsum("pi,ij,pj->p", homogeneous, sh_shading.irradiance_matrix(e), homogeneous) for e in np.eye(9)], -1
    )
    coefficients = np.linalg.solve(basis.T @ basis + 1e-9 * np.eye(9), basis.T @ shading[mask])
    return coefficients / sh_shading.REC601_LUMA.sum()


def exposure_of(face: Face, linear: np.ndarray) -> float:
    """Blend (in log) of incident metering (90th percentile of the face's shading) and
    centre-weighted reflected metering (mean luminance of the image)."""
    sensor = face.sensor
    incident = np.percentile(face.shading[face.mask], 90) if face.mask.any() else 1.0
    size = linear.shape[0]
    y, x = (np.mgrid[0:size, 0:size] + 0.5) / size * 2.0 - 1.0
    weight = np.exp(-(x * x + y * y) / 0.5)
    luminance = linear @ np.array([0.2126, 0.7152, 0.0722])
    reflected = float((weight * luminance).sum() / weight.sum())
    share = sensor.reflected_share
    log_exposure = (1 - share) * np.log(sensor.incident_target / max(incident, 1e-6)) + share * np.log(
        sensor.reflected_target / max(reflected, 1e-6)
    )
    return float(np.exp(log_exposure))


def render_face(face: Face, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The sensor and the stored arrays of one face."""
    light = camera_response(np.ones(spectra.N_WAVELENGTHS), face.camera, face.spd)
    linear = raw_to_linear(face.raw, light, face.camera)
    albedo = srgb_encode(raw_to_linear(face.unlit_raw, light, face.camera))
    exposure = exposure_of(face, linear)
    gain = exposure * vignette(linear.shape[0], face.sensor.vignetting)
    image = apply_sensor(face.raw, gain, light, face, rng)
    mask = face.mask
    shading, specular = gain * face.shading * mask, gain * face.specular * mask
    sh = fit_sh(face.normals, shading, mask)
    return {
        "image": image,
        "normals": face.normals,
        "mask": mask,
        "material": face.material,
        "skin_fraction": face.skin_fraction,
        "albedo": albedo * mask[..., None],
        "linear": linear,
        "gain": gain,
        "exposure": exposure,
        "lrgb": np.repeat(sh[None], 3, axis=0),
        "gt_fmel": face.fmel * mask,
        "gt_fblood": face.fblood * mask,
        "gt_shading": shading,
        "gt_specmask": specular,
        "gt_b": spectra.camera_pca_fit(face.camera, B_RANGE),
        "gt_light_weights": face.light_weights,
        "gt_cct": np.array([face.cct]),
        "camera_sensitivity": face.camera,
        "camera_mix": np.array([face.camera_index, face.camera_index, 1.0]),
        "illuminant_spd": face.spd,
        "illuminant_error": face.illuminant_error,
    }


def face_rng(seed: int, index: int) -> np.random.Generator:
    """The generator of face ``index``: it depends only on ``(seed, index)``."""
    return np.random.default_rng([seed, index, STREAM])


def render_validation_faces(n: int, size: int = 64, seed: int = 0, start: int = 0) -> dict[str, np.ndarray]:
    """Faces ``start .. start + n − 1`` of the family for ``seed``, as arrays.

    Returns:
        dict of float32 arrays: ``image`` (B, H, W, 3) sRGB; ``normals``
        (B, H, W, 3) signed camera frame; ``mask`` (B, H, W); ``albedo``
        (B, H, W, 3) unlit noise-free sRGB in the mask; ``linear``
        (B, H, W, 3) noise-free linear sRGB before the gain; ``gain``
        (B, H, W) exposure × vignetting; ``exposure`` (B,); ``lrgb``
        (B, 3, 9); ``gt_fmel``, ``gt_fblood``, ``gt_shading``,
        ``gt_specmask`` (B, H, W), zero outside the mask; ``gt_b`` (B, 2);
        ``gt_light_weights`` (B, 14); ``gt_cct`` (B, 1);
        ``camera_sensitivity`` (B, 3, 33); ``camera_mix`` (B, 3) (the
        database camera twice and weight 1: the camera before its
        perturbation); ``illuminant_spd`` (B, 33); ``illuminant_error`` (B,)
        relative L2 error of the nearest decoder illuminant; ``material``
        (B, H, W) int8 dominant material (−1 background, 0 face skin, 1 neck,
        2 hair, 3 sclera, 4 iris, 5 pupil, 6 mouth, 7 teeth, 8 lashes,
        9 clothes); ``skin_fraction`` (B, H, W) share of samples on face or
        neck skin.
    """
    if n < 1 or size < 16:
        raise ValueError(f"need at least 1 face of at least 16x16 pixels (got n={n}, size={size})")
    out: dict[str, list] = {}
    for index in range(start, start + n):
        rng = face_rng(seed, index)
        record = render_face(make_face(size, rng), rng)
        for key, value in record.items():
            out.setdefault(key, []).append(value)
    arrays = {key: np.stack(values).astype(np.float32) for key, values in out.items()}
    arrays["material"] = arrays["material"].astype(np.int8)
    return arrays


STORED = ("gt_b", "gt_light_weights", "gt_cct", "camera_sensitivity", "camera_mix", "illuminant_spd")


def write_validation_faces(
    path: str | pathlib.Path, n: int, size: int = 64, seed: int = 0, progress: bool = True
) -> pathlib.Path:
    """Render ``n`` validation faces into one HDF5 file in the layout of ``write_eval_faces``.

    Raises:
        DataError: naming the file, for bad arguments or a file that cannot be written.
    """
    path = pathlib.Path(path)
    if n < 1 or size < 16:
        raise DataError(f"{path}: need at least 1 face of at least 16x16 pixels (got n={n}, size={size})")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with h5py.File(path, "w") as f:
            chunk = min(CHUNK, n)
            datasets = {
                DATASET: f.create_dataset(DATASET, (n, N_CHANNELS, size, size), "f4",
                                          chunks=(chunk, N_CHANNELS, size, size)),
                EMBEDDED_LIGHTING: f.create_dataset(EMBEDDED_LIGHTING, (n, 3, 9), "f4"),
            }
            for name in ("gt_fmel", "gt_fblood", "gt_shading", "gt_specmask"):
                datasets[name] = f.create_dataset(name, (n, size, size), "f4", chunks=(chunk, size, size))
            shapes = {"gt_b": (2,), "gt_light_weights": (N_ILLUMINANTS,), "gt_cct": (1,),
                      "camera_sensitivity": (3, spectra.N_WAVELENGTHS), "camera_mix": (3,),
                      "illuminant_spd": (spectra.N_WAVELENGTHS,)}
            for name in STORED:
                datasets[name] = f.create_dataset(name, (n,) + shapes[name], "f4")
            f.attrs.update(
                family=FAMILY,
                description=(
                    "validation faces (bioface_tf.data.validation_faces): meshed superquadric heads, "
                    "power-law random-field pigments, Ward specular, blackbody/LED/daylight illuminants, "
                    "perturbed measured cameras; for choosing training recipes only, never for training"
                ),
                seed=seed,
                normal_encoding="signed",
                normal_axes="x right, y up, z towards the camera",
                mask="face skin: no background, hair, eyes, mouth interior, neck or clothes; lips and brows in",
            )
            with tqdm(total=n, desc="rendering validation faces", unit="face", disable=not progress) as bar:
                for first in range(0, n, CHUNK):
                    count = min(CHUNK, n - first)
                    faces = render_validation_faces(count, size, seed, start=first)
                    stop = first + count
                    channels = np.concatenate(
                        [faces["image"], faces["normals"], faces["mask"][..., None], faces["albedo"]], axis=-1
                    )
                    datasets[DATASET][first:stop] = channels.transpose(0, 3, 1, 2)
                    datasets[EMBEDDED_LIGHTING][first:stop] = faces["lrgb"]
                    for name in ("gt_fmel", "gt_fblood", "gt_shading", "gt_specmask", *STORED):
                        datasets[name][first:stop] = faces[name]
                    bar.update(count)
    except OSError as err:
        raise DataError(f"{path}: cannot write ({err})") from None
    return path
