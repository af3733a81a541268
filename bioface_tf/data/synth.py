"""Faces rendered through the physics decoder, with their ground truth.

:func:`write_synthetic` (``bioface synth``) renders with the batched
generator of :mod:`bioface_tf.data.stream` (heads ray-cast at any pose, hair,
eyes, mouths, pigment patterns, several lights with cast shadows, cluttered
backgrounds, camera effects) and writes the layout below. The per-face
generator that follows (:func:`random_scene`, :func:`render`) is the earlier,
simpler one (the historical results of ``benchmarks/results/specular_rendered.md``
were measured on it; no benchmark uses it now).

Each face of the per-face generator is built in three steps, then rendered by
:class:`~bioface_tf.physics.PhysicsDecoder`:

1. **Geometry** — a head-like surface in face coordinates (x right, y up,
   units of half the head width): the front of an ellipsoid with a nose,
   brow ridge, eye sockets, cheekbones, lips and chin; posed by a random yaw,
   pitch and roll, projected orthographically and z-buffered at twice the
   resolution. It gives unit normals (camera frame), the face mask (skin that
   is not hair) and face coordinates per pixel.
2. **Skin and light** — melanin and haemoglobin maps in the decoder's [−1, 1]
   coordinates: a skin type from light to dark, smooth variation, eyebrows,
   eyes, lips, flushed cheeks, moles and sometimes freckles; hair is
   melanin-dense and outside the mask. Diffuse shading is the irradiance of
   second-order SH lighting (a distant light plus ambient light,
   :mod:`~bioface_tf.data.shading`), the specular map a Blinn–Phong lobe
   strongest on the forehead, nose and cheeks. Illuminant weights, colour
   temperature and camera parameters are drawn across the decoder's ranges.
3. **Sensor** — a background, signal-dependent sensor noise in linear sRGB,
   then the sRGB transfer curve.

:func:`write_synthetic` stores them in the CelebA layout of
:mod:`~bioface_tf.data.celeba`, all in one file: ``zx_7`` `(N, 10, H, W)`
(image, signed normals, mask, and in 7–9 the noise-free unlit albedo in sRGB),
``lrgb`` `(N, 3, 9)` SH lighting (equal for R, G, B), and the ground truth
``gt_fmel``, ``gt_fblood``, ``gt_shading``, ``gt_specmask`` `(N, H, W)`,
``gt_b`` `(N, 2)`, ``gt_light_weights`` `(N, 14)`, ``gt_cct`` `(N, 1)`.
``gt_shading`` is the exact shading the image was rendered with; ``lrgb`` is
its least-squares second-order SH fit (for the per-face generator, which has
no cast shadows, they agree exactly).
"""

from __future__ import annotations

import contextlib
import dataclasses
import pathlib

import cv2
import h5py
import numpy as np
from tqdm import tqdm

from bioface_tf.data import shading as sh_shading
from bioface_tf.data.celeba import DATASET, EMBEDDED_LIGHTING, N_CHANNELS
from bioface_tf.errors import DataError

HEAD_ASPECT = 1.3
SUPERSAMPLE = 2
N_ILLUMINANTS = 14
DAYLIGHT, INCANDESCENT = 1, 0
SHADING_FLOOR = 1e-3


@dataclasses.dataclass
class Pose:
    """Head rotation in degrees and placement in the image (fractions of it)."""

    yaw: float
    pitch: float
    roll: float
    scale: float
    shift: tuple[float, float]

    @classmethod
    def random(cls, rng: np.random.Generator) -> "Pose":
        return cls(
            yaw=rng.uniform(-30, 30),
            pitch=rng.uniform(-15, 15),
            roll=rng.uniform(-10, 10),
            scale=rng.uniform(0.85, 1.0),
            shift=tuple(rng.uniform(-0.04, 0.04, size=2)),
        )

    def rotation(self) -> np.ndarray:
        """`(3, 3)` rotation, face coordinates → camera coordinates."""
        yaw, pitch, roll = np.radians([self.yaw, self.pitch, self.roll])
        ry = np.array([[np.cos(yaw), 0, np.sin(yaw)], [0, 1, 0], [-np.sin(yaw), 0, np.cos(yaw)]])
        rx = np.array([[1, 0, 0], [0, np.cos(pitch), -np.sin(pitch)], [0, np.sin(pitch), np.cos(pitch)]])
        rz = np.array([[np.cos(roll), -np.sin(roll), 0], [np.sin(roll), np.cos(roll), 0], [0, 0, 1]])
        return rz @ ry @ rx


