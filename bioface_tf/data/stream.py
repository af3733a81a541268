"""Rendered faces in batches, fast enough to stream fresh ones while training.

A batch of faces is built by NumPy operations over whole `(B, H, W)` arrays
(the only per-face Python is drawing each face's few dozen numbers), then the
skin is rendered by :class:`~bioface_tf.physics.PhysicsDecoder` (XLA-compiled)
and camera effects are applied to the whole batch:

1. **Head** — an ellipsoid whose width narrows towards the jaw, carrying a
   height field of Gaussian bumps and dips (nose, brow ridge, eye sockets,
   cheekbones, lips, chin) in face coordinates (x right, y up, units of half
   the head width). Each pixel's orthographic ray is intersected with it
   analytically: the quadric with the current bump height and width is
   solved in closed form, twice refined at the new hit point. Normals come
   from the gradient of the implicit surface, so the silhouette and the
   nose's occlusion at any yaw, pitch and roll need no point splatting.
   A neck (a vertical cylinder) sits below.
2. **Skin** — melanin and haemoglobin in the decoder's [−1, 1]: a skin type
   over the whole melanin range, mottling, flushed cheeks and nose, lips,
   eyebrows and stubble (melanin-dense skin, inside the mask), and freckles,
   moles and thread veins drawn from value noise. Eyes (sclera, iris, pupil,
   lash line), an open mouth with teeth, scalp hair, fringes and long hair
   are painted in linear sRGB over it and are outside the mask.
3. **Light** — one illuminant spectrum per face (``gt_light_weights``,
   ``gt_cct``) for the skin; the grey shading is a key light with cast
   shadows (the height field's own, e.g. the nose's, and an occluder's soft
   edge), an optional fill and rim light, and sky plus ambient light.
   That shading is exact in ``gt_shading``; its least-squares fit by
   second-order SH is the face's lighting ``(9,)``, from which the CelebA
   pseudo ground truth ``shading`` is computed exactly as the reader does.
   The specular map is a Blinn–Phong lobe per light on oily regions.
4. **Sensor** (optional) — exposure, white-balance error, blur, signal
   dependent noise, sRGB encoding and sometimes JPEG.

Face ``i`` of a seed depends only on ``(seed, i)``; faces are rendered in
blocks of :data:`BLOCK` so that even the decoder sees the same batches.

Example:

>>> batch = render_batch(0, 8, 64)                          # doctest: +SKIP
>>> batch["srgb"].shape, batch["mask"].shape                 # doctest: +SKIP
((8, 64, 64, 3), (8, 64, 64, 1))
>>> dataset = make_stream_dataset(64, seed=1)                # doctest: +SKIP
"""

from __future__ import annotations

import collections
import concurrent.futures
import functools
import itertools
import types

import cv2
import numpy as np
import tensorflow as tf

from bioface_tf import spectra
from bioface_tf.data import shading as sh_shading

try:
    from tensorflow.compiler.tf2xla.python.xla import optimization_barrier as _barrier
except ImportError:  # pragma: no cover
    def _barrier(*tensors):
        return tensors

N_ILLUMINANTS = 14
DAYLIGHT, INCANDESCENT = 1, 0
SHADING_FLOOR = 1e-3
REFERENCE_ASPECT = 1.3
BLUR_TAPS = 5
SH_RIDGE = 1e-4
SRGB_LINEAR_LIMIT = 0.0031308
GEOMETRY_ITERATIONS = 1
SHADOW_STEPS = (0.12,)
BLOCK = 32
N_BACKGROUND_BOXES = 3
REC709_LUMA = (0.2126, 0.7152, 0.0722)
SKIN_METERING_TARGET = 0.2
"""Mean linear luminance a skin-metering exposure brings the face towards."""

LATTICES = {
    "mel": (7, 7),
    "mel_fine": (17, 17),
    "blood": (7, 7),
    "freckles": (36, 36),
    "moles": (18, 18),
    "vessels": (14, 14),
    "stubble": (64, 64),
    "hair": (8, 60),
    "hairline": (4, 40),
    "background_0": (6, 6),
    "background_1": (6, 6),
    "background_2": (6, 6),
    "sensor": (0, 0),
}
VARIETIES = (
    "standard", "wide", "wide_metered", "wide_metered_blood", "wide_toned", "wide_metered_uniform",
    "wide_metered_cameras", "wide_metered_context",
)
"""Pigment distributions (``train.rendered_variety``): ``standard`` (stages 1–3 of the shipped model);
``wide`` (:func:`_wide_skin`: blotches, spots, gradients off the anatomy, the whole melanin range, a
wider base haemoglobin); ``wide_metered`` (``wide`` without the wider base haemoglobin, plus an exposure
that meters the skin, :func:`camera_effects`; stage 4 of the shipped model); ``wide_metered_blood``
(``wide`` plus the metering); ``wide_toned`` (``wide_metered`` plus a camera's own tone curve instead of
the plain sRGB curve on some faces, :func:`tone_curve`); ``wide_metered_uniform`` (``wide_metered`` with
every face's skin type uniform over the whole melanin range [−1, 1], not a third of them: as many dark
faces as light ones); ``wide_metered_cameras`` (``wide_metered`` seen through cameras off the decoder's
two-component PCA on some faces, :func:`spectral_cameras`); ``wide_metered_context`` (``wide_metered`` with
the background, clothes and hair made brighter or darker than the face's light on some faces,
:data:`CONTEXT_GAIN`). benchmarks/results/recipe_pigment_variety.md compares them."""
CONTEXT_GAIN = (1.0 / 3.0, 3.0, 0.6)
"""``wide_metered_context``: the linear gain of everything around the face (background, clothes, hair),
log-uniform between the first two numbers, on the third's share of faces (the rest keep gain 1). The
photometric input divides a photo by its mean luminance, so without it the skin's brightness against its
surroundings is a cue to melanin that holds only for this generator's scenes."""
CAMERA_ODDS = 0.6
"""Share of ``wide_metered_cameras`` faces whose camera is off the PCA (:func:`spectral_cameras`)."""
WIDE_LATTICES = {
    "melanin_coarse": (5, 5),
    "melanin_fine": (11, 11),
    "blood_coarse": (6, 6),
    "blood_fine": (13, 13),
    "spots": (30, 30),
    "mottle": (17, 17),
}
"""Value-noise lattices of the ``wide`` patterns, keyed by hashing the ``blood`` key with a salt per name,
so that ``standard`` faces draw exactly the numbers they always drew."""
MAPS = ("fmel", "fblood", "shading", "specmask")
VECTORS = {"b": 2, "light_weights": N_ILLUMINANTS, "cct": 1}

SKIN_BANDS = np.array([[-0.9, -0.3], [-0.3, 0.3], [0.3, 0.85]])
SKIN_BAND_ODDS = np.array([0.45, 0.3, 0.25])
HAIR_COLOURS = np.array(
    [
        [0.010, 0.008, 0.007],
        [0.030, 0.017, 0.010],
        [0.070, 0.040, 0.020],
        [0.160, 0.070, 0.025],
        [0.330, 0.230, 0.110],
        [0.300, 0.290, 0.280],
    ],
    np.float32,
)
HAIR_COLOUR_ODDS = np.array([0.3, 0.25, 0.18, 0.08, 0.12, 0.07])
IRIS_COLOURS = np.array(
    [[0.025, 0.012, 0.006], [0.06, 0.03, 0.012], [0.05, 0.08, 0.13], [0.05, 0.07, 0.04], [0.08, 0.06, 0.03]],
    np.float32,
)
IRIS_COLOUR_ODDS = np.array([0.4, 0.25, 0.15, 0.1, 0.1])


# ----------------------------------------------------------------------------- the numbers of a block of faces


def _rotation(yaw, pitch, roll) -> np.ndarray:
    """`(n, 3, 3)` rotations, face coordinates → camera coordinates (angles `(n,)` in radians)."""
    one, zero = np.ones_like(yaw), np.zeros_like(yaw)
    cy, sy, cp, sp, cr, sr = np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch), np.cos(roll), np.sin(roll)
    ry = np.stack([cy, zero, sy, zero, one, zero, -sy, zero, cy], -1).reshape(-1, 3, 3)
    rx = np.stack([one, zero, zero, zero, cp, -sp, zero, sp, cp], -1).reshape(-1, 3, 3)
    rz = np.stack([cr, -sr, zero, sr, cr, zero, zero, zero, one], -1).reshape(-1, 3, 3)
    return rz @ ry @ rx


def _direction(azimuth, elevation) -> np.ndarray:
    """Unit vectors `(n, 3)` towards lights, camera frame; azimuth 0 is the camera."""
    return np.stack(
        [np.sin(azimuth) * np.cos(elevation), np.sin(elevation), np.cos(azimuth) * np.cos(elevation)], -1
    )


def _sometimes(rng, n, odds, low, high):
    """`(n,)`: uniform in [low, high) with probability ``odds``, else 0."""
    return (rng.random(n) < odds) * rng.uniform(low, high, n)


def _pose(rng, n) -> dict:
    yaw = np.clip(rng.normal(0.0, 18.0, n), -50.0, 50.0)
    pitch, roll = rng.uniform(-16, 16, n), rng.uniform(-12, 12, n)
    yaw, pitch, roll = np.radians(yaw), np.radians(pitch), np.radians(roll)
    return {
        "rotation": _rotation(yaw, pitch, roll),
        "roll": roll,
        "scale": rng.uniform(0.5, 0.66, n),
        "centre": np.stack([rng.uniform(-0.08, 0.08, n), rng.uniform(-0.08, 0.08, n)], -1),
    }


