"""The ``tf.data`` input pipeline: faces on disk → batched, augmented tensors.

A face source (:class:`~bioface_tf.data.celeba.CelebAFaces` or
:class:`~bioface_tf.data.photos.PhotoFaces`) is read a batch at a time in a
shuffled order (batches are read in parallel: only the small per-batch plan
of indices and flips passes through Python's generator); each batch is
flipped at random, preprocessed for the network and prefetched while the
model trains on the previous one. Order and flips
come from a NumPy generator seeded with ``(seed, epoch)``, so a run is
reproducible whatever the number of parallel calls.

Preprocessing (PHYSICS.md §10):

* ``"reference"`` — the published reference: linearise with a 2.2 power,
  scale to 0..255 and subtract the mean RGB, ``255·srgb^2.2 − mean``;
* ``"display"`` — stay in display (sRGB-encoded) space, ``255·srgb − mean``.

Each element is a dict of float32 tensors:

``image``          `(B, H, W, 3)` network input, preprocessed as above
``srgb``           `(B, H, W, 3)` the photo, sRGB-encoded in [0, 1]
``mask``           `(B, H, W, 1)` face mask
``normals``        `(B, H, W, 3)` unit normals (zeros for photos)
``shading``        `(B, H, W, 1)` pseudo ground-truth shading
``shading_valid``  `(B,)` 1 where ``shading`` is a target, 0 for photos
``specular_target`` `(B, H, W, 1)` specular pseudo ground truth (Kim et al.)
                   in linear intensity, when every file has an
                   ``X_specular.hdf5`` sidecar (``bioface specular-targets``)
``gt_*``           ground truth, with ``ground_truth=True`` (synthetic data)

Horizontal flips mirror every map, ``specular_target`` included.

Example:

>>> faces = CelebAFaces(["data/zx_7_d10_inmc_celebA_*.hdf5"])   # doctest: +SKIP
>>> dataset = make_dataset(faces, batch_size=25, seed=1)          # doctest: +SKIP
>>> next(iter(dataset))["image"].shape                            # doctest: +SKIP
TensorShape([25, 64, 64, 3])
"""

from __future__ import annotations

import itertools

import numpy as np
import tensorflow as tf

from bioface_tf.data import inspect as data_inspect
from bioface_tf.data.celeba import GROUND_TRUTH_MAPS, GROUND_TRUTH_VECTORS, SPECULAR_KEY
from bioface_tf.errors import DataError

MEAN_RGB = (129.1863, 104.7624, 93.5940)
REFERENCE, DISPLAY = "reference", "display"
PREPROCESSING = (REFERENCE, DISPLAY)
REFERENCE_GAMMA = 2.2

FIELDS = {"image": 3, "mask": 1, "normals": 3, "shading": 1}


def preprocess(srgb: tf.Tensor, mode: str = REFERENCE) -> tf.Tensor:
    """Network input from sRGB-encoded images in [0, 1], `(..., 3)`."""
    if mode == REFERENCE:
        intensity = tf.pow(tf.maximum(srgb, 0.0), REFERENCE_GAMMA)
    elif mode == DISPLAY:
        intensity = srgb
    else:
        raise DataError(f"unknown preprocessing '{mode}' (choose from {', '.join(PREPROCESSING)})")
    return 255.0 * intensity - tf.constant(MEAN_RGB, dtype=srgb.dtype)


def flip_horizontally(batch: dict[str, tf.Tensor], flip: tf.Tensor) -> dict[str, tf.Tensor]:
    """Mirror the faces where ``flip`` `(B,)` is true.

    Every map is mirrored left–right; the normals' x component (pointing
    right) also changes sign, so that they stay the mirrored surface's normals.
    """
    where = tf.reshape(flip, (-1, 1, 1, 1))
    flipped = {}
    for key, value in batch.items():
        if value.shape.rank == 4:
            mirrored = tf.reverse(value, axis=[2])
            if key == "normals":
                mirrored = mirrored * tf.constant([-1.0, 1.0, 1.0], dtype=value.dtype)
            flipped[key] = tf.where(where, mirrored, value)
        else:
            flipped[key] = value
    return flipped


def _signature(size: int, ground_truth: bool, specular_target: bool) -> dict[str, tf.TensorSpec]:
    spec = {key: tf.TensorSpec((None, size, size, c), tf.float32) for key, c in FIELDS.items()}
    spec["shading_valid"] = tf.TensorSpec((None,), tf.float32)
    if specular_target:
        spec[SPECULAR_KEY] = tf.TensorSpec((None, size, size, 1), tf.float32)
    if ground_truth:
        spec.update({key: tf.TensorSpec((None, size, size, 1), tf.float32) for key in GROUND_TRUTH_MAPS})
        spec.update({key: tf.TensorSpec((None, d), tf.float32) for key, d in GROUND_TRUTH_VECTORS.items()})
    return spec


