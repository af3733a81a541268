"""CelebA faces as prepared by Shu et al. for "Neural Face Editing" (CVPR 2017).

Each release file pairs an image file with a lighting file, both holding one
dataset named ``zx_7``:

=================================  ===================  ==========================================
file                               ``zx_7`` shape       content
=================================  ===================  ==========================================
``zx_7_d10_inmc_celebA_NN.hdf5``   `(N, 10, H, W)`      0–2 sRGB image in [0, 1]; 3–5 normals;
                                                        6 face mask; 7–9 unused
``zx_7_d3_lrgb_celebA_NN.hdf5``    `(N, 3, 9)`          SH lighting, 9 coefficients per channel
=================================  ===================  ==========================================

A lighting file is found from its image file's name (``_d10_inmc`` ↔
``_d3_lrgb``, generally ``_inmc`` ↔ ``_lrgb``), given explicitly, or held in
the image file itself as a dataset named ``lrgb`` (the layout written by
``bioface synth``, which also stores ``gt_*`` ground truth there).

Specular pseudo ground truth (Kim et al., written by ``bioface
specular-targets``) is picked up by name: for ``X.hdf5`` the sidecar
``X_specular.hdf5``, looked for in a folder the user names and then beside
``X.hdf5``. Its ``specular`` dataset `(N, H, W)` must match the image file's
N, H and W; it is read as ``specular_target`` `(n, H, W, 1)`, linear
intensity of the linearised image (see ``docs/SPECULAR_METHOD.md`` §1).

Files are opened lazily and read a few faces at a time: nothing is loaded whole.
Opening checks the layout; :meth:`CelebAFaces.validate` then streams every face
once, so that NaNs, empty masks or truncated data are reported before training
starts rather than half-way through an epoch.

Example:

>>> faces = CelebAFaces(["data/zx_7_d10_inmc_celebA_*.hdf5"])  # doctest: +SKIP
>>> batch = faces.read([0, 5, 7])                                 # doctest: +SKIP
>>> batch["image"].shape, batch["shading"].shape                  # doctest: +SKIP
((3, 64, 64, 3), (3, 64, 64, 1))
"""

from __future__ import annotations

import dataclasses
import glob
import pathlib
from collections.abc import Iterable, Iterator, Sequence

import h5py
import numpy as np

from bioface_tf.data import shading as sh_shading
from bioface_tf.data.normals import SIGNED, UNIT01, decode_normals, detect_normal_encoding
from bioface_tf.errors import DataError
from bioface_tf.specular_targets import sidecar_path

DATASET = "zx_7"
EMBEDDED_LIGHTING = "lrgb"
N_CHANNELS = 10
IMAGE_CHANNELS = slice(0, 3)
NORMAL_CHANNELS = slice(3, 6)
MASK_CHANNEL = 6
LIGHTING_SHAPE = (3, 9)
DEFAULT_IMAGE_SIZE = 64

GROUND_TRUTH_MAPS = ("gt_fmel", "gt_fblood", "gt_shading", "gt_specmask")
GROUND_TRUTH_VECTORS = {"gt_b": 2, "gt_light_weights": 14, "gt_cct": 1}
GROUND_TRUTH = GROUND_TRUTH_MAPS + tuple(GROUND_TRUTH_VECTORS)

SPECULAR_DATASET = "specular"
SPECULAR_KEY = "specular_target"

IMAGE_MAX = 1.0 + 1e-3
SCAN_CHUNK = 256


def lighting_path_for(image_path: pathlib.Path) -> pathlib.Path:
    """The lighting file paired with an image file by name.

    ``…_d10_inmc_…`` → ``…_d3_lrgb_…``; otherwise ``…_inmc…`` → ``…_lrgb…``.
    """
    name = image_path.name
    if "_d10_inmc" in name:
        return image_path.with_name(name.replace("_d10_inmc", "_d3_lrgb"))
    if "_inmc" in name:
        return image_path.with_name(name.replace("_inmc", "_lrgb"))
    raise DataError(
        f"{image_path}: cannot tell its lighting file from the name (expected '_inmc' "
        "in it, as in zx_7_d10_inmc_celebA_NN.hdf5); give the lighting file explicitly"
    )