def _shape(rng, n) -> dict:
    """Head proportions and the bumps of the face, in normalised face coordinates."""
    u = functools.partial(rng.uniform, size=n)
    return {
        "aspect": u(1.2, 1.45),
        "depth": u(0.8, 1.05),
        "jaw": u(0.08, 0.35),
        "nose_height": u(0.14, 0.32),
        "nose_width": u(0.06, 0.1),
        "nose_tip": u(-0.3, -0.16),
        "brow_ridge": u(0.03, 0.09),
        "sockets": u(0.07, 0.16),
        "cheekbones": u(0.02, 0.1),
        "lip_height": u(0.02, 0.06),
        "chin": u(0.02, 0.08),
        "eye_x": u(0.32, 0.4),
        "eye_y": u(0.16, 0.27),
        "eye_width": u(0.1, 0.14),
        "eye_open": (rng.random(n) > 0.04) * u(0.035, 0.06),
        "gaze": rng.uniform(-0.35, 0.35, (n, 2)),
        "mouth_y": u(-0.62, -0.5),
        "mouth_width": u(0.16, 0.25),
        "lip_thickness": u(0.025, 0.05),
        "mouth_open": _sometimes(rng, n, 0.28, 0.015, 0.07),
        "neck_width": u(0.45, 0.6),
    }


def _skin(rng, n) -> dict:
    """Skin type (light, medium or dark band of the melanin range), pigment patterns."""
    u = functools.partial(rng.uniform, size=n)
    band = rng.choice(len(SKIN_BANDS), size=n, p=SKIN_BAND_ODDS)
    skin_type = rng.uniform(SKIN_BANDS[band, 0], SKIN_BANDS[band, 1])
    return {
        "skin_type": skin_type,
        "blood_base": u(-0.6, 0.1),
        "mottle_mel": u(0.1, 0.22),
        "mottle_blood": u(0.03, 0.12),
        "flush": u(0.0, 0.45),
        "nose_red": u(0.0, 0.35),
        "lip_red": u(0.25, 0.8),
        "lip_mel": u(0.0, 0.35) * (0.5 + np.maximum(skin_type, 0.0)),
        "under_eye": u(0.0, 0.15),
        "brow": u(0.5, 1.4),
        "brow_thickness": u(0.035, 0.06),
        "brow_arch": u(0.02, 0.08),
        "brow_lift": u(0.12, 0.2),
        "freckles": _sometimes(rng, n, 0.3, 0.2, 0.55),
        "freckle_density": u(0.6, 0.85),
        "moles": u(0.5, 1.0),
        "mole_density": u(0.985, 0.999),
        "vessels": _sometimes(rng, n, 0.2, 0.2, 0.6),
        "stubble": _sometimes(rng, n, 0.22, 0.15, 0.55),
        "stubble_line": u(-0.15, 0.15),
        "oil": u(0.05, 0.7),
        "gloss": u(8.0, 40.0),
    }


BALD, SHORT, FRINGE, LONG = range(4)


def _hair(rng, n) -> dict:
    u = functools.partial(rng.uniform, size=n)
    style = rng.choice(4, size=n, p=[0.08, 0.42, 0.25, 0.25])
    colour = HAIR_COLOURS[rng.choice(len(HAIR_COLOURS), size=n, p=HAIR_COLOUR_ODDS)] * rng.uniform(0.7, 1.3, (n, 3))
    colour = np.where(rng.random((n, 1)) < 0.04, rng.uniform(0.02, 0.4, (n, 3)), colour)
    hairline = np.choose(style, [np.full(n, 3.0), u(0.62, 0.9), u(0.38, 0.62), u(0.55, 0.9)])
    length = np.choose(style, [np.zeros(n), u(-0.1, 0.25), u(-0.2, 0.3), u(-1.6, -0.9)])
    iris = IRIS_COLOURS[rng.choice(len(IRIS_COLOURS), size=n, p=IRIS_COLOUR_ODDS)] * u(0.8, 1.25)[:, None]
    return {
        "hair_colour": colour,
        "hairline": hairline,
        "hairline_tilt": np.where(style == FRINGE, u(-0.25, 0.25), u(-0.05, 0.05)),
        "hairline_curve": u(0.2, 0.7),
        "hairline_wave": u(0.0, 0.05),
        "hairline_phase": u(0, 2 * np.pi),
        "volume": np.where(style == BALD, 0.0, u(0.06, 0.25)),
        "hair_length": length,
        "sideburns": np.where(style == BALD, 2.0, u(0.8, 0.92)),
        "hair_shine": u(0.0, 0.4),
        "iris_colour": iris,
        "sclera": u(0.25, 0.45)[:, None] * np.array([1.0, 0.96, 0.93]),
        "teeth": u(0.15, 0.35)[:, None] * np.array([1.0, 0.95, 0.85]),
    }


def _lights(rng, n) -> dict:
    u = functools.partial(rng.uniform, size=n)
    rim_side = np.where(rng.random(n) < 0.5, -1.0, 1.0)
    occluder = u(-np.pi, np.pi)
    return {
        "key": _direction(u(-1.2, 1.2), u(-0.3, 1.0)),
        "key_power": u(0.6, 1.3),
        "fill": _direction(u(-1.4, 1.4), u(-0.4, 0.8)),
        "fill_power": _sometimes(rng, n, 0.6, 0.05, 0.45),
        "rim": _direction(rim_side * u(1.9, 2.6), u(-0.2, 0.6)),
        "rim_power": _sometimes(rng, n, 0.2, 0.2, 0.8),
        "ambient": u(0.1, 0.45),
        "sky": u(-0.05, 0.15),
        "occluder_normal": np.stack([np.cos(occluder), np.sin(occluder)], -1),
        "occluder_offset": u(-0.6, 0.6),
        "occluder_softness": u(0.03, 0.2),
        "occluder_depth": _sometimes(rng, n, 0.25, 0.6, 1.0),
    }


def _background(rng, n) -> dict:
    grey = rng.uniform(0.01, 0.6, (n, 2, 1))
    saturation = rng.uniform(0.0, 0.8, (n, 1, 1))
    ends = (1 - saturation) * grey + saturation * rng.uniform(0.01, 0.6, (n, 2, 3))
    boxes = np.sort(rng.uniform(-1.2, 1.2, (n, N_BACKGROUND_BOXES, 2, 2)), axis=2)
    return {
        "top": ends[:, 0],
        "bottom": ends[:, 1],
        "clutter": _sometimes(rng, n, 0.6, 0.1, 0.8),
        "clutter_tint": rng.uniform(0.1, 0.8, (n, 3)),
        "clutter_chroma": rng.uniform(0.0, 0.5, n),
        "boxes": boxes.reshape(n, N_BACKGROUND_BOXES, 4),
        "box_colours": rng.uniform(0.0, 0.7, (n, N_BACKGROUND_BOXES, 3)),
        "box_on": (rng.random((n, N_BACKGROUND_BOXES)) < 0.4).astype(float),
        "shirt": rng.uniform(0.01, 0.6, (n, 3)),
        "shirt_width": rng.uniform(0.9, 1.5, n),
    }


def random_illuminants(rng, n) -> tuple[np.ndarray, np.ndarray]:
    """Illuminant weights `(n, 14)` (A, D, F1..F12) and D-series ``cct`` `(n, 1)` in [1, 22].

    As :func:`bioface_tf.data.synth.random_illuminant`: one illuminant
    dominates (daylight half the time, incandescent a quarter, a fluorescent
    a quarter), the rest of the weight is spread at random.
    """
    kind = rng.random(n)
    dominant = np.where(kind < 0.5, DAYLIGHT, np.where(kind < 0.75, INCANDESCENT, rng.integers(2, N_ILLUMINANTS, n)))
    weights = rng.uniform(0.1, 0.4, (n, 1)) * rng.dirichlet(np.full(N_ILLUMINANTS, 0.3), size=n)
    weights[np.arange(n), dominant] += 1.0 - weights.sum(axis=1)
    return weights, rng.uniform(1.0, 22.0, (n, 1))


def _camera(rng, n) -> dict:
    weights, cct = random_illuminants(rng, n)
    return {
        "b": rng.uniform(-3.0, 3.0, (n, 2)),
        "light_weights": weights,
        "cct": cct,
        "exposure": np.exp(rng.uniform(np.log(0.7), np.log(1.6), n)),
        "white_balance_error": np.exp(rng.normal(0.0, 0.05, (n, 3))),
        "blur": rng.uniform(0.0, 1.0, n) ** 2 * 1.2,
        "noise_gain": rng.uniform(1e-4, 2e-3, n),
        "noise_floor": rng.uniform(5e-4, 4e-3, n),
        "jpeg_quality": _sometimes(rng, n, 0.25, 35, 95),
    }


