"""Faces to analyse or edit, one at a time: photos, folders, HDF5 files.

The analysis and editing commands take any mix of inputs:

* a photo (JPEG/PNG, any size): its largest face (or every face) is found
  with the detector of :mod:`~bioface_tf.data.photos`, cropped to the model
  size and given its skin mask (:mod:`bioface_tf.masks`; or the elliptical
  mask on request); an image that is already a face crop
  is taken whole when no face is detected in it
  (:func:`~bioface_tf.data.photos.find_faces`); the photo can come along so
  an edit can be pasted back at full resolution;
* a folder: its photos, in name order;
* an HDF5 file in the CelebA layout (``.h5``/``.hdf5``, real or rendered by
  ``bioface synth``): each face with its own mask.

A bad input (unreadable, truncated, greyscale, too small, no face, wrong
layout) does not stop the others: :func:`iter_faces` yields a
:class:`Failure` naming the file and the problem in its place.

Example:

>>> for item in iter_faces(["photos/", "faces.hdf5"], size=64):   # doctest: +SKIP
...     print(item.name if isinstance(item, Face) else item.message)
"""

from __future__ import annotations

import dataclasses
import pathlib
import re
from collections.abc import Iterable, Iterator

import numpy as np

from bioface_tf.data.celeba import expand_paths
from bioface_tf.data.photos import find_faces, is_photo
from bioface_tf.errors import DataError

HDF5_SUFFIXES = (".h5", ".hdf5")
HDF5_CHUNK = 64


@dataclasses.dataclass
class Face:
    """One face at the model size.

    Attributes:
        name: a unique, file-system-safe name (photo stem, ``<photo
            stem>_face<k>`` for every face of a photo, or ``<file
            stem>_<index>`` for HDF5 faces).
        source: the file it came from.
        image: `(size, size, 3)` sRGB in [0, 1], float32.
        mask: `(size, size, 1)` face mask in [0, 1], float32.
        photo: `(H, W, 3)` the whole photo (photos asked to keep it, else None).
        square: ``(left, top, side)`` of the crop in the photo (photos only).
        crop: how the crop was chosen (photos only;
            :data:`~bioface_tf.data.photos.CROP_DETECTED` and the others).
        mask_kind: which face mask a photo's face has (photos only; one of
            :data:`bioface_tf.masks.MASK_KINDS`).
    """

    name: str
    source: pathlib.Path
    image: np.ndarray
    mask: np.ndarray
    photo: np.ndarray | None = None
    square: tuple[int, int, int] | None = None
    crop: str | None = None
    mask_kind: str | None = None

    def record(self) -> dict:
        """What ``params.json`` says of where the face came from: ``source``; for photos ``crop``, ``crop_square``, ``mask``."""
        record = {"source": str(self.source)}
        if self.crop is not None:
            record.update(crop=self.crop, crop_square=[int(v) for v in self.square])
        if self.mask_kind is not None:
            record.update(mask=self.mask_kind)
        return record


@dataclasses.dataclass
class Failure:
    """An input that gave no face: the file and a message naming the problem."""

    source: pathlib.Path
    message: str


def is_hdf5(path: pathlib.Path) -> bool:
    return path.suffix.lower() in HDF5_SUFFIXES


def _safe(stem: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", stem).strip("._") or "face"


def _files(inputs: Iterable[str | pathlib.Path]) -> Iterator[pathlib.Path | Failure]:
    for path in expand_paths(inputs):
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and (is_photo(p) or is_hdf5(p)))
            if not found:
                yield Failure(path, f"{path}: folder holds no JPEG/PNG photos or HDF5 files")
            yield from found
        elif not path.exists():
            yield Failure(path, f"{path}: file not found")
        else:
            yield path


def _hdf5_faces(path: pathlib.Path, size: int, limit: int | None) -> Iterator[Face]:
    from bioface_tf.data.celeba import CelebAFaces

    with CelebAFaces([path], image_size=size) as faces:
        n = len(faces) if limit is None else min(len(faces), limit)
        for start in range(0, n, HDF5_CHUNK):
            batch = faces.read(np.arange(start, min(start + HDF5_CHUNK, n)))
            for offset, (image, mask) in enumerate(zip(batch["image"], batch["mask"])):
                yield Face(f"{_safe(path.stem)}_{start + offset}", path, image, mask)


def iter_faces(
    inputs: Iterable[str | pathlib.Path],
    size: int,
    limit: int | None = None,
    keep_photo: bool = False,
    crop: str = "detect",
    all_faces: bool = False,
    mask: str = "skin",
) -> Iterator[Face | Failure]:
    """Faces from photos, folders and HDF5 files, or a :class:`Failure` each.

    Args:
        inputs: photo files, folders, HDF5 files or glob patterns.
        size: side of the model's input, pixels.
        limit: at most this many faces from each HDF5 file (None: all).
        keep_photo: keep each whole photo (for pasting an edit back);
            otherwise only the crop and its square are kept.
        crop: how photos are cropped, one of
            :data:`~bioface_tf.data.photos.CROP_MODES`
            (:func:`~bioface_tf.data.photos.face_squares`).
        all_faces: every face of a photo, named ``<stem>_face<k>`` left to
            right; otherwise its largest face, named ``<stem>``.
        mask: a photo's face mask, one of :data:`bioface_tf.masks.MASK_KINDS`
            (HDF5 faces keep their own masks).

    Yields:
        :class:`Face` or :class:`Failure`, in input order. Names are
        unique: a repeated name gets a ``_2``, ``_3``, … suffix.
    """
    seen: dict[str, int] = {}

    def unique(name: str) -> str:
        seen[name] = seen.get(name, 0) + 1
        return name if seen[name] == 1 else f"{name}_{seen[name]}"

    for path in _files(inputs):
        if isinstance(path, Failure):
            yield path
            continue
        try:
            if is_hdf5(path):
                for face in _hdf5_faces(path, size, limit):
                    face.name = unique(face.name)
                    yield face
                continue
            found = find_faces(path, size, crop, all_faces, mask)
        except DataError as err:
            message = str(err)
            yield Failure(path, message if str(path) in message else f"{path}: {message}")
            continue
        for k, face in enumerate(found):
            name = f"{_safe(path.stem)}_face{k}" if all_faces else _safe(path.stem)
            yield Face(
                unique(name), path, face.face, face.mask, face.photo if keep_photo else None, face.square, face.crop, mask
            )