def expand_paths(patterns: Iterable[str | pathlib.Path]) -> list[pathlib.Path]:
    """Paths from file names and glob patterns, in order, each pattern sorted."""
    paths: list[pathlib.Path] = []
    for pattern in map(str, patterns):
        if glob.has_magic(pattern):
            matches = sorted(glob.glob(pattern))
            if not matches:
                raise DataError(f"{pattern}: no files match")
            paths += [pathlib.Path(m) for m in matches]
        else:
            paths.append(pathlib.Path(pattern))
    return paths


def _open_hdf5(path: pathlib.Path) -> h5py.File:
    if not path.exists():
        raise DataError(f"{path}: file not found")
    try:
        return h5py.File(path, "r")
    except OSError as err:
        raise DataError(f"{path}: unreadable, not an HDF5 file or truncated ({err})") from None


def _zx7(handle: h5py.File, path: pathlib.Path, name: str = DATASET) -> h5py.Dataset:
    if name not in handle or not isinstance(handle[name], h5py.Dataset):
        found = ", ".join(sorted(handle.keys())) or "nothing"
        raise DataError(f"{path}: no '{name}' dataset (found: {found})")
    return handle[name]


@dataclasses.dataclass
class FaceFile:
    """One image file, its lighting and what opening them found.

    Attributes:
        images: path of the image file (``zx_7`` of shape `(N, 10, H, W)`).
        lighting: path of the lighting file (may be ``images`` itself).
        n_faces: N.
        image_size: H (= W).
        normal_encoding: ``"signed"`` (vectors in [−1, 1]) or ``"unit01"``
            (``(n + 1) / 2``), detected from the unit length of the normals.
        has_ground_truth: whether all ``gt_*`` datasets are present.
        specular: its specular-target sidecar ``X_specular.hdf5``, or
            ``None`` when there is none.
        specular_curve: the linearisation curve the sidecar's targets were
            computed with (``"srgb"`` or ``"gamma2.2"``), ``None`` without one.
    """

    images: pathlib.Path
    lighting: pathlib.Path
    n_faces: int
    image_size: int
    normal_encoding: str
    has_ground_truth: bool
    specular: pathlib.Path | None = None
    specular_curve: str | None = None