def _wide_skin(rng, n, skin_type, blood_base, variety="wide") -> dict:
    """The ``wide`` variety's extra pigment numbers, drawn after every ``standard`` one.

    Pigment that does not follow the face's anatomy, so that a network must
    read it from each pixel's colour rather than from where it is: blotches
    of more or less melanin (tanning, melasma, lighter patches) and of
    haemoglobin (redness, rosacea) at random places and scales, small red
    spots, a melanin gradient across the face, finer blood mottling; and
    skin types over the whole melanin range [−1, 1] (a third of the faces;
    every face for ``wide_metered_uniform``) and a wider range of base
    haemoglobin (half of them; not for the metered varieties but ``wide_metered_blood``).
    """
    u = functools.partial(rng.uniform, size=n)
    whole_range = rng.random(n) < (1.0 if variety == "wide_metered_uniform" else 1.0 / 3.0)
    wider_blood = (rng.random(n) < 0.5) & (variety in ("wide", "wide_metered_blood"))
    metering = {"skin_metering": _sometimes(rng, n, 0.6, 0.3, 1.0)} if variety != "wide" else {}
    wide = metering | {
        "skin_type": np.where(whole_range, u(-1.0, 1.0), skin_type),
        "blood_base": np.where(wider_blood, u(-0.85, 0.45), blood_base),
        "patch_mel": _sometimes(rng, n, 0.6, 0.1, 0.4) * rng.choice([-1.0, 1.0], n),
        "patch_blood": _sometimes(rng, n, 0.7, 0.1, 0.5),
        "patch_mel_threshold": u(0.5, 0.75),
        "patch_blood_threshold": u(0.5, 0.75),
        "patch_scale": u(0.0, 1.0),
        "spots_blood": _sometimes(rng, n, 0.3, 0.3, 0.8),
        "spot_density": u(0.8, 0.92),
        "gradient_mel": u(-0.25, 0.25),
        "gradient_angle": u(0.0, 2.0 * np.pi),
        "mottle_blood_fine": u(0.0, 0.15),
    }
    if variety == "wide_toned":
        toned = rng.random(n) < 0.6
        wide |= {"tone_gamma": np.where(toned, np.exp(u(np.log(0.8), np.log(1.25))), 1.0),
                 "tone_contrast": np.where(toned, u(-0.15, 0.35), 0.0)}
    return wide


def spectral_cameras(rng: np.random.Generator, n: int, b: np.ndarray) -> dict[str, np.ndarray]:
    """Cameras off the decoder's PCA for :data:`CAMERA_ODDS` of ``n`` faces, drawn after every other number.

    Real sensors are not in the two-dimensional span that the decoder's
    camera model covers, and a network trained on that span alone reads a
    camera's own colour as pigment. For a face chosen here, its PCA camera
    of ``b`` `(n, 2)` is shifted by U(−8, 8) nm and each channel multiplied
    by ``exp(Σₖ cₖ·Pₖ(x))``, ``Pₖ`` the Legendre polynomials of degree 1–3
    of ``x = (λ − 560)/160``, ``cₖ ~ N(0, 0.1)``, then scaled back to the
    channel's sum; the other faces keep their PCA camera exactly.

    Returns:
        ``camera_curves`` `(n, 3, 33)`; ``raw_to_xyz`` `(n, 3, 3)`, the
        curves' own matrix (PHYSICS.md §8), the colour correction a camera
        calibrated for its own sensor applies; and ``b`` `(n, 2)`, the
        least-squares PCA fit of the curves (``gt_b``, as the validation
        family defines it).
    """
    base = spectra.camera_sensitivity(b)
    chosen = rng.random(n) < CAMERA_ODDS
    shift = rng.uniform(-8.0, 8.0, n)
    c = rng.normal(0.0, 0.1, (n, 3, 3))
    wavelengths = spectra.WAVELENGTHS_NM
    x = (wavelengths - 560.0) / 160.0
    legendre = np.stack([x, 0.5 * (3 * x**2 - 1), 0.5 * (5 * x**3 - 3 * x)])
    curves = base.copy()
    for i in np.flatnonzero(chosen):
        shifted = np.stack([np.interp(wavelengths - shift[i], wavelengths, channel) for channel in base[i]])
        shifted *= np.exp(c[i] @ legendre)
        curves[i] = shifted * (base[i].sum(-1, keepdims=True) / np.maximum(shifted.sum(-1, keepdims=True), 1e-12))
    fitted = np.where(chosen[:, None], spectra.camera_pca_fit(curves), b)
    return {"camera_curves": curves, "raw_to_xyz": spectra.raw_to_xyz_of(curves), "b": fitted}


def sample_parameters(rng: np.random.Generator, n: int, variety: str = "standard") -> dict[str, np.ndarray]:
    """Every random number of ``n`` faces (pose, shape, skin, hair, light, camera), float32.

    Scalars per face are `(n, 1, 1)` so that they broadcast over `(n, H, W)`
    maps, except ``cct`` `(n, 1)`; vectors are `(n, …)`; ``noise_keys``
    `(n, len(LATTICES))` int32 seed each face's value-noise patterns.
    ``variety`` (:data:`VARIETIES`) ``"wide"`` adds :func:`_wide_skin`'s
    numbers, drawn after the others: a ``wide`` face has the pose, head,
    light and camera of the ``standard`` face of the same seed and index.
    """
    if variety not in VARIETIES:
        raise ValueError(f"variety must be one of {VARIETIES}, got {variety!r}")
    params = {}
    for draw in (_pose, _shape, _skin, _hair, _lights, _background):
        params.update(draw(rng, n))
    params.update(_camera(rng, n))
    noise_keys = rng.integers(0, 2**31, (n, len(LATTICES)), dtype=np.int32)
    if variety != "standard":
        params.update(_wide_skin(rng, n, params["skin_type"], params["blood_base"], variety))
    if variety.endswith("_cameras"):
        params.update(spectral_cameras(rng, n, params["b"]))
    if variety.endswith("_context"):
        low, high, share = CONTEXT_GAIN
        gain = np.exp(rng.uniform(np.log(low), np.log(high), n))
        params["context_gain"] = np.where(rng.random(n) < share, gain, 1.0)
    params = {k: np.asarray(v, np.float32).reshape(-1, 1, 1) if np.ndim(v) == 1 else np.asarray(v, np.float32)
              for k, v in params.items()}
    params["noise_keys"] = noise_keys
    return params


# ----------------------------------------------------------------------------- fields (TensorFlow)


def _gauss(x, y, cx, cy, sx, sy):
    return tf.exp(-0.5 * (tf.square((x - cx) / sx) + tf.square((y - cy) / sy)))


def _materialise(*tensors):
    """Compute ``tensors`` once: an XLA optimisation barrier, so that fusion
    does not recompute them inside every consumer."""
    return tuple(_barrier(*tensors))


def _float(condition):
    return tf.cast(condition, tf.float32)


def _hash(n):
    """A 32-bit integer hash (Wellons' lowbias32), elementwise on uint32."""
    n = tf.bitwise.bitwise_xor(n, tf.bitwise.right_shift(n, 16))
    n = n * tf.constant(0x7FEB352D, tf.uint32)
    n = tf.bitwise.bitwise_xor(n, tf.bitwise.right_shift(n, 15))
    n = n * tf.constant(0x846CA68B, tf.uint32)
    return tf.bitwise.bitwise_xor(n, tf.bitwise.right_shift(n, 16))


def _uniform(salt, index):
    """Uniform [0, 1) numbers, one per uint32 ``index``, hashed with ``salt``."""
    return tf.cast(tf.bitwise.right_shift(_hash(tf.bitwise.bitwise_xor(index, salt)), 8), tf.float32) / 2**24


def pixel_noise(p, shape):
    """Zero-mean, unit-variance noise per pixel and channel, `(B, H, W, C)`, hashed from ``noise_keys``.

    The sum of two 16-bit uniform numbers from one hash (a triangular
    distribution), enough for sensor noise and cheaper than Gaussian numbers.
    """
    b, height, width, channels = shape
    index = tf.constant(np.arange(height * width * channels, dtype=np.uint32).reshape(1, height, width, channels))
    key = tf.bitcast(p.noise_keys[:, list(LATTICES).index("sensor"), None, None, None], tf.uint32)
    bits = _hash(tf.bitwise.bitwise_xor(index, _hash(key)))
    low = tf.cast(tf.bitwise.bitwise_and(bits, 0xFFFF), tf.float32)
    high = tf.cast(tf.bitwise.right_shift(bits, 16), tf.float32)
    return ((low + high + 1.0) / 65536.0 - 1.0) * np.sqrt(6.0)


def value_noise(p, name: str, x, y, extent=(1.5, 1.5)):
    """Value noise: random lattice values, smoothly interpolated, at ``(x, y)``.

    The lattice (:data:`LATTICES` ``[name]`` nodes across y and x, spanning
    ``[-extent, extent]``) holds uniform [0, 1) values hashed from the face's
    ``noise_keys``, so no lattice is stored or gathered.

    Args:
        p: parameters, with ``noise_keys`` `(B, K)`.
        x, y: `(B, H, W)` positions.

    Returns:
        `(B, H, W)` values in [0, 1).
    """
    key = tf.bitcast(p.noise_keys[:, list(LATTICES).index(name), None, None], tf.uint32)
    return _lattice_noise(_hash(key), LATTICES[name], x, y, extent)


def wide_noise(p, name: str, x, y, extent=(1.5, 1.5)):
    """:func:`value_noise` on the lattice :data:`WIDE_LATTICES` ``[name]``, keyed from the ``blood`` key."""
    key = tf.bitcast(p.noise_keys[:, list(LATTICES).index("blood"), None, None], tf.uint32)
    salt = tf.constant(0x9E3779B9 + 7919 * list(WIDE_LATTICES).index(name), tf.uint32)
    return _lattice_noise(_hash(tf.bitwise.bitwise_xor(_hash(key), salt)), WIDE_LATTICES[name], x, y, extent)


def _lattice_noise(salt, lattice, x, y, extent):
    gy, gx = lattice
    fx = tf.clip_by_value((x / extent[0] + 1.0) * 0.5 * (gx - 1), 0.0, gx - 1.001)
    fy = tf.clip_by_value((y / extent[1] + 1.0) * 0.5 * (gy - 1), 0.0, gy - 1.001)
    ix, iy = tf.floor(fx), tf.floor(fy)
    tx, ty = fx - ix, fy - iy
    tx, ty = tx * tx * (3 - 2 * tx), ty * ty * (3 - 2 * ty)
    node = tf.cast(iy, tf.uint32) * 1024 + tf.cast(ix, tf.uint32)

    def at(offset):
        return _uniform(salt, node + offset)

    top = at(0) + tx * (at(1) - at(0))
    bottom = at(1024) + tx * (at(1025) - at(1024))
    return top + ty * (bottom - top)