def make_dataset(
    faces,
    batch_size: int = 25,
    preprocessing: str = REFERENCE,
    flip: bool = True,
    shuffle: bool = True,
    seed: int = 0,
    drop_remainder: bool = False,
    ground_truth: bool = False,
    validate: bool = True,
    specular_target: bool | None = None,
) -> tf.data.Dataset:
    """A dataset of augmented batches, one pass over ``faces`` per iteration.

    Args:
        faces: a face source with ``len()``, ``image_size`` and
            ``read(indices, ground_truth)``.
        batch_size: faces per batch.
        preprocessing: ``"reference"`` or ``"display"`` (see the module doc).
        flip: mirror half of the faces, chosen at random each epoch.
        shuffle: visit the faces in a new random order each epoch.
        seed: seeds order and flips; epoch ``e`` uses ``(seed, e)``.
        drop_remainder: drop a last, smaller batch.
        ground_truth: add the ``gt_*`` tensors (the source must hold them).
        validate: read every face once first and raise :class:`DataError`
            on NaN/Inf values, empty masks or out-of-range images.
        specular_target: add ``specular_target``: ``None`` (default) when
            the source has specular sidecars for every file, ``True`` to
            require them (a :class:`DataError` names the files without
            one), ``False`` never.

    Returns:
        A ``tf.data.Dataset`` of dicts (keys in the module doc); iterate it
        again, or ``.repeat()`` it, for the next epoch.
    """
    if preprocessing not in PREPROCESSING:
        raise DataError(f"unknown preprocessing '{preprocessing}' (choose from {', '.join(PREPROCESSING)})")
    if ground_truth and not faces.has_ground_truth:
        raise DataError("ground truth asked for but the data holds no gt_* maps")
    has_targets = getattr(faces, "has_specular_targets", False)
    if specular_target is None:
        specular_target = has_targets
    elif specular_target and not has_targets:
        if not hasattr(faces, "require_specular_targets"):
            raise DataError("specular targets asked for, but photo folders have none (only HDF5 face files do)")
        faces.require_specular_targets()
    if validate:
        data_inspect.check(data_inspect.summarise(faces))
    n = len(faces)
    if drop_remainder and n < batch_size:
        raise DataError(f"{n} faces cannot fill one batch of {batch_size}")
    epochs = itertools.count()
    signature = _signature(faces.image_size, ground_truth, specular_target)
    keys = list(signature)

    def plan():
        rng = np.random.default_rng([seed, next(epochs)])
        order = rng.permutation(n) if shuffle else np.arange(n)
        mirror = rng.random(n) < 0.5 if flip else np.zeros(n, bool)
        stop = n - n % batch_size if drop_remainder else n
        for start in range(0, stop, batch_size):
            chosen = order[start : start + batch_size]
            yield chosen, mirror[chosen]

    def read(indices):
        options = {"specular_target": True} if specular_target else {}
        batch = faces.read(indices, ground_truth=ground_truth, **options)
        return [batch[key] for key in keys]

    def load(indices, mirror):
        values = tf.numpy_function(read, [indices], [tf.float32] * len(keys), stateful=False)
        batch = {key: tf.ensure_shape(value, signature[key].shape) for key, value in zip(keys, values)}
        batch = flip_horizontally(batch, mirror)
        batch["srgb"] = batch["image"]
        batch["image"] = preprocess(batch["srgb"], preprocessing)
        return batch

    dataset = tf.data.Dataset.from_generator(
        plan,
        output_signature=(tf.TensorSpec((None,), tf.int64), tf.TensorSpec((None,), tf.bool)),
    )
    dataset = dataset.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return dataset.prefetch(tf.data.AUTOTUNE)


GROUND_TRUTH_FLAG = "gt_valid"


def with_ground_truth_flag(dataset: tf.data.Dataset, image_size: int, present: bool) -> tf.data.Dataset:
    """Give every batch a per-face ``gt_valid`` `(B,)` flag, and zero ``gt_*`` where absent.

    ``present=True``: the batches hold ``gt_*`` (``make_dataset(...,
    ground_truth=True)``), ``gt_valid`` is 1. ``present=False``: unlabelled
    faces (CelebA, photos) get zero ``gt_*`` tensors of the right shapes and
    ``gt_valid`` 0, so that they can share a batch with rendered faces and
    the ground-truth terms skip them.
    """

    def flag(batch):
        batch = dict(batch)
        n = tf.shape(batch["image"])[0]
        if not present:
            for key in GROUND_TRUTH_MAPS:
                batch[key] = tf.zeros((n, image_size, image_size, 1), tf.float32)
            for key, d in GROUND_TRUTH_VECTORS.items():
                batch[key] = tf.zeros((n, d), tf.float32)
        batch[GROUND_TRUTH_FLAG] = tf.fill((n,), 1.0 if present else 0.0)
        return batch

    return dataset.map(flag, num_parallel_calls=tf.data.AUTOTUNE)


def mix_batches(first: tf.data.Dataset, second: tf.data.Dataset) -> tf.data.Dataset:
    """Concatenate two datasets batch by batch: ``(k + m, …)`` from ``(k, …)`` and ``(m, …)``.

    Only the keys both hold are kept (e.g. ``specular_target`` only if both
    have it). Both must be endless or of equal length.
    """
    keys = sorted(set(first.element_spec) & set(second.element_spec))

    def concatenate(a, b):
        return {key: tf.concat([a[key], b[key]], axis=0) for key in keys}

    return tf.data.Dataset.zip(first, second).map(concatenate, num_parallel_calls=tf.data.AUTOTUNE)
