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
import os
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
from training import cluster, environment
from training.callbacks import standard_callbacks
from training.evaluate import load_trained
from training.optimizers import FusedAdam
from training.presets import Preset

TARGETS = ("srgb", "mask", "shading", "shading_valid", "specular_target", GROUND_TRUTH_FLAG, *GROUND_TRUTH)
DISTRIBUTE = ("none", "mirrored", "multi_worker")
LR_DECAY = ("constant", "cosine")
FINAL_LR_FRACTION = 0.01
DEFAULT_STREAM_STEPS = 500
EVALUATION_ONLY_FAMILY = "eval_faces"
VALIDATION_FAMILY = "validation_faces"
"""Face families never trained on: the evaluation family (never used to choose anything either) and the
validation family (used to choose recipes, docs/VALIDATION_FACES.md)."""
HELD_OUT_SEED_OFFSET = 1_000_003
FIGURE_SEED_OFFSET = 7919


def training_pairs(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """Pipeline batches → ``(image, targets)``: the network input and what the losses need."""

    def split(batch):
        return batch["image"], {key: batch[key] for key in TARGETS if key in batch}

    return dataset.map(split, num_parallel_calls=tf.data.AUTOTUNE)


def distribution_strategy(name: str) -> tf.distribute.Strategy:
    """``"none"`` (one device), ``"mirrored"`` (every visible GPU, or every logical CPU) or
    ``"multi_worker"`` (every worker ``TF_CONFIG`` names, see :mod:`training.cluster`)."""
    if name == "none":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise BioFaceError(f"train.distribute must be one of {DISTRIBUTE}, got {name!r}")


def worker_role(name: str) -> cluster.WorkerRole:
    """This process's place in the cluster: from ``TF_CONFIG`` under ``multi_worker``, else alone."""
    if name == "multi_worker":
        return cluster.role_from_tf_config(os.environ.get(cluster.TF_CONFIG))
    return cluster.SINGLE


def precision(setting: str) -> environment.Precision:
    """The dtype policy for ``train.mixed_precision`` on this machine, with the reason.

    See :func:`training.environment.choose_precision`: ``auto`` is float16
    on a GPU, bfloat16 on a CPU with native bfloat16, float32 otherwise.
    """
    has_gpu = bool(tf.config.list_physical_devices("GPU"))
    return environment.choose_precision(setting, has_gpu, environment.cpu_flags())


@contextlib.contextmanager
def dtype_policy(policy: str):
    """Keras's global dtype policy while inside; the physics and the losses stay float32."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
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


def optimizer(settings, total_steps: int) -> FusedAdam:
    """Adam at the preset's learning rate, averaging the weights when ``train.weight_average`` > 0.

    With ``weight_average`` = m in (0, 1), the optimiser keeps the
    exponential moving average ``w̄ ← m·w̄ + (1 − m)·w`` of every trainable
    weight after each step (Polyak averaging; about ``1 / (1 − m)`` recent
    steps weigh in); training steps use the weights themselves, and
    :func:`training.callbacks.standard_callbacks` swaps the average in at
    each epoch's end, so the batch-norm recalibration, the agreement checks,
    the checkpoint and the final ``model.keras`` all see the average.
    """
    average = settings.weight_average
    if not 0.0 <= average < 1.0:
        raise BioFaceError(f"train.weight_average must be in [0, 1) (0: off), got {average}")
    rate = learning_rate(settings, total_steps)
    if average == 0.0:
        return FusedAdam(rate)
    return FusedAdam(rate, use_ema=True, ema_momentum=average)


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
        optimizer=optimizer(preset.train, total_steps),
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
            family = handle.attrs.get("family")
            if family == EVALUATION_ONLY_FAMILY:
                raise BioFaceError(
                    f"{file.images}: this file is of the evaluation-only face family ({EVALUATION_ONLY_FAMILY}); "
                    "it must never be trained or tuned on. Train on 'bioface synth' faces or CelebA instead"
                )
            if family == VALIDATION_FAMILY:
                raise BioFaceError(
                    f"{file.images}: this file is of the validation face family ({VALIDATION_FAMILY}), kept "
                    "for choosing recipes on faces no model was trained on. Train on 'bioface synth' faces or "
                    "CelebA instead"
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


def training_batches(preset: Preset, faces, figure: bool = False, context=None) -> tf.data.Dataset:
    """Endless batches for ``fit``: rendered faces, file faces, or both mixed per batch.

    Every batch carries ``gt_valid`` `(B,)` and ``gt_*`` (zeros for faces
    without ground truth); rendered faces come first in a mixed batch.
    ``figure=True``: an unshuffled, unflipped source for the epoch figure.
    ``context`` (a ``tf.distribute.InputContext``, under ``multi_worker``):
    this worker's per-replica batches, rendered with its own seed and read
    from its shard of the files (:mod:`training.cluster`).
    """
    settings = preset.train
    replicas, worker, workers = (1, 0, 1) if context is None else (
        context.num_replicas_in_sync, context.input_pipeline_id, context.num_input_pipelines
    )
    rendered = cluster.per_replica(settings.rendered_per_batch, replicas, "train.rendered_per_batch")
    from_files = cluster.per_replica(
        settings.batch_size - settings.rendered_per_batch, replicas, "the faces from files per batch"
    )
    seed = settings.seed + worker * cluster.WORKER_SEED_OFFSET
    if from_files and workers > 1:
        faces = cluster.FaceShard(faces, workers, worker)
    parts = []
    if rendered:
        from bioface_tf.data.stream import make_stream_dataset

        stream = make_stream_dataset(
            rendered,
            image_size=preset.model.image_size,
            seed=seed + (FIGURE_SEED_OFFSET if figure else 0),
            preprocessing=settings.preprocessing,
            flip=settings.flip and not figure,
            variety=settings.rendered_variety,
        )
        if settings.rendered_pool and not figure:
            stream = pooled(stream, settings.rendered_pool, rendered, seed)
        parts.append(stream)
    if from_files:
        truth = faces.has_ground_truth
        files = make_dataset(
            faces,
            batch_size=from_files,
            preprocessing=settings.preprocessing,
            flip=settings.flip and not figure,
            shuffle=not figure,
            seed=seed,
            drop_remainder=True,
            validate=not figure,
            ground_truth=truth,
            specular_target=preset.loss.specular_target > 0,
        )
        parts.append(with_ground_truth_flag(files, preset.model.image_size, truth).repeat())
    return parts[0] if len(parts) == 1 else mix_batches(*parts)


def fit_batches(preset: Preset, faces, strategy: tf.distribute.Strategy):
    """The ``(image, targets)`` pairs ``fit`` trains on.

    Under ``multi_worker`` every worker builds its own pipeline of
    per-replica batches (``distribute_datasets_from_function``); otherwise
    one pipeline of global batches, which a ``mirrored`` strategy splits.
    """
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return training_pairs(training_batches(preset, faces))
    replicas = strategy.num_replicas_in_sync
    cluster.per_replica(preset.train.batch_size, replicas, "train.batch_size")
    cluster.per_replica(preset.train.rendered_per_batch, replicas, "train.rendered_per_batch")
    return strategy.distribute_datasets_from_function(
        lambda context: training_pairs(training_batches(preset, faces, context=context))
    )


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


def _prepare_write_dir(out_dir: pathlib.Path, preset: Preset, role: cluster.WorkerRole) -> pathlib.Path:
    """Where this process writes: ``out_dir`` for the chief, a scratch folder for another worker.

    A non-chief worker gets a copy of the chief's resume backup, so that it
    restores the same epoch.
    """
    if role.is_chief:
        _prepare_out_dir(out_dir, preset)
        return out_dir
    if (out_dir / "backup").exists():
        _check_backup(out_dir / "backup")
    scratch = cluster.scratch_dir(role)
    cluster.copy_backup(out_dir / "backup", scratch / "backup")
    print(
        f"{role.describe()}: the chief writes the model, logs and figures; this worker writes only to {scratch}",
        file=sys.stderr,
    )
    return scratch


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
            while the run is unfinished and is where it resumes from. Under
            ``train.distribute=multi_worker`` only the chief writes here;
            every worker resumes from its ``backup/`` (:mod:`training.cluster`).
        progress: show a progress bar (default: when stdout is a terminal).
        tensorboard: also write TensorBoard logs.

    Returns:
        The Keras ``History`` of this call's epochs.

    Raises:
        BioFaceError: bad data, configuration or output directory.
    """
    out_dir = pathlib.Path(out_dir)
    settings = preset.train
    role = worker_role(settings.distribute)
    faces = CelebAFaces(data, image_size=preset.model.image_size) if data else None
    _check_data(preset, faces)
    write_dir = _prepare_write_dir(out_dir, preset, role)
    try:
        return _fit(preset, faces, write_dir, role, progress, tensorboard)
    finally:
        cluster.finish(role, write_dir)


def _fit(preset: Preset, faces, write_dir: pathlib.Path, role: cluster.WorkerRole, progress, tensorboard: bool):
    """Build the model in the strategy's scope and train it, writing into ``write_dir``."""
    settings = preset.train
    strategy = distribution_strategy(settings.distribute)
    keras.utils.set_random_seed(settings.seed)

    if settings.steps_per_epoch:
        steps = settings.steps_per_epoch
    elif settings.rendered_per_batch < settings.batch_size:
        steps = len(faces) // (settings.batch_size - settings.rendered_per_batch)
    else:
        steps = DEFAULT_STREAM_STEPS
    pairs = fit_batches(preset, faces, strategy)
    figure_batch = agreement_batch = None
    if settings.figure_samples > 0:
        shown = training_pairs(training_batches(preset, faces, figure=True))
        image, targets = next(iter(shown))
        figure_batch = (image[: settings.figure_samples], {k: v[: settings.figure_samples] for k, v in targets.items()})
    supervised = any(getattr(preset.loss, name) > 0 for name in GT_TERMS)
    if settings.agreement_faces > 0 and (settings.rendered_per_batch > 0 or supervised):
        agreement_batch = held_out_rendered(preset, settings.agreement_faces)
    if role.workers > 1:
        cluster.check_same_epoch(strategy, cluster.backup_epoch(write_dir / "backup"))

    chosen = precision(settings.mixed_precision)
    print(f"training in {chosen.policy}: {chosen.reason}", file=sys.stderr)
    with dtype_policy(chosen.policy), strategy.scope():
        model = build_and_compile(preset, total_steps=settings.epochs * steps)
        if progress is None:
            progress = sys.stdout.isatty()
        fixes = cluster.keras_fit_fixes(model) if role.workers > 1 else contextlib.nullcontext()
        with fixes:
            history = model.fit(
                pairs,
                epochs=settings.epochs,
                steps_per_epoch=steps,
                callbacks=standard_callbacks(
                    write_dir,
                    figure_batch,
                    tensorboard=tensorboard,
                    agreement_batch=agreement_batch,
                    calibration=training_pairs(training_batches(preset, faces, figure=True)),
                    calibration_steps=settings.batch_norm_recalibration,
                    weight_average=settings.weight_average > 0,
                ),
                verbose=1 if progress else 2,
                shuffle=False,
            )
        model.save(write_dir / "model.keras")
    return history