# ----------------------------------------------------------------------------- geometry


def _grid(size: int):
    """Pixel centres ``u`` (right) and ``v`` (up) in [−1, 1], `(1, H, W)` each."""
    centres = ((np.arange(size, dtype=np.float32) + 0.5) / size) * 2.0 - 1.0
    u, v = np.meshgrid(centres, -centres)
    return tf.constant(u[None]), tf.constant(v[None])


def bumps(p, x, y, gradient=False):
    """The face's height field over the head ellipsoid, `(B, H, W)`.

    Args:
        p: the parameters of :func:`sample_parameters`, as tensors.
        x, y: face coordinates (y in units where the head is ``aspect`` tall).
        gradient: also return ``∂h/∂x`` and ``∂h/∂y``.
    """
    stretch = REFERENCE_ASPECT / p.aspect
    Y = y * stretch
    terms = []

    def add(amplitude, cx, cy, sx, sy):
        terms.append((amplitude * _gauss(x, Y, cx, cy, sx, sy), cx, cy, sx, sy))

    add(0.45 * p.nose_height, 0.0, p.nose_tip + 0.03, 0.11, 0.05)
    add(p.brow_ridge, 0.0, p.eye_y + 0.2, 0.5, 0.07)
    add(p.lip_height, 0.0, p.mouth_y, p.mouth_width, 0.055)
    add(p.chin, 0.0, -0.95, 0.2, 0.12)
    for side in (-1.0, 1.0):
        add(-p.sockets, side * p.eye_x, p.eye_y + 0.01, 0.14, 0.09)
        add(p.cheekbones, side * 0.5, p.eye_y - 0.32, 0.18, 0.14)

    top = p.eye_y + 0.08
    span = top - p.nose_tip
    ramp = tf.clip_by_value((top - Y) / span, 0.0, 1.0)
    cut = tf.sigmoid((Y - p.nose_tip + 0.015) / 0.012)
    across = tf.exp(-0.5 * tf.square(x / p.nose_width))
    ridge = p.nose_height * ramp * cut * across
    h = ridge + tf.add_n([g for g, *_ in terms])
    if not gradient:
        return h
    d_ramp = tf.where((ramp > 0) & (ramp < 1), -1.0 / span, 0.0)
    hx = -ridge * x / tf.square(p.nose_width) - tf.add_n([g * (x - cx) / (sx * sx) for g, cx, _, sx, _ in terms])
    hY = p.nose_height * across * (d_ramp * cut + ramp * cut * (1 - cut) / 0.012)
    hY = hY - tf.add_n([g * (Y - cy) / (sy * sy) for g, _, cy, _, sy in terms])
    return h, hx, hY * stretch


def _width(p, y):
    """Head half-width ``w(y)`` narrowing towards the jaw, and ``dw/dy``."""
    m = tf.clip_by_value(-y / p.aspect, 0.0, 1.0)
    return 1.0 - p.jaw * m * m, 2.0 * p.jaw * m / p.aspect


def _intersect(o, d, p, w, h):
    """Nearest hit ``t`` of rays ``o + t d`` with the quadric shifted by ``h``, and hit flags."""
    iw2, ia2, id2 = 1.0 / (w * w), 1.0 / tf.square(p.aspect), 1.0 / tf.square(p.depth)
    oz = o[2] - h
    a = d[0] * d[0] * iw2 + d[1] * d[1] * ia2 + d[2] * d[2] * id2
    b = o[0] * d[0] * iw2 + o[1] * d[1] * ia2 + oz * d[2] * id2
    c = o[0] * o[0] * iw2 + o[1] * o[1] * ia2 + oz * oz * id2 - 1.0
    disc = b * b - a * c
    return (-b + tf.sqrt(tf.maximum(disc, 0.0))) / a, disc > 0


def surface_height(p, x, y):
    """Front surface ``z(x, y)`` of the head in face coordinates, `(B, H, W)`."""
    w, _ = _width(p, y)
    inside = 1.0 - tf.square(x / w) - tf.square(y / p.aspect)
    return p.depth * tf.sqrt(tf.maximum(inside, 0.0)) + bumps(p, x, y)


def head_geometry(p, size: int) -> dict:
    """Ray-cast the posed heads.

    Returns:
        ``hit`` `(B, H, W)` bool; ``x``, ``y``, ``z`` face coordinates of the
        visible point; ``normals`` `(B, H, W, 3)` unit, camera frame;
        ``plane_x``, ``plane_y`` pixel positions in the head's image plane
        (roll undone, units of half the head width).
    """
    u, v = _grid(size)
    R = p.rotation
    cos_roll, sin_roll = tf.cos(p.roll), tf.sin(p.roll)
    px, py = (u - p.centre[:, 0, None, None]) / p.scale, (v - p.centre[:, 1, None, None]) / p.scale
    o = [R[:, 0, i, None, None] * px + R[:, 1, i, None, None] * py for i in range(3)]
    d = [R[:, 2, i, None, None] for i in range(3)]
    w, h = _width(p, o[1])[0], tf.zeros_like(px)
    for _ in range(GEOMETRY_ITERATIONS):
        t, hit = _intersect(o, d, p, w, h)
        x, y = o[0] + t * d[0], o[1] + t * d[1]
        w = _width(p, y)[0]
        h = bumps(p, x, y)
        w, h = _materialise(w, h)
    t, hit = _intersect(o, d, p, w, h)
    x, y, z = _materialise(*(o[i] + t * d[i] for i in range(3)))
    h, hx, hy = _materialise(*bumps(p, x, y, gradient=True))
    w, dw = _width(p, y)
    zq = tf.maximum(z - h, 0.0) / tf.square(p.depth)
    nf = [x / (w * w) - zq * hx, y / tf.square(p.aspect) - x * x * dw / (w * w * w) - zq * hy, zq]
    n = _materialise(*(tf.add_n([R[:, i, j, None, None] * nf[j] for j in range(3)]) for i in range(3)))
    inverse_length = 1.0 / tf.maximum(tf.sqrt(tf.add_n([c * c for c in n])), 1e-6)
    n = tf.stack([c * inverse_length for c in n], axis=-1)
    return {
        "hit": hit,
        "x": x,
        "y": y,
        "z": z,
        "normals": n,
        "plane_x": cos_roll * px + sin_roll * py,
        "plane_y": -sin_roll * px + cos_roll * py,
    }


def neck_geometry(p, geometry) -> dict:
    """A vertical cylinder under the head: ``neck`` `(B, H, W)` bool and its normals."""
    xn = geometry["plane_x"] / p.neck_width
    neck = (tf.abs(xn) < 1.0) & (geometry["plane_y"] < -0.3 * p.aspect) & ~geometry["hit"]
    nz = tf.sqrt(tf.maximum(1.0 - xn * xn, 0.0))
    normals = tf.stack([tf.cos(p.roll) * xn, tf.sin(p.roll) * xn, nz], axis=-1)
    return {"neck": neck, "normals": normals}


# ----------------------------------------------------------------------------- features


def feature_masks(p, geometry) -> dict:
    """Eyes, lash line, iris, pupil, mouth interior, teeth and scalp hair, `(B, H, W)` bool."""
    x, Y = geometry["x"], geometry["y"] * REFERENCE_ASPECT / p.aspect
    hit = geometry["hit"]
    ax = tf.abs(x)
    across = (ax - p.eye_x) / p.eye_width
    lid = p.eye_open * (1.0 - across * across)
    eye_dy = Y - p.eye_y
    eyes = hit & (tf.abs(across) < 1.0) & (tf.abs(eye_dy) < lid)
    lash = hit & (tf.abs(across) < 1.05) & (eye_dy >= lid) & (eye_dy < lid + 0.018) & (lid > 0)
    gaze_x = p.gaze[:, 0, None, None] * p.eye_width
    gaze_y = p.gaze[:, 1, None, None] * p.eye_open
    iris_radius = 0.42 * p.eye_width
    iris_r2 = (tf.square(ax - p.eye_x - tf.sign(x) * gaze_x) + tf.square(eye_dy - gaze_y)) / tf.square(iris_radius)
    mouth_across = x / (0.85 * p.mouth_width)
    opening = p.mouth_open * (1.0 - mouth_across * mouth_across)
    mouth = hit & (tf.abs(mouth_across) < 1.0) & (tf.abs(Y - p.mouth_y) < opening)
    teeth = mouth & (Y > p.mouth_y + 0.3 * opening) & (tf.abs(mouth_across) < 0.7)

    hairline = p.hairline + p.hairline_tilt * x - p.hairline_curve * (x * x)
    hairline = hairline + p.hairline_wave * tf.sin(40.0 * x + p.hairline_phase)
    hairline = hairline + 0.12 * (value_noise(p, "hairline", x, Y) - 0.5)
    sideburns = (ax > p.sideburns) & (Y > p.eye_y - 0.05 + 0.5 * (p.sideburns + 0.15 - ax))
    scalp = hit & ((Y > hairline) | sideburns)
    return {
        "eyes": eyes | lash,
        "lash": lash,
        "iris": eyes & (iris_r2 < 1.0),
        "pupil": eyes & (iris_r2 < 0.16),
        "mouth": mouth,
        "teeth": teeth,
        "scalp": scalp,
    }


