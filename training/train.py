"""Train BioFaceNet with ``model.fit`` on the ``tf.data`` face pipeline.

Data flows one way: HDF5 faces → :func:`bioface_tf.data.pipeline.make_dataset`
(batches of dicts) → :func:`training_pairs` (network input, loss targets) →
``BioFaceNet.fit`` → ``OUT/model.keras``, ``OUT/log.csv``, ``OUT/figures/``.

Example:

>>> from training.presets import load_preset
>>> preset = load_preset("report", ["train.epochs=2"])                  # doctest: +SKIP
>>> train(preset, ["faces.h5"], "runs/report")                           # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import json
import pathlib
import sys

import h5py
import keras
import tensorflow as tf

from bioface_tf.data import CelebAFaces
from bioface_tf.data.celeba import GROUND_TRUTH, GROUND_TRUTH_MAPS
from bioface_tf.data.pipeline import GROUND_TRUTH_FLAG, make_dataset, mix_batches, with_ground_truth_flag
from bioface_tf.errors import BioFaceError
from bioface_tf.losses import BioFaceLoss
from bioface_tf.supervision import GT_TERMS
from bioface_tf.model import BioFaceNet, build_bioface
from training.callbacks import standard_callbacks
from training.evaluate import load_trained
from training.presets import Preset

TARGETS = ("srgb", "mask", "shading", "shading_valid", "specular_target", GROUND_TRUTH_FLAG, *GROUND_TRUTH)
MIXED_PRECISION = ("auto", "on", "off")
DISTRIBUTE = ("none", "mirrored")
LR_DECAY = ("constant", "cosine")
FINAL_LR_FRACTION = 0.01
DEFAULT_STREAM_STEPS = 500
EVALUATION_ONLY_FAMILY = "eval_faces"
HELD_OUT_SEED_OFFSET = 1_000_003
FIGURE_SEED_OFFSET = 7919


def training_pairs(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """Pipeline batches → ``(image, targets)``: the network input and what the losses need."""

    def split(batch):
        return batch["image"], {key: batch[key] for key in TARGETS if key in batch}

    return dataset.map(split, num_parallel_calls=tf.data.AUTOTUNE)


def distribution_strategy(name: str) -> tf.distribute.Strategy:
    """``"none"`` (one device) or ``"mirrored"`` (every visible GPU, or every logical CPU)."""
    if name == "none":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    raise BioFaceError(f"train.distribute must be one of {DISTRIBUTE}, got {name!r}")


def wants_mixed_precision(setting: str) -> bool:
    """``"auto"``: half precision on a GPU only (it slows a CPU down)."""
    if setting not in MIXED_PRECISION:
        raise BioFaceError(f"train.mixed_precision must be one of {MIXED_PRECISION}, got {setting!r}")
    if setting == "auto":
        return bool(tf.config.list_physical_devices("GPU"))
    return setting == "on"


@contextlib.contextmanager
def dtype_policy(mixed: bool):
    """Mixed float16 for the network while inside; the physics stays float32."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16" if mixed else "float32")
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def learning_rate(settings, total_steps: int):
    """The preset's learning rate: a constant, or cosine decay to 1 % over ``total_steps``."""
    if settings.learning_rate_decay not in LR_DECAY:
        raise BioFaceError(f"train.learning_rate_decay must be one of {LR_DECAY}, got {settings.learning_rate_decay!r}")
    if settings.learning_rate_decay == "constant":
        return settings.learning_rate
    return keras.optimizers.schedules.CosineDecay(settings.learning_rate, total_steps, alpha=FINAL_LR_FRACTION)


def initialise_from(model: BioFaceNet, path) -> None:
    """Copy a trained model's weights into ``model`` (fine-tuning); same architecture needed."""
    source = load_trained(path)
    mine, theirs = model.get_weights(), source.get_weights()
    shapes = lambda ws: [w.shape for w in ws]
    if shapes(mine) != shapes(theirs):
        raise BioFaceError(
            f"{path}: its network ({source.name}, {source.count_params():,} parameters, input "
            f"{source.input_shape[1:]}) differs from the preset's ({model.name}, {model.count_params():,}, "
            f"{model.input_shape[1:]}); use the same model.variant and model.image_size"
        )
    model.set_weights(theirs)