def _gauss(x, y, cx, cy, sx, sy=None):
    sy = sx if sy is None else sy
    return np.exp(-0.5 * (((x - cx) / sx) ** 2 + ((y - cy) / sy) ** 2))


@dataclasses.dataclass
class FaceShape:
    """The few numbers that make one face's shape differ from another's."""

    nose_height: float
    nose_width: float
    cheekbones: float
    hairline: float

    @classmethod
    def random(cls, rng: np.random.Generator) -> "FaceShape":
        return cls(
            nose_height=rng.uniform(0.18, 0.3),
            nose_width=rng.uniform(0.06, 0.09),
            cheekbones=rng.uniform(0.04, 0.1),
            hairline=rng.uniform(0.72, 0.92),
        )


def face_depth(x: np.ndarray, y: np.ndarray, shape: FaceShape) -> np.ndarray:
    """Depth z(x, y) of the face surface towards the camera, face coordinates."""
    z = np.sqrt(np.clip(1.0 - x**2 - (y / HEAD_ASPECT) ** 2, 0.0, None))
    along = np.clip((0.28 - y) / 0.5, 0.0, 1.0) * (y > -0.3)
    z = z + shape.nose_height * along * np.exp(-0.5 * (x / shape.nose_width) ** 2)
    z += 0.6 * shape.nose_height * _gauss(x, y, 0.0, -0.24, 0.11, 0.07)
    z += 0.07 * _gauss(x, y, 0.0, 0.45, 0.5, 0.07)
    for side in (-1, 1):
        z -= 0.13 * _gauss(x, y, side * 0.37, 0.22, 0.15, 0.1)
        z += shape.cheekbones * _gauss(x, y, side * 0.5, -0.1, 0.18, 0.14)
    z += 0.05 * _gauss(x, y, 0.0, -0.55, 0.2, 0.06)
    z += 0.05 * _gauss(x, y, 0.0, -0.95, 0.18, 0.12)
    return z


