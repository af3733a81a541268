"""Specular pseudo ground truth for whole datasets, in sidecar HDF5 files.

For an image file ``X.hdf5`` (CelebA ``X_inmc.hdf5`` pairs, ``bioface synth``
output: a ``zx_7`` dataset of shape `(N, C, H, W)`, channels 0–2 the sRGB
image in [0, 1], channel 6 the face mask) or a photo ``X.jpg``, the targets go
to a sidecar ``X_specular.hdf5`` beside it (or in another folder); the source
is only ever read. A sidecar holds float32 datasets

* ``specular`` `(N, H, W)`: the refined specular map,
* ``specular_dark`` `(N, H, W)`: the plain dark-channel estimate,
* ``illuminant`` `(N, 3)`: the illuminant colour used (channel mean 1),

all in linear intensity of the linearised image (see
:mod:`bioface_tf.specular`), plus ``done`` `(n_chunks,)` flags and attributes
naming the source, the linearisation curve and the method parameters. It is
written as ``X_specular.hdf5.partial`` and renamed when complete, so a run
that is interrupted resumes from the chunks already done.

Example:

>>> from bioface_tf.specular_targets import sidecar_path
>>> str(sidecar_path("data/zx_7_d10_inmc_celebA_20.hdf5"))
'data/zx_7_d10_inmc_celebA_20_specular.hdf5'
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
from collections.abc import Iterator

import cv2
import h5py
import numpy as np

from bioface_tf import specular
from bioface_tf.errors import DataError

SIDECAR_SUFFIX = "_specular.hdf5"
IMAGE_DATASET = "zx_7"
IMAGE_CHANNELS = (0, 1, 2)
NORMAL_CHANNELS = (3, 4, 5)
MASK_CHANNEL = 6
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
FORMAT_VERSION = 1


def sidecar_path(source, out_dir=None) -> pathlib.Path:
    """Where the targets of ``source`` go: ``X.ext`` → ``X_specular.hdf5``."""
    source = pathlib.Path(source)
    folder = source.parent if out_dir is None else pathlib.Path(out_dir)
    return folder / (source.stem + SIDECAR_SUFFIX)


@dataclasses.dataclass(frozen=True)
class TargetOptions:
    """How targets are computed (recorded in every sidecar).

    Attributes:
        illuminant: ``"white"`` or ``"estimate"``.
        curve: linearisation curve, see :func:`bioface_tf.specular.linearise`.
        params: refinement parameters. The default is the smooth model with
            ``geometry="light"`` (``docs/SPECULAR_METHOD.md`` §10d), which
            needs normals: it is used for face files whose ``zx_7``
            channels 3–5 hold unit normals (either encoding); photos and
            face files without normals get the same parameters with
            ``geometry="none"`` (recorded per sidecar in its ``geometry``
            attribute).
        chunk: faces solved together (and the resume granularity).
        max_size: photos larger than this (longest side, pixels) are shrunk
            first; 0 keeps them as they are.
    """

    illuminant: str = "white"
    curve: str = "srgb"
    params: specular.RefinementParams = specular.RefinementParams(geometry="light")
    chunk: int = 256
    max_size: int = 1024

    def fingerprint(self) -> str:
        record = dataclasses.asdict(self)
        record.pop("chunk")
        return json.dumps({"format": FORMAT_VERSION, **record}, sort_keys=True)


@dataclasses.dataclass(frozen=True)
class Source:
    """One file of images: an HDF5 face file or a photo.

    Attributes:
        path: the file.
        n: number of images.
        height, width: image size (after shrinking, for photos).
        kind: ``"faces"`` (HDF5 ``zx_7``) or ``"photo"``.
        normal_encoding: how the face file stores its normals (``"signed"``
            or ``"unit01"``, read from its first faces), or ``None`` when it
            holds no unit normals (and for photos).
    """

    path: pathlib.Path
    n: int
    height: int
    width: int
    kind: str
    normal_encoding: str | None = None

    def geometry(self, options: "TargetOptions") -> str:
        """The geometry prior its targets are computed with: ``options.params.geometry``, or
        ``"none"`` when that needs normals and the source has none."""
        if options.params.geometry != "none" and self.normal_encoding is None:
            return "none"
        return options.params.geometry


def find_sources(paths, options: TargetOptions = TargetOptions()) -> list[Source]:
    """Image files named by ``paths`` (files, or folders searched recursively).

    In folders, HDF5 files whose ``zx_7`` is not an image stack (lighting
    files) and existing sidecars are skipped; a file named explicitly must be
    readable.

    Raises:
        DataError: a path is missing, unreadable or not in a known layout.
    """
    sources = []
    for raw in paths:
        path = pathlib.Path(raw)
        if path.is_dir():
            for child in sorted(p for p in path.rglob("*") if p.is_file()):
                if child.name.endswith(SIDECAR_SUFFIX) or child.name.endswith(SIDECAR_SUFFIX + ".partial"):
                    continue
                if child.suffix.lower() in PHOTO_SUFFIXES:
                    sources.append(_photo_source(child, options))
                elif child.suffix.lower() in (".hdf5", ".h5") and _is_face_file(child):
                    sources.append(_faces_source(child))
        elif path.is_file():
            if path.suffix.lower() in PHOTO_SUFFIXES:
                sources.append(_photo_source(path, options))
            else:
                sources.append(_faces_source(path))
        else:
            raise DataError(f"{path}: no such file or folder")
    return sources


def read_images(source: Source, start: int, stop: int, options: TargetOptions = TargetOptions()):
    """Images ``start:stop`` of a source.

    Returns:
        ``(images, masks)``: `(n, H, W, 3)` float32 sRGB in [0, 1] and
        `(n, H, W)` bool (all true for photos).

    Raises:
        DataError: unreadable file, non-finite values, values outside [0, 1].
    """
    if source.kind == "photo":
        image = read_photo(source.path, options.max_size)
        return image[None], np.ones((1,) + image.shape[:2], bool)
    try:
        with h5py.File(source.path, "r") as f:
            block = f[IMAGE_DATASET][start:stop, : MASK_CHANNEL + 1]
    except (OSError, KeyError) as err:
        raise DataError(f"{source.path}: cannot read faces {start}..{stop - 1}: {err}") from err
    block = np.asarray(block, np.float32)
    if not np.all(np.isfinite(block)):
        bad = start + int(np.flatnonzero(~np.isfinite(block).reshape(len(block), -1).all(axis=1))[0])
        raise DataError(f"{source.path}: non-finite values in face {bad}")
    images = np.moveaxis(block[:, list(IMAGE_CHANNELS)], 1, -1)
    if images.min() < -1e-3 or images.max() > 1.0 + 1e-3:
        raise DataError(
            f"{source.path}: image values in [{images.min():.3g}, {images.max():.3g}], expected sRGB in [0, 1]"
        )
    return np.clip(images, 0.0, 1.0), block[:, MASK_CHANNEL] > 0.5


@dataclasses.dataclass(frozen=True)
class ChunkTargets:
    """Targets of images ``start : start + len(specular)`` of one source.

    Attributes:
        start: index of the first image.
        specular, specular_dark: `(n, H, W)` float32.
        illuminant: `(n, 3)` float32.
        empty_masks: how many of the images have an empty mask (their
            refined target is zero).
    """

    start: int
    specular: np.ndarray
    specular_dark: np.ndarray
    illuminant: np.ndarray
    empty_masks: int


def read_normals(source: Source, start: int, stop: int) -> np.ndarray:
    """Normals of faces ``start:stop``, `(n, H, W, 3)` float32, signed (x right, y up, z to the camera).

    Raises:
        DataError: the source has no normals, or the file is unreadable.
    """
    if source.normal_encoding is None:
        raise DataError(f"{source.path}: holds no normals")
    try:
        with h5py.File(source.path, "r") as f:
            raw = np.asarray(f[IMAGE_DATASET][start:stop, NORMAL_CHANNELS[0] : NORMAL_CHANNELS[-1] + 1], np.float32)
    except (OSError, KeyError) as err:
        raise DataError(f"{source.path}: cannot read the normals of faces {start}..{stop - 1}: {err}") from err
    from bioface_tf.data.normals import decode_normals

    normals = decode_normals(np.moveaxis(raw, 1, -1), source.normal_encoding)
    return np.where(np.isfinite(normals), normals, 0.0).astype(np.float32)


def compute_chunk(source: Source, start: int, stop: int, options: TargetOptions = TargetOptions()) -> ChunkTargets:
    """Targets of images ``start:stop`` of ``source``."""
    images, masks = read_images(source, start, stop, options)
    illuminant = "estimate" if options.illuminant == "estimate" else None
    geometry = source.geometry(options)
    params = dataclasses.replace(options.params, geometry=geometry)
    normals = read_normals(source, start, stop) if geometry != "none" else None
    result = specular.separate_batch(images, masks, illuminant, params=params, curve=options.curve, normals=normals)
    empty = int((~masks.any(axis=(1, 2))).sum())
    return ChunkTargets(start, result.specular, result.specular_dark, result.illuminant, empty)


def chunks(n: int, size: int) -> list[tuple[int, int]]:
    """`[(start, stop), ...]` covering `range(n)` in blocks of ``size``."""
    return [(start, min(start + size, n)) for start in range(0, n, size)]


class Sidecar:
    """A sidecar being written: open or create the ``.partial`` file, record
    chunks, rename when complete.

    Args:
        source: the source it belongs to.
        path: final sidecar path.
        options: target options; a partial file made with other options (or
            for a changed source) is started over.
    """

    def __init__(self, source: Source, path: pathlib.Path, options: TargetOptions):
        self.source, self.path, self.options = source, path, options
        self.partial = path.with_name(path.name + ".partial")
        self.spans = chunks(source.n, options.chunk)
        self.file = self._open()

    def pending(self) -> Iterator[tuple[int, int]]:
        done = self.file["done"][:]
        return (span for span, flag in zip(self.spans, done) if not flag)

    def write(self, targets: ChunkTargets) -> None:
        start, stop = targets.start, targets.start + len(targets.specular)
        self.file["specular"][start:stop] = targets.specular
        self.file["specular_dark"][start:stop] = targets.specular_dark
        self.file["illuminant"][start:stop] = targets.illuminant
        self.file["done"][self.spans.index((start, stop))] = True
        self.file.flush()

    def finish(self) -> None:
        complete = bool(self.file["done"][:].all())
        self.file.close()
        if complete:
            os.replace(self.partial, self.path)

    def _stamp(self) -> dict:
        stat = self.source.path.stat()
        return {
            "source": str(self.source.path.resolve()),
            "source_size": stat.st_size,
            "source_mtime_ns": stat.st_mtime_ns,
            "options": self.options.fingerprint(),
            "chunk": self.options.chunk,
        }

    def _open(self) -> h5py.File:
        stamp = self._stamp()
        if self.partial.exists():
            try:
                f = h5py.File(self.partial, "r+")
                if all(f.attrs.get(key) == value for key, value in stamp.items()):
                    return f
                f.close()
            except OSError:
                pass  # a partial file damaged by the interruption: start over
            self.partial.unlink()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        f = h5py.File(self.partial, "w")
        shape = (self.source.n, self.source.height, self.source.width)
        block = (min(self.options.chunk, self.source.n), self.source.height, self.source.width)
        for name in ("specular", "specular_dark"):
            f.create_dataset(name, shape, np.float32, chunks=block)
        f.create_dataset("illuminant", (self.source.n, 3), np.float32)
        f.create_dataset("done", (len(self.spans),), bool)
        f.attrs.update(stamp)
        f.attrs["units"] = "linear intensity of the linearised image (channel mean of the specular image)"
        f.attrs["curve"] = self.options.curve
        f.attrs["geometry"] = self.source.geometry(self.options)
        return f


# --------------------------------------------------------------------------
# Source inspection
# --------------------------------------------------------------------------


def _is_face_file(path: pathlib.Path) -> bool:
    try:
        with h5py.File(path, "r") as f:
            data = f.get(IMAGE_DATASET)
            return data is not None and data.ndim == 4 and data.shape[1] > MASK_CHANNEL
    except OSError:
        return False


def _faces_source(path: pathlib.Path) -> Source:
    try:
        with h5py.File(path, "r") as f:
            if IMAGE_DATASET not in f:
                raise DataError(f"{path}: no '{IMAGE_DATASET}' dataset (found: {', '.join(f) or 'nothing'})")
            shape = f[IMAGE_DATASET].shape
    except OSError as err:
        raise DataError(f"{path}: not a readable HDF5 file ({err})") from err
    if len(shape) != 4 or shape[1] <= MASK_CHANNEL:
        raise DataError(
            f"{path}: '{IMAGE_DATASET}' has shape {shape}; expected (N, C, H, W) with C ≥ {MASK_CHANNEL + 1} "
            "(channels 0-2 image, 6 mask)"
        )
    if shape[0] == 0:
        raise DataError(f"{path}: '{IMAGE_DATASET}' holds no faces")
    return Source(path, shape[0], shape[2], shape[3], "faces", _normal_encoding(path))


def _normal_encoding(path: pathlib.Path) -> str | None:
    """``"signed"`` / ``"unit01"`` if the first faces' channels 3–5 are unit normals
    inside their masks, else ``None``."""
    from bioface_tf.data.normals import detect_normal_encoding

    try:
        with h5py.File(path, "r") as f:
            block = np.asarray(f[IMAGE_DATASET][:64, : MASK_CHANNEL + 1], np.float32)
        raw = np.moveaxis(block[:, NORMAL_CHANNELS[0] : NORMAL_CHANNELS[-1] + 1], 1, -1)
        return detect_normal_encoding(raw, block[:, MASK_CHANNEL], path)
    except (OSError, KeyError, DataError):
        return None


def _photo_source(path: pathlib.Path, options: TargetOptions) -> Source:
    image = read_photo(path, options.max_size)
    return Source(path, 1, image.shape[0], image.shape[1], "photo")


def read_photo(path: pathlib.Path, max_size: int) -> np.ndarray:
    """`(H, W, 3)` float32 sRGB in [0, 1] (8- or 16-bit files)."""
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if raw is None:
        raise DataError(f"{path}: not a readable image")
    if raw.ndim != 3 or raw.shape[2] not in (3, 4):
        raise DataError(f"{path}: not an RGB image (shape {raw.shape})")
    scale = float(np.iinfo(raw.dtype).max) if np.issubdtype(raw.dtype, np.integer) else 1.0
    image = cv2.cvtColor(raw[..., :3], cv2.COLOR_BGR2RGB).astype(np.float32) / scale
    longest = max(image.shape[:2])
    if max_size and longest > max_size:
        factor = max_size / longest
        size = (max(1, round(image.shape[1] * factor)), max(1, round(image.shape[0] * factor)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return np.clip(image, 0.0, 1.0)