def build_and_compile(preset: Preset, total_steps: int = 1) -> BioFaceNet:
    """The preset's model, compiled with its optimiser and loss terms."""
    model = build_bioface(
        preset.model.image_size,
        preset.model.variant,
        raw2xyz=preset.model.raw2xyz,
        preprocessing=preset.train.preprocessing,
        **preset.model.backbone_options(),
    )
    if preset.train.init_from:
        initialise_from(model, preset.train.init_from)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate(preset.train, total_steps)),
        loss=BioFaceLoss(**vars(preset.loss)),
        jit_compile=preset.train.jit_compile,
    )
    return model


def pooled(stream: tf.data.Dataset, pool: int, batch_size: int, seed: int) -> tf.data.Dataset:
    """Render ``pool`` faces once, keep them in memory, and draw shuffled batches from them.

    For a CPU where rendering is slower than training: the first epoch
    waits (without a progress bar) until the pool is rendered, after which
    batches cost nothing to make.
    """
    faces = stream.unbatch().take(pool).cache()
    return faces.shuffle(pool, seed=seed, reshuffle_each_iteration=True).repeat().batch(batch_size, drop_remainder=True)


def held_out_rendered(preset: Preset, count: int) -> tuple:
    """``(image, truth)`` of ``count`` rendered faces no training batch holds (another seed)."""
    from bioface_tf.data.stream import make_stream_dataset

    faces = make_stream_dataset(
        count, image_size=preset.model.image_size, seed=preset.train.seed + HELD_OUT_SEED_OFFSET,
        preprocessing=preset.train.preprocessing,
    )
    batch = next(iter(faces))
    return batch["image"], {k: batch[k] for k in ("mask", *GROUND_TRUTH_MAPS)}


def _check_data(preset: Preset, faces) -> None:
    rendered = preset.train.rendered_per_batch
    if not 0 <= rendered <= preset.train.batch_size:
        raise BioFaceError(
            f"train.rendered_per_batch must be between 0 and the batch size {preset.train.batch_size}, got {rendered}"
        )
    if faces is None:
        if rendered < preset.train.batch_size:
            raise BioFaceError(
                f"preset '{preset.name}' takes {preset.train.batch_size - rendered} faces of each batch from "
                "files: give them with --data, or set train.rendered_per_batch to the batch size"
            )
        if preset.loss.specular_target > 0:
            raise BioFaceError("the specular pseudo ground-truth term needs --data files with sidecars")
        return
    for file in faces.files:
        with h5py.File(file.images, "r") as handle:
            if handle.attrs.get("family") == EVALUATION_ONLY_FAMILY:
                raise BioFaceError(
                    f"{file.images}: this file is of the evaluation-only face family ({EVALUATION_ONLY_FAMILY}); "
                    "it must never be trained or tuned on. Train on 'bioface synth' faces or CelebA instead"
                )
    if preset.loss.specular_target > 0 and not faces.has_specular_targets:
        missing = " ".join(str(f.images) for f in faces.files if f.specular is None)
        raise BioFaceError(
            "the specular pseudo ground-truth term (loss.specular_target) needs X_specular.hdf5 sidecars "
            f"beside the data; make them with 'bioface specular-targets {missing}', or train without "
            "the term with --set loss.specular_target=0"
        )
    if preset.train.batch_size - rendered > len(faces):
        raise BioFaceError(f"{len(faces)} faces cannot fill one batch of {preset.train.batch_size - rendered}")


def training_batches(preset: Preset, faces, figure: bool = False) -> tf.data.Dataset:
    """Endless batches for ``fit``: rendered faces, file faces, or both mixed per batch.

    Every batch carries ``gt_valid`` `(B,)` and ``gt_*`` (zeros for faces
    without ground truth); rendered faces come first in a mixed batch.
    ``figure=True``: an unshuffled, unflipped source for the epoch figure.
    """
    settings = preset.train
    rendered = settings.rendered_per_batch
    from_files = settings.batch_size - rendered
    parts = []
    if rendered:
        from bioface_tf.data.stream import make_stream_dataset

        stream = make_stream_dataset(
            rendered,
            image_size=preset.model.image_size,
            seed=settings.seed + (FIGURE_SEED_OFFSET if figure else 0),
            preprocessing=settings.preprocessing,
            flip=settings.flip and not figure,
        )
        if settings.rendered_pool and not figure:
            stream = pooled(stream, settings.rendered_pool, rendered, settings.seed)
        parts.append(stream)
    if from_files:
        truth = faces.has_ground_truth
        files = make_dataset(
            faces,
            batch_size=from_files,
            preprocessing=settings.preprocessing,
            flip=settings.flip and not figure,
            shuffle=not figure,
            seed=settings.seed,
            drop_remainder=True,
            validate=not figure,
            ground_truth=truth,
            specular_target=preset.loss.specular_target > 0,
        )
        parts.append(with_ground_truth_flag(files, preset.model.image_size, truth).repeat())
    return parts[0] if len(parts) == 1 else mix_batches(*parts)