def face_geometry(shape: FaceShape, pose: Pose, size: int) -> dict[str, np.ndarray]:
    """Normals, masks and face coordinates of one posed face, `(size, size, …)`.

    Returns:
        ``normals`` `(H, W, 3)` unit, camera frame (zero off the head);
        ``head`` `(H, W)` coverage in [0, 1]; ``coords`` `(H, W, 2)` face
        coordinates (x, y) of each pixel; ``depth`` `(H, W)`.
    """
    fine = size * SUPERSAMPLE
    pixels_per_unit = pose.scale * 0.5 * fine / HEAD_ASPECT
    step = 1.0 / (2.5 * pixels_per_unit)
    xs = np.arange(-0.995, 0.995, step)
    ys = np.arange(-HEAD_ASPECT * 0.995, HEAD_ASPECT * 0.995, step)
    x, y = (a.ravel() for a in np.meshgrid(xs, ys))
    keep = x**2 + (y / HEAD_ASPECT) ** 2 < 0.995**2
    x, y = x[keep], y[keep]
    z = face_depth(x, y, shape)
    dz_dx = (face_depth(x + 1e-3, y, shape) - face_depth(x - 1e-3, y, shape)) / 2e-3
    dz_dy = (face_depth(x, y + 1e-3, shape) - face_depth(x, y - 1e-3, shape)) / 2e-3
    normals = np.stack([-dz_dx, -dz_dy, np.ones_like(x)], axis=-1)
    normals /= np.linalg.norm(normals, axis=-1, keepdims=True)

    rotation = pose.rotation()
    points = np.stack([x, y, z], axis=-1) @ rotation.T
    normals = normals @ rotation.T
    visible = normals[:, 2] > 0.0
    points, normals = points[visible], normals[visible]
    coords = np.stack([x, y], axis=-1)[visible]

    centre = fine / 2.0 + np.array(pose.shift) * fine
    col = np.floor(centre[0] + points[:, 0] * pixels_per_unit).astype(np.int64)
    row = np.floor(centre[1] - points[:, 1] * pixels_per_unit).astype(np.int64)
    inside = (col >= 0) & (col < fine) & (row >= 0) & (row < fine)
    pixel = (row * fine + col)[inside]
    values = np.concatenate([normals, coords, points[:, 2:3]], axis=-1)[inside]
    depth = points[inside, 2]

    order = np.lexsort((-depth, pixel))
    first = np.ones(order.size, bool)
    first[1:] = pixel[order][1:] != pixel[order][:-1]
    nearest = order[first]
    image = np.zeros((fine * fine, values.shape[1]))
    hit = np.zeros(fine * fine)
    image[pixel[nearest]] = values[nearest]
    hit[pixel[nearest]] = 1.0

    image = image.reshape(size, SUPERSAMPLE, size, SUPERSAMPLE, -1).sum(axis=(1, 3))
    hits = hit.reshape(size, SUPERSAMPLE, size, SUPERSAMPLE).sum(axis=(1, 3))
    hits_around = cv2.boxFilter(hits, -1, (3, 3), normalize=False)
    values_around = cv2.boxFilter(image, -1, (3, 3), normalize=False)
    hole = (hits == 0) & (hits_around >= 4)
    image[hole] = values_around[hole]
    hits = np.where(hole, hits_around, hits)
    mean = image / np.maximum(hits, 1.0)[..., None]
    normals = mean[..., :3]
    norm = np.linalg.norm(normals, axis=-1, keepdims=True)
    normals = np.where(norm > 0, normals / np.maximum(norm, 1e-12), 0.0)
    coverage = np.where(hole, 1.0, hits / SUPERSAMPLE**2)
    return {"normals": normals, "head": coverage, "coords": mean[..., 3:5], "depth": mean[..., 5]}


def _smooth_field(x, y, rng, n_waves=6, frequency=(2.0, 6.0)) -> np.ndarray:
    """A random smooth field of unit-order amplitude over face coordinates."""
    field = np.zeros_like(x)
    for _ in range(n_waves):
        angle, phase = rng.uniform(0, 2 * np.pi, size=2)
        w = rng.uniform(*frequency)
        field += np.cos(w * (np.cos(angle) * x + np.sin(angle) * y) + phase)
    return field / np.sqrt(n_waves / 2.0)


def _spots(x, y, rng, count, region, sigma, amplitude) -> np.ndarray:
    """``count`` small Gaussian spots placed at random inside ``region(x, y)``."""
    total = np.zeros_like(x)
    placed = 0
    while placed < count:
        cx, cy = rng.uniform(-0.8, 0.8), rng.uniform(-1.0, 0.8)
        if region(cx, cy):
            total = np.maximum(total, rng.uniform(*amplitude) * _gauss(x, y, cx, cy, rng.uniform(*sigma)))
            placed += 1
    return total


