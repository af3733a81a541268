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

import functools
import itertools
import queue
import threading
import types

import cv2
import numpy as np
import tensorflow as tf

from bioface_tf.data import shading as sh_shading
from bioface_tf.data.synth import random_illuminant
from bioface_tf.physics import srgb_encode

try:
    from tensorflow.compiler.tf2xla.python.xla import optimization_barrier as _barrier
except ImportError:  # pragma: no cover
    def _barrier(*tensors):
        return tensors

N_ILLUMINANTS = 14
SHADING_FLOOR = 1e-3
REFERENCE_ASPECT = 1.3
BLUR_TAPS = 5
SH_RIDGE = 1e-4
GEOMETRY_ITERATIONS = 2
SHADOW_STEPS = (0.12,)
BLOCK = 32
N_BACKGROUND_BOXES = 3

MAPS = ("fmel", "fblood", "shading", "specmask")
VECTORS = {"b": 2, "light_weights": N_ILLUMINANTS, "cct": 1}

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


# ----------------------------------------------------------------------------- per-face numbers


def _rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """`(3, 3)` rotation, face coordinates → camera coordinates (angles in radians)."""
    cy, sy, cp, sp, cr, sr = np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch), np.cos(roll), np.sin(roll)
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rx = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    rz = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
    return rz @ ry @ rx


def _direction(azimuth: float, elevation: float) -> np.ndarray:
    """Unit vector `(3,)` towards a light, camera frame; azimuth 0 is the camera."""
    return np.array([np.sin(azimuth) * np.cos(elevation), np.sin(elevation), np.cos(azimuth) * np.cos(elevation)])


def _pose(rng) -> dict:
    yaw, pitch, roll = np.radians([rng.normal(0, 18), rng.uniform(-16, 16), rng.uniform(-12, 12)])
    yaw = np.clip(yaw, -np.radians(50), np.radians(50))
    return {
        "rotation": _rotation(yaw, pitch, roll),
        "roll": roll,
        "scale": rng.uniform(0.46, 0.62),
        "centre": np.array([rng.uniform(-0.08, 0.08), rng.uniform(-0.1, 0.06)]),
    }


def _shape(rng) -> dict:
    """Head proportions and the bumps of the face, in normalised face coordinates."""
    return {
        "aspect": rng.uniform(1.2, 1.45),
        "depth": rng.uniform(0.8, 1.05),
        "jaw": rng.uniform(0.08, 0.35),
        "nose_height": rng.uniform(0.14, 0.32),
        "nose_width": rng.uniform(0.06, 0.1),
        "nose_tip": rng.uniform(-0.3, -0.16),
        "brow_ridge": rng.uniform(0.03, 0.09),
        "sockets": rng.uniform(0.07, 0.16),
        "cheekbones": rng.uniform(0.02, 0.1),
        "lip_height": rng.uniform(0.02, 0.06),
        "chin": rng.uniform(0.02, 0.08),
        "eye_x": rng.uniform(0.32, 0.4),
        "eye_y": rng.uniform(0.16, 0.27),
        "eye_width": rng.uniform(0.1, 0.14),
        "eye_open": rng.choice([0.0, 1.0], p=[0.04, 0.96]) * rng.uniform(0.035, 0.06),
        "gaze": rng.uniform(-0.35, 0.35, size=2),
        "mouth_y": rng.uniform(-0.62, -0.5),
        "mouth_width": rng.uniform(0.16, 0.25),
        "lip_thickness": rng.uniform(0.025, 0.05),
        "mouth_open": rng.choice([0.0, 1.0], p=[0.72, 0.28]) * rng.uniform(0.015, 0.07),
        "neck_width": rng.uniform(0.42, 0.58),
    }