def _prepare_out_dir(out_dir: pathlib.Path, preset: Preset) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    config = out_dir / "config.json"
    resuming = (out_dir / "backup").exists()
    if (out_dir / "model.keras").exists() and not resuming:
        raise BioFaceError(f"{out_dir} already holds a finished run (model.keras); choose another --out")
    if resuming:
        _check_backup(out_dir / "backup")
    if resuming and config.exists():
        previous = json.loads(config.read_text())
        if previous != preset.to_dict():
            raise BioFaceError(
                f"{out_dir} holds an unfinished run with a different configuration ({config}); "
                "resume it with the same preset and overrides, or choose another --out"
            )
    config.write_text(preset.to_json())


def _check_backup(backup: pathlib.Path) -> None:
    """Refuse to resume from a backup that a killed run left half-written."""
    for weights in backup.glob("*.weights.h5"):
        try:
            with h5py.File(weights, "r"):
                pass
        except OSError as err:
            raise BioFaceError(
                f"{weights}: the resume backup is unreadable ({err}); the run was probably "
                f"stopped while writing it. Delete {backup.parent} to start over, or choose another --out"
            ) from err


def train(
    preset: Preset,
    data: list[str],
    out_dir,
    progress: bool | None = None,
    tensorboard: bool = True,
) -> keras.callbacks.History:
    """Train, resuming an interrupted run in ``out_dir`` if there is one.

    Args:
        preset: the configuration (see :mod:`training.presets`).
        data: HDF5 face files or glob patterns (CelebA ``zx_7`` layout or
            ``bioface synth`` output); may be empty when every face of a
            batch is rendered on the fly (``train.rendered_per_batch``).
        out_dir: gets ``config.json``, ``model.keras`` (every epoch and at
            the end), ``log.csv`` (loss and every term per epoch),
            ``figures/epoch_NNN.png``, ``tensorboard/``; ``backup/`` exists
            while the run is unfinished and is where it resumes from.
        progress: show a progress bar (default: when stdout is a terminal).
        tensorboard: also write TensorBoard logs.

    Returns:
        The Keras ``History`` of this call's epochs.

    Raises:
        BioFaceError: bad data, configuration or output directory.
    """
    out_dir = pathlib.Path(out_dir)
    settings = preset.train
    faces = CelebAFaces(data, image_size=preset.model.image_size) if data else None
    _check_data(preset, faces)
    _prepare_out_dir(out_dir, preset)
    keras.utils.set_random_seed(settings.seed)

    strategy = distribution_strategy(settings.distribute)
    if settings.steps_per_epoch:
        steps = settings.steps_per_epoch
    elif settings.rendered_per_batch < settings.batch_size:
        steps = len(faces) // (settings.batch_size - settings.rendered_per_batch)
    else:
        steps = DEFAULT_STREAM_STEPS
    pairs = training_pairs(training_batches(preset, faces))
    figure_batch = agreement_batch = None
    if settings.figure_samples > 0:
        shown = training_pairs(training_batches(preset, faces, figure=True))
        image, targets = next(iter(shown))
        figure_batch = (image[: settings.figure_samples], {k: v[: settings.figure_samples] for k, v in targets.items()})
    supervised = any(getattr(preset.loss, name) > 0 for name in GT_TERMS)
    if settings.agreement_faces > 0 and (settings.rendered_per_batch > 0 or supervised):
        agreement_batch = held_out_rendered(preset, settings.agreement_faces)

    with dtype_policy(wants_mixed_precision(settings.mixed_precision)), strategy.scope():
        model = build_and_compile(preset, total_steps=settings.epochs * steps)
        if progress is None:
            progress = sys.stdout.isatty()
        history = model.fit(
            pairs,
            epochs=settings.epochs,
            steps_per_epoch=steps,
            callbacks=standard_callbacks(
                out_dir,
                figure_batch,
                tensorboard=tensorboard,
                agreement_batch=agreement_batch,
                calibration=training_pairs(training_batches(preset, faces, figure=True)),
                calibration_steps=settings.batch_norm_recalibration,
            ),
            verbose=1 if progress else 2,
            shuffle=False,
        )
        model.save(out_dir / "model.keras")
    return history