class CelebAFaces:
    """Faces from one or more ``zx_7`` image/lighting file pairs.

    Args:
        images: image files or glob patterns. Lighting files that a pattern
            also matches (``_lrgb`` partners of listed image files) are dropped.
        lighting: lighting files, one per image file in the same order, or
            ``None`` to find each from its image file (embedded ``lrgb``
            dataset, else by name).
        image_size: required H = W, or ``None`` to accept any size shared by
            all files.
        specular_dir: a folder to look for specular-target sidecars in
            first (``bioface specular-targets --out DIR``); sidecars beside
            the image files are found without it.

    Raises:
        DataError: naming the file and the problem, for missing or unreadable
            files, a missing ``zx_7`` dataset, wrong channel count or spatial
            size, image and lighting files of different lengths, a
            specular sidecar that does not match its image file.
    """

    def __init__(
        self,
        images: Sequence[str | pathlib.Path],
        lighting: Sequence[str | pathlib.Path] | None = None,
        image_size: int | None = DEFAULT_IMAGE_SIZE,
        specular_dir: str | pathlib.Path | None = None,
    ):
        self.specular_dir = None if specular_dir is None else pathlib.Path(specular_dir)
        if self.specular_dir is not None and not self.specular_dir.is_dir():
            raise DataError(f"{self.specular_dir}: no such folder (given for specular targets)")
        image_paths = expand_paths(images)
        if lighting is None:
            image_paths = _drop_listed_partners(image_paths)
            lighting_paths: list[pathlib.Path | None] = [None] * len(image_paths)
        else:
            lighting_paths = list(expand_paths(lighting))
            if len(lighting_paths) != len(image_paths):
                raise DataError(
                    f"{len(image_paths)} image files but {len(lighting_paths)} lighting files given"
                )
        if not image_paths:
            raise DataError("no image files given")
        self._handles: dict[pathlib.Path, h5py.File] = {}
        self.files = [self._open_pair(i, l, image_size) for i, l in zip(image_paths, lighting_paths)]
        sizes = {f.image_size for f in self.files}
        if len(sizes) > 1:
            listing = ", ".join(f"{f.images} ({f.image_size}x{f.image_size})" for f in self.files)
            raise DataError(f"image files differ in spatial size: {listing}")
        self.image_size = sizes.pop()
        self.has_ground_truth = all(f.has_ground_truth for f in self.files)
        self.has_specular_targets = all(f.specular is not None for f in self.files)
        self._starts = np.cumsum([0] + [f.n_faces for f in self.files])

    def __len__(self) -> int:
        return int(self._starts[-1])

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        for handle in self._handles.values():
            handle.close()
        self._handles.clear()

    def _handle(self, path: pathlib.Path) -> h5py.File:
        if path not in self._handles:
            self._handles[path] = _open_hdf5(path)
        return self._handles[path]

    def _open_pair(self, image_path, lighting_path, image_size) -> FaceFile:
        handle = self._handle(image_path)
        data = _zx7(handle, image_path)
        if data.ndim != 4 or data.shape[1] != N_CHANNELS:
            hint = " (this looks like a lighting file)" if data.shape[1:] == LIGHTING_SHAPE else ""
            raise DataError(
                f"{image_path}: '{DATASET}' has shape {data.shape}, expected (N, {N_CHANNELS}, H, W)"
                f" with {N_CHANNELS} channels{hint}"
            )
        n, _, height, width = data.shape
        if height != width or (image_size is not None and height != image_size):
            expected = f"{image_size}x{image_size}" if image_size else "square"
            raise DataError(f"{image_path}: images are {height}x{width}, expected {expected}")
        if n == 0:
            raise DataError(f"{image_path}: holds no faces")

        if lighting_path is not None:
            lighting_path = pathlib.Path(lighting_path)
            light = _zx7(self._handle(lighting_path), lighting_path)
        elif EMBEDDED_LIGHTING in handle:
            lighting_path = image_path
            light = _zx7(handle, image_path, EMBEDDED_LIGHTING)
        else:
            lighting_path = lighting_path_for(image_path)
            if not lighting_path.exists():
                raise DataError(
                    f"{image_path}: its lighting file {lighting_path} (paired by name) is not there"
                )
            light = _zx7(self._handle(lighting_path), lighting_path)
        if light.shape[1:] != LIGHTING_SHAPE or light.ndim != 3:
            raise DataError(
                f"{lighting_path}: lighting has shape {light.shape}, expected (N, 3, 9)"
            )
        if light.shape[0] != n:
            raise DataError(
                f"{image_path} holds {n} faces but its lighting file {lighting_path} holds "
                f"{light.shape[0]}"
            )

        first = self._read_raw(image_path, data, slice(0, min(n, 64)))
        encoding = detect_normal_encoding(
            first[:, NORMAL_CHANNELS].transpose(0, 2, 3, 1), first[:, MASK_CHANNEL], image_path
        )
        has_gt = all(name in handle for name in GROUND_TRUTH)
        specular, curve = self._open_specular(image_path, (n, height, width))
        return FaceFile(image_path, lighting_path, n, height, encoding, has_gt, specular, curve)

    def _sidecar_candidates(self, image_path: pathlib.Path) -> list[pathlib.Path]:
        beside = sidecar_path(image_path)
        if self.specular_dir is None:
            return [beside]
        return [sidecar_path(image_path, self.specular_dir), beside]

    def _open_specular(self, image_path: pathlib.Path, shape: tuple[int, int, int]):
        """``(sidecar, curve)`` of an image file, ``(None, None)`` without one.

        Raises:
            DataError: the sidecar is unreadable, lacks ``specular`` or does
                not match the image file's `(N, H, W)`.
        """
        found = [p for p in self._sidecar_candidates(image_path) if p.is_file()]
        if not found:
            return None, None
        path = found[0]
        handle = self._handle(path)
        data = handle.get(SPECULAR_DATASET)
        if not isinstance(data, h5py.Dataset):
            raise DataError(
                f"{path}: no '{SPECULAR_DATASET}' dataset, so it holds no specular targets for {image_path} "
                f"(found: {', '.join(sorted(handle.keys())) or 'nothing'})"
            )
        if data.shape != shape:
            raise DataError(
                f"{path}: specular targets of shape {data.shape} do not match {image_path}, which holds "
                f"{shape[0]} faces of {shape[1]}x{shape[2]} (expected {shape}); remake them with "
                f"'bioface specular-targets {image_path}'"
            )
        curve = handle.attrs.get("curve")
        return path, None if curve is None else str(curve)

    def require_specular_targets(self) -> None:
        """Raise :class:`DataError` naming every image file without a sidecar."""
        missing = [f.images for f in self.files if f.specular is None]
        if not missing:
            return
        problems = []
        for image_path in missing:
            looked = [str(p) for p in self._sidecar_candidates(image_path)]
            unfinished = [p for p in looked if pathlib.Path(p + ".partial").exists()]
            note = f"; {unfinished[0]}.partial is unfinished" if unfinished else ""
            problems.append(f"{image_path}: no specular targets ({' or '.join(looked)} not found{note})")
        names = " ".join(map(str, missing))
        raise DataError("; ".join(problems) + f". Make them with 'bioface specular-targets {names}'")

    @staticmethod
    def _read_raw(path, dataset: h5py.Dataset, selection) -> np.ndarray:
        try:
            return np.asarray(dataset[selection], dtype=np.float32)
        except (OSError, ValueError) as err:
            raise DataError(f"{path}: cannot read '{dataset.name}' ({err}); the file may be truncated") from None

    def locate(self, index: int) -> tuple[FaceFile, int]:
        """The file holding face ``index`` and its index there."""
        if not 0 <= index < len(self):
            raise IndexError(f"face {index} out of range 0..{len(self) - 1}")
        k = int(np.searchsorted(self._starts, index, side="right") - 1)
        return self.files[k], index - int(self._starts[k])

    def read(
        self, indices: Sequence[int], ground_truth: bool = False, specular_target: bool = False
    ) -> dict[str, np.ndarray]:
        """Faces by global index, in the order asked.

        Args:
            indices: face indices in ``range(len(self))``.
            ground_truth: also return the ``gt_*`` arrays (all files must hold them).
            specular_target: also return ``specular_target`` (all files must
                have a sidecar).

        Returns:
            A dict of float32 arrays: ``image`` `(n, H, W, 3)` sRGB in [0, 1];
            ``mask`` `(n, H, W, 1)`; ``normals`` `(n, H, W, 3)` signed unit
            vectors; ``shading`` `(n, H, W, 1)`, the pseudo ground truth
            (0 outside the mask); ``shading_valid`` `(n,)`, all 1;
            ``lighting`` `(n, 3, 9)` SH coefficients; with ``ground_truth``
            the ``gt_*`` maps `(n, H, W, 1)` and vectors `(n, D)`; with
            ``specular_target`` the refined specular map `(n, H, W, 1)` in
            linear intensity.

        Raises:
            DataError: ground truth or specular targets asked for but
                missing, or non-finite specular targets.
        """
        indices = np.asarray(indices, dtype=np.int64)
        if ground_truth and not self.has_ground_truth:
            missing = [str(f.images) for f in self.files if not f.has_ground_truth]
            raise DataError(f"{', '.join(missing)}: no ground truth (gt_* datasets) to read")
        if specular_target:
            self.require_specular_targets()
        k_of = np.searchsorted(self._starts, indices, side="right") - 1
        parts, order = [], []
        for k in np.unique(k_of):
            where = np.flatnonzero(k_of == k)
            local = indices[where] - self._starts[k]
            parts.append(self._read_file(self.files[k], local, ground_truth, specular_target))
            order.append(where)
        batch = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
        inverse = np.argsort(np.concatenate(order))
        return {key: value[inverse] for key, value in batch.items()}

    def read_range(
        self, file: FaceFile, start: int, stop: int, ground_truth: bool = False, specular_target: bool = False
    ):
        """Faces ``start:stop`` of one file, as :meth:`read` returns them."""
        return self._read_file(file, np.arange(start, stop), ground_truth, specular_target)

    def _read_file(self, file: FaceFile, local: np.ndarray, ground_truth: bool, specular_target: bool = False):
        unique, inverse = np.unique(local, return_inverse=True)
        if unique.size and unique[-1] - unique[0] + 1 == unique.size:
            selection = slice(int(unique[0]), int(unique[-1]) + 1)
        else:
            selection = unique
        handle = self._handle(file.images)
        raw = self._read_raw(file.images, handle[DATASET], selection)[inverse]
        light_handle = self._handle(file.lighting)
        light_name = EMBEDDED_LIGHTING if file.lighting == file.images and EMBEDDED_LIGHTING in light_handle else DATASET
        sh = self._read_raw(file.lighting, light_handle[light_name], selection)[inverse]

        raw = raw.transpose(0, 2, 3, 1)
        mask = raw[..., MASK_CHANNEL : MASK_CHANNEL + 1]
        normals = decode_normals(raw[..., NORMAL_CHANNELS], file.normal_encoding)
        shading = np.where(mask > 0.5, sh_shading.grey_shading(normals, sh)[..., None], 0.0)
        batch = {
            "image": np.ascontiguousarray(raw[..., IMAGE_CHANNELS]),
            "mask": np.ascontiguousarray(mask),
            "normals": np.ascontiguousarray(normals),
            "shading": shading.astype(np.float32),
            "shading_valid": np.ones(len(local), np.float32),
            "lighting": sh,
        }
        if ground_truth:
            for name in GROUND_TRUTH:
                value = self._read_raw(file.images, handle[name], selection)[inverse]
                batch[name] = value[..., None] if name in GROUND_TRUTH_MAPS else value
        if specular_target:
            sidecar = self._handle(file.specular)[SPECULAR_DATASET]
            value = self._read_raw(file.specular, sidecar, selection)[inverse]
            bad = ~np.isfinite(value).reshape(len(value), -1).all(axis=1)
            if bad.any():
                faces = sorted(set(local[bad].tolist()))[:5]
                raise DataError(f"{file.specular}: non-finite specular targets for faces {faces} of {file.images}")
            batch[SPECULAR_KEY] = value[..., None]
        return batch

    def iter_chunks(self, chunk: int = SCAN_CHUNK) -> Iterator[tuple[FaceFile, int, dict]]:
        """``(file, start, batch)`` over every face, file by file, ``chunk`` at a time."""
        for file in self.files:
            for start in range(0, file.n_faces, chunk):
                stop = min(start + chunk, file.n_faces)
                yield file, start, self.read_range(file, start, stop)


def _drop_listed_partners(paths: list[pathlib.Path]) -> list[pathlib.Path]:
    """Drop lighting files and specular sidecars whose image file is also listed (``data/*.hdf5``)."""
    partners = set()
    for path in paths:
        if "_inmc" in path.name:
            partners.add(lighting_path_for(path).resolve())
        sidecar = sidecar_path(path).resolve()
        partners.update({sidecar, sidecar.with_name(sidecar.name + ".partial")})
    return [p for p in paths if p.resolve() not in partners]
