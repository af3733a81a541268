"""What a training set holds, computed in one streaming pass.

:func:`summarise` reads every face once, a chunk at a time, and reports the
numbers a user checks before training (and ``bioface inspect`` prints);
:func:`check` turns the problems among them into a :class:`DataError`, so that
bad data stops a run before its first step, not half-way through an epoch.
A file's specular-target sidecar, when it has one, is read in the same pass,
so that non-finite targets are reported then too.
"""

from __future__ import annotations

import dataclasses
import math
import pathlib

import numpy as np
from tqdm import tqdm

from bioface_tf.data.celeba import SCAN_CHUNK, CelebAFaces
from bioface_tf.data.photos import PhotoFaces
from bioface_tf.errors import DataError

MAX_LISTED = 5
IMAGE_MAX = 1.0 + 1e-3


@dataclasses.dataclass
class Summary:
    """Statistics of one data file (or one set of photos).

    Shading statistics are over pixels inside the masks, and ``None`` when
    the data has no shading target (photos).
    """

    source: str
    n_faces: int
    image_size: int
    normal_encoding: str | None
    mask_coverage_mean: float
    shading_min: float | None
    shading_mean: float | None
    shading_max: float | None
    nonfinite: int
    has_ground_truth: bool
    image_max: float
    empty_mask_faces: list[int]
    nonfinite_faces: list[int]
    skipped: list[str] = dataclasses.field(default_factory=list)


class _Accumulator:
    def __init__(self):
        self.n = 0
        self.coverage = 0.0
        self.shading_sum = 0.0
        self.shading_count = 0
        self.shading_min = math.inf
        self.shading_max = -math.inf
        self.nonfinite = 0
        self.image_max = -math.inf
        self.empty_masks: list[int] = []
        self.nonfinite_faces: list[int] = []

    def add(self, start: int, batch: dict[str, np.ndarray]) -> None:
        n = len(batch["image"])
        faces = np.arange(start, start + n)
        bad = np.zeros(n, bool)
        for key in ("image", "mask", "normals", "lighting"):
            if key in batch:
                finite = np.isfinite(batch[key]).reshape(n, -1)
                self.nonfinite += int(finite.size - finite.sum())
                bad |= ~finite.all(axis=1)
        self.nonfinite_faces += faces[bad].tolist()
        inside = (batch["mask"][..., 0] > 0.5).reshape(n, -1)
        self.coverage += float(inside.mean(axis=1).sum())
        self.empty_masks += faces[~inside.any(axis=1)].tolist()
        image = batch["image"]
        if np.isfinite(image).any():
            self.image_max = max(self.image_max, float(np.nanmax(np.where(np.isfinite(image), image, -np.inf))))
        valid = batch["shading_valid"] > 0
        shading = batch["shading"][..., 0].reshape(n, -1)[valid][inside[valid]]
        shading = shading[np.isfinite(shading)]
        if shading.size:
            self.shading_sum += float(shading.sum(dtype=np.float64))
            self.shading_count += shading.size
            self.shading_min = min(self.shading_min, float(shading.min()))
            self.shading_max = max(self.shading_max, float(shading.max()))
        self.n += n


def _finish(acc: _Accumulator, **fields) -> Summary:
    has_shading = acc.shading_count > 0
    return Summary(
        n_faces=acc.n,
        mask_coverage_mean=acc.coverage / max(acc.n, 1),
        shading_min=acc.shading_min if has_shading else None,
        shading_mean=acc.shading_sum / acc.shading_count if has_shading else None,
        shading_max=acc.shading_max if has_shading else None,
        nonfinite=acc.nonfinite,
        image_max=acc.image_max,
        empty_mask_faces=acc.empty_masks,
        nonfinite_faces=acc.nonfinite_faces,
        **fields,
    )


