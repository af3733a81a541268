"""An evaluation-only family of rendered faces, independent of ``bioface synth``.

These faces exist to measure how well a model trained on
:mod:`bioface_tf.data.synth` (or on CelebA) recovers biophysical maps from
images it has never seen the like of. Nothing here is shared with the training
generator: no code from :mod:`bioface_tf.data.synth`, no call of the Keras
:class:`~bioface_tf.physics.PhysicsDecoder`. Only the physics is shared — the
spectral tables of :mod:`bioface_tf.spectra` and the image formation of
PHYSICS.md — so the ground truth is in the decoder's units and a perfect model
could in principle recover it.

Each face is made in four steps:

1. **Geometry** — a signed distance field (SDF) head: a superellipsoid
   cranium with a tapered jaw, smooth-unioned with a chin, round-cone nose with
   alae, brow ridge, cheekbones, lips, ears and neck; eye sockets carved out
   and eyeballs set in them, with lids and lashes; hair a shell over the
   cranium, fuller on top, with a curtain down the back and sides when long,
   cut by a curved, tilted hairline. It is posed (yaw, pitch, roll) and sphere-traced per pixel through a
   perspective pinhole camera; pixels on a silhouette or material edge are
   traced again with 2×2 samples.
2. **Light** — 1–3 distant lights plus ambient light, all of one illuminant
   spectrum: Lambertian shading with soft cast shadows (traced through the SDF)
   and ambient occlusion; specular highlights from a Cook–Torrance lobe (GGX
   distribution, Smith masking, Schlick Fresnel with skin's F0 = 0.028) scaled
   by an oiliness map, with a roughness map.
3. **Skin and other materials** — melanin and haemoglobin maps (fractal value
   noise, freckles, moles, dark circles, flushed cheeks, redness patches,
   visible vessels, lips, eyebrows) looked up in the skin reflectance table;
   hair, irises, sclera, mouth and teeth have their own reflectance spectra
   (melanin or haemoglobin absorption, scattering), never the skin table's.
4. **Camera and sensor** — the camera is a convex mix of two of the 28
   measured cameras (not the 2-parameter PCA model, so it is generally not
   exactly representable by ``b``), the illuminant a mix of 2–3 tabulated CIE
   illuminants; white balance by the light colour, the camera's own raw→XYZ
   matrix (PHYSICS.md §8), XYZ→linear sRGB, ReLU, a background, then an
   exposure that meters the light (not the skin), optical blur,
   signal-dependent noise, a small white-balance error, the sRGB curve, 8-bit
   quantisation and sometimes JPEG.

Where a pixel is all skin, its noise-free linear image is exactly the
PHYSICS.md rendering of its ground truth with the true camera (the exposure is
folded into ``gt_shading`` and ``gt_specmask``); the decoder, limited to PCA
cameras, reproduces it only up to the camera's PCA fit. Face ``i`` depends
only on ``(seed, i)``.

:func:`write_eval_faces` stores faces in the layout of
:func:`bioface_tf.data.synth.write_synthetic` (readable by
:class:`~bioface_tf.data.CelebAFaces`): ``zx_7`` `(N, 10, H, W)` (sRGB image,
signed camera-frame normals, skin mask, noise-free unlit albedo in sRGB),
``lrgb`` `(N, 3, 9)` (second-order SH fitted to the shading used), the
ground truth ``gt_fmel``, ``gt_fblood``, ``gt_shading``, ``gt_specmask``
`(N, H, W)` (zero outside the mask), ``gt_b`` `(N, 2)`,
``gt_light_weights`` `(N, 14)`, ``gt_cct`` `(N, 1)`; and, beyond that layout,
the true ``camera_sensitivity`` `(N, 3, 33)`, ``camera_mix`` `(N, 3)` and
``illuminant_spd`` `(N, 33)`. The mask holds the skin of the face: no background, scalp hair,
eyes, mouth interior or neck; lips are in it, and so are eyebrows when they
are drawn as melanin-dense skin (about half of the faces; otherwise they are
hair and outside it).

Example:

>>> faces = render_eval_faces(2, size=32, seed=0)   # doctest: +SKIP
>>> faces["image"].shape, faces["gt_b"].shape        # doctest: +SKIP
((2, 32, 32, 3), (2, 2))
"""

from __future__ import annotations

import dataclasses
import pathlib

import cv2
import h5py
import numpy as np
from tqdm import tqdm

from bioface_tf import spectra
from bioface_tf.data import shading as sh_shading
from bioface_tf.data.celeba import DATASET, EMBEDDED_LIGHTING, N_CHANNELS
from bioface_tf.errors import DataError

FAMILY = "eval_faces"
STREAM = 0xE7A1
CHUNK = 32
N_ILLUMINANTS = 14
B_RANGE = 3.0
LIGHT_FLOOR = 1e-8
SRGB_LINEAR_LIMIT = 0.0031308
SKIN_F0 = 0.028

BACKGROUND, SKIN, NECK, HAIR, SCLERA, IRIS, PUPIL, MOUTH, TEETH, LASH = range(-1, 9)
N_MATERIALS = 9
SKIN_POPULATIONS = ((-0.4, 0.12), (0.05, 0.12), (0.45, 0.12))
SKIN_POPULATION_SHARES = (0.4, 0.3, 0.3)
EYE_HALF_WIDTH = 0.13
LASH_WIDTH = 0.012

MAX_STEPS = 32
OVER_RELAXATION = 1.3
HIT_FRACTION = 0.1
SHADOW_STEPS = 16
BOUND_MARGIN = 0.42
TETRAHEDRON = np.array([[1, -1, -1], [-1, -1, 1], [-1, 1, -1], [1, 1, 1]], dtype=np.float64)
EDGE_OFFSETS = np.array([[-0.25, -0.25], [-0.25, 0.25], [0.25, -0.25], [0.25, 0.25]])


# --------------------------------------------------------------------------
# Spectral image formation (PHYSICS.md §3–§9), NumPy, batched over faces
# --------------------------------------------------------------------------


def illuminant_spd(light_weights: np.ndarray, cct: np.ndarray) -> np.ndarray:
    """Mixture of CIE illuminants, PHYSICS.md §3.

    Args:
        light_weights: (B, 14) non-negative, order [A, D, F1..F12].
        cct: (B,) daylight index in [1, 22] (1 → 4000 K, 22 → 25000 K),
            interpolated linearly between the tabulated D illuminants.

    Returns:
        (B, 33) spectral power distribution, summing to 1.
    """
    tables = spectra.illuminants()
    weights = np.maximum(np.asarray(light_weights, dtype=np.float64), 0.0)
    position = np.clip(np.asarray(cct, dtype=np.float64).reshape(-1), 1.0, 22.0) - 1.0
    lower = np.clip(np.floor(position), 0.0, 20.0)
    fraction = (position - lower)[:, None]
    index = lower.astype(np.int64)
    daylight = (1.0 - fraction) * tables.d_series[index] + fraction * tables.d_series[index + 1]
    spd = weights[:, :1] * tables.a + weights[:, 1:2] * daylight + weights[:, 2:] @ tables.fluorescent
    return spd / spd.sum(axis=-1, keepdims=True)


def mixed_camera(first: int, second: int, weight: float) -> np.ndarray:
    """A convex mix of two database cameras, each channel renormalised to sum 1.

    Args:
        first, second: indices into the 28 cameras of
            :func:`bioface_tf.spectra.camera_database`.
        weight: share of ``first``, in [0, 1].

    Returns:
        (3, 33) R, G, B sensitivities.
    """
    curves = spectra.camera_database().sensitivities
    mixed = weight * curves[first] + (1.0 - weight) * curves[second]
    return mixed / mixed.sum(axis=-1, keepdims=True)


def pca_coordinates(sensitivity: np.ndarray) -> np.ndarray:
    """Least-squares camera PCA parameters ``b`` of arbitrary sensitivities.

    ``b = argmin ‖componentsᵀ b + mean − S‖²`` over the stacked 99-vector,
    clipped to [−3, 3]. Exact (up to rounding) for a camera of the PCA model;
    for a measured camera it is the nearest PCA camera, not the camera itself.

    Args:
        sensitivity: (B, 3, 33).

    Returns:
        (B, 2).
    """
    pca = spectra.camera_pca()
    stacked = np.asarray(sensitivity, dtype=np.float64).reshape(-1, 3 * spectra.N_WAVELENGTHS)
    b, *_ = np.linalg.lstsq(pca.components.T, (stacked - pca.mean).T, rcond=None)
    return np.clip(b.T, -B_RANGE, B_RANGE)


def raw_to_xyz_for_camera(sensitivity: np.ndarray) -> np.ndarray:
    """The 3×3 raw→XYZ matrix of a camera, PHYSICS.md §8.

    ``T = (pinv(S3ᵀ) · XYZcmf)ᵀ``, rows rescaled to sum to 0.3253, 0.3425,
    0.3723 — the recipe of :func:`bioface_tf.spectra.raw_to_xyz_matrix`,
    applied to the camera's own curves instead of a PCA camera.

    Args:
        sensitivity: (B, 3, 33).

    Returns:
        (B, 3, 3), ``XYZ = T @ white_balanced_raw``.
    """
    s3 = np.asarray(sensitivity, dtype=np.float64)
    fit = np.linalg.pinv(np.swapaxes(s3, -1, -2)) @ spectra.colour_matching_functions()
    t = np.swapaxes(fit, -1, -2)
    return t * (spectra.XYZ_ROW_SUMS[:, None] / t.sum(axis=-1, keepdims=True))


def light_colour(sensitivity: np.ndarray, spd: np.ndarray) -> np.ndarray:
    """``light_c = Σλ S_c(λ)·e(λ)``: (B, 3, 33), (B, 33) → (B, 3)."""
    return np.einsum("bcl,bl->bc", sensitivity, spd)


def skin_albedo_tables(sensitivity: np.ndarray, spd: np.ndarray) -> np.ndarray:
    """The skin table seen by each face's camera under its light.

    ``Σλ R(λ)·e(λ)·S_c(λ)`` at every node of the 256 × 256 × 33 skin table.
    Bilinear interpolation is linear, so looking up this table equals looking
    up R(λ) and projecting it (PHYSICS.md §6–§7), at a fraction of the cost.

    Args:
        sensitivity: (B, 3, 33); spd: (B, 33).

    Returns:
        (B, 256·256, 3) raw albedo, rows haemoglobin-major as in the table.
    """
    table = spectra.skin_reflectance_table().reshape(-1, spectra.N_WAVELENGTHS)
    lit = (sensitivity * spd[:, None, :]).reshape(-1, spectra.N_WAVELENGTHS)
    projected = table @ lit.T
    return projected.reshape(table.shape[0], -1, 3).transpose(1, 0, 2)