def hair_volume(p, geometry):
    """Hair around the head, outside its silhouette, `(B, H, W)` bool."""
    px, py = geometry["plane_x"], geometry["plane_y"]
    rx, ry = 1.0 + p.volume, p.aspect * (1.0 + 0.6 * p.volume)
    lift = 0.35 * p.volume * p.aspect
    r2 = tf.square(px / rx) + tf.square((py - lift) / ry)
    above = py > p.hair_length * p.aspect
    long_hair = (p.hair_length < -0.5) & (tf.abs(px) < rx) & (py > p.hair_length * p.aspect) & (py < 0.0)
    return (((r2 < 1.0) & above) | long_hair) & ~geometry["hit"] & (p.volume > 0)


def skin_maps(p, geometry) -> dict:
    """Melanin and haemoglobin, `(B, H, W)` in [−1, 1], and the oiliness."""
    x, y = geometry["x"], geometry["y"]
    Y = y * REFERENCE_ASPECT / p.aspect
    ax = tf.abs(x)
    mottle = value_noise(p, "mel", x, Y) + 0.5 * value_noise(p, "mel_fine", x, Y)
    fmel = p.skin_type + p.mottle_mel * (2.0 * mottle - 1.5)
    fblood = p.blood_base + p.mottle_blood * (2.0 * value_noise(p, "blood", x, Y) - 1.0)
    fblood = fblood + p.flush * _gauss(ax, Y, 0.45, p.eye_y - 0.42, 0.2, 0.18)
    fblood = fblood + p.nose_red * _gauss(x, Y, 0.0, p.nose_tip + 0.03, 0.08, 0.06)
    under_eye = _gauss(ax, Y, p.eye_x, p.eye_y - 0.085, 0.11, 0.035)
    fmel = fmel + p.under_eye * under_eye
    fblood = fblood + 0.5 * p.under_eye * under_eye

    lips = tf.sigmoid((1.0 - tf.square(x / p.mouth_width) - tf.square((Y - p.mouth_y) / p.lip_thickness)) / 0.15)
    lip_line = lips * _gauss(x, Y, 0.0, p.mouth_y, p.mouth_width, 0.018)
    fblood = fblood + p.lip_red * lips + 0.3 * lip_line
    fmel = fmel + 0.35 * lip_line
    fmel = fmel + p.lip_mel * lips

    arch = p.eye_y + p.brow_lift + p.brow_arch * (1.0 - tf.square((ax - p.eye_x) / 0.2))
    along = tf.clip_by_value(1.0 - tf.square((ax - p.eye_x - 0.02) / 0.17), 0.0, 1.0)
    thickness = p.brow_thickness * (1.2 - 0.6 * tf.clip_by_value((ax - p.eye_x + 0.15) / 0.3, 0.0, 1.0))
    brows = along * tf.sigmoid((thickness - tf.abs(Y - arch)) / 0.008)
    fmel = fmel + p.brow * brows
    fblood = fblood - 0.3 * brows

    cheeks = tf.minimum(
        _gauss(ax, Y, 0.3, p.eye_y - 0.3, 0.3, 0.2) + _gauss(x, Y, 0.0, p.nose_tip + 0.1, 0.12, 0.15), 1.0
    )
    freckles = tf.clip_by_value(
        (value_noise(p, "freckles", x, Y) - p.freckle_density) / (1.0 - p.freckle_density), 0.0, 1.0
    )
    fmel = fmel + p.freckles * cheeks * freckles
    moles = tf.clip_by_value((value_noise(p, "moles", x, Y) - p.mole_density) / (1.0 - p.mole_density), 0.0, 1.0)
    fmel = fmel + p.moles * tf.sqrt(moles)
    ridged = 1.0 - tf.abs(2.0 * value_noise(p, "vessels", x, Y) - 1.0)
    fblood = fblood + p.vessels * cheeks * tf.clip_by_value((ridged - 0.9) / 0.1, 0.0, 1.0)

    beard = tf.sigmoid((p.nose_tip - 0.08 + p.stubble_line * ax - Y) / 0.03) * (1.0 - lips)
    beard = beard * tf.sigmoid((0.68 - ax) / 0.05) * _float(p.stubble > 0)
    grain = value_noise(p, "stubble", x, Y)
    fmel = fmel + p.stubble * beard * (0.3 + 1.0 * grain * grain)

    if hasattr(p, "patch_mel"):
        fmel, fblood = wide_patterns(p, x, Y, fmel, fblood)

    oily = tf.maximum(
        tf.maximum(_gauss(x, Y, 0.0, 0.6, 0.45, 0.18), _gauss(x, Y, 0.0, -0.05, 0.1, 0.3)),
        _gauss(ax, Y, 0.45, -0.15, 0.18, 0.18),
    )
    return {
        "fmel": tf.clip_by_value(fmel, -1.0, 1.0),
        "fblood": tf.clip_by_value(fblood, -1.0, 1.0),
        "oil": p.oil * (0.25 + 0.75 * oily) * (1.0 - 0.8 * beard),
    }


def wide_patterns(p, x, y, fmel, fblood):
    """Add the ``wide`` variety's patterns (:func:`_wide_skin`) to melanin and haemoglobin, `(B, H, W)`."""

    def blotches(pigment, threshold):
        coarse = wide_noise(p, f"{pigment}_coarse", x, y)
        field = p.patch_scale * coarse + (1.0 - p.patch_scale) * wide_noise(p, f"{pigment}_fine", x, y)
        return tf.sigmoid((field - threshold) / 0.06)

    fmel = fmel + p.patch_mel * blotches("melanin", p.patch_mel_threshold)
    fmel = fmel + p.gradient_mel * (tf.cos(p.gradient_angle) * x + tf.sin(p.gradient_angle) * y)
    fblood = fblood + p.patch_blood * blotches("blood", p.patch_blood_threshold)
    spots = tf.clip_by_value((wide_noise(p, "spots", x, y) - p.spot_density) / (1.0 - p.spot_density), 0.0, 1.0)
    fblood = fblood + p.spots_blood * tf.sqrt(spots)
    fblood = fblood + p.mottle_blood_fine * (2.0 * wide_noise(p, "mottle", x, y) - 1.0)
    return fmel, fblood


# ----------------------------------------------------------------------------- light


def _light_list(p):
    """Light directions `(B, 3)` and powers `(B, 1, 1)`: key, fill, rim."""
    return [(p.key, p.key_power), (p.fill, p.fill_power), (p.rim, p.rim_power)]


def self_shadow(p, geometry, direction):
    """Visibility `(B, H, W)` of a distant light over the head's own height field.

    Marches two steps from each visible point towards the light (in face
    coordinates) and darkens where the surface rises above the ray.
    """
    df = tf.einsum("bji,bj->bi", p.rotation, direction)
    visible = tf.ones_like(geometry["x"])
    for step in SHADOW_STEPS:
        x = geometry["x"] + step * df[:, 0, None, None]
        y = geometry["y"] + step * df[:, 1, None, None]
        above = surface_height(p, x, y) - (geometry["z"] + step * df[:, 2, None, None])
        visible = visible * tf.sigmoid(-above / 0.015)
    return visible


def occluder_shadow(p, geometry):
    """A soft-edged cast shadow from something outside the picture, `(B, H, W)`."""
    normal = p.occluder_normal
    edge = normal[:, 0, None, None] * geometry["plane_x"] + normal[:, 1, None, None] * geometry["plane_y"]
    return 1.0 - p.occluder_depth * tf.sigmoid((edge - p.occluder_offset) / p.occluder_softness)


def _dot(normals, direction):
    """``normals · direction`` `(B, H, W)` of `(B, H, W, 3)` and `(B, 3)`, as elementwise products that
    XLA fuses with their consumers (an einsum is a batched matrix product with a contraction of 3)."""
    return tf.add_n([normals[..., i] * direction[:, i, None, None] for i in range(3)])


def shade(p, normals, visibility, oil=None):
    """Grey diffuse shading and specular maps, `(B, H, W)`, of the face's lights.

    Args:
        normals: `(B, H, W, 3)` unit normals, camera frame.
        visibility: `(B, H, W)` key-light visibility (cast shadows).
        oil: `(B, H, W)` specular strength (``p.gloss`` is the exponent) of
            the key and fill lights' highlights; ``None`` for no specular map.
    """
    diffuse = p.ambient + p.sky * normals[..., 1]
    specular = tf.zeros_like(diffuse)
    for k, (direction, power) in enumerate(_light_list(p)):
        cosine = _dot(normals, direction)
        lit = power * visibility if k == 0 else power
        diffuse = diffuse + lit * tf.maximum(cosine, 0.0)
        if oil is not None and k < 2:
            half = tf.math.l2_normalize(direction + tf.constant([0.0, 0.0, 1.0]), axis=-1)
            lobe = tf.pow(tf.maximum(_dot(normals, half), 1e-6), p.gloss)
            specular = specular + lit * lobe * _float(cosine > 0)
    return tf.maximum(diffuse, SHADING_FLOOR), (0.0 if oil is None else oil) * specular


def sh_basis(normals: np.ndarray) -> np.ndarray:
    """`(..., 9)` such that ``basis @ sh`` is :func:`~bioface_tf.data.shading.irradiance` of ``sh`` (NumPy)."""
    x, y, z = normals[..., 0], normals[..., 1], normals[..., 2]
    c1, c2, c3, c4, c5 = sh_shading.C1, sh_shading.C2, sh_shading.C3, sh_shading.C4, sh_shading.C5
    terms = [np.full_like(x, c4), 2 * c2 * y, 2 * c2 * z, 2 * c2 * x, 2 * c1 * x * y, 2 * c1 * y * z,
             c3 * z * z - c5, 2 * c1 * x * z, c1 * (x * x - y * y)]
    return np.stack(terms, axis=-1)