def _skin(rng) -> dict:
    """Skin type, pigment patterns and their lattices of value noise."""
    skin_type = rng.uniform(-0.95, 0.85)
    return {
        "skin_type": skin_type,
        "blood_base": rng.uniform(-0.6, 0.1),
        "mottle_mel": rng.uniform(0.02, 0.1),
        "mottle_blood": rng.uniform(0.03, 0.12),
        "lattice_mel": rng.random((7, 7)),
        "lattice_blood": rng.random((7, 7)),
        "flush": rng.uniform(0.0, 0.45),
        "nose_red": rng.uniform(0.0, 0.35),
        "lip_red": rng.uniform(0.25, 0.8),
        "lip_mel": rng.uniform(0.0, 0.35) * (0.5 + max(skin_type, 0.0)),
        "under_eye": rng.uniform(0.0, 0.15),
        "brow": rng.uniform(0.5, 1.4),
        "brow_thickness": rng.uniform(0.025, 0.05),
        "brow_arch": rng.uniform(0.02, 0.08),
        "brow_lift": rng.uniform(0.12, 0.2),
        "freckles": rng.choice([0.0, 1.0], p=[0.7, 0.3]) * rng.uniform(0.2, 0.55),
        "freckle_density": rng.uniform(0.6, 0.85),
        "lattice_freckles": rng.random((36, 36)),
        "moles": rng.uniform(0.5, 1.0),
        "mole_density": rng.uniform(0.985, 0.999),
        "lattice_moles": rng.random((18, 18)),
        "vessels": rng.choice([0.0, 1.0], p=[0.8, 0.2]) * rng.uniform(0.2, 0.6),
        "lattice_vessels": rng.random((14, 14)),
        "stubble": rng.choice([0.0, 1.0], p=[0.72, 0.28]) * rng.uniform(0.2, 0.8),
        "stubble_line": rng.uniform(-0.15, 0.15),
        "lattice_stubble": rng.random((44, 44)),
        "oil": rng.uniform(0.05, 0.7),
        "gloss": rng.uniform(8.0, 40.0),
    }


def _hair(rng) -> dict:
    style = rng.choice(4, p=[0.08, 0.42, 0.25, 0.25])  # bald, short, fringe, long
    colour = HAIR_COLOURS[rng.choice(len(HAIR_COLOURS), p=HAIR_COLOUR_ODDS)] * rng.uniform(0.7, 1.3, size=3)
    if rng.random() < 0.04:
        colour = rng.uniform(0.02, 0.4, size=3)
    hairline = {0: 3.0, 1: rng.uniform(0.62, 0.9), 2: rng.uniform(0.38, 0.62), 3: rng.uniform(0.55, 0.9)}[style]
    return {
        "hair_colour": colour,
        "hairline": hairline,
        "hairline_tilt": rng.uniform(-0.25, 0.25) if style == 2 else rng.uniform(-0.05, 0.05),
        "hairline_curve": rng.uniform(0.2, 0.7),
        "hairline_wave": rng.uniform(0.0, 0.05),
        "hairline_phase": rng.uniform(0, 2 * np.pi),
        "volume": 0.0 if style == 0 else rng.uniform(0.06, 0.25),
        "hair_length": {0: 0.0, 1: rng.uniform(-0.1, 0.25), 2: rng.uniform(-0.2, 0.3), 3: rng.uniform(-1.6, -0.9)}[style],
        "sideburns": rng.uniform(0.72, 0.88) if style else 2.0,
        "lattice_hair": rng.random((8, 60)),
        "hair_shine": rng.uniform(0.0, 0.4),
        "iris_colour": IRIS_COLOURS[rng.choice(len(IRIS_COLOURS), p=IRIS_COLOUR_ODDS)] * rng.uniform(0.8, 1.25),
        "sclera": rng.uniform(0.45, 0.7) * np.array([1.0, 0.96, 0.93]),
        "teeth": rng.uniform(0.35, 0.6) * np.array([1.0, 0.95, 0.85]),
    }


def _lights(rng) -> dict:
    key = _direction(rng.uniform(-1.2, 1.2), rng.uniform(-0.3, 1.0))
    fill = _direction(rng.uniform(-1.4, 1.4), rng.uniform(-0.4, 0.8))
    rim = _direction(rng.choice([-1, 1]) * rng.uniform(1.9, 2.6), rng.uniform(-0.2, 0.6))
    occluder = rng.uniform(-np.pi, np.pi)
    return {
        "key": key,
        "key_power": rng.uniform(0.5, 1.15),
        "fill": fill,
        "fill_power": rng.choice([0.0, 1.0], p=[0.4, 0.6]) * rng.uniform(0.05, 0.45),
        "rim": rim,
        "rim_power": rng.choice([0.0, 1.0], p=[0.8, 0.2]) * rng.uniform(0.2, 0.8),
        "ambient": rng.uniform(0.08, 0.4),
        "sky": rng.uniform(-0.05, 0.15),
        "occluder_normal": np.array([np.cos(occluder), np.sin(occluder)]),
        "occluder_offset": rng.uniform(-0.6, 0.6),
        "occluder_softness": rng.uniform(0.03, 0.2),
        "occluder_depth": rng.choice([0.0, 1.0], p=[0.75, 0.25]) * rng.uniform(0.6, 1.0),
    }