def lookup_skin(albedo_table: np.ndarray, fmel: np.ndarray, fblood: np.ndarray) -> np.ndarray:
    """Bilinear, align-corners lookup at (fmel, fblood) ∈ [−1, 1] (PHYSICS.md §6).

    Args:
        albedo_table: (256·256, C) one face's table (from
            :func:`skin_albedo_tables`, or the reflectance table itself).
        fmel, fblood: (...) maps, clipped to [−1, 1].

    Returns:
        (..., C); ``fblood`` selects the row, ``fmel`` the column.
    """
    grid = spectra.N_SKIN_GRID

    def position(value):
        where = np.clip((np.asarray(value, dtype=np.float64) + 1.0) / 2.0 * (grid - 1), 0.0, grid - 1.0)
        lower = np.clip(np.floor(where), 0.0, grid - 2.0)
        return lower.astype(np.int64), (where - lower)[..., None]

    column, fx = position(fmel)
    row, fy = position(fblood)
    top_left = row * grid + column
    c00, c01, c10, c11 = (albedo_table[top_left + offset] for offset in (0, 1, grid, grid + 1))
    top = c00 + fx * (c01 - c00)
    bottom = c10 + fx * (c11 - c10)
    return top + fy * (bottom - top)


def raw_to_linear_srgb(raw: np.ndarray, light: np.ndarray, t_raw2xyz: np.ndarray) -> np.ndarray:
    """White balance by the light colour, raw→XYZ by T, XYZ→linear sRGB, ReLU.

    Args:
        raw: (B, P, 3) camera raw; light: (B, 3); t_raw2xyz: (B, 3, 3).

    Returns:
        (B, P, 3) linear sRGB ≥ 0.
    """
    white_balanced = raw / np.maximum(light, LIGHT_FLOOR)[:, None, :]
    to_srgb = spectra.XYZ_TO_LINEAR_SRGB @ t_raw2xyz
    return np.maximum(np.einsum("bpc,bkc->bpk", white_balanced, to_srgb), 0.0)


def linear_srgb_from_maps(
    fmel: np.ndarray,
    fblood: np.ndarray,
    shading: np.ndarray,
    specmask: np.ndarray,
    sensitivity: np.ndarray,
    spd: np.ndarray,
) -> np.ndarray:
    """Skin rendered from its maps: ``raw = albedo·shading + specmask·light`` → linear sRGB.

    The same physics as the decoder, for any camera curves (not only PCA ones).

    Args:
        fmel, fblood, shading, specmask: (B, H, W).
        sensitivity: (B, 3, 33); spd: (B, 33).

    Returns:
        (B, H, W, 3) linear sRGB.
    """
    batch, height, width = np.shape(fmel)
    tables = skin_albedo_tables(sensitivity, spd)
    albedo = np.stack([lookup_skin(tables[i], fmel[i], fblood[i]) for i in range(batch)])
    light = light_colour(sensitivity, spd)
    raw = albedo * shading[..., None] + specmask[..., None] * light[:, None, None, :]
    linear = raw_to_linear_srgb(raw.reshape(batch, -1, 3), light, raw_to_xyz_for_camera(sensitivity))
    return linear.reshape(batch, height, width, 3)


def srgb_encode(linear: np.ndarray) -> np.ndarray:
    """The sRGB transfer curve (IEC 61966-2-1); input clipped to [0, 1]."""
    x = np.clip(linear, 0.0, 1.0)
    return np.where(x <= SRGB_LINEAR_LIMIT, 12.92 * x, 1.055 * np.maximum(x, SRGB_LINEAR_LIMIT) ** (1 / 2.4) - 0.055)


def srgb_decode(encoded: np.ndarray) -> np.ndarray:
    """Inverse sRGB transfer curve; input clipped to [0, 1]."""
    x = np.clip(encoded, 0.0, 1.0)
    return np.where(x <= 0.04045, x / 12.92, ((np.maximum(x, 0.04045) + 0.055) / 1.055) ** 2.4)


# --------------------------------------------------------------------------
# Head geometry: a signed distance field in face coordinates
# (x right, y up, z out of the face; the face is about 2 units high).
# Points are (3, P) arrays; symmetric features are evaluated at |x|.
# --------------------------------------------------------------------------


def _norm(x, y, z):
    return np.sqrt(x * x + y * y + z * z)