def skin_maps(coords: np.ndarray, shape: FaceShape, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Melanin and haemoglobin maps of one face, in the decoder's [−1, 1].

    Args:
        coords: face coordinates of each pixel, `(H, W, 2)`.

    Returns:
        ``fmel``, ``fblood`` `(H, W)`; ``hair`` and ``eyes`` `(H, W)` in [0, 1];
        ``skin_type`` (the base melanin, light −0.85 … dark 0.55).
    """
    x, y = coords[..., 0], coords[..., 1]
    skin_type = rng.uniform(-0.85, 0.55)
    fmel = skin_type + 0.07 * _smooth_field(x, y, rng)
    fblood = rng.uniform(-0.55, 0.05) + 0.07 * _smooth_field(x, y, rng)

    for side in (-1, 1):
        fblood += rng.uniform(0.1, 0.35) * _gauss(x, y, side * 0.48, -0.2, 0.2)
        arch = 0.43 + 0.06 * (1.0 - ((np.abs(x) - 0.37) / 0.22) ** 2)
        brow = np.exp(-0.5 * ((y - arch) / 0.04) ** 2) * _gauss(x, 0, side * 0.37, 0, 0.13)
        fmel = fmel + rng.uniform(0.8, 1.4) * brow
    lips = np.clip(2.0 * _gauss(x, y, 0.0, -0.56, 0.19, 0.05) - 0.5, 0.0, 1.0)
    fblood = fblood + rng.uniform(0.4, 0.8) * lips
    fmel = fmel + 0.1 * lips

    if rng.random() < 0.35:
        cheeks_and_nose = lambda cx, cy: (-0.45 < cy < 0.15) and abs(cx) < 0.7
        fmel += _spots(x, y, rng, rng.integers(25, 60), cheeks_and_nose, (0.015, 0.03), (0.2, 0.4))
    on_face = lambda cx, cy: cx**2 + (cy / HEAD_ASPECT) ** 2 < 0.6
    fmel += _spots(x, y, rng, rng.poisson(1.5), on_face, (0.02, 0.035), (0.6, 1.0))

    gaze = rng.uniform(-0.03, 0.03, size=2)
    eyes, irises = np.zeros_like(x), np.zeros_like(x)
    for side in (-1, 1):
        eyes = np.maximum(eyes, (((x - side * 0.37) / 0.12) ** 2 + ((y - 0.22) / 0.05) ** 2 < 1.0) * 1.0)
        irises = np.maximum(irises, _gauss(x, y, side * 0.37 + gaze[0], 0.22 + gaze[1], 0.035) > 0.4)
    fmel = np.where(eyes > 0, np.where(irises > 0, 1.0, -1.0), fmel)
    fblood = np.where(eyes > 0, -1.0, fblood)

    hair = (y > shape.hairline - 0.6 * x**2).astype(np.float64)
    fmel = np.where(hair > 0, rng.uniform(0.3, 1.0), fmel)
    fblood = np.where(hair > 0, -1.0, fblood)
    return {
        "fmel": np.clip(fmel, -1.0, 1.0),
        "fblood": np.clip(fblood, -1.0, 1.0),
        "hair": hair,
        "eyes": eyes,
        "skin_type": skin_type,
    }


def specular_map(normals, coords, light_direction, rng) -> np.ndarray:
    """A glossy Blinn–Phong lobe, strongest on forehead, nose and cheeks, `(H, W)`."""
    x, y = coords[..., 0], coords[..., 1]
    half = light_direction + np.array([0.0, 0.0, 1.0])
    half /= np.linalg.norm(half)
    lobe = np.clip(normals @ half, 0.0, None) ** rng.uniform(8.0, 30.0)
    oily = np.maximum.reduce(
        [
            _gauss(x, y, 0.0, 0.6, 0.45, 0.18),
            _gauss(x, y, 0.0, -0.05, 0.1, 0.3),
            _gauss(x, y, -0.45, -0.15, 0.18),
            _gauss(x, y, 0.45, -0.15, 0.18),
        ]
    )
    return rng.uniform(0.2, 0.8) * lobe * (0.25 + 0.75 * oily)


def random_illuminant(rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """Illuminant weights `(14,)` (order A, D, F1..F12) and D-series ``cct`` in [1, 22].

    One illuminant dominates: daylight half the time, incandescent a quarter,
    a fluorescent a quarter; the rest of the weight is spread at random.
    """
    kind = rng.random()
    dominant = DAYLIGHT if kind < 0.5 else INCANDESCENT if kind < 0.75 else rng.integers(2, N_ILLUMINANTS)
    weights = rng.uniform(0.1, 0.4) * rng.dirichlet(np.full(N_ILLUMINANTS, 0.3))
    weights[dominant] += 1.0 - weights.sum()
    return weights, rng.uniform(1.0, 22.0)


def random_lighting(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A distant light plus ambient light: unit direction `(3,)` and SH `(9,)`."""
    direction = np.array([rng.uniform(-0.7, 0.7), rng.uniform(-0.2, 0.8), 1.0])
    direction /= np.linalg.norm(direction)
    sh = sh_shading.directional_sh(direction[None], rng.uniform(0.6, 1.0), rng.uniform(0.2, 0.4))[0]
    return direction, sh


@dataclasses.dataclass
class Scene:
    """Everything about one face except its rendering (NumPy, float32 maps)."""

    normals: np.ndarray
    head: np.ndarray
    mask: np.ndarray
    sh: np.ndarray
    fmel: np.ndarray
    fblood: np.ndarray
    shading: np.ndarray
    specmask: np.ndarray
    b: np.ndarray
    light_weights: np.ndarray
    cct: float
    background: np.ndarray
    noise: tuple[float, float]


def random_scene(size: int, rng: np.random.Generator) -> Scene:
    """One random face, pose, skin, light, camera, background and sensor."""
    shape = FaceShape.random(rng)
    geometry = face_geometry(shape, Pose.random(rng), size)
    skin = skin_maps(geometry["coords"], shape, rng)
    light_direction, sh = random_lighting(rng)
    head = geometry["head"]
    mask = ((head >= 0.5) & (skin["hair"] < 0.5)).astype(np.float32)
    sh_rgb = np.repeat(sh[None].astype(np.float32), 3, axis=0)
    normals = geometry["normals"].astype(np.float32)
    shading = sh_shading.grey_shading(normals[None], sh_rgb[None])[0]
    specmask = specular_map(geometry["normals"], geometry["coords"], light_direction, rng)
    specmask *= (head > 0) * (1.0 - skin["hair"])
    weights, cct = random_illuminant(rng)
    grey = rng.uniform(0.1, 0.8, size=(2, 1))
    top, bottom = 0.6 * grey + 0.4 * rng.uniform(0.05, 0.8, size=(2, 3))
    rows = np.linspace(0.0, 1.0, size)[:, None, None]
    background = (1 - rows) * top + rows * bottom
    return Scene(
        normals=normals,
        head=head.astype(np.float32),
        mask=mask,
        sh=sh_rgb,
        fmel=skin["fmel"].astype(np.float32),
        fblood=skin["fblood"].astype(np.float32),
        shading=np.where(head > 0, shading, 0.0).astype(np.float32),
        specmask=specmask.astype(np.float32),
        b=rng.uniform(-3.0, 3.0, size=2),
        light_weights=weights,
        cct=cct,
        background=np.broadcast_to(background, (size, size, 3)).astype(np.float32),
        noise=(rng.uniform(1e-4, 1e-3), rng.uniform(5e-4, 3e-3)),
    )


def render(scenes: list[Scene], decoder, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Render scenes through the physics decoder, then add background and noise.

    Returns:
        ``image`` `(B, H, W, 3)` sRGB with sensor noise and ``albedo``
        `(B, H, W, 3)` noise-free unlit sRGB (shading 1, no specular).
    """
    import tensorflow as tf

    from bioface_tf.physics import srgb_decode, srgb_encode

    def stack(name):
        return np.stack([getattr(s, name) for s in scenes]).astype(np.float32)

    n = len(scenes)
    maps = {name: np.concatenate([stack(name)] * 2)[..., None] for name in ("fmel", "fblood")}
    lit = np.maximum(stack("shading"), SHADING_FLOOR)
    maps["shading"] = np.concatenate([lit, np.ones_like(lit)])[..., None]
    maps["specmask"] = np.concatenate([stack("specmask"), np.zeros_like(lit)])[..., None]
    maps["b"] = np.concatenate([stack("b")] * 2)
    maps["light_weights"] = np.concatenate([stack("light_weights")] * 2)
    maps["cct"] = np.concatenate([stack("cct")] * 2)[:, None]
    out = decoder({k: tf.constant(v) for k, v in maps.items()})
    linear = out["linear_srgb"].numpy()[:n]
    albedo = out["srgb"].numpy()[n:]

    head = stack("head")[..., None]
    background = srgb_decode(tf.constant(stack("background"))).numpy()
    linear = head * linear + (1.0 - head) * background
    gain, floor = np.array([s.noise for s in scenes]).T[..., None, None, None]
    noisy = linear + rng.normal(size=linear.shape) * np.sqrt(gain * np.clip(linear, 0, None) + floor**2)
    image = srgb_encode(tf.constant(noisy.astype(np.float32))).numpy()
    return {"image": image, "albedo": albedo * head}


def write_synthetic(
    path: str | pathlib.Path, n: int, size: int = 64, seed: int = 0, progress: bool = True,
    variety: str = "standard",
) -> pathlib.Path:
    """Render ``n`` faces into one HDF5 file in the CelebA layout plus ``gt_*``.

    Faces come from :func:`bioface_tf.data.stream.render_batch`: face ``i``
    depends only on ``(seed, i)``, the same face the training stream of that
    seed yields. They are rendered a block
    (:data:`~bioface_tf.data.stream.BLOCK` faces) at a time, by two threads
    while earlier blocks are written; nothing holds all of them in memory.
    ``lrgb`` holds each face's least-squares SH fit of its shading, so the reader's pseudo ground-truth shading
    approximates ``gt_shading``, the exact shading the image was rendered
    with (cast shadows and several lights are beyond second-order SH).
    ``variety`` is the stream's pigment distribution
    (:data:`bioface_tf.data.stream.VARIETIES`, ``train.rendered_variety``).
    """
    from bioface_tf.data import stream

    if n < 1 or size < 16:
        raise DataError(f"{path}: need at least 1 face of at least 16x16 pixels (got n={n}, size={size})")
    if variety not in stream.VARIETIES:
        raise DataError(f"{path}: unknown face variety '{variety}' (choose from {', '.join(stream.VARIETIES)})")
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    chunk = min(stream.BLOCK, n)
    with h5py.File(path, "w") as f:
        zx7 = f.create_dataset(DATASET, (n, N_CHANNELS, size, size), "f4", chunks=(chunk, N_CHANNELS, size, size))
        lrgb = f.create_dataset(EMBEDDED_LIGHTING, (n, 3, 9), "f4")
        gt = {name: f.create_dataset(name, (n, size, size), "f4", chunks=(chunk, size, size))
              for name in ("gt_fmel", "gt_fblood", "gt_shading", "gt_specmask")}
        gt.update({name: f.create_dataset(name, (n, d), "f4")
                   for name, d in (("gt_b", 2), ("gt_light_weights", N_ILLUMINANTS), ("gt_cct", 1))})
        f.attrs.update(
            description="faces rendered by bioface synth through the BioFaceNet physics decoder",
            seed=seed,
            variety=variety,
            generator="bioface_tf.data.stream",
            normal_encoding="signed",
            normal_axes="x right, y up, z towards the camera",
        )
        blocks = stream.render_blocks(seed, size, range(-(-n // stream.BLOCK)), albedo=True, variety=variety)
        with tqdm(total=n, desc="rendering faces", unit="face", disable=not progress) as bar, \
                contextlib.closing(blocks):
            for start, block in zip(range(0, n, stream.BLOCK), blocks):
                stop = min(start + stream.BLOCK, n)
                batch = {k: v[: stop - start] for k, v in block.items()}
                hwc = np.concatenate([batch["srgb"], batch["normals"], batch["mask"], batch["albedo"]], axis=-1)
                zx7[start:stop] = hwc.transpose(0, 3, 1, 2)
                lrgb[start:stop] = batch["lighting"]
                for name in ("gt_fmel", "gt_fblood", "gt_shading", "gt_specmask"):
                    gt[name][start:stop] = batch[name][..., 0]
                for name in ("gt_b", "gt_light_weights", "gt_cct"):
                    gt[name][start:stop] = batch[name]
                bar.update(stop - start)
    return path


def contact_sheet(images: np.ndarray, columns: int = 4, zoom: int = 2, gap: int = 2) -> np.ndarray:
    """Images `(N, H, W, 3)` in [0, 1] tiled into one uint8 RGB picture."""
    n, height, width, _ = images.shape
    rows = -(-n // columns)
    tile_h, tile_w = height * zoom + gap, width * zoom + gap
    sheet = np.full((rows * tile_h + gap, columns * tile_w + gap, 3), 255, np.uint8)
    for i, image in enumerate(images):
        big = np.repeat(np.repeat(image, zoom, axis=0), zoom, axis=1)
        r, c = divmod(i, columns)
        sheet[gap + r * tile_h : gap + r * tile_h + height * zoom, gap + c * tile_w : gap + c * tile_w + width * zoom] = (
            np.clip(big, 0, 1) * 255
        ).round().astype(np.uint8)
    return sheet