def _background(rng) -> dict:
    grey = rng.uniform(0.01, 0.6, size=(2, 1))
    tint = rng.uniform(0.01, 0.6, size=(2, 3))
    saturation = rng.uniform(0.0, 0.8)
    boxes = rng.uniform(-1.2, 1.2, size=(N_BACKGROUND_BOXES, 4))
    return {
        "top": (1 - saturation) * grey[0] + saturation * tint[0],
        "bottom": (1 - saturation) * grey[1] + saturation * tint[1],
        "clutter": rng.uniform(0.0, 0.8),
        "lattice_background": rng.random((3, 6, 6)),
        "boxes": np.sort(boxes.reshape(N_BACKGROUND_BOXES, 2, 2), axis=1).reshape(N_BACKGROUND_BOXES, 4),
        "box_colours": rng.uniform(0.0, 0.7, size=(N_BACKGROUND_BOXES, 3)),
        "box_on": (rng.random(N_BACKGROUND_BOXES) < 0.4).astype(float),
        "shirt": rng.uniform(0.01, 0.6, size=3),
        "shirt_width": rng.uniform(0.9, 1.5),
    }


def _camera(rng, size: int) -> dict:
    weights, cct = random_illuminant(rng)
    return {
        "b": rng.uniform(-3.0, 3.0, size=2),
        "light_weights": weights,
        "cct": np.array([cct]),
        "exposure": np.exp(rng.uniform(np.log(0.6), np.log(1.5))),
        "white_balance_error": np.exp(rng.normal(0.0, 0.05, size=3)),
        "blur": rng.uniform(0.0, 1.0) ** 2 * 1.2,
        "noise_gain": rng.uniform(1e-4, 2e-3),
        "noise_floor": rng.uniform(5e-4, 4e-3),
        "jpeg_quality": rng.uniform(35, 95) if rng.random() < 0.25 else 0.0,
        "noise": rng.standard_normal((size, size, 3), dtype=np.float32),
    }


def face_parameters(rng: np.random.Generator, size: int) -> dict[str, np.ndarray]:
    """Every random number of one face (pose, shape, skin, hair, light, camera)."""
    face = {}
    for draw in (_pose, _shape, _skin, _hair, _lights, _background):
        face.update(draw(rng))
    face.update(_camera(rng, size))
    return face


def batch_parameters(faces: list[dict]) -> types.SimpleNamespace:
    """Stack per-face numbers: scalars become `(B, 1, 1)`, arrays `(B, …)`, float32."""
    stacked = {}
    for key in faces[0]:
        value = np.stack([np.asarray(f[key], np.float32) for f in faces])
        stacked[key] = value.reshape(-1, 1, 1) if value.ndim == 1 else value
    return types.SimpleNamespace(**stacked)


# ----------------------------------------------------------------------------- fields (TensorFlow)


def _gauss(x, y, cx, cy, sx, sy):
    return tf.exp(-0.5 * (tf.square((x - cx) / sx) + tf.square((y - cy) / sy)))


def _materialise(*tensors):
    """Compute ``tensors`` once: an XLA optimisation barrier, so that fusion
    does not recompute them inside every consumer."""
    return tuple(_barrier(*tensors))


def _float(condition):
    return tf.cast(condition, tf.float32)