def smooth_min(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    """Polynomial smooth minimum (smooth union of two distance fields), exact min when |a − b| ≥ k."""
    h = np.minimum(np.maximum(0.5 + (0.5 / k) * (b - a), 0.0), 1.0)
    return b + h * ((a - b) - k * (1.0 - h))


def smooth_max(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    """Polynomial smooth maximum (smooth intersection / subtraction)."""
    return -smooth_min(-a, -b, k)


def ellipsoid(x, y, z, centre, radii) -> np.ndarray:
    """Distance bound ``(|q| − 1)·min(radii)`` to an ellipsoid, ``q`` the radius-scaled offset, (P,).

    Never larger than the true distance, exact on the surface, and with the
    ellipsoid's own normal there.
    """
    k0 = _norm((x - centre[0]) / radii[0], (y - centre[1]) / radii[1], (z - centre[2]) / radii[2])
    return (k0 - 1.0) * min(radii)


def round_cone(x, y, z, start, end, r_start: float, r_end: float) -> np.ndarray:
    """Distance to a capsule whose radius goes linearly from ``start`` to ``end``, (P,)."""
    ax, ay, az = end[0] - start[0], end[1] - start[1], end[2] - start[2]
    px, py, pz = x - start[0], y - start[1], z - start[2]
    h = np.minimum(np.maximum((px * ax + py * ay + pz * az) / (ax * ax + ay * ay + az * az), 0.0), 1.0)
    return _norm(px - h * ax, py - h * ay, pz - h * az) - (r_start + (r_end - r_start) * h)


@dataclasses.dataclass
class HeadShape:
    """The numbers that make one head differ from another (face units)."""

    radii: np.ndarray
    squareness: float
    jaw_taper: float
    chin: np.ndarray
    nose_length: float
    nose_radius: tuple[float, float]
    nose_droop: float
    ala_width: float
    brow_ridge: float
    eye_spacing: float
    eye_height: float
    eye_opening: tuple[float, float]
    eye_tilt: float
    cheekbone: float
    lip_fullness: float
    mouth_width: float
    mouth_open: float
    ear_size: float
    neck_radius: float
    hairline: tuple[float, float, float]
    hair_thickness: float
    hair_volume: float
    hair_length: float
    hair_front: float
    gaze: np.ndarray

    @classmethod
    def random(cls, rng: np.random.Generator) -> "HeadShape":
        hair_length = rng.uniform(-0.35, 0.05) if rng.random() < 0.5 else rng.uniform(-1.6, -0.5)
        return cls(
            radii=np.array([rng.uniform(0.7, 0.8), rng.uniform(0.98, 1.06), rng.uniform(0.86, 0.95)]),
            squareness=rng.uniform(0.0, 1.0),
            jaw_taper=rng.uniform(0.12, 0.32),
            chin=np.array([rng.uniform(0.24, 0.36), rng.uniform(0.2, 0.28), rng.uniform(0.0, 0.06)]),
            nose_length=rng.uniform(0.12, 0.22),
            nose_radius=(rng.uniform(0.035, 0.05), rng.uniform(0.055, 0.08)),
            nose_droop=rng.uniform(-0.03, 0.05),
            ala_width=rng.uniform(0.06, 0.09),
            brow_ridge=rng.uniform(0.05, 0.08),
            eye_spacing=rng.uniform(0.27, 0.32),
            eye_height=rng.uniform(0.05, 0.12),
            eye_opening=(rng.uniform(0.04, 0.055), rng.uniform(0.028, 0.038)),
            eye_tilt=rng.uniform(-0.12, 0.18),
            cheekbone=rng.uniform(0.0, 0.035),
            lip_fullness=rng.uniform(0.035, 0.055),
            mouth_width=rng.uniform(0.15, 0.21),
            mouth_open=rng.uniform(0.012, 0.03) if rng.random() < 0.3 else 0.0,
            ear_size=rng.uniform(0.16, 0.21),
            neck_radius=rng.uniform(0.3, 0.37),
            hairline=(rng.uniform(0.35, 0.6) if rng.random() < 0.25 else rng.uniform(0.7, 0.95),
                      rng.uniform(0.3, 0.8), rng.uniform(-0.2, 0.2)),
            hair_thickness=rng.uniform(0.02, 0.08),
            hair_volume=rng.uniform(0.0, 0.12),
            hair_length=hair_length,
            hair_front=rng.uniform(-0.05, 0.3) if hair_length < -0.5 else rng.uniform(-0.15, 0.0),
            gaze=np.array([rng.normal(0, 0.12), rng.normal(0.02, 0.08), 1.0]),
        )

    @property
    def centre(self) -> np.ndarray:
        return np.array([0.0, 0.1, -0.15])

    def jaw_width(self, y):
        """Horizontal scale of the cranium at height y: 1 above the cheeks, narrower towards the chin."""
        return 1.0 - self.jaw_taper * np.minimum(np.maximum((0.15 - y) / 1.1, 0.0), 1.0) ** 2

    def cranium(self, x, y, z) -> np.ndarray:
        """First-order distance ``(g − 1)/|∇g|`` to the superellipsoid ``g = 1``, (P,).

        ``g = (1 − s) Σ q² + s Σ |q|³`` blends an ellipsoid (s = 0) with a
        squarer superellipsoid (s = 1) in coordinates ``q`` scaled by the radii
        (and by the jaw taper in x).
        """
        scale_x = self.radii[0] * self.jaw_width(y)
        qx, qy, qz = x / scale_x, (y - self.centre[1]) / self.radii[1], (z - self.centre[2]) / self.radii[2]
        s = self.squareness
        ax, ay, az = np.abs(qx), np.abs(qy), np.abs(qz)
        g = (1.0 - s) * (qx * qx + qy * qy + qz * qz) + s * (qx * qx * ax + qy * qy * ay + qz * qz * az)
        gx = qx * (2.0 * (1.0 - s) + 3.0 * s * ax) / scale_x
        gy = qy * (2.0 * (1.0 - s) + 3.0 * s * ay) / self.radii[1]
        gz = qz * (2.0 * (1.0 - s) + 3.0 * s * az) / self.radii[2]
        return (g - 1.0) / np.maximum(_norm(gx, gy, gz), 1e-6)

    def front(self, x, y) -> np.ndarray:
        """z of the cranium's front surface at points (x, y), found by bisection."""
        x, y = np.atleast_1d(np.asarray(x, dtype=np.float64)), np.atleast_1d(np.asarray(y, dtype=np.float64))
        lo, hi = np.zeros_like(x), np.full_like(x, 1.5)
        for _ in range(30):
            mid = 0.5 * (lo + hi)
            inside = self.cranium(x, y, mid) < 0.0
            lo, hi = np.where(inside, mid, lo), np.where(inside, hi, mid)
        return lo


@dataclasses.dataclass
class Feature:
    """Facial features that act together inside one bounding sphere.

    ``combine(d, x, y, z)`` adds them to the distance ``d``; outside the sphere
    (inflated by the blend radii) they cannot change ``d`` and are skipped.
    """

    centre: np.ndarray
    radius: float
    mirrored: bool
    combine: object


class Head:
    """One head: its shape, feature positions and signed distance field."""

    def __init__(self, shape: HeadShape):
        self.shape = s = shape
        ex, ey = s.eye_spacing, s.eye_height
        brow_y, tip_y, mouth_y, chin_y = ey + 0.16, -0.3 + s.nose_droop, -0.56, -0.82
        ala_x, ala_y = s.ala_width, tip_y - 0.02
        eye_z, brow_z, bridge_z, tip_z, ala_z, cheek_z, mouth_z, chin_z = s.front(
            [ex, ex, 0.0, 0.0, ala_x, 0.4, 0.0, 0.0], [ey, brow_y, ey, tip_y, ala_y, -0.1, mouth_y, chin_y]
        )
        self.eye_radius = 0.12
        self.eye_centre = np.array([ex, ey, eye_z - self.eye_radius - 0.025])
        self.socket = np.array([ex, ey + 0.01, eye_z + 0.09])
        brow_z = brow_z - s.brow_ridge + 0.03
        self.brow = (np.array([0.0, brow_y, brow_z]), np.array([ex + 0.06, brow_y, brow_z]))
        self.nose = (np.array([0.0, ey + 0.02, bridge_z - 0.01]), np.array([0.0, tip_y, tip_z + s.nose_length]))
        self.ala = np.array([ala_x, ala_y, ala_z + 0.35 * s.nose_length])
        self.cheekbone = np.array([0.4, -0.1, cheek_z - 0.18 + s.cheekbone])
        self.mouth = np.array([0.0, mouth_y, mouth_z + 0.03])
        self.lips = (self.mouth + [0.0, 0.045, 0.0], self.mouth + [0.0, -0.05, -0.01])
        self.chin = np.array([0.0, chin_y, chin_z - s.chin[1] + 0.05 + s.chin[2]])
        self.ear = np.array([0.98 * s.radii[0], 0.02, -0.12])
        self.features = self._features()

    @classmethod
    def random(cls, rng: np.random.Generator) -> "Head":
        return cls(HeadShape.random(rng))

    def _features(self) -> list[Feature]:
        s = self.shape
        nose_mid = 0.5 * (self.nose[0] + self.nose[1])
        nose_reach = 0.5 * np.linalg.norm(self.nose[1] - self.nose[0]) + 0.2
        return [
            Feature(self.chin, max(s.chin[0], 0.3) + 0.17, False, self._add_chin),
            Feature(self.cheekbone, 0.4, True, self._add_cheekbone),
            Feature(self.socket + [-0.05, 0.06, 0.0], 0.45, True, self._add_brow_and_socket),
            Feature(nose_mid, nose_reach, False, self._add_nose),
            Feature(self.ear, s.ear_size + 0.06, True, self._add_ear),
            Feature(self.mouth, s.mouth_width + 0.12, False, self._add_mouth),
        ]

    def _add_chin(self, d, x, y, z):
        return smooth_min(d, ellipsoid(x, y, z, self.chin, (self.shape.chin[0], self.shape.chin[1], 0.3)), 0.15)

    def _add_cheekbone(self, d, x, y, z):
        return smooth_min(d, ellipsoid(x, y, z, self.cheekbone, (0.25, 0.17, 0.2)), 0.15)

    def _add_brow_and_socket(self, d, x, y, z):
        d = smooth_min(d, round_cone(x, y, z, *self.brow, self.shape.brow_ridge, self.shape.brow_ridge), 0.1)
        return smooth_max(d, -ellipsoid(x, y, z, self.socket, (0.17, 0.12, 0.14)), 0.05)

    def _add_nose(self, d, x, y, z):
        d = smooth_min(d, round_cone(x, y, z, *self.nose, *self.shape.nose_radius), 0.07)
        return smooth_min(d, ellipsoid(np.abs(x), y, z, self.ala, (0.045, 0.04, 0.04)), 0.035)

    def _add_ear(self, d, x, y, z):
        return smooth_min(d, ellipsoid(x, y, z, self.ear, (0.06, self.shape.ear_size, 0.11)), 0.04)

    def _add_mouth(self, d, x, y, z):
        s = self.shape
        lips = np.minimum(
            ellipsoid(x, y, z, self.lips[0], (s.mouth_width, s.lip_fullness, 0.07)),
            ellipsoid(x, y, z, self.lips[1], (0.88 * s.mouth_width, 1.1 * s.lip_fullness, 0.07)),
        )
        d = smooth_min(d, lips, 0.03)
        if s.mouth_open > 0:
            d = smooth_max(d, -self.cavity(x, y, z), 0.01)
        return d

    def cavity(self, x, y, z) -> np.ndarray:
        """The open mouth: an ellipsoid carved between the lips, (P,)."""
        s = self.shape
        return ellipsoid(x, y, z, self.mouth, (0.8 * s.mouth_width, max(s.mouth_open, 1e-3), 0.12))

    def neck(self, x, y, z) -> np.ndarray:
        """A vertical cylinder with a rounded top under the head, (P,)."""
        top = -0.45
        dy = np.maximum(y - top, 0.0)
        return _norm(x, dy, z + 0.2) - self.shape.neck_radius

    def skin(self, x, y, z, with_neck: bool = True, cranium=None) -> np.ndarray:
        """Distance to the skin surface (cranium, features, neck), (P,)."""
        d = self.shape.cranium(x, y, z) if cranium is None else cranium.copy()
        if with_neck:
            d = smooth_min(d, self.neck(x, y, z), 0.18)
        for feature in self.features:
            fx = np.abs(x) if feature.mirrored else x
            c = feature.centre
            near = np.flatnonzero(_norm(fx - c[0], y - c[1], z - c[2]) - feature.radius < np.maximum(d, 0.0))
            if near.size:
                d[near] = feature.combine(d[near], fx[near], y[near], z[near])
        return d

    def eyes(self, x, y, z) -> np.ndarray:
        c = self.eye_centre
        return _norm(np.abs(x) - c[0], y - c[1], z - c[2]) - self.eye_radius

    def hair(self, x, y, z, cranium=None) -> np.ndarray:
        """Hair, (P,): a shell over the cranium, fuller on top, and for long hair a curtain down the back and sides.

        It is kept above the front hairline (curved, tilted by a side
        parting) and behind the plane ``z = hair_front`` down to ``y = hair_length``.
        """
        s = self.shape
        cranium = s.cranium(x, y, z) if cranium is None else cranium
        outer = cranium - (s.hair_thickness + s.hair_volume * np.maximum(y - 0.3, 0.0))
        if s.hair_length < -0.5:
            rx, rz = s.radii[0] + s.hair_thickness, s.radii[2] + s.hair_thickness
            curtain = (np.sqrt((x / rx) ** 2 + ((z - s.centre[2]) / rz) ** 2) - 1.0) * rx
            outer = smooth_min(outer, np.maximum(curtain, y - 0.2), 0.1)
        front = s.hairline[0] - s.hairline[1] * x * x - s.hairline[2] * x - y
        behind = np.maximum(z - s.hair_front, s.hair_length - y)
        return np.maximum(outer, np.minimum(front, behind))

    def distance(self, x, y, z) -> np.ndarray:
        """Signed distance to the whole head (skin, eyes, hair), (P,)."""
        cranium = self.shape.cranium(x, y, z)
        skin = self.skin(x, y, z, cranium=cranium)
        return np.minimum(np.minimum(skin, self.eyes(x, y, z)), self.hair(x, y, z, cranium))

    def surface_points(self, p: np.ndarray, h: float = 2e-3) -> tuple[np.ndarray, np.ndarray]:
        """Points near the surface (3, P) projected onto it, and the unit normals there.

        The tetrahedral stencil gives both the SDF gradient and (its mean) the
        distance at ``p``; one Newton step ``p − d·n`` lands on the surface.
        """
        gradient = np.zeros_like(p)
        distance = np.zeros(p.shape[1])
        for k in TETRAHEDRON:
            value = self.distance(*(p + h * k[:, None]))
            gradient += k[:, None] * value
            distance += 0.25 * value
        normals = gradient / np.maximum(_norm(*gradient), 1e-12)
        return p - distance * normals, normals


# --------------------------------------------------------------------------
# Camera geometry and sphere tracing
# --------------------------------------------------------------------------


@dataclasses.dataclass
class View:
    """Head pose and a perspective pinhole camera looking down −z.

    ``rotation`` maps face coordinates to camera coordinates; the head centre
    sits at ``shift`` in the plane z = 0, the camera at (0, 0, ``distance``),
    and the image spans ±``extent`` at z = 0.
    """

    yaw: float
    pitch: float
    roll: float
    distance: float
    extent: float
    shift: np.ndarray

    @classmethod
    def random(cls, rng: np.random.Generator) -> "View":
        return cls(
            yaw=float(np.clip(rng.normal(0.0, 20.0), -50, 50)),
            pitch=float(np.clip(rng.normal(0.0, 7.0), -20, 20)),
            roll=float(np.clip(rng.normal(0.0, 7.0), -20, 20)),
            distance=rng.uniform(3.5, 10.0),
            extent=rng.uniform(1.3, 1.5),
            shift=np.array([rng.uniform(-0.08, 0.08), rng.uniform(-0.2, -0.08), 0.0]),
        )

    @property
    def rotation(self) -> np.ndarray:
        """(3, 3), face → camera."""
        yaw, pitch, roll = np.radians([self.yaw, self.pitch, self.roll])
        ry = np.array([[np.cos(yaw), 0, np.sin(yaw)], [0, 1, 0], [-np.sin(yaw), 0, np.cos(yaw)]])
        rx = np.array([[1, 0, 0], [0, np.cos(pitch), np.sin(pitch)], [0, -np.sin(pitch), np.cos(pitch)]])
        rz = np.array([[np.cos(roll), -np.sin(roll), 0], [np.sin(roll), np.cos(roll), 0], [0, 0, 1]])
        return rz @ ry @ rx

    def rays(self, rows: np.ndarray, cols: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
        """Rays through image positions (pixel units, centres at i + 0.5), in face coordinates.

        Returns:
            ``(origin (3,), directions (3, P))`` unit directions.
        """
        u = (cols / size * 2.0 - 1.0) * self.extent
        v = (1.0 - rows / size * 2.0) * self.extent
        camera = np.array([0.0, 0.0, self.distance])
        directions = np.stack([u, v, np.full_like(u, -self.distance)])
        directions /= _norm(*directions)
        to_face = self.rotation.T
        return to_face @ (camera - self.shift), to_face @ directions


def _quadratic_roots(a, b, c) -> tuple[np.ndarray, np.ndarray]:
    """Roots ``t₁ ≤ t₂`` of ``a t² + b t + c = 0`` per ray (a > 0); (+inf, −inf) without real roots."""
    discriminant = b * b - 4.0 * a * c
    half_width = np.sqrt(np.maximum(discriminant, 0.0)) / (2.0 * a)
    middle = -b / (2.0 * a)
    real = discriminant > 0.0
    return np.where(real, middle - half_width, np.inf), np.where(real, middle + half_width, -np.inf)


def bound_interval(head: Head, origin: np.ndarray, directions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where rays (3, P) are inside the head's bounds.

    The bounds are an ellipsoid inflated by ``BOUND_MARGIN`` round cranium,
    face and hair, and a cylinder round the neck below y = −0.3.

    Returns:
        ``(entry, exit)`` distances along each ray, each (P,); rays with
        ``entry ≥ exit`` miss the head.
    """
    s = head.shape
    radii = s.radii + BOUND_MARGIN
    q = (origin - s.centre)[:, None] / radii[:, None]
    e = directions / radii[:, None]
    head_in, head_out = _quadratic_roots((e * e).sum(0), 2.0 * (q * e).sum(0), (q * q).sum(0) - 1.0)
    ox, oz = origin[0], origin[2] + 0.2
    dx, dz = directions[0], directions[2]
    radius = s.neck_radius + 0.05
    neck_in, neck_out = _quadratic_roots(
        dx * dx + dz * dz + 1e-12, 2.0 * (ox * dx + oz * dz), ox * ox + oz * oz - radius**2
    )
    dy = np.where(np.abs(directions[1]) < 1e-12, 1e-12, directions[1])
    crossing = (-0.3 - origin[1]) / dy
    neck_in = np.where(dy < 0, np.maximum(neck_in, crossing), neck_in)
    neck_out = np.where(dy > 0, np.minimum(neck_out, crossing), neck_out)
    neck_out = np.where(neck_in < neck_out, neck_out, -np.inf)
    entry = np.maximum(np.minimum(head_in, np.where(neck_in < neck_out, neck_in, np.inf)), 0.0)
    return entry, np.maximum(head_out, neck_out)


def sphere_trace(
    head: Head, origin: np.ndarray, directions: np.ndarray, tolerance: float
) -> tuple[np.ndarray, np.ndarray]:
    """March rays (3, P) from ``origin`` (3,) through the head's SDF.

    Over-relaxed sphere tracing (Keinert et al., "Enhanced Sphere Tracing",
    2014): steps of 1.3 × the distance while successive unbounding spheres
    overlap, falling back to plain steps when they do not. A ray hits when
    the distance drops below ``tolerance`` (a fraction of a pixel's
    footprint); rays still marching after ``MAX_STEPS`` graze the surface
    and hit when within ``2 × tolerance`` of it.

    Returns:
        ``(t (P,), hit (P,) bool)``: distance along each ray and whether it
        reached the surface.
    """
    t, far = bound_interval(head, origin, directions)
    hit = np.zeros(t.shape, bool)
    inside = t < far
    active = np.flatnonzero(inside)
    t = np.where(inside, t, 0.0)
    omega = np.full(active.size, OVER_RELAXATION)
    step = np.zeros(active.size)
    previous = np.zeros(active.size)
    d = np.zeros(active.size)
    for _ in range(MAX_STEPS):
        if active.size == 0:
            break
        ta = t[active]
        d = head.distance(*(origin[:, None] + ta * directions[:, active]))
        failed = (omega > 1.0) & (np.abs(d) + previous < step)
        step = np.where(failed, (1.0 - omega) * step, omega * d)
        omega = np.where(failed, 1.0, omega)
        previous = np.abs(d)
        converged = ~failed & (d < tolerance)
        hit[active[converged]] = True
        ta = ta + np.where(converged, 0.0, step)
        t[active] = ta
        going = ~converged & (ta < far[active])
        active, d, omega, step, previous = active[going], d[going], omega[going], step[going], previous[going]
    hit[active[d < 2.0 * tolerance]] = True
    return t, hit


# --------------------------------------------------------------------------
# Lights, shadows, shading and the specular lobe
# --------------------------------------------------------------------------


@dataclasses.dataclass
class Lights:
    """1–3 distant lights (camera frame, towards the light) plus ambient light."""

    directions: np.ndarray
    intensities: np.ndarray
    ambient: float

    @classmethod
    def random(cls, rng: np.random.Generator) -> "Lights":
        def direction(azimuth, elevation):
            az, el = np.radians([azimuth, elevation])
            return np.array([np.sin(az) * np.cos(el), np.sin(el), np.cos(az) * np.cos(el)])

        key_azimuth = rng.uniform(-75, 75)
        directions = [direction(key_azimuth, rng.uniform(-15, 65))]
        intensities = [1.0]
        if rng.random() < 0.65:
            directions.append(direction(-np.sign(key_azimuth) * rng.uniform(20, 80), rng.uniform(-10, 40)))
            intensities.append(rng.uniform(0.15, 0.5))
        if rng.random() < 0.25:
            directions.append(direction(rng.choice([-1, 1]) * rng.uniform(110, 160), rng.uniform(0, 45)))
            intensities.append(rng.uniform(0.3, 0.8))
        return cls(np.array(directions), np.array(intensities), rng.uniform(0.06, 0.35))


def soft_shadow(head: Head, points: np.ndarray, normals: np.ndarray, towards: np.ndarray) -> np.ndarray:
    """Visibility of a distant light in [0, 1], traced through the SDF (penumbra k = 10).

    Args:
        points, normals: (3, P); towards: (3,) unit vector to the light.

    Returns:
        (P,).
    """
    origin = points + 0.01 * normals
    visibility = np.ones(points.shape[1])
    t = np.full(points.shape[1], 0.02)
    active = np.arange(points.shape[1])
    for _ in range(SHADOW_STEPS):
        if active.size == 0:
            break
        ta = t[active]
        d = head.distance(*(origin[:, active] + ta * towards[:, None]))
        visibility[active] = np.minimum(visibility[active], np.minimum(np.maximum(10.0 * d / ta, 0.0), 1.0))
        ta = ta + np.minimum(np.maximum(d, 0.03), 0.3)
        t[active] = ta
        active = active[(visibility[active] > 0.02) & (ta < 2.5)]
    return visibility * visibility * (3.0 - 2.0 * visibility)


def ambient_occlusion(head: Head, points: np.ndarray, normals: np.ndarray) -> np.ndarray:
    """Ambient occlusion from the SDF along the normal, in [0.25, 1], (P,)."""
    occlusion = np.zeros(points.shape[1])
    for step, weight in ((0.05, 3.0), (0.15, 1.2)):
        occlusion += weight * np.maximum(step - head.distance(*(points + step * normals)), 0.0)
    return np.clip(1.0 - occlusion, 0.25, 1.0)


def cook_torrance(normals, view, towards, roughness, f0) -> np.ndarray:
    """π·D·G·F / (4 n·v) of one distant light: specular radiance per unit irradiance, (P,).

    GGX distribution with α = roughness², Smith–Schlick masking (k = α/2),
    Schlick Fresnel. Multiplied by the light's intensity and visibility it is
    in the units of the diffuse shading (a white Lambertian surface = n·l).

    Args:
        normals, view: (3, P) unit vectors (view points to the camera);
        towards: (3,) to the light; roughness: (P,).
    """
    half = view + towards[:, None]
    half /= np.maximum(_norm(*half), 1e-12)
    n_h = np.clip((normals * half).sum(axis=0), 0.0, 1.0)
    n_v = np.clip((normals * view).sum(axis=0), 0.2, 1.0)
    n_l = np.clip(towards @ normals, 0.0, 1.0)
    v_h = np.clip((view * half).sum(axis=0), 0.0, 1.0)
    alpha = roughness * roughness
    alpha2 = alpha * alpha
    distribution = alpha2 / (np.pi * (n_h * n_h * (alpha2 - 1.0) + 1.0) ** 2)
    k = alpha / 2.0
    masking = (n_v / (n_v * (1 - k) + k)) * (n_l / (n_l * (1 - k) + k))
    fresnel = f0 + (1.0 - f0) * (1.0 - v_h) ** 5
    return np.pi * distribution * masking * fresnel / (4.0 * n_v)


# --------------------------------------------------------------------------
# Textures: fractal value noise, cellular spots, skin maps
# --------------------------------------------------------------------------


class Noise:
    """Seeded 2-D value noise on a periodic 64 × 64 lattice, and its fractal sums."""

    def __init__(self, rng: np.random.Generator, octaves: int = 6):
        self.lattices = rng.random((octaves, 64, 64))
        self.offsets = rng.uniform(0, 64, size=(octaves, 2))

    def value(self, x: np.ndarray, y: np.ndarray, octave: int = 0) -> np.ndarray:
        """Smooth value noise in [0, 1] at lattice coordinates (x, y)."""
        lattice = self.lattices[octave]
        x = x + self.offsets[octave, 0]
        y = y + self.offsets[octave, 1]
        x0, y0 = np.floor(x), np.floor(y)
        fx, fy = x - x0, y - y0
        sx, sy = fx * fx * (3 - 2 * fx), fy * fy * (3 - 2 * fy)
        i, j = x0.astype(np.int64) % 64, y0.astype(np.int64) % 64
        i1, j1 = (i + 1) % 64, (j + 1) % 64
        top = lattice[j, i] + sx * (lattice[j, i1] - lattice[j, i])
        bottom = lattice[j1, i] + sx * (lattice[j1, i1] - lattice[j1, i])
        return top + sy * (bottom - top)

    def fbm(self, x, y, frequency: float, octaves: int = 5, gain: float = 0.55) -> np.ndarray:
        """Fractal Brownian motion, zero mean, unit-order standard deviation."""
        total, amplitude, norm = np.zeros_like(x), 1.0, 0.0
        for octave in range(octaves):
            scale = frequency * 2.0**octave
            total += amplitude * (self.value(x * scale, y * scale, octave % len(self.lattices)) - 0.5)
            norm += amplitude * amplitude
            amplitude *= gain
        return total / np.sqrt(norm * 0.04)

    def ridges(self, x, y, frequency: float, sharpness: float = 10.0) -> np.ndarray:
        """Thin branching lines (ridged noise) in [0, 1], like superficial vessels."""
        lines = np.zeros_like(x)
        for octave, weight in ((0, 1.0), (1, 0.6)):
            scale = frequency * 2.0**octave
            ridge = 1.0 - np.abs(2.0 * self.value(x * scale, y * scale, octave) - 1.0)
            lines = np.maximum(lines, weight * ridge**sharpness)
        return lines


def _bump(x, y, cx, cy, sx, sy) -> np.ndarray:
    """A smooth compact bump, 1 at (cx, cy), 0 outside the ellipse of half-axes (sx, sy)."""
    r2 = ((x - cx) / sx) ** 2 + ((y - cy) / sy) ** 2
    return np.clip(1.0 - r2, 0.0, None) ** 2


def cellular_spots(x, y, rng, cell: float, density: np.ndarray, radius: tuple[float, float]) -> np.ndarray:
    """Jittered-grid spots (freckles): one candidate per cell, kept with probability ``density``.

    Returns:
        (P,) coverage in [0, 1], a disc with a soft rim per kept spot.
    """
    n = int(np.ceil(2.8 / cell)) + 3
    jitter = rng.random((n, n, 2))
    keep = rng.random((n, n))
    radii = rng.uniform(*radius, size=(n, n))
    gx, gy = (x + 1.4) / cell, (y + 1.4) / cell
    ci, cj = np.floor(gx).astype(np.int64), np.floor(gy).astype(np.int64)
    spots = np.zeros_like(x)
    for di in (-1, 0, 1):
        for dj in (-1, 0, 1):
            i, j = np.clip(ci + di, 0, n - 1), np.clip(cj + dj, 0, n - 1)
            cx = (i + jitter[j, i, 0]) * cell - 1.4
            cy = (j + jitter[j, i, 1]) * cell - 1.4
            r = radii[j, i]
            on = keep[j, i] < density
            distance = np.sqrt((x - cx) ** 2 + (y - cy) ** 2)
            spots = np.maximum(spots, on * np.clip((r - distance) / (0.35 * r), 0.0, 1.0))
    return spots


@dataclasses.dataclass
class Complexion:
    """One person's skin: base chromophores and the features drawn on it."""

    skin_type: float
    blood: float
    texture: float
    freckles: float
    moles: np.ndarray
    flush: float
    nose_redness: float
    patches: float
    vessels: float
    dark_circles: float
    sun: float
    lip_blood: float
    lip_melanin: float
    brow_density: float
    brows_are_hair: bool

    @classmethod
    def random(cls, rng: np.random.Generator) -> "Complexion":
        centre, spread = SKIN_POPULATIONS[rng.choice(3, p=SKIN_POPULATION_SHARES)]
        skin_type = float(np.clip(rng.normal(centre, spread), -0.8, 0.8))
        freckle_chance = 0.45 if skin_type < -0.3 else 0.12
        n_moles = rng.poisson(1.6)
        moles = np.column_stack(
            [rng.uniform(-0.6, 0.6, n_moles), rng.uniform(-0.85, 0.5, n_moles),
             rng.uniform(0.012, 0.028, n_moles), rng.uniform(0.4, 0.9, n_moles)]
        )
        return cls(
            skin_type=skin_type,
            blood=float(np.clip(rng.normal(-0.03, 0.1), -0.3, 0.3)),
            texture=rng.uniform(0.03, 0.09),
            freckles=rng.uniform(0.25, 0.7) if rng.random() < freckle_chance else 0.0,
            moles=moles,
            flush=min(rng.gamma(2.0, 0.06), 0.35),
            nose_redness=rng.uniform(0.05, 0.3) if rng.random() < 0.4 else 0.0,
            patches=rng.uniform(0.08, 0.3) if rng.random() < 0.45 else 0.0,
            vessels=rng.uniform(0.1, 0.3) if rng.random() < 0.35 else 0.0,
            dark_circles=rng.uniform(0.0, 0.15),
            sun=rng.uniform(0.0, 0.12),
            lip_blood=rng.uniform(0.35, 0.8),
            lip_melanin=rng.uniform(0.0, 0.2),
            brow_density=rng.uniform(0.6, 1.0),
            brows_are_hair=bool(rng.random() < 0.5),
        )


def brow_density(x: np.ndarray, y: np.ndarray, head: Head) -> np.ndarray:
    """Eyebrow coverage in [0, 1]: an arched band above each eye, (P,)."""
    s = head.shape
    density = np.zeros_like(x)
    for side in (-1, 1):
        along = (x - side * s.eye_spacing) / 0.16
        arch = s.eye_height + 0.19 + 0.03 * (1.0 - along**2) - 0.015 * side * along
        width = 0.04 * np.clip(1.2 - 0.5 * (side * along + 1.0), 0.3, 1.0) + 0.02
        band = np.clip(1.0 - ((y - arch) / width) ** 2, 0.0, 1.0) * np.clip(1.0 - along**4, 0.0, 1.0)
        density = np.maximum(density, band)
    return density


def lip_coverage(x: np.ndarray, y: np.ndarray, head: Head) -> np.ndarray:
    """Red lip coverage in [0, 1], (P,)."""
    s = head.shape
    upper = _bump(x, y, 0.0, head.lips[0][1], s.mouth_width * 0.95, s.lip_fullness * 1.25)
    lower = _bump(x, y, 0.0, head.lips[1][1], s.mouth_width * 0.85, s.lip_fullness * 1.35)
    return np.clip(2.5 * np.maximum(upper, lower), 0.0, 1.0)


def skin_maps(points: np.ndarray, head: Head, skin: Complexion, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Melanin and haemoglobin in the decoder's [−1, 1] at skin points (face frame).

    Args:
        points: (3, P) face coordinates.

    Returns:
        ``fmel``, ``fblood`` (P,).
    """
    x, y = points[0], points[1]
    s = head.shape
    noise = Noise(rng)
    fmel = skin.skin_type + skin.texture * noise.fbm(x, y, 1.2)
    fblood = skin.blood + 0.08 * noise.fbm(x + 3.1, y - 1.7, 0.9)

    forehead = _bump(x, y, 0.0, 0.55, 0.55, 0.3)
    nose = _bump(x, y, 0.0, -0.15, 0.12, 0.3)
    cheeks = _bump(np.abs(x), y, 0.4, -0.18, 0.28, 0.24)
    under_eyes = _bump(np.abs(x), y, s.eye_spacing, s.eye_height - 0.08, 0.1, 0.045)
    fmel += skin.sun * np.maximum.reduce([forehead, nose, 0.7 * cheeks])
    fmel += skin.dark_circles * under_eyes
    fblood += 0.5 * skin.dark_circles * under_eyes

    fblood += skin.flush * cheeks * (0.7 + 0.6 * noise.value(4 * x, 4 * y, 2))
    fblood += skin.nose_redness * _bump(x, y, 0.0, head.nose[1][1], 0.09, 0.1)
    blotches = np.clip((noise.fbm(x - 5.0, y + 2.0, 1.6, octaves=3) - 0.3) / 0.8, 0.0, 1.0)
    fblood += skin.patches * blotches * np.maximum(cheeks, 0.6 * forehead)
    vessel_region = np.maximum(cheeks, nose)
    fblood += skin.vessels * vessel_region * noise.ridges(x + 7.0, y, 7.0)

    if skin.freckles > 0:
        density = skin.freckles * np.clip(np.maximum(cheeks, nose) + 0.4 * forehead, 0.0, 1.0)
        spots = cellular_spots(x, y, rng, 0.035, density, (0.008, 0.016))
        fmel += rng.uniform(0.25, 0.45) * spots
    for mx, my, radius, strength in skin.moles:
        distance = np.sqrt((x - mx) ** 2 + (y - my) ** 2)
        fmel += strength * np.clip((radius - distance) / (0.3 * radius), 0.0, 1.0)

    lips = lip_coverage(x, y, head)
    fblood += skin.lip_blood * lips
    fmel += (skin.lip_melanin + 0.1 * max(skin.skin_type, 0.0)) * lips

    brows = skin.brow_density * brow_density(x, y, head) * (0.75 + 0.5 * noise.value(40 * x, 6 * y, 3))
    fmel = fmel + np.minimum(brows, 1.0) * (0.95 - fmel) * 0.85
    fblood -= 0.3 * brows
    ears = np.clip((np.abs(x) - 0.6) / 0.1, 0.0, 1.0)
    fblood += 0.12 * ears
    return {"fmel": np.clip(fmel, -1.0, 1.0), "fblood": np.clip(fblood, -1.0, 1.0)}


def t_zone(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Where skin is oiliest: forehead, nose, chin, and less so the cheekbones, in [0, 1]."""
    return np.maximum.reduce(
        [
            _bump(x, y, 0.0, 0.5, 0.45, 0.25),
            _bump(x, y, 0.0, -0.15, 0.12, 0.35),
            _bump(x, y, 0.0, -0.82, 0.2, 0.15),
            0.6 * _bump(x, y, -0.4, -0.1, 0.2, 0.15),
            0.6 * _bump(x, y, 0.4, -0.1, 0.2, 0.15),
        ]
    )


# --------------------------------------------------------------------------
# Materials that are not skin: reflectance spectra (33 samples)
# --------------------------------------------------------------------------


def _melanin_reflectance(eumelanin: float, pheomelanin: float, white: float, floor: float) -> np.ndarray:
    """A melanin-pigmented fibre or tissue: ``floor + white·exp(−optical density)``, (33,)."""
    c = spectra.chromophores()
    density = eumelanin * c.eumelanin / c.eumelanin[15] + pheomelanin * c.pheomelanin / c.pheomelanin[15]
    return floor + white * np.exp(-density)


def hair_reflectance(rng: np.random.Generator, skin_type: float) -> np.ndarray:
    """Scalp (and eyebrow) hair: black, brown, auburn, blond or grey, (33,)."""
    dark = np.clip(0.5 + 0.5 * skin_type, 0.0, 1.0)
    colours = ("black", "brown", "auburn", "blond", "grey")
    chances = np.array([0.25 + 0.5 * dark, 0.35, 0.1 * (1 - dark), 0.25 * (1 - dark), 0.06])
    colour = colours[rng.choice(5, p=chances / chances.sum())]
    if colour == "black":
        return _melanin_reflectance(rng.uniform(3.5, 5.0), 0.2, 0.45, 0.015)
    if colour == "brown":
        return _melanin_reflectance(rng.uniform(1.8, 3.2), rng.uniform(0.2, 0.8), 0.5, 0.02)
    if colour == "auburn":
        return _melanin_reflectance(rng.uniform(0.4, 1.0), rng.uniform(1.5, 3.0), 0.6, 0.02)
    if colour == "blond":
        return _melanin_reflectance(rng.uniform(0.4, 1.1), rng.uniform(0.3, 1.0), 0.6, 0.03)
    return _melanin_reflectance(rng.uniform(0.05, 0.4), 0.05, rng.uniform(0.35, 0.6), 0.03)


def iris_reflectance(rng: np.random.Generator, skin_type: float) -> np.ndarray:
    """Brown (melanin), blue (Tyndall scattering) or green/hazel irises, (33,)."""
    lam = spectra.WAVELENGTHS_NM
    kind = rng.random()
    if skin_type > -0.2 or kind < 0.55:
        return _melanin_reflectance(rng.uniform(1.5, 3.5), 0.5, 0.35, 0.02)
    scattering = 0.03 + rng.uniform(0.15, 0.3) * (450.0 / lam) ** 4
    if kind < 0.8:
        return scattering
    return 0.5 * scattering + 0.5 * _melanin_reflectance(rng.uniform(0.8, 1.6), 1.0, 0.3, 0.02)


def tissue_reflectance(white: float, blood: float, floor: float) -> np.ndarray:
    """A haemoglobin-tinted tissue (sclera, mouth interior, teeth), (33,)."""
    c = spectra.chromophores()
    haem = (c.oxyhaemoglobin / c.oxyhaemoglobin[15]) ** 0.5
    return floor + white * np.exp(-blood * haem)


def material_reflectances(rng: np.random.Generator, skin_type: float) -> np.ndarray:
    """Reflectance spectra of the non-skin materials, (9, 33), indexed by material id."""
    lam = spectra.WAVELENGTHS_NM
    table = np.zeros((N_MATERIALS, spectra.N_WAVELENGTHS))
    table[HAIR] = hair_reflectance(rng, skin_type)
    table[LASH] = 0.4 * table[HAIR]
    table[SCLERA] = tissue_reflectance(rng.uniform(0.35, 0.5), rng.uniform(0.05, 0.25), 0.02) * (
        1.0 - 0.12 * np.exp(-(lam - 400.0) / 40.0)
    )
    table[IRIS] = iris_reflectance(rng, skin_type)
    table[PUPIL] = 0.012
    table[MOUTH] = tissue_reflectance(0.25, rng.uniform(1.5, 3.0), 0.02)
    table[TEETH] = tissue_reflectance(0.62, 0.05, 0.05) * (1.0 - 0.3 * np.exp(-(lam - 400.0) / 45.0))
    return table


# --------------------------------------------------------------------------
# One face: geometry, samples, maps, shading
# --------------------------------------------------------------------------


def classify(head: Head, points: np.ndarray, brows_are_hair: bool, brows: np.ndarray) -> np.ndarray:
    """Material id of each surface point (3, P) in face coordinates, (P,) ints."""
    x, y, z = points
    skin = head.skin(x, y, z)
    eyes = head.eyes(x, y, z)
    hair = head.hair(x, y, z)
    material = np.full(points.shape[1], SKIN)
    material[head.neck(x, y, z) < head.skin(x, y, z, with_neck=False) - 0.02] = NECK
    s = head.shape
    if s.mouth_open > 0:
        interior = head.cavity(x, y, z) < 0.004
        teeth = interior & (y > head.mouth[1] - 0.1 * s.mouth_open) & (np.abs(x) < 0.1)
        material[interior] = MOUTH
        material[teeth] = TEETH
    if brows_are_hair:
        material[(brows > 0.45) & (material == SKIN)] = HAIR
    on_eye = eyes < np.minimum(skin, hair) + 1e-4
    material[on_eye] = _eye_material(head, points[:, on_eye])
    material[hair <= np.minimum(skin, eyes) + 1e-4] = HAIR
    return material


def _eye_material(head: Head, points: np.ndarray) -> np.ndarray:
    """Sclera, iris and pupil inside the almond between the lids; eyelid skin outside it."""
    s = head.shape
    side = np.where(points[0] > 0, 1.0, -1.0)
    centre = head.eye_centre[:, None] * np.stack([side, np.ones_like(side), np.ones_like(side)])
    outward = points - centre
    dx = outward[0] * side
    dy = outward[1] - s.eye_tilt * dx
    lid = np.clip(1.0 - (dx / EYE_HALF_WIDTH) ** 2, 0.0, 1.0) ** 0.7
    open_eye = (dy < s.eye_opening[0] * lid) & (dy > -s.eye_opening[1] * lid)
    lashes = open_eye & (dy > s.eye_opening[0] * lid - LASH_WIDTH)
    gaze = s.gaze / np.linalg.norm(s.gaze)
    cosine = gaze @ outward / np.maximum(_norm(*outward), 1e-9)
    material = np.where(cosine > np.cos(0.5), IRIS, SCLERA)
    material = np.where(cosine > np.cos(0.19), PUPIL, material)
    material = np.where(lashes, LASH, material)
    return np.where(open_eye, material, SKIN)


def _edge_pixels(material: np.ndarray) -> np.ndarray:
    """Pixels with a 4-neighbour of another material, (H, W) bool."""
    edge = np.zeros(material.shape, bool)
    vertical = material[1:] != material[:-1]
    horizontal = material[:, 1:] != material[:, :-1]
    edge[1:] |= vertical
    edge[:-1] |= vertical
    edge[:, 1:] |= horizontal
    edge[:, :-1] |= horizontal
    return edge


@dataclasses.dataclass
class Samples:
    """Ray samples of one face: one per pixel, or 2 × 2 on edges; weights sum to 1 per pixel.

    Attributes:
        pixel: (P,) flat pixel index; weight: (P,); material: (P,) ids;
        points, normals: (3, P) face frame; view: (3, P) unit vectors to the camera.
    """

    pixel: np.ndarray
    weight: np.ndarray
    material: np.ndarray
    points: np.ndarray
    normals: np.ndarray
    view: np.ndarray


def trace_samples(head: Head, view: View, size: int, skin: Complexion) -> Samples:
    """Trace pixel centres, then 2 × 2 samples on silhouette and material edges."""
    rows, cols = np.meshgrid(np.arange(size) + 0.5, np.arange(size) + 0.5, indexing="ij")
    rows, cols = rows.ravel(), cols.ravel()
    centre = _trace(head, view, rows, cols, size, skin)
    surface = np.where(centre["material"] == NECK, SKIN, centre["material"])
    edge = _edge_pixels(surface.reshape(size, size)).ravel()
    keep = ~edge
    edge_index = np.flatnonzero(edge)
    sub_rows = (rows[edge_index, None] + EDGE_OFFSETS[:, 0]).ravel()
    sub_cols = (cols[edge_index, None] + EDGE_OFFSETS[:, 1]).ravel()
    sub = _trace(head, view, sub_rows, sub_cols, size, skin)
    return Samples(
        pixel=np.concatenate([np.flatnonzero(keep), np.repeat(edge_index, len(EDGE_OFFSETS))]),
        weight=np.concatenate([np.ones(keep.sum()), np.full(sub_rows.size, 1.0 / len(EDGE_OFFSETS))]),
        material=np.concatenate([centre["material"][keep], sub["material"]]),
        **{key: np.concatenate([centre[key][:, keep], sub[key]], axis=1) for key in ("points", "normals", "view")},
    )


def _trace(head, view, rows, cols, size, skin) -> dict[str, np.ndarray]:
    origin, directions = view.rays(rows, cols, size)
    footprint = 2.0 * view.extent / size
    t, hit = sphere_trace(head, origin, directions, HIT_FRACTION * footprint)
    points = origin[:, None] + t * directions
    material = np.full(len(t), BACKGROUND)
    normals = np.zeros_like(points)
    if hit.any():
        on, n = head.surface_points(points[:, hit])
        points[:, hit], normals[:, hit] = on, n
        brows = skin.brow_density * brow_density(on[0], on[1], head)
        material[hit] = classify(head, on, skin.brows_are_hair, brows)
    return {"material": material, "points": points, "normals": normals, "view": -directions}


def shade(head: Head, lights: Lights, view: View, samples: Samples, roughness: np.ndarray, oiliness: np.ndarray):
    """Diffuse shading and specular shading of every sample that hit the head.

    Returns:
        ``(shading (P,), specular (P,))``: grey irradiance of 1–3 Lambertian
        lights with soft shadows plus occluded ambient light; and the
        Cook–Torrance specular shading, ``oiliness`` times the lobe.
    """
    hit = samples.material != BACKGROUND
    points, normals, to_eye = samples.points[:, hit], samples.normals[:, hit], samples.view[:, hit]
    to_face = view.rotation.T
    shading = lights.ambient * ambient_occlusion(head, points, normals)
    specular = np.zeros(points.shape[1])
    for direction, intensity in zip(lights.directions, lights.intensities):
        towards = to_face @ direction
        facing = towards @ normals
        visible = np.zeros(points.shape[1])
        lit = facing > 0
        visible[lit] = soft_shadow(head, points[:, lit], normals[:, lit], towards)
        shading += intensity * visible * np.maximum(facing, 0.0)
        specular += intensity * visible * cook_torrance(normals, to_eye, towards, roughness[hit], SKIN_F0)
    full_shading = np.zeros(len(samples.material))
    full_specular = np.zeros(len(samples.material))
    full_shading[hit] = shading
    full_specular[hit] = specular * oiliness[hit]
    return full_shading, full_specular


def surface_finish(samples: Samples, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample GGX roughness and specular gain (oiliness) of every material, each (P,)."""
    x, y = samples.points[0], samples.points[1]
    noise = Noise(rng, octaves=3)
    zone = t_zone(x, y)
    base_roughness = rng.uniform(0.45, 0.7)
    gain = np.exp(rng.uniform(np.log(0.5), np.log(3.0)))
    roughness = np.clip(base_roughness * (1.0 - 0.25 * zone) * (1.0 + 0.1 * noise.fbm(x, y, 2.0, 3)), 0.3, 0.85)
    oiliness = gain * (0.35 + 0.65 * zone) * np.clip(1.0 + 0.25 * noise.fbm(x + 2, y, 3.0, 3), 0.3, 2.0)
    material = samples.material
    roughness = np.where(material == HAIR, 0.5, roughness)
    oiliness = np.where(material == HAIR, rng.uniform(0.3, 1.2), oiliness)
    eye = (material == SCLERA) | (material == IRIS) | (material == PUPIL)
    roughness = np.where(eye, 0.15, roughness)
    oiliness = np.where(eye, 1.0, oiliness)
    oiliness = np.where((material == MOUTH) | (material == TEETH), 0.3, oiliness)
    return roughness, oiliness


def texture_of_materials(samples: Samples, head: Head, rng: np.random.Generator) -> np.ndarray:
    """Brightness modulation of non-skin materials (hair strands, iris fibres), (P,)."""
    x, y, z = samples.points
    noise = Noise(rng, octaves=2)
    strands = 0.7 + 0.6 * noise.value(45.0 * x + 8.0 * z, 4.0 * y, 0)
    angle = np.arctan2(y - head.eye_centre[1], np.abs(x) - head.eye_centre[0])
    fibres = 0.75 + 0.5 * noise.value(10.0 * angle, np.zeros_like(angle), 1)
    texture = np.where(samples.material == HAIR, strands, 1.0)
    return np.where(samples.material == IRIS, fibres, texture)


# --------------------------------------------------------------------------
# Illuminant, camera, background and sensor of one face
# --------------------------------------------------------------------------


def random_illuminant(rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """Weights (14,) of a 2–3 illuminant mix (order A, D, F1..F12) and D-series index.

    The mix is one of: daylight + incandescent, daylight + fluorescent,
    incandescent + fluorescent, or all three kinds; weights are Dirichlet(1.5).
    The daylight index ``1 + 21·Beta(1.3, 3.5)`` favours 4000–9000 K.
    """
    fluorescent = 2 + rng.integers(12)
    kinds = [(1, 0), (1, fluorescent), (0, fluorescent), (0, 1, fluorescent)]
    members = kinds[rng.choice(4, p=[0.35, 0.25, 0.15, 0.25])]
    weights = np.zeros(N_ILLUMINANTS)
    weights[list(members)] = rng.dirichlet(np.full(len(members), 1.5))
    return weights, 1.0 + 21.0 * rng.beta(1.3, 3.5)


def random_camera(rng: np.random.Generator) -> tuple[np.ndarray, tuple[int, int, float]]:
    """A convex mix of two measured cameras: sensitivities (3, 33) and ``(first, second, weight)``."""
    n = len(spectra.camera_database().names)
    first, second = rng.choice(n, size=2, replace=False)
    weight = rng.beta(0.7, 0.7)
    return mixed_camera(first, second, weight), (int(first), int(second), float(weight))


def random_background(size: int, rng: np.random.Generator) -> np.ndarray:
    """A linear-sRGB backdrop: a tilted two-colour gradient or a defocused blotchy room, (H, W, 3)."""
    hue = rng.uniform(0, 1, size=2)
    value = np.exp(rng.uniform(np.log(0.02), np.log(0.45), size=2))
    saturation = rng.uniform(0.0, 0.5, size=2)
    hsv = np.stack([hue * 179, saturation * 255, np.full(2, 255.0)], axis=-1).astype(np.uint8)[None]
    colours = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0].astype(np.float64) / 255.0
    colours = srgb_decode(colours) * value[:, None]
    u, v = np.meshgrid(np.linspace(-1, 1, size), np.linspace(-1, 1, size))
    if rng.random() < 0.5:
        angle = rng.uniform(0, 2 * np.pi)
        blend = np.clip(0.5 + 0.5 * (np.cos(angle) * u + np.sin(angle) * v), 0.0, 1.0)
    else:
        noise = Noise(rng, octaves=2)
        blend = np.clip(0.5 + 0.25 * noise.fbm(u, v, 1.5, octaves=2), 0.0, 1.0)
    return (1.0 - blend)[..., None] * colours[0] + blend[..., None] * colours[1]


@dataclasses.dataclass
class Sensor:
    """Optics and sensor of one photo."""

    blur_sigma: float
    exposure_target: float
    white_balance_error: np.ndarray
    shot_noise: float
    read_noise: float
    jpeg_quality: int | None

    @classmethod
    def random(cls, rng: np.random.Generator) -> "Sensor":
        error = np.exp(rng.normal(0.0, 0.035, size=3))
        return cls(
            blur_sigma=rng.uniform(0.3, 0.6) if rng.random() < 0.7 else 0.0,
            exposure_target=rng.uniform(1.0, 1.7),
            white_balance_error=error / np.exp(np.log(error).mean()),
            shot_noise=np.exp(rng.uniform(np.log(1e-4), np.log(2e-3))),
            read_noise=rng.uniform(3e-4, 3e-3),
            jpeg_quality=int(rng.integers(60, 96)) if rng.random() < 0.5 else None,
        )


@dataclasses.dataclass
class Face:
    """Everything about one face before spectral rendering."""

    samples: Samples
    shading: np.ndarray
    specular: np.ndarray
    texture: np.ndarray
    reflectances: np.ndarray
    fmel: np.ndarray
    fblood: np.ndarray
    mask: np.ndarray
    material: np.ndarray
    skin_fraction: np.ndarray
    normals: np.ndarray
    background: np.ndarray
    camera: np.ndarray
    camera_mix: tuple[int, int, float]
    light_weights: np.ndarray
    cct: float
    sensor: Sensor
    rng: np.random.Generator


def _pixel_mean(samples: Samples, values: np.ndarray, where: np.ndarray, n_pixels: int):
    """Mean of ``values`` (P,) or (C, P) over the samples ``where`` of each pixel.

    Returns:
        ``(mean (n_pixels, C), coverage (n_pixels,))``, coverage the summed weight.
    """
    w = samples.weight * where
    coverage = np.bincount(samples.pixel, w, minlength=n_pixels)
    values = values.reshape(-1, len(w))
    sums = np.stack([np.bincount(samples.pixel, w * channel, minlength=n_pixels) for channel in values], -1)
    return sums / np.maximum(coverage, 1e-12)[:, None], coverage


def dominant_material(samples: Samples, n_pixels: int) -> np.ndarray:
    """The material covering most of each pixel (ties to the lower id), (n_pixels,) ints."""
    ids = np.arange(BACKGROUND, N_MATERIALS)
    cover = np.stack(
        [np.bincount(samples.pixel, samples.weight * (samples.material == m), minlength=n_pixels) for m in ids]
    )
    return ids[np.argmax(cover, axis=0)]


def make_face(size: int, rng: np.random.Generator) -> Face:
    """One random face: head, pose, complexion, lights, camera, illuminant, sensor."""
    head = Head.random(rng)
    view = View.random(rng)
    skin = Complexion.random(rng)
    lights = Lights.random(rng)
    n_pixels = size * size
    samples = trace_samples(head, view, size, skin)
    roughness, oiliness = surface_finish(samples, rng)
    shading, specular = shade(head, lights, view, samples, roughness, oiliness)

    is_skin = (samples.material == SKIN) | (samples.material == NECK)
    skin_points, skin_cover = _pixel_mean(samples, samples.points, is_skin, n_pixels)
    _, face_cover = _pixel_mean(samples, samples.points, samples.material == SKIN, n_pixels)
    has_skin = skin_cover > 0
    fmel, fblood = np.zeros(n_pixels), np.zeros(n_pixels)
    maps = skin_maps(skin_points[has_skin].T, head, skin, rng)
    fmel[has_skin], fblood[has_skin] = maps["fmel"], maps["fblood"]

    hit = samples.material != BACKGROUND
    normals, _ = _pixel_mean(samples, view.rotation @ samples.normals, hit, n_pixels)
    normals /= np.maximum(np.linalg.norm(normals, axis=-1, keepdims=True), 1e-12)
    weights, cct = random_illuminant(rng)
    camera, mix = random_camera(rng)
    return Face(
        samples=samples,
        shading=shading,
        specular=specular,
        texture=texture_of_materials(samples, head, rng),
        reflectances=material_reflectances(rng, skin.skin_type),
        fmel=fmel.reshape(size, size),
        fblood=fblood.reshape(size, size),
        mask=(face_cover > 0.5).reshape(size, size),
        skin_fraction=skin_cover.reshape(size, size),
        material=dominant_material(samples, n_pixels).reshape(size, size),
        normals=normals.reshape(size, size, 3),
        background=random_background(size, rng),
        camera=camera,
        camera_mix=mix,
        light_weights=weights,
        cct=cct,
        sensor=Sensor.random(rng),
        rng=rng,
    )


# --------------------------------------------------------------------------
# Rendering a batch of faces
# --------------------------------------------------------------------------


def _face_linear_srgb(face: Face, albedo_table: np.ndarray, spd: np.ndarray, unlit: bool = False):
    """Noise-free linear sRGB of one face, (H, W, 3).

    With ``unlit`` the skin is rendered with shading 1 and no specular (the
    albedo image of channels 7–9).
    """
    size = face.fmel.shape[0]
    samples = face.samples
    light = light_colour(face.camera[None], spd[None])[0]
    skin_albedo = lookup_skin(albedo_table, face.fmel.ravel(), face.fblood.ravel())[samples.pixel]
    other_albedo = (face.reflectances * spd) @ face.camera.T
    material = samples.material
    is_skin = (material == SKIN) | (material == NECK)
    albedo = np.where(is_skin[:, None], skin_albedo, other_albedo[np.clip(material, 0, None)] * face.texture[:, None])
    shading = np.ones(len(material)) if unlit else face.shading
    specular = np.zeros(len(material)) if unlit else face.specular
    raw = albedo * shading[:, None] + specular[:, None] * light
    t_raw2xyz = raw_to_xyz_for_camera(face.camera[None])
    colour = raw_to_linear_srgb(raw[None], light[None], t_raw2xyz)[0]
    background = face.background.reshape(-1, 3)[samples.pixel]
    colour = np.where((material == BACKGROUND)[:, None], background, colour)
    image, _ = _pixel_mean(samples, colour.T, np.ones(len(material), bool), size * size)
    return image.reshape(size, size, 3)


def _skin_ground_truth(face: Face) -> tuple[np.ndarray, np.ndarray]:
    """Mean shading and specular shading over each pixel's skin samples (face and neck), (H, W) each."""
    size = face.fmel.shape[0]
    on_face = (face.samples.material == SKIN) | (face.samples.material == NECK)
    both = np.stack([face.shading, face.specular])
    mean, _ = _pixel_mean(face.samples, both, on_face, size * size)
    return mean[:, 0].reshape(size, size), mean[:, 1].reshape(size, size)


def apply_sensor(linear: np.ndarray, irradiance: float, sensor: Sensor, rng: np.random.Generator):
    """Auto-exposure, optics blur, noise, white-balance error, sRGB curve, 8 bits, JPEG.

    The exposure meters the light falling on the face, not the skin, as an
    incident-light meter does: a white surface under the face's 97th
    percentile of irradiance would read ``exposure_target``. Dark skin stays
    dark.

    Args:
        linear: (H, W, 3) noise-free linear sRGB.
        irradiance: the metered diffuse shading.

    Returns:
        ``(image (H, W, 3) sRGB in [0, 1], exposure)``; the exposure gain
        multiplies the whole linear image (and the ground-truth shading).
    """
    exposure = sensor.exposure_target / max(irradiance, 1e-6)
    image = linear * exposure
    if sensor.blur_sigma > 0:
        image = cv2.GaussianBlur(image, (0, 0), sensor.blur_sigma, borderType=cv2.BORDER_REFLECT)
    variance = sensor.shot_noise * np.clip(image, 0.0, None) + sensor.read_noise**2
    image = image + rng.normal(size=image.shape) * np.sqrt(variance)
    image = srgb_encode(image * sensor.white_balance_error)
    quantised = np.round(image * 255.0).astype(np.uint8)
    if sensor.jpeg_quality is not None:
        ok, encoded = cv2.imencode(".jpg", quantised[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, sensor.jpeg_quality])
        quantised = cv2.imdecode(encoded, cv2.IMREAD_COLOR)[..., ::-1]
    return quantised.astype(np.float64) / 255.0, exposure


def fit_sh_lighting(normals: np.ndarray, shading: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Second-order SH coefficients (9,) whose grey irradiance best fits ``shading`` in the mask.

    The irradiance ``[n;1]ᵀ K(L) [n;1]`` is linear in L, so this is linear
    least squares; the coefficients are for each of R, G, B (equal), scaled so
    that :func:`bioface_tf.data.shading.grey_shading` reproduces the fit.

    Args:
        normals: (H, W, 3) signed unit normals; shading: (H, W); mask: (H, W) bool.
    """
    n = normals[mask]
    if len(n) < 9:
        return np.zeros(9)
    homogeneous = np.concatenate([n, np.ones((len(n), 1))], axis=-1)
    basis = np.stack(
        [np.einsum("pi,ij,pj->p", homogeneous, sh_shading.irradiance_matrix(e), homogeneous) for e in np.eye(9)],
        axis=-1,
    )
    gram = basis.T @ basis + 1e-9 * np.eye(9)
    coefficients = np.linalg.solve(gram, basis.T @ shading[mask])
    return coefficients / sh_shading.REC601_LUMA.sum()


def render_faces(faces: list[Face]) -> dict[str, np.ndarray]:
    """Spectral rendering and sensor of a batch of faces, with their ground truth.

    Returns:
        dict of float32 arrays: ``image`` (B, H, W, 3) sRGB; ``normals``
        (B, H, W, 3); ``mask`` (B, H, W); ``albedo`` (B, H, W, 3) unlit
        noise-free sRGB in the mask; ``linear`` (B, H, W, 3) noise-free
        linear sRGB before exposure; ``lrgb`` (B, 3, 9); ``gt_fmel``,
        ``gt_fblood``, ``gt_shading``, ``gt_specmask`` (B, H, W), zero
        outside the mask; ``gt_b`` (B, 2); ``gt_light_weights`` (B, 14);
        ``gt_cct`` (B, 1); ``camera_sensitivity`` (B, 3, 33) and
        ``camera_mix`` (B, 3) (first and second database camera, weight of
        the first);
        ``illuminant_spd`` (B, 33); ``exposure`` (B,); ``material`` (B, H, W)
        the id of the material covering most of each pixel (int8: −1
        background, 0 face skin, 1 neck, 2 hair, 3 sclera, 4 iris, 5 pupil,
        6 mouth interior, 7 teeth, 8 eyelashes); ``skin_fraction`` (B, H, W)
        the share of each pixel's samples on skin (face or neck): where it
        is 1 the image is exactly the rendering of the ground truth.
    """
    cameras = np.stack([f.camera for f in faces])
    weights = np.stack([f.light_weights for f in faces])
    spd = illuminant_spd(weights, np.array([f.cct for f in faces]))
    tables = skin_albedo_tables(cameras, spd)
    out: dict[str, list] = {}
    for i, face in enumerate(faces):
        linear = _face_linear_srgb(face, tables[i], spd[i])
        albedo = srgb_encode(_face_linear_srgb(face, tables[i], spd[i], unlit=True))
        shading, specular = _skin_ground_truth(face)
        metered = np.percentile(shading[face.mask], 97) if face.mask.any() else 1.0
        image, exposure = apply_sensor(linear, metered, face.sensor, face.rng)
        shading, specular = exposure * shading * face.mask, exposure * specular * face.mask
        sh = fit_sh_lighting(face.normals.astype(np.float32), shading, face.mask)
        record = {
            "image": image,
            "normals": face.normals,
            "mask": face.mask,
            "material": face.material,
            "skin_fraction": face.skin_fraction,
            "albedo": albedo * face.mask[..., None],
            "linear": linear,
            "lrgb": np.repeat(sh[None], 3, axis=0),
            "gt_fmel": face.fmel * face.mask,
            "gt_fblood": face.fblood * face.mask,
            "gt_shading": shading,
            "gt_specmask": specular,
            "gt_b": pca_coordinates(face.camera[None])[0],
            "gt_light_weights": face.light_weights,
            "gt_cct": np.array([face.cct]),
            "camera_sensitivity": face.camera,
            "camera_mix": np.array(face.camera_mix),
            "illuminant_spd": spd[i],
            "exposure": exposure,
        }
        for key, value in record.items():
            out.setdefault(key, []).append(value)
    arrays = {key: np.stack(values).astype(np.float32) for key, values in out.items()}
    arrays["material"] = arrays["material"].astype(np.int8)
    return arrays


def face_rng(seed: int, index: int) -> np.random.Generator:
    """The generator of face ``index``: it depends only on ``(seed, index)``."""
    return np.random.default_rng([seed, index, STREAM])


def render_eval_faces(n: int, size: int = 64, seed: int = 0, start: int = 0) -> dict[str, np.ndarray]:
    """Faces ``start .. start + n − 1`` of the family for ``seed``, as arrays.

    Args:
        n: number of faces; size: H = W in pixels (at least 16).

    Returns:
        The dict of :func:`render_faces`.
    """
    if n < 1 or size < 16:
        raise ValueError(f"need at least 1 face of at least 16x16 pixels (got n={n}, size={size})")
    faces = [make_face(size, face_rng(seed, i)) for i in range(start, start + n)]
    return render_faces(faces)


def write_eval_faces(
    path: str | pathlib.Path, n: int, size: int = 64, seed: int = 0, progress: bool = True
) -> pathlib.Path:
    """Render ``n`` evaluation faces into one HDF5 file in the CelebA layout plus ``gt_*``.

    Face ``i`` depends only on ``(seed, i)``. Written ``CHUNK`` faces at a time.

    Raises:
        DataError: naming the file, for bad arguments or a file that cannot be written.
    """
    path = pathlib.Path(path)
    if n < 1 or size < 16:
        raise DataError(f"{path}: need at least 1 face of at least 16x16 pixels (got n={n}, size={size})")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with h5py.File(path, "w") as f:
            datasets = _create_datasets(f, n, size)
            f.attrs.update(
                family=FAMILY,
                description=(
                    "evaluation-only faces (bioface_tf.data.eval_faces): SDF heads, Cook-Torrance "
                    "specular, mixed measured cameras, 2-3 illuminant mixes; never for training or tuning"
                ),
                seed=seed,
                normal_encoding="signed",
                normal_axes="x right, y up, z towards the camera",
                mask="face skin: no background, scalp hair, eyes, mouth interior or neck; lips in",
            )
            with tqdm(total=n, desc="rendering eval faces", unit="face", disable=not progress) as bar:
                for first in range(0, n, CHUNK):
                    count = min(CHUNK, n - first)
                    _store(datasets, first, render_eval_faces(count, size, seed, start=first))
                    bar.update(count)
    except OSError as err:
        raise DataError(f"{path}: cannot write ({err})") from None
    return path


def _create_datasets(f: h5py.File, n: int, size: int) -> dict[str, h5py.Dataset]:
    chunk = min(CHUNK, n)
    datasets = {
        DATASET: f.create_dataset(DATASET, (n, N_CHANNELS, size, size), "f4", chunks=(chunk, N_CHANNELS, size, size)),
        EMBEDDED_LIGHTING: f.create_dataset(EMBEDDED_LIGHTING, (n, 3, 9), "f4"),
    }
    for name in ("gt_fmel", "gt_fblood", "gt_shading", "gt_specmask"):
        datasets[name] = f.create_dataset(name, (n, size, size), "f4", chunks=(chunk, size, size))
    for name, shape in (
        ("gt_b", (2,)),
        ("gt_light_weights", (N_ILLUMINANTS,)),
        ("gt_cct", (1,)),
        ("camera_sensitivity", (3, spectra.N_WAVELENGTHS)),
        ("camera_mix", (3,)),
        ("illuminant_spd", (spectra.N_WAVELENGTHS,)),
    ):
        datasets[name] = f.create_dataset(name, (n,) + shape, "f4")
    return datasets


def _store(datasets: dict[str, h5py.Dataset], first: int, faces: dict[str, np.ndarray]) -> None:
    stop = first + len(faces["image"])
    channels = np.concatenate(
        [faces["image"], faces["normals"], faces["mask"][..., None], faces["albedo"]], axis=-1
    )
    datasets[DATASET][first:stop] = channels.transpose(0, 3, 1, 2)
    datasets[EMBEDDED_LIGHTING][first:stop] = faces["lrgb"]
    for name, dataset in datasets.items():
        if name not in (DATASET, EMBEDDED_LIGHTING):
            dataset[first:stop] = faces[name]