def fit_sh(normals: np.ndarray, shading: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Least-squares second-order SH lighting `(B, 9)` of grey shading inside the mask (NumPy).

    Args:
        normals: `(B, H, W, 3)`; shading, mask: `(B, H, W)`.

    Returns:
        ``sh`` with ``sh_basis(n) @ sh`` closest to the shading in the mask.
    """
    inside = mask > 0.5
    counts = inside.reshape(len(inside), -1).sum(axis=1)
    basis = sh_basis(normals[inside].astype(np.float64))  # every face's pixels, face after face
    values = shading[inside].astype(np.float64)
    gram, rhs = np.empty((len(counts), 9, 9)), np.empty((len(counts), 9))
    for i, (start, stop) in enumerate(zip(np.cumsum(counts) - counts, np.cumsum(counts))):
        part = basis[start:stop]
        gram[i], rhs[i] = part.T @ part, part.T @ values[start:stop]
    ridge = SH_RIDGE * np.maximum(np.trace(gram, axis1=1, axis2=2), 1.0)[:, None, None] * np.eye(9)
    return np.linalg.solve(gram + ridge, rhs[..., None])[..., 0]


# ----------------------------------------------------------------------------- the scene


def _pixel_grid(p, size: int):
    """:func:`_grid` broadcast to the batch, `(B, H, W)` each."""
    u, v = _grid(size)
    b = p.top.shape[0]
    return tf.broadcast_to(u, (b, size, size)), tf.broadcast_to(v, (b, size, size))


def _clutter_noise(p, size: int) -> list:
    """The background's three value-noise fields, `(B, H, W)` each."""
    u, v = _pixel_grid(p, size)
    return [value_noise(p, f"background_{c}", u, v, (1.0, 1.0)) for c in range(3)]


def _background_image(p, size: int, noise=None):
    """Cluttered backgrounds in linear sRGB, `(B, H, W, 3)` (``noise``: :func:`_clutter_noise`'s, if computed)."""
    u, v = _pixel_grid(p, size)
    rows = (1.0 - v[..., None]) * 0.5
    image = (1.0 - rows) * p.top[:, None, None, :] + rows * p.bottom[:, None, None, :]
    noise = _clutter_noise(p, size) if noise is None else noise
    chroma = p.clutter_chroma[..., None] * (tf.stack(noise, -1) - 0.5)
    blobs = tf.clip_by_value(noise[0][..., None] * p.clutter_tint[:, None, None, :] + chroma, 0.0, 1.0)
    clutter = p.clutter[..., None]
    image = image * (1.0 - clutter) + clutter * 0.8 * blobs
    for k in range(N_BACKGROUND_BOXES):
        box = p.boxes[:, k, :, None, None]
        inside = (u > box[:, 0]) & (u < box[:, 2]) & (v > box[:, 1]) & (v < box[:, 3]) & (p.box_on[:, k, None, None] > 0)
        colour = p.box_colours[:, k][:, None, None, :] * (0.8 + 0.2 * v[..., None])
        image = tf.where(inside[..., None], colour, image)
    return tf.square(image)


def _surface(p, size: int) -> dict:
    """Stage 1: head and neck geometry, feature masks and skin maps (a flat dict)."""
    geometry = head_geometry(p, size)
    neck = neck_geometry(p, geometry)
    surface = {**geometry, "neck": neck["neck"], "neck_normals": neck["normals"]}
    surface.update(feature_masks(p, geometry))
    surface.update(skin_maps(p, geometry))
    surface["hair"] = surface["scalp"] | hair_volume(p, geometry)
    neck_mottle = value_noise(p, "mel", geometry["plane_x"], geometry["plane_y"] / p.aspect)
    surface["neck_fmel"] = tf.clip_by_value(p.skin_type + 0.05 + p.mottle_mel * (2.0 * neck_mottle - 1.0), -1.0, 1.0)
    return surface


def _lighting(p, surface: dict) -> dict:
    """Stage 2: which pixels are skin, cast shadows, shading and specular maps."""
    hit, neck, hair = surface["hit"], surface["neck"], surface["hair"]
    normals = tf.where(hit[..., None], surface["normals"], tf.where(neck[..., None], surface["neck_normals"], 0.0))
    visibility = tf.where(hit, self_shadow(p, surface, p.key), 1.0)
    chin = surface["plane_y"] + 0.75 * p.aspect
    visibility = visibility * tf.where(neck, 0.3 + 0.7 * tf.sigmoid(chin / 0.12), 1.0)
    visibility = visibility * occluder_shadow(p, surface)
    shading, specular = shade(p, normals, visibility, surface["oil"])
    shoulders = tf.square(surface["plane_x"] / p.shirt_width) + tf.square(
        (surface["plane_y"] + 2.6 * p.aspect) / (1.3 * p.aspect)
    )
    body = (shoulders < 1.0) & ~hit & ~hair
    neck_skin = neck & ~hair & ~body
    mask = (hit & ~(surface["eyes"] | surface["mouth"] | hair)) | neck_skin
    return {
        "fmel": tf.where(neck_skin, surface["neck_fmel"], surface["fmel"]),
        "fblood": tf.where(neck_skin, p.blood_base, surface["fblood"]),
        "shading": tf.where(mask, shading, SHADING_FLOOR),
        "specmask": tf.where(mask, specular, 0.0),
        "mask": _float(mask),
        "normals": tf.where((hit | neck_skin)[..., None], normals, 0.0),
        "lit": shading,
        "specular": specular,
        "body": body,
        "labels": _labels(mask, hair, surface["eyes"], surface["mouth"], body),
    }


LABELS = ("background", "skin", "hair", "eyes", "mouth", "clothes")


def _labels(mask, hair, eyes, mouth, body):
    """What each pixel shows, `(B, H, W)` int32 indices into :data:`LABELS`."""
    labels = tf.zeros_like(mask, tf.int32)
    for index, region in ((5, body), (2, hair), (4, mouth), (3, eyes), (1, mask)):
        labels = tf.where(region, index, labels)
    return labels


def _layer_fields(p, surface: dict, light: dict, size: int) -> dict:
    """Stage 3a: the per-pixel numbers of the non-skin layer (noise, hair light, catchlights), `(B, H, W)`.

    Computed as a stage of their own: fused into the colour compositing of
    :func:`_composite`, XLA would evaluate them once per colour channel.
    """
    fields = dict(zip(("clutter_0", "clutter_1", "clutter_2"), _clutter_noise(p, size)))
    fields.update(_hair_fields(p, surface, light["lit"]))
    fields["catchlight"] = 0.5 * tf.square(light["specular"] / tf.maximum(p.oil, 1e-3)) * _float(surface["iris"])
    return fields


def _composite(p, surface: dict, light: dict, fields: dict, size: int) -> dict:
    """Stage 3b: everything that is not skin, in linear sRGB, from :func:`_layer_fields`."""
    shading = light["lit"]
    overlay = _background_image(p, size, [fields[f"clutter_{c}"] for c in range(3)])
    overlay = tf.where(light["body"][..., None], p.shirt[:, None, None, :] * shading[..., None] * 0.7, overlay)
    overlay = _paint_hair(p, fields, surface["hair"], overlay)
    if hasattr(p, "context_gain"):
        overlay = overlay * p.context_gain[..., None]
    overlay = _paint_face_features(p, surface, shading, fields["catchlight"], overlay)
    return {"overlay": overlay}


def _layers(p, surface: dict, light: dict, size: int) -> dict:
    """Stage 3: everything that is not skin, in linear sRGB."""
    return _composite(p, surface, light, _layer_fields(p, surface, light, size), size)


SCENE_KEYS = ("fmel", "fblood", "shading", "specmask", "mask", "normals", "labels")


def build_scene(p, size: int) -> dict:
    """Decoder inputs, ground truth and the non-skin layer of a batch (eagerly or traced).

    Args:
        p: the parameters of :func:`sample_parameters`, as a namespace.

    Returns:
        ``fmel``, ``fblood``, ``shading`` (exact, floored), ``specmask``
        `(B, H, W)`; ``mask`` `(B, H, W)` skin; ``normals`` `(B, H, W, 3)`;
        ``sh`` `(B, 9)` fitted grey lighting; ``overlay`` `(B, H, W, 3)`
        linear sRGB of everything that is not skin.
    """
    surface = _surface(p, size)
    light = _lighting(p, surface)
    return {**{k: light[k] for k in SCENE_KEYS}, **_layers(p, surface, light, size)}


def pack(params: dict[str, np.ndarray]) -> tuple[tuple, tuple]:
    """Parameters as two arrays ``(numbers (B, P), noise_keys)`` and their layout."""
    numbers = {k: v for k, v in params.items() if k != "noise_keys"}
    layout = tuple((k, v.shape[1:]) for k, v in numbers.items())
    packed = np.concatenate([v.reshape(len(v), -1) for v in numbers.values()], axis=1)
    return (packed, params["noise_keys"]), layout


def unpack(arrays, layout: tuple) -> types.SimpleNamespace:
    """The namespace of parameters from :func:`pack`'s arrays (tensors inside a graph)."""
    packed, keys = arrays
    named, start = {}, 0
    for key, shape in layout:
        width = int(np.prod(shape))
        named[key] = tf.reshape(packed[:, start : start + width], (-1, *shape))
        start += width
    return types.SimpleNamespace(**named, noise_keys=keys)


@functools.lru_cache(maxsize=None)
def _compiled(fn, layout: tuple, *static):
    """``fn(parameters, *args, *static)`` as an XLA computation of ``(packed arrays, *args)``.

    Each stage runs as its own computation, so that its results are computed
    once rather than re-fused into every use downstream.
    """

    return tf.function(functools.partial(_run_stage, fn, layout, static), jit_compile=True)


def _run_stage(fn, layout: tuple, static: tuple, arrays, *args):
    return fn(unpack(arrays, layout), *args, *static)


def _hair_fields(p, geometry, shading) -> dict:
    """Hair's strand texture, light and sheen, `(B, H, W)`: lit as the face where it covers the head,
    as a rounded volume around it."""
    strands = value_noise(p, "hair", geometry["plane_x"], geometry["plane_y"], (1.6, 2.2))
    rx = geometry["plane_x"] / (1.0 + p.volume)
    ry = geometry["plane_y"] / (p.aspect * (1.0 + 0.6 * p.volume))
    nz = tf.sqrt(tf.clip_by_value(1.0 - rx * rx - ry * ry, 0.05, 1.0))
    rounded = tf.math.l2_normalize(tf.stack([rx, ry, nz], -1), axis=-1)
    around = shade(p, rounded, tf.ones_like(rx))[0]
    light = tf.where(geometry["hit"], shading, around)
    sheen = p.hair_shine * tf.square(tf.clip_by_value(1.0 - tf.abs(ry - 0.45), 0.0, 1.0)) * strands
    return {"strands": strands, "hair_light": light, "sheen": sheen}


def _paint_hair(p, fields, hair, overlay):
    """Hair: strand texture along the head's height, lit by the face's lights (:func:`_hair_fields`)."""
    strands, light, sheen = fields["strands"], fields["hair_light"], fields["sheen"]
    tone = (0.55 + 0.9 * strands)[..., None] * p.hair_colour[:, None, None, :]
    colour = tone * light[..., None] + (0.2 * sheen * light)[..., None]
    return tf.where(hair[..., None], colour, overlay)


def _paint_face_features(p, features, shading, catchlight, overlay):
    """Eyes (sclera, iris, pupil, lash line, catchlight), mouth interior and teeth."""
    light = shading[..., None]
    eye = tf.where(features["iris"][..., None], p.iris_colour[:, None, None, :], p.sclera[:, None, None, :])
    eye = tf.where(features["pupil"][..., None], 0.005, eye)
    eye = tf.where(features["lash"][..., None], 0.01, eye) * light
    eye = eye + catchlight[..., None]
    interior = tf.constant([0.04, 0.008, 0.008])
    mouth = tf.where(features["teeth"][..., None], p.teeth[:, None, None, :], interior)
    overlay = tf.where(features["mouth"][..., None], mouth * light, overlay)
    return tf.where(features["eyes"][..., None], eye, overlay)


# ----------------------------------------------------------------------------- camera


def blur(images, sigma):
    """Separable Gaussian blur, one ``sigma`` `(B,)` (pixels) per image `(B, H, W, C)`."""
    _, height, width, _ = images.shape
    radius = BLUR_TAPS // 2
    offsets = tf.range(BLUR_TAPS, dtype=tf.float32) - radius
    taps = tf.exp(-0.5 * tf.square(offsets[None] / tf.maximum(sigma[:, None], 1e-3)))
    taps = taps / tf.reduce_sum(taps, axis=1, keepdims=True)
    padded = tf.pad(images, [[0, 0], [radius, radius], [0, 0], [0, 0]], mode="SYMMETRIC")
    images = tf.add_n([taps[:, k, None, None, None] * padded[:, k : k + height] for k in range(BLUR_TAPS)])
    padded = tf.pad(images, [[0, 0], [0, 0], [radius, radius], [0, 0]], mode="SYMMETRIC")
    return tf.add_n([taps[:, k, None, None, None] * padded[:, :, k : k + width] for k in range(BLUR_TAPS)])


def srgb_encode(linear):
    """The sRGB transfer curve (as :func:`bioface_tf.physics.srgb_encode`, via exp and log, faster under XLA)."""
    x = tf.clip_by_value(linear, 0.0, 1.0)
    curved = 1.055 * tf.exp(tf.math.log(tf.maximum(x, SRGB_LINEAR_LIMIT)) / 2.4) - 0.055
    return tf.where(x <= SRGB_LINEAR_LIMIT, 12.92 * x, curved)


def camera_effects(p, linear, size: int, strength, mask=None):
    """Exposure, white-balance error, blur, noise and sRGB, `(B, H, W, 3)` in [0, 1].

    ``strength`` 1 applies them, 0 gives the plain sRGB encoding of ``linear``.
    With ``skin_metering`` among the parameters (the ``wide`` varieties) and
    the skin ``mask`` `(B, H, W)`, the exposure also meters the skin, as a
    camera's face-priority auto-exposure does: it is multiplied by
    ``(SKIN_METERING_TARGET / mean skin luminance) ** skin_metering``, so a
    dark face comes out brighter than its light.
    """
    exposure = p.exposure
    if mask is not None and hasattr(p, "skin_metering"):
        luminance = tf.reduce_sum(linear * tf.constant(REC709_LUMA), axis=-1)
        skin = tf.reduce_sum(luminance * mask, axis=(1, 2), keepdims=True) / tf.maximum(
            tf.reduce_sum(mask, axis=(1, 2), keepdims=True), 1.0
        )
        ratio = tf.clip_by_value(SKIN_METERING_TARGET / tf.maximum(skin, 1e-4), 0.25, 8.0)
        exposure = exposure * tf.pow(ratio, p.skin_metering)
    gain = 1.0 + strength * (exposure[..., None] * p.white_balance_error[:, None, None, :] - 1.0)
    image = blur(linear * gain, strength * tf.reshape(p.blur, (-1,)) * (size / 64.0))
    sigma = tf.sqrt(p.noise_gain[..., None] * tf.maximum(image, 0.0) + tf.square(p.noise_floor[..., None]))
    encoded = srgb_encode(image + strength * sigma * pixel_noise(p, image.shape))
    if hasattr(p, "tone_gamma"):
        return tone_curve(encoded, 1.0 + strength * (p.tone_gamma[..., None] - 1.0), strength * p.tone_contrast[..., None])
    return encoded


def tone_curve(encoded, gamma, contrast):
    """A camera's own rendering on top of the sRGB curve, per channel, [0, 1] → [0, 1].

    ``encoded ** gamma`` (brighter or darker mid-tones), then an S-curve
    ``y + contrast·y(1 − y)(2y − 1)`` (more contrast for ``contrast > 0``;
    monotonic for ``|contrast| ≤ 1``). Both leave 0 and 1 where they are;
    ``gamma`` 1 and ``contrast`` 0 leave the image as it is.
    """
    y = tf.pow(tf.clip_by_value(encoded, 0.0, 1.0), gamma)
    return y + contrast * y * (1.0 - y) * (2.0 * y - 1.0)


def jpeg(images: np.ndarray, quality: np.ndarray) -> np.ndarray:
    """JPEG round trip of the images `(B, H, W, 3)` whose ``quality`` `(B,)` is > 0."""
    images = images.copy()
    for i in np.flatnonzero(quality > 0):
        pixels = (np.clip(images[i], 0, 1) * 255).round().astype(np.uint8)
        _, data = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, int(quality[i])])
        images[i] = cv2.imdecode(data, cv2.IMREAD_UNCHANGED).astype(np.float32) / 255.0
    return images