def summarise(faces: CelebAFaces | PhotoFaces, progress: bool = True) -> list[Summary]:
    """One :class:`Summary` per file (CelebA layout) or one for all photos."""
    if isinstance(faces, PhotoFaces):
        acc = _Accumulator()
        for start in range(0, len(faces), SCAN_CHUNK):
            acc.add(start, faces.read(np.arange(start, min(start + SCAN_CHUNK, len(faces)))))
        return [
            _finish(
                acc,
                source=f"{len(faces.paths)} photos",
                image_size=faces.image_size,
                normal_encoding=None,
                has_ground_truth=False,
                skipped=[f"{path}: {why}" for path, why in faces.skipped],
            )
        ]
    summaries = []
    bar = tqdm(total=len(faces), desc="reading faces", unit="face", disable=not progress or len(faces) < 2000)
    for file in faces.files:
        acc = _Accumulator()
        for start in range(0, file.n_faces, SCAN_CHUNK):
            stop = min(start + SCAN_CHUNK, file.n_faces)
            acc.add(start, faces.read_range(file, start, stop, specular_target=file.specular is not None))
            bar.update(stop - start)
        summaries.append(
            _finish(
                acc,
                source=str(file.images),
                image_size=file.image_size,
                normal_encoding=file.normal_encoding,
                has_ground_truth=file.has_ground_truth,
            )
        )
    bar.close()
    return summaries


def combine(summaries: list[Summary]) -> dict:
    """The totals over several summaries, with the keys ``bioface inspect`` prints."""
    n = sum(s.n_faces for s in summaries)
    with_shading = [s for s in summaries if s.shading_mean is not None]
    encodings = sorted({s.normal_encoding for s in summaries if s.normal_encoding})
    shading_pixels = [s.shading_mean * s.n_faces * s.mask_coverage_mean for s in with_shading]
    weights = [s.n_faces * s.mask_coverage_mean for s in with_shading]
    return {
        "n_faces": n,
        "image_size": summaries[0].image_size,
        "normal_encoding": encodings[0] if len(encodings) == 1 else (encodings or None),
        "mask_coverage_mean": sum(s.mask_coverage_mean * s.n_faces for s in summaries) / n,
        "shading_min": min((s.shading_min for s in with_shading), default=None),
        "shading_mean": sum(shading_pixels) / sum(weights) if with_shading and sum(weights) else None,
        "shading_max": max((s.shading_max for s in with_shading), default=None),
        "nonfinite": sum(s.nonfinite for s in summaries),
        "has_ground_truth": all(s.has_ground_truth for s in summaries),
        "sources": [dataclasses.asdict(s) for s in summaries],
    }


def problems(summary: Summary) -> list[str]:
    """What makes a file unusable for training, one message each (may be empty)."""
    found = []
    if summary.nonfinite:
        found.append(
            f"{summary.source}: {summary.nonfinite} NaN/Inf values "
            f"(faces {_listing(summary.nonfinite_faces)})"
        )
    if summary.empty_mask_faces:
        found.append(
            f"{summary.source}: empty face mask "
            f"(faces {_listing(summary.empty_mask_faces)})"
        )
    if summary.image_max > IMAGE_MAX:
        found.append(
            f"{summary.source}: image values up to {summary.image_max:.4g}, expected sRGB in [0, 1]"
        )
    return found


def check(summaries: list[Summary]) -> None:
    """Raise :class:`DataError` listing every problem :func:`problems` finds."""
    found = [message for s in summaries for message in problems(s)]
    if found:
        raise DataError("; ".join(found))


def _listing(faces: list[int]) -> str:
    shown = ", ".join(map(str, faces[:MAX_LISTED]))
    return shown + (f" and {len(faces) - MAX_LISTED} more" if len(faces) > MAX_LISTED else "")


def open_faces(inputs, lighting=None, image_size: int | None = 64, progress: bool = True):
    """A face source for command-line inputs: HDF5 files/globs or photos/folders.

    Inputs ending in ``.h5``/``.hdf5`` (or globs of them) are read as the
    CelebA layout; anything else as photos. The two kinds cannot be mixed.
    """
    inputs = [str(i) for i in inputs]
    is_hdf5 = [pathlib.Path(i).suffix.lower() in (".h5", ".hdf5") for i in inputs]
    if all(is_hdf5):
        return CelebAFaces(inputs, lighting=lighting, image_size=image_size)
    if any(is_hdf5):
        raise DataError("give either HDF5 files or photos, not both: " + ", ".join(inputs))
    if lighting:
        raise DataError("lighting files go with HDF5 image files, not photos")
    return PhotoFaces(inputs, image_size=image_size or 64, progress=progress)