def value_noise(lattice, x, y, extent=(1.5, 1.5)):
    """Smoothly interpolated lattice values at ``(x, y)``.

    Args:
        lattice: `(B, Gy, Gx)` values spanning ``[-extent, extent]`` in x and y.
        x, y: `(B, H, W)` positions.

    Returns:
        `(B, H, W)` values in the lattice's range.
    """
    b, gy, gx = lattice.shape
    fx = tf.clip_by_value((x / extent[0] + 1.0) * 0.5 * (gx - 1), 0.0, gx - 1.001)
    fy = tf.clip_by_value((y / extent[1] + 1.0) * 0.5 * (gy - 1), 0.0, gy - 1.001)
    ix, iy = tf.floor(fx), tf.floor(fy)
    tx, ty = fx - ix, fy - iy
    tx, ty = tx * tx * (3 - 2 * tx), ty * ty * (3 - 2 * ty)
    flat = tf.reshape(lattice, [-1])
    offset = tf.reshape(tf.range(b, dtype=tf.int32) * (gy * gx), (-1, 1, 1))
    base = offset + tf.cast(iy, tf.int32) * gx + tf.cast(ix, tf.int32)
    top = tf.gather(flat, base) + tx * (tf.gather(flat, base + 1) - tf.gather(flat, base))
    bottom = tf.gather(flat, base + gx) + tx * (tf.gather(flat, base + gx + 1) - tf.gather(flat, base + gx))
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
        p: batch parameters as tensors (:func:`batch_parameters`).
        x, y: face coordinates (y in units where the head is ``aspect`` tall).
        gradient: also return ``∂h/∂x`` and ``∂h/∂y``.
    """
    stretch = REFERENCE_ASPECT / p.aspect
    Y = y * stretch
    terms = []

    def add(amplitude, cx, cy, sx, sy):
        terms.append((amplitude * _gauss(x, Y, cx, cy, sx, sy), cx, cy, sx, sy))

    add(0.45 * p.nose_height, 0.0, p.nose_tip + 0.03, 0.08, 0.05)
    add(p.brow_ridge, 0.0, p.eye_y + 0.2, 0.5, 0.07)
    add(0.05, 0.0, p.mouth_y - 0.23, 0.35, 0.2)
    add(p.lip_height, 0.0, p.mouth_y + 0.025, p.mouth_width, 0.035)
    add(p.lip_height, 0.0, p.mouth_y - 0.035, 0.9 * p.mouth_width, 0.035)
    add(p.chin, 0.0, -0.95, 0.2, 0.12)
    for side in (-1.0, 1.0):
        add(-p.sockets, side * p.eye_x, p.eye_y + 0.01, 0.14, 0.09)
        add(0.35 * p.sockets, side * p.eye_x, p.eye_y, 0.08, 0.045)
        add(p.cheekbones, side * 0.5, p.eye_y - 0.32, 0.18, 0.14)
        add(0.2 * p.nose_height, side * 0.075, p.nose_tip + 0.03, 0.04, 0.035)

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
    teeth = mouth & (Y > p.mouth_y - 0.2 * opening) & (tf.abs(mouth_across) < 0.8)

    hairline = p.hairline + p.hairline_tilt * x - p.hairline_curve * (x * x)
    hairline = hairline + p.hairline_wave * tf.sin(40.0 * x + p.hairline_phase)
    scalp = hit & ((Y > hairline) | ((ax > p.sideburns) & (Y > p.eye_y - 0.05)))
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
    fmel = p.skin_type + p.mottle_mel * (2.0 * value_noise(p.lattice_mel, x, Y) - 1.0)
    fblood = p.blood_base + p.mottle_blood * (2.0 * value_noise(p.lattice_blood, x, Y) - 1.0)
    fblood = fblood + p.flush * _gauss(ax, Y, 0.45, p.eye_y - 0.42, 0.2, 0.18)
    fblood = fblood + p.nose_red * _gauss(x, Y, 0.0, p.nose_tip + 0.03, 0.08, 0.06)
    under_eye = _gauss(ax, Y, p.eye_x, p.eye_y - 0.085, 0.11, 0.035)
    fmel = fmel + p.under_eye * under_eye
    fblood = fblood + 0.5 * p.under_eye * under_eye

    lips = tf.sigmoid((1.0 - tf.square(x / p.mouth_width) - tf.square((Y - p.mouth_y) / p.lip_thickness)) / 0.15)
    fblood = fblood + p.lip_red * lips
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
        (value_noise(p.lattice_freckles, x, Y) - p.freckle_density) / (1.0 - p.freckle_density), 0.0, 1.0
    )
    fmel = fmel + p.freckles * cheeks * freckles
    moles = tf.clip_by_value((value_noise(p.lattice_moles, x, Y) - p.mole_density) / (1.0 - p.mole_density), 0.0, 1.0)
    fmel = fmel + p.moles * tf.sqrt(moles)
    ridged = 1.0 - tf.abs(2.0 * value_noise(p.lattice_vessels, x, Y) - 1.0)
    fblood = fblood + p.vessels * cheeks * tf.clip_by_value((ridged - 0.9) / 0.1, 0.0, 1.0)

    beard = tf.sigmoid((p.nose_tip - 0.08 + p.stubble_line * ax - Y) / 0.03) * (1.0 - lips)
    beard = beard * tf.sigmoid((0.75 - ax) / 0.05) * _float(p.stubble > 0)
    grain = value_noise(p.lattice_stubble, x, Y)
    fmel = fmel + p.stubble * beard * (0.4 + 0.9 * grain)

    oily = tf.maximum(
        tf.maximum(_gauss(x, Y, 0.0, 0.6, 0.45, 0.18), _gauss(x, Y, 0.0, -0.05, 0.1, 0.3)),
        _gauss(ax, Y, 0.45, -0.15, 0.18, 0.18),
    )
    return {
        "fmel": tf.clip_by_value(fmel, -1.0, 1.0),
        "fblood": tf.clip_by_value(fblood, -1.0, 1.0),
        "oil": p.oil * (0.25 + 0.75 * oily) * (1.0 - 0.8 * beard),
    }


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


def shade(p, normals, visibility, oil):
    """Grey diffuse shading and specular maps, `(B, H, W)`, of the face's lights.

    Args:
        normals: `(B, H, W, 3)` unit normals, camera frame.
        visibility: `(B, H, W)` key-light visibility (cast shadows).
        oil: `(B, H, W)` specular strength; ``p.gloss`` is the exponent.
    """
    diffuse = p.ambient + p.sky * normals[..., 1]
    specular = tf.zeros_like(diffuse)
    for k, (direction, power) in enumerate(_light_list(p)):
        cosine = tf.einsum("bhwi,bi->bhw", normals, direction)
        lit = power * visibility if k == 0 else power
        diffuse = diffuse + lit * tf.maximum(cosine, 0.0)
        half = tf.math.l2_normalize(direction + tf.constant([0.0, 0.0, 1.0]), axis=-1)
        lobe = tf.pow(tf.maximum(tf.einsum("bhwi,bi->bhw", normals, half), 0.0), p.gloss)
        specular = specular + lit * lobe * _float(cosine > 0)
    return tf.maximum(diffuse, SHADING_FLOOR), oil * specular


def sh_basis(normals):
    """`(..., 9)` such that ``basis @ sh`` is :func:`~bioface_tf.data.shading.irradiance` of ``sh``."""
    x, y, z = normals[..., 0], normals[..., 1], normals[..., 2]
    c1, c2, c3, c4, c5 = sh_shading.C1, sh_shading.C2, sh_shading.C3, sh_shading.C4, sh_shading.C5
    return tf.stack(
        [
            c4 * tf.ones_like(x),
            2 * c2 * y,
            2 * c2 * z,
            2 * c2 * x,
            2 * c1 * x * y,
            2 * c1 * y * z,
            c3 * z * z - c5,
            2 * c1 * x * z,
            c1 * (x * x - y * y),
        ],
        axis=-1,
    )


def fit_sh(normals, shading, mask):
    """Least-squares second-order SH lighting `(B, 9)` of grey shading inside the mask.

    Args:
        normals: `(B, H, W, 3)`; shading, mask: `(B, H, W)`.
    """
    b = normals.shape[0]
    basis = tf.reshape(sh_basis(normals), (b, -1, 9))
    weighted = basis * tf.reshape(mask, (b, -1, 1))
    gram = tf.matmul(weighted, basis, transpose_a=True)
    moment = tf.matmul(weighted, tf.reshape(shading, (b, -1, 1)), transpose_a=True)
    ridge = SH_RIDGE * tf.maximum(tf.linalg.trace(gram), 1.0)[:, None, None] * tf.eye(9)
    return tf.linalg.cholesky_solve(tf.linalg.cholesky(gram + ridge), moment)[..., 0]


# ----------------------------------------------------------------------------- the scene


def _background_image(p, size: int):
    """Cluttered backgrounds in linear sRGB, `(B, H, W, 3)`."""
    u, v = _grid(size)
    b = p.top.shape[0]
    u, v = tf.broadcast_to(u, (b, size, size)), tf.broadcast_to(v, (b, size, size))
    rows = (1.0 - v[..., None]) * 0.5
    image = (1.0 - rows) * p.top[:, None, None, :] + rows * p.bottom[:, None, None, :]
    blobs = tf.stack([value_noise(p.lattice_background[:, c], u, v, (1.0, 1.0)) for c in range(3)], -1)
    clutter = p.clutter[..., None]
    image = image * (1.0 - clutter) + clutter * 0.6 * blobs * blobs
    for k in range(N_BACKGROUND_BOXES):
        box = p.boxes[:, k, :, None, None]
        inside = (u > box[:, 0]) & (u < box[:, 2]) & (v > box[:, 1]) & (v < box[:, 3]) & (p.box_on[:, k, None, None] > 0)
        colour = p.box_colours[:, k][:, None, None, :] * (0.8 + 0.2 * v[..., None])
        image = tf.where(inside[..., None], colour, image)
    return tf.square(image)


def _surface(params: dict, size: int) -> dict:
    """Stage 1: head and neck geometry, feature masks and skin maps (a flat dict)."""
    p = types.SimpleNamespace(**params)
    geometry = head_geometry(p, size)
    neck = neck_geometry(p, geometry)
    surface = {**geometry, "neck": neck["neck"], "neck_normals": neck["normals"]}
    surface.update(feature_masks(p, geometry))
    surface.update(skin_maps(p, geometry))
    surface["hair"] = surface["scalp"] | hair_volume(p, geometry)
    return surface


def _lighting(params: dict, surface: dict) -> dict:
    """Stage 2: which pixels are skin, cast shadows, shading and specular maps."""
    p = types.SimpleNamespace(**params)
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
        "fmel": tf.where(neck_skin, p.skin_type + 0.05, surface["fmel"]),
        "fblood": tf.where(neck_skin, p.blood_base, surface["fblood"]),
        "shading": tf.where(mask, shading, SHADING_FLOOR),
        "specmask": tf.where(mask, specular, 0.0),
        "mask": _float(mask),
        "normals": tf.where((hit | neck_skin)[..., None], normals, 0.0),
        "lit": shading,
        "specular": specular,
        "body": body,
    }


def _layers(params: dict, surface: dict, light: dict, size: int) -> dict:
    """Stage 3: everything that is not skin, in linear sRGB, and the fitted SH lighting."""
    p = types.SimpleNamespace(**params)
    shading = light["lit"]
    overlay = _background_image(p, size)
    overlay = tf.where(light["body"][..., None], p.shirt[:, None, None, :] * shading[..., None] * 0.7, overlay)
    overlay = _paint_hair(p, surface, surface["hair"], shading, overlay)
    overlay = _paint_face_features(p, surface, shading, light["specular"], overlay)
    return {"overlay": overlay, "sh": fit_sh(light["normals"], shading, light["mask"])}


def build_scene(params: dict, size: int, compiled: bool = False) -> dict:
    """Decoder inputs, ground truth and the non-skin layer of a batch.

    Args:
        params: batch parameters (:func:`batch_parameters`), as a dict.
        compiled: run each stage as its own XLA computation (each stage's
            results are then computed once, not re-fused into every use).

    Returns:
        ``fmel``, ``fblood``, ``shading`` (exact, floored), ``specmask``
        `(B, H, W)`; ``mask`` `(B, H, W)` skin; ``normals`` `(B, H, W, 3)`;
        ``sh`` `(B, 9)` fitted grey lighting; ``overlay`` `(B, H, W, 3)`
        linear sRGB of everything that is not skin.
    """
    stage = _compiled if compiled else (lambda fn, *static: functools.partial(_call_static, fn, static))
    surface = stage(_surface, size)(params)
    light = stage(_lighting)(params, surface)
    layers = stage(_layers, size)(params, surface, light)
    keys = ("fmel", "fblood", "shading", "specmask", "mask", "normals")
    return {**{k: light[k] for k in keys}, **layers}


def _call_static(fn, static, *args):
    return fn(*args, *static)


@functools.lru_cache(maxsize=None)
def _compiled(fn, *static):
    """``fn(*args, *static)`` as an XLA-compiled function of ``args``."""
    return tf.function(lambda *args: fn(*args, *static), jit_compile=True)


def _paint_hair(p, geometry, hair, shading, overlay):
    """Hair: strand texture along the head's height, lit by the face's lights."""
    strands = value_noise(p.lattice_hair, geometry["plane_x"], geometry["plane_y"], (1.6, 2.2))
    tone = (0.55 + 0.9 * strands)[..., None] * p.hair_colour[:, None, None, :]
    rx = geometry["plane_x"] / (1.0 + p.volume)
    ry = geometry["plane_y"] / (p.aspect * (1.0 + 0.6 * p.volume))
    nz = tf.sqrt(tf.clip_by_value(1.0 - rx * rx - ry * ry, 0.05, 1.0))
    rounded = tf.math.l2_normalize(tf.stack([rx, ry, nz], -1), axis=-1)
    around = shade(p, rounded, tf.ones_like(rx), tf.zeros_like(rx))[0]
    light = tf.where(geometry["hit"], shading, around)
    sheen = p.hair_shine * tf.square(tf.clip_by_value(1.0 - tf.abs(ry - 0.45), 0.0, 1.0)) * strands
    colour = tone * light[..., None] + (0.2 * sheen * light)[..., None]
    return tf.where(hair[..., None], colour, overlay)


def _paint_face_features(p, features, shading, specular, overlay):
    """Eyes (sclera, iris, pupil, lash line, catchlight), mouth interior and teeth."""
    light = shading[..., None]
    eye = tf.where(features["iris"][..., None], p.iris_colour[:, None, None, :], p.sclera[:, None, None, :])
    eye = tf.where(features["pupil"][..., None], 0.005, eye)
    eye = tf.where(features["lash"][..., None], 0.01, eye) * light
    catchlight = 0.5 * tf.square(specular / tf.maximum(p.oil, 1e-3)) * _float(features["iris"])
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


def camera_effects(p, linear, size: int, strength):
    """Exposure, white-balance error, blur, noise and sRGB, `(B, H, W, 3)` in [0, 1].

    ``strength`` 1 applies them, 0 gives the plain sRGB encoding of ``linear``.
    """
    gain = 1.0 + strength * (p.exposure[..., None] * p.white_balance_error[:, None, None, :] - 1.0)
    image = blur(linear * gain, strength * tf.reshape(p.blur, (-1,)) * (size / 64.0))
    sigma = tf.sqrt(p.noise_gain[..., None] * tf.maximum(image, 0.0) + tf.square(p.noise_floor[..., None]))
    return srgb_encode(image + strength * sigma * p.noise)


def jpeg(images: np.ndarray, quality: np.ndarray) -> np.ndarray:
    """JPEG round trip of the images `(B, H, W, 3)` whose ``quality`` `(B,)` is > 0."""
    images = images.copy()
    for i in np.flatnonzero(quality > 0):
        pixels = (np.clip(images[i], 0, 1) * 255).round().astype(np.uint8)
        _, data = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, int(quality[i])])
        images[i] = cv2.imdecode(data, cv2.IMREAD_UNCHANGED).astype(np.float32) / 255.0
    return images


# ----------------------------------------------------------------------------- rendering


@functools.lru_cache(maxsize=None)
def _renderer(size: int):
    """XLA-compiled renderers of one block of faces: ``render(params, strength)`` and ``albedo``."""
    from bioface_tf.physics import PhysicsDecoder

    decoder = PhysicsDecoder()

    @tf.function(jit_compile=True)
    def image(params, scene):
        p = types.SimpleNamespace(**params)
        vectors = {"b": p.b, "light_weights": p.light_weights, "cct": p.cct}
        skin = decoder({**{k: scene[k][..., None] for k in MAPS}, **vectors})["linear_srgb"]
        mask = scene["mask"][..., None]
        return mask * skin + (1.0 - mask) * scene["overlay"]

    @tf.function(jit_compile=True)
    def camera(params, linear, strength):
        return camera_effects(types.SimpleNamespace(**params), linear, size, strength)

    def render(params, strength):
        scene = build_scene(params, size, compiled=True)
        return {**scene, "srgb": camera(params, image(params, scene), strength)}

    @tf.function(jit_compile=True)
    def albedo(fmel, fblood, mask, b, light_weights, cct):
        maps = {"fmel": fmel, "fblood": fblood, "shading": tf.ones_like(fmel), "specmask": tf.zeros_like(fmel)}
        return decoder({**maps, "b": b, "light_weights": light_weights, "cct": cct})["srgb"] * mask

    return render, albedo


def _face_seeds(rng_or_seed, batch_size: int, first: int) -> list:
    if isinstance(rng_or_seed, np.random.Generator):
        key = int(rng_or_seed.integers(2**62))
        return [[key, first + i] for i in range(batch_size)]
    return [[int(rng_or_seed), first + i] for i in range(batch_size)]


def _render_block(seeds: list, size: int, sensor: bool, albedo: bool) -> dict[str, np.ndarray]:
    """One block of :data:`BLOCK` faces through the compiled renderer (NumPy out)."""
    p = batch_parameters([face_parameters(np.random.default_rng(s), size) for s in seeds])
    render, unlit = _renderer(size)
    out = {k: v.numpy() for k, v in render(vars(p), tf.constant(1.0 if sensor else 0.0)).items()}
    if sensor:
        out["srgb"] = jpeg(out["srgb"], p.jpeg_quality.reshape(-1))
    if albedo:
        maps = [out["fmel"][..., None], out["fblood"][..., None], out["mask"][..., None]]
        out["albedo"] = unlit(*maps, p.b, p.light_weights, p.cct).numpy()
    out.update(b=p.b, light_weights=p.light_weights, cct=p.cct)
    return out


def render_batch(
    rng_or_seed, batch_size: int, image_size: int = 64, first: int = 0, sensor: bool = True, albedo: bool = False
) -> dict[str, np.ndarray]:
    """Render ``batch_size`` faces with their ground truth (NumPy, float32).

    Face ``j`` is drawn from ``default_rng([seed, first + j])`` for an integer
    seed, from a key drawn once from ``rng_or_seed`` for a generator. Faces
    go through the compiled renderer :data:`BLOCK` at a time (the last block
    padded with further faces), so one compilation serves every batch size.

    Args:
        sensor: apply camera effects; without them ``srgb`` is exactly the
            sRGB encoding of the decoder's rendering of the ``gt_*`` maps
            inside the mask.
        albedo: also return ``albedo`` `(B, H, W, 3)`, the unlit noise-free
            face in sRGB (shading 1, no specular), zero off the mask.

    Returns:
        ``srgb`` `(B, H, W, 3)` in [0, 1]; ``mask`` `(B, H, W, 1)`; ``normals``
        `(B, H, W, 3)`; ``shading`` `(B, H, W, 1)` (the CelebA pseudo ground
        truth from ``normals`` and ``lighting``); ``shading_valid``,
        ``gt_valid`` `(B,)`; ``lighting`` `(B, 3, 9)`; ``gt_fmel``,
        ``gt_fblood``, ``gt_shading``, ``gt_specmask`` `(B, H, W, 1)`;
        ``gt_b`` `(B, 2)`, ``gt_light_weights`` `(B, 14)`, ``gt_cct`` `(B, 1)`.
    """
    seeds = _face_seeds(rng_or_seed, -(-batch_size // BLOCK) * BLOCK, first)
    blocks = [_render_block(seeds[i : i + BLOCK], image_size, sensor, albedo) for i in range(0, len(seeds), BLOCK)]
    scene = {k: np.concatenate([b[k] for b in blocks])[:batch_size] for k in blocks[0]}
    mask = scene["mask"][..., None]
    lighting = np.repeat(scene["sh"][:, None, :] / sh_shading.REC601_LUMA.sum(), 3, axis=1).astype(np.float32)
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
    }
    if albedo:
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
    prefetch: int = 2,
) -> tf.data.Dataset:
    """An endless ``tf.data.Dataset`` of freshly rendered batches.

    Batch ``k`` holds faces ``k·B … (k+1)·B − 1`` of ``seed``, whatever the
    parallelism. Elements have the keys, shapes and dtypes of
    :func:`~bioface_tf.data.pipeline.make_dataset` with ``ground_truth=True``
    (``image`` preprocessed, ``srgb``, ``mask``, ``normals``, ``shading``,
    ``shading_valid``, ``gt_*``), plus ``gt_valid`` `(B,)` = 1.

    Args:
        flip: mirror half of the faces (chosen from the seed), as the
            pipeline does.
        sensor: apply camera effects (exposure, white balance, blur, noise,
            JPEG).
        prefetch: batches rendered ahead, in a background thread.
    """
    from bioface_tf.data.pipeline import PREPROCESSING, flip_horizontally, preprocess
    from bioface_tf.errors import DataError

    if preprocessing not in PREPROCESSING:
        raise DataError(f"unknown preprocessing '{preprocessing}' (choose from {', '.join(PREPROCESSING)})")
    spec = _stream_spec(batch_size, image_size)
    keys = list(spec)

    def batches():
        for k in itertools.count():
            batch = render_batch(seed, batch_size, image_size, first=k * batch_size, sensor=sensor)
            mirror = np.random.default_rng([seed, k, 7]).random(batch_size) < 0.5
            yield {**{key: batch[key] for key in keys}, "mirror": mirror & flip}

    def finish(batch):
        mirror = batch.pop("mirror")
        batch = flip_horizontally(batch, mirror)
        batch["image"] = preprocess(batch["srgb"], preprocessing)
        return batch

    signature = {**spec, "mirror": tf.TensorSpec((batch_size,), tf.bool)}
    dataset = tf.data.Dataset.from_generator(lambda: _ahead(batches(), prefetch), output_signature=signature)
    return dataset.map(finish).prefetch(1)


def _ahead(iterator, depth: int):
    """Items of ``iterator`` computed ``depth`` ahead in a background thread, in order."""
    items: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def work():
        for item in iterator:
            while not stop.is_set():
                try:
                    items.put(item, timeout=0.5)
                    break
                except queue.Full:
                    continue
            if stop.is_set():
                return

    threading.Thread(target=work, daemon=True).start()
    try:
        while True:
            yield items.get()
    finally:
        stop.set()