# ----------------------------------------------------------------------------- rendering


def _skin_linear(p, maps):
    """The decoder's linear sRGB of ``maps`` (:data:`MAPS`, each `(B, H, W, 1)`), `(B, H, W, 3)`.

    With ``camera_curves`` among the parameters (:func:`spectral_cameras`),
    the decoder's stages run with those curves and their own raw→XYZ matrix
    in place of the PCA camera of ``b``.
    """
    decoder = _decoder()
    if not hasattr(p, "camera_curves"):
        return decoder({**maps, "b": p.b, "light_weights": p.light_weights, "cct": p.cct})["linear_srgb"]
    if not decoder.built:
        decoder.build(None)
    formed = decoder.formation({
        "skin_reflectance": decoder.skin({"fmel": maps["fmel"], "fblood": maps["fblood"]}),
        "illuminant_spd": decoder.illuminant({"light_weights": p.light_weights, "cct": p.cct}),
        "camera_sensitivity": p.camera_curves,
        "shading": maps["shading"],
        "specmask": maps["specmask"],
    })
    balanced = decoder.white_balance({"raw": formed["raw"], "light_colour": formed["light_colour"]})
    return decoder.to_linear_srgb({"white_balanced": balanced, "T_raw2xyz": p.raw_to_xyz})


def _image(p, scene):
    """Stage 4: the decoder's skin inside the mask over the other layers, linear sRGB `(B, H, W, 3)`."""
    skin = _skin_linear(p, {k: scene[k][..., None] for k in MAPS})
    mask = scene["mask"][..., None]
    return mask * skin + (1.0 - mask) * scene["overlay"]


def _camera_stage(p, linear, strength, mask, size):
    return camera_effects(p, linear, size, strength, mask)


def _albedo(p, fmel, fblood, mask):
    """The unlit face in sRGB (shading 1, no specular), zero off the mask, `(B, H, W, 3)`."""
    maps = {"fmel": fmel, "fblood": fblood, "shading": tf.ones_like(fmel), "specmask": tf.zeros_like(fmel)}
    linear = _skin_linear(p, maps)
    return _decoder().encoding(linear) * mask


@functools.lru_cache(maxsize=1)
def _decoder():
    from bioface_tf.physics import PhysicsDecoder

    return PhysicsDecoder()


