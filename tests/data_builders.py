"""Tiny data files in the exact layouts the data package reads, for its tests.

Everything here is written from first principles (NumPy, h5py, OpenCV
drawing), never with the code under test.
"""

from __future__ import annotations

import pathlib
import textwrap

import cv2
import h5py
import numpy as np

SH_BAND = np.array([0, 1, 1, 1, 2, 2, 2, 2, 2])
A_HAT = np.array([np.pi, 2.0 * np.pi / 3.0, np.pi / 4.0])
LUMA = np.array([0.2989, 0.5870, 0.1140])


def sh_basis(n: np.ndarray) -> np.ndarray:
    """Real SH basis Y_lm(n) up to l = 2, order L00, L1-1, L10, L11, L2-2, L2-1, L20, L21, L22."""
    x, y, z = n[..., 0], n[..., 1], n[..., 2]
    return np.stack(
        [
            0.282095 * np.ones_like(x),
            0.488603 * y,
            0.488603 * z,
            0.488603 * x,
            1.092548 * x * y,
            1.092548 * y * z,
            0.315392 * (3 * z**2 - 1),
            1.092548 * x * z,
            0.546274 * (x**2 - y**2),
        ],
        axis=-1,
    )


def expected_shading(normals: np.ndarray, sh: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Grey shading `(N, H, W)` as E = Σ Â_l L_lm Y_lm(n) per channel (Ramamoorthi–Hanrahan)."""
    basis = sh_basis(normals.astype(np.float64))  # (N, H, W, 9)
    per_channel = np.stack(
        [(basis * (A_HAT[SH_BAND] * sh[:, None, None, c, :])).sum(-1) for c in range(3)], axis=-1
    )
    grey = np.maximum(per_channel @ LUMA, 0.0)
    return np.where(mask > 0.5, grey, 0.0)


def random_faces(n: int, size: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Random faces: images (N,H,W,3), unit normals (N,H,W,3), masks (N,H,W), sh (N,3,9)."""
    rng = np.random.default_rng(seed)
    normals = rng.normal(size=(n, size, size, 3))
    normals[..., 2] = np.abs(normals[..., 2]) + 0.3
    normals /= np.linalg.norm(normals, axis=-1, keepdims=True)
    yy, xx = np.mgrid[0:size, 0:size] / (size - 1) - 0.5
    radius = rng.uniform(0.25, 0.45, size=(n, 1, 1))
    mask = (xx**2 + yy**2 < radius**2).astype(np.float32)
    sh = rng.normal(scale=0.4, size=(n, 3, 9))
    sh[:, :, 0] += 1.5
    return {
        "image": rng.uniform(0, 1, size=(n, size, size, 3)).astype(np.float32),
        "normals": normals.astype(np.float32),
        "mask": mask,
        "extra": rng.uniform(0, 1, size=(n, size, size, 3)).astype(np.float32),
        "sh": sh.astype(np.float32),
    }


def zx7_stack(faces: dict, encoding: str = "signed") -> np.ndarray:
    """The (N, 10, H, W) image-file array of ``faces``."""
    normals = faces["normals"] if encoding == "signed" else (faces["normals"] + 1.0) / 2.0
    hwc = np.concatenate(
        [faces["image"], normals, faces["mask"][..., None], faces["extra"]], axis=-1
    )
    return np.ascontiguousarray(hwc.transpose(0, 3, 1, 2)).astype(np.float32)


def write_pair(
    folder: pathlib.Path,
    faces: dict,
    tag: str = "01",
    encoding: str = "signed",
) -> tuple[pathlib.Path, pathlib.Path]:
    """Write ``zx_7_d10_inmc_celebA_<tag>.hdf5`` and its ``zx_7_d3_lrgb`` partner."""
    images = folder / f"zx_7_d10_inmc_celebA_{tag}.hdf5"
    lighting = folder / f"zx_7_d3_lrgb_celebA_{tag}.hdf5"
    with h5py.File(images, "w") as f:
        f["zx_7"] = zx7_stack(faces, encoding)
    with h5py.File(lighting, "w") as f:
        f["zx_7"] = faces["sh"]
    return images, lighting


def draw_face(height: int, width: int, centre: tuple[int, int], scale: float) -> np.ndarray:
    """A cartoon face on a blue background, BGR uint8 (OpenCV's cascade finds it)."""
    img = np.full((height, width, 3), (160, 120, 90), np.uint8)
    cx, cy = centre

    def p(dx, dy):
        return int(cx + dx * scale), int(cy + dy * scale)

    def s(v):
        return max(1, int(v * scale))

    cv2.ellipse(img, p(0, 5), (s(60), s(80)), 0, 0, 360, (150, 180, 220), -1)
    for dx in (-25, 25):
        cv2.ellipse(img, p(dx, -15), (s(12), s(6)), 0, 0, 360, (255, 255, 255), -1)
        cv2.circle(img, p(dx, -15), s(5), (40, 30, 20), -1)
        cv2.line(img, p(dx - 15, -32), p(dx + 15, -34), (40, 40, 60), s(5))
    cv2.line(img, p(0, -10), p(-6, 15), (110, 140, 180), s(3))
    cv2.ellipse(img, p(0, 38), (s(20), s(7)), 0, 0, 360, (90, 90, 170), -1)
    return cv2.GaussianBlur(img, (0, 0), 1.5 * scale)


NO_TENSORFLOW = textwrap.dedent(
    """
    import importlib.abc, sys

    class NoTensorFlow(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name.split(".")[0] in ("tensorflow", "keras", "tf_keras"):
                raise ImportError(f"{name} is not importable in this test")
            return None

    sys.meta_path.insert(0, NoTensorFlow())
    try:
        import tensorflow
    except ImportError:
        pass
    else:
        raise SystemExit("the blocker did not work")
    """
)
"""Prefix of a subprocess script: importing TensorFlow or Keras then fails (the lite runtime must not need them)."""