def _render_block(
    key: int, block: int, size: int, sensor: bool, albedo: bool, variety: str = "standard"
) -> dict[str, np.ndarray]:
    """Faces ``block·BLOCK … (block+1)·BLOCK − 1`` of ``key`` through the compiled stages."""
    params = sample_parameters(np.random.default_rng([key, block]), BLOCK, variety)
    arrays, layout = pack(params)
    arrays = tuple(tf.constant(a) for a in arrays)
    surface = _compiled(_surface, layout, size)(arrays)
    light = _compiled(_lighting, layout)(arrays, surface)
    fields = _compiled(_layer_fields, layout, size)(arrays, surface, light)
    scene = {**{k: light[k] for k in SCENE_KEYS}, **_compiled(_composite, layout, size)(arrays, surface, light, fields)}
    linear = _compiled(_image, layout)(arrays, scene)
    strength = tf.constant(1.0 if sensor else 0.0)
    scene["srgb"] = _compiled(_camera_stage, layout, size)(arrays, linear, strength, scene["mask"])
    if albedo:
        maps = [scene[k][..., None] for k in ("fmel", "fblood", "mask")]
        scene["albedo"] = _compiled(_albedo, layout)(arrays, *maps)
    out = {k: v.numpy() for k, v in scene.items() if k != "overlay"}
    if sensor:
        out["srgb"] = jpeg(out["srgb"], params["jpeg_quality"].reshape(-1))
    out.update({k: params[k] for k in VECTORS})
    return out


def render_batch(
    rng_or_seed,
    batch_size: int,
    image_size: int = 64,
    first: int = 0,
    sensor: bool = True,
    albedo: bool = False,
    variety: str = "standard",
) -> dict[str, np.ndarray]:
    """Render faces ``first … first + batch_size − 1`` with their ground truth (NumPy, float32).

    Faces are drawn :data:`BLOCK` at a time, block ``k`` (faces ``k·BLOCK``
    onwards) from ``default_rng([seed, k])``, so face ``i`` of an integer
    seed is the same whatever the batch it is asked for in. A generator
    gives the seed (one draw from it). One XLA compilation per image size
    serves every batch size.

    Args:
        sensor: apply camera effects; without them ``srgb`` is exactly the
            sRGB encoding of the decoder's rendering of the ``gt_*`` maps
            inside the mask.
        albedo: also return ``albedo`` `(B, H, W, 3)`, the unlit noise-free
            face in sRGB (shading 1, no specular), zero off the mask.
        variety: the pigment distribution, :data:`VARIETIES`.

    Returns:
        ``srgb`` `(B, H, W, 3)` in [0, 1]; ``mask`` `(B, H, W, 1)`; ``normals``
        `(B, H, W, 3)`; ``shading`` `(B, H, W, 1)` (the CelebA pseudo ground
        truth from ``normals`` and ``lighting``); ``shading_valid``,
        ``gt_valid`` `(B,)`; ``lighting`` `(B, 3, 9)`; ``gt_fmel``,
        ``gt_fblood``, ``gt_shading``, ``gt_specmask`` `(B, H, W, 1)`;
        ``gt_b`` `(B, 2)`, ``gt_light_weights`` `(B, 14)`, ``gt_cct`` `(B, 1)`;
        ``labels`` `(B, H, W)` int32, what each pixel shows (:data:`LABELS`).
    """
    key = int(rng_or_seed.integers(2**62)) if isinstance(rng_or_seed, np.random.Generator) else int(rng_or_seed)
    blocks = range(first // BLOCK, -(-(first + batch_size) // BLOCK))
    rendered = [_render_block(key, k, image_size, sensor, albedo, variety) for k in blocks]
    skip = first - blocks[0] * BLOCK
    return _outputs({k: np.concatenate([r[k] for r in rendered])[skip : skip + batch_size] for k in rendered[0]})


def _outputs(scene: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The batch dict of :func:`render_batch` from rendered blocks' arrays."""
    batch_size = len(scene["srgb"])
    mask = scene["mask"][..., None]
    sh = fit_sh(scene["normals"], scene["shading"], scene["mask"])
    lighting = np.repeat(sh[:, None, :] / sh_shading.REC601_LUMA.sum(), 3, axis=1).astype(np.float32)
    pseudo = sh_shading.grey_shading(scene["normals"], lighting)[..., None]
    out = {
        "srgb": scene["srgb"],
        "mask": mask,
        "normals": scene["normals"],
        "shading": np.where(mask > 0.5, pseudo, 0.0).astype(np.float32),
        "shading_valid": np.ones(batch_size, np.float32),
        "lighting": lighting,
        "gt_fmel": scene["fmel"][..., None],
        "gt_fblood": scene["fblood"][..., None],
        "gt_shading": (scene["shading"] * scene["mask"])[..., None],
        "gt_specmask": scene["specmask"][..., None],
        "gt_b": scene["b"],
        "gt_light_weights": scene["light_weights"],
        "gt_cct": scene["cct"],
        "gt_valid": np.ones(batch_size, np.float32),
        "labels": scene["labels"],
    }
    if "albedo" in scene:
        out["albedo"] = scene["albedo"]
    return out


STREAM_MAPS = {"srgb": 3, "mask": 1, "normals": 3, "shading": 1, "gt_fmel": 1, "gt_fblood": 1, "gt_shading": 1,
               "gt_specmask": 1}


def _stream_spec(batch_size: int, size: int) -> dict:
    spec = {k: tf.TensorSpec((batch_size, size, size, c), tf.float32) for k, c in STREAM_MAPS.items()}
    spec.update({k: tf.TensorSpec((batch_size,), tf.float32) for k in ("shading_valid", "gt_valid")})
    spec.update({f"gt_{k}": tf.TensorSpec((batch_size, d), tf.float32) for k, d in VECTORS.items()})
    return spec


def make_stream_dataset(
    batch_size: int,
    image_size: int = 64,
    seed: int = 0,
    preprocessing: str = "reference",
    flip: bool = False,
    sensor: bool = True,
    workers: int = 2,
    prefetch: int = 4,
    variety: str = "standard",
) -> tf.data.Dataset:
    """An endless ``tf.data.Dataset`` of freshly rendered batches.

    Batch ``k`` holds faces ``k·B … (k+1)·B − 1`` of ``seed`` (those of
    :func:`render_batch`), whatever the number of workers. Elements have the keys, shapes and dtypes of
    :func:`~bioface_tf.data.pipeline.make_dataset` with ``ground_truth=True``
    (``image`` preprocessed, ``srgb``, ``mask``, ``normals``, ``shading``,
    ``shading_valid``, ``gt_*``), plus ``gt_valid`` `(B,)` = 1.

    Args:
        flip: mirror half of the faces (chosen from the seed), as the
            pipeline does.
        sensor: apply camera effects (exposure, white balance, blur, noise,
            JPEG).
        workers: threads rendering blocks of faces at once.
        prefetch: blocks of :data:`BLOCK` faces rendered ahead.
        variety: the pigment distribution, :data:`VARIETIES`.
    """
    from bioface_tf.data.pipeline import PREPROCESSING, flip_horizontally, preprocess
    from bioface_tf.errors import DataError

    if preprocessing not in PREPROCESSING:
        raise DataError(f"unknown preprocessing '{preprocessing}' (choose from {', '.join(PREPROCESSING)})")
    if variety not in VARIETIES:
        raise DataError(f"unknown face variety '{variety}' (choose from {', '.join(VARIETIES)})")
    spec = _stream_spec(batch_size, image_size)
    keys = list(spec)

    def batches():
        faces = render_blocks(seed, image_size, itertools.count(), sensor=sensor, workers=workers, depth=prefetch,
                              variety=variety)
        buffered, count = [], 0
        for k in itertools.count():
            while count < batch_size:
                block = next(faces)
                buffered.append(block)
                count += len(block["srgb"])
            joined = {key: np.concatenate([b[key] for b in buffered]) for key in buffered[0]}
            rest = {key: value[batch_size:] for key, value in joined.items()}
            buffered, count = [rest], count - batch_size
            mirror = np.random.default_rng([seed, k, 7]).random(batch_size) < 0.5
            yield {**{key: joined[key][:batch_size] for key in keys}, "mirror": mirror & flip}

    # XLA's vectorised power function: a third of the CPU time of TensorFlow's kernel, same values to float rounding
    network_input = tf.function(functools.partial(preprocess, mode=preprocessing), jit_compile=True)

    def finish(batch):
        mirror = batch.pop("mirror")
        if flip:
            batch = flip_horizontally(batch, mirror)
        batch["image"] = network_input(batch["srgb"])
        return batch

    signature = {**spec, "mirror": tf.TensorSpec((batch_size,), tf.bool)}
    dataset = tf.data.Dataset.from_generator(batches, output_signature=signature)
    return dataset.map(finish, num_parallel_calls=2, deterministic=True).prefetch(1)


def render_blocks(seed: int, size: int, blocks, sensor: bool = True, albedo: bool = False, workers: int = 2,
                  depth: int = 4, variety: str = "standard"):
    """The given blocks of ``seed``, in order, as :func:`render_batch` dicts of :data:`BLOCK` faces each.

    Up to ``depth`` blocks are rendered ahead by ``workers`` threads (the
    compiled stages release the GIL, so two threads keep two cores busy).
    Block ``k`` holds the faces ``k·BLOCK …`` of :func:`render_batch`.

    Args:
        blocks: an iterable of block indices (it may be endless).
    """

    def block(k):
        return _outputs(_render_block(int(seed), k, size, sensor, albedo, variety))

    blocks = iter(blocks)
    pool = concurrent.futures.ThreadPoolExecutor(workers)
    try:
        pending = collections.deque(pool.submit(block, k) for k in itertools.islice(blocks, depth))
        while pending:
            done = pending.popleft().result()
            pending.extend(pool.submit(block, k) for k in itertools.islice(blocks, 1))
            yield done
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
