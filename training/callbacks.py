"""Keras callbacks for training: the per-epoch figure and the standard set."""

from __future__ import annotations

import pathlib
import time

import keras
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import summary_pb2

from bioface_tf.figures import figure_grid, write_png
from bioface_tf.model.blocks import compiled_training_forward, recalibrate_batch_norm
from training.evaluate import MAP_TRUTH, MEAN_TRUTH, masked_mean_error, masked_pearson


class EpochFigure(keras.callbacks.Callback):
    """Write ``figures/epoch_NNN.png`` after every epoch for a fixed set of faces.

    Args:
        directory: where the PNG files go.
        image: (N, H, W, 3) network inputs of the faces shown.
        targets: dict with ``srgb`` (N, H, W, 3) and ``mask`` (N, H, W, 1).
    """

    def __init__(self, directory, image, targets):
        super().__init__()
        self.directory = pathlib.Path(directory)
        self.image = np.asarray(image)
        self.photo = np.asarray(targets["srgb"])
        self.mask = np.asarray(targets["mask"])

    def on_epoch_end(self, epoch, logs=None):
        self.directory.mkdir(parents=True, exist_ok=True)
        out = {k: np.asarray(v) for k, v in self.model(self.image, training=False).items()}
        loss = (logs or {}).get("loss")
        title = f"epoch {epoch + 1}" + (f"   loss {loss:.4g}" if loss is not None else "")
        figure = figure_grid(
            self.photo, out["srgb"], out["fmel"], out["fblood"], out["shading"], out["specmask"], self.mask,
            title=title,
        )
        write_png(self.directory / f"epoch_{epoch + 1:03d}.png", figure)


class TensorBoardScalars(keras.callbacks.Callback):
    """Per-epoch scalars (loss and every term) as TensorBoard event files.

    Written with TensorFlow's core summary op and the scalars plugin's
    metadata, so it needs no ``tensorboard`` package (Keras's
    ``TensorBoard`` callback does); ``tensorboard --logdir DIR`` reads them.
    """

    def __init__(self, directory):
        super().__init__()
        self.directory = str(directory)
        self._writer = None
        self._metadata = summary_pb2.SummaryMetadata(
            plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars")
        ).SerializeToString()

    def on_epoch_end(self, epoch, logs=None):
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(self.directory)
        with self._writer.as_default():
            for name, value in (logs or {}).items():
                tf.summary.write(f"epoch_{name}", tf.constant(float(value)), step=epoch + 1, metadata=self._metadata)
        self._writer.flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()


class PreciseBatchNorm(keras.callbacks.Callback):
    """After every epoch, give the batch norms the statistics of the current weights.

    See :func:`bioface_tf.model.blocks.recalibrate_batch_norm`: without it
    the saved model (and any per-epoch evaluation) normalises with moving
    averages that trail the weights. Runs before the checkpoint is written.

    Args:
        batches: a ``tf.data.Dataset`` of ``(image, targets)`` training pairs.
        steps: batches averaged.
    """

    def __init__(self, batches, steps: int = 20):
        super().__init__()
        self.batches = batches
        self.steps = int(steps)
        self._forward = None

    def on_epoch_end(self, epoch, logs=None):
        if self._forward is None:
            self._forward = compiled_training_forward(self.model)
        images = (image for image, _ in self.batches.take(self.steps))
        recalibrate_batch_norm(self.model, images, forward=self._forward)


class GroundTruthAgreement(keras.callbacks.Callback):
    """After every epoch, map agreement on fixed held-out rendered faces, into the logs.

    Adds ``val_r_melanin``, ``val_r_haemoglobin``, ``val_r_shading``,
    ``val_r_specular``, ``val_melanin_mean_err``, ``val_haemoglobin_mean_err``
    (``bioface evaluate``'s definitions: per face inside the mask, then
    averaged) and ``elapsed_s`` (wall-clock seconds since training began),
    so that ``log.csv`` shows the time to reach a given quality. The faces
    come from the training generator with another seed: they measure
    learning, not transfer (that is what the evaluation-only family is for).

    Args:
        image: (N, H, W, 3) network inputs.
        truth: dict with ``mask`` and ``gt_fmel``, ``gt_fblood``,
            ``gt_shading``, ``gt_specmask`` (N, H, W, 1).
    """

    def __init__(self, image, truth):
        super().__init__()
        self.image = np.asarray(image)
        self.truth = {k: np.asarray(v) for k, v in truth.items()}
        self._start = None

    def on_train_begin(self, logs=None):
        self._start = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        out = self.model(self.image, training=False)
        mask = self.truth["mask"]
        for key, (name, gt) in MAP_TRUTH.items():
            logs[f"val_{key}"] = float(np.nanmean(masked_pearson(np.asarray(out[name]), self.truth[gt], mask)))
        for key, (name, gt) in MEAN_TRUTH.items():
            logs[f"val_{key}"] = float(np.nanmean(masked_mean_error(np.asarray(out[name]), self.truth[gt], mask)))
        logs["elapsed_s"] = time.monotonic() - self._start


def standard_callbacks(
    out_dir: pathlib.Path,
    figure_batch=None,
    tensorboard: bool = True,
    agreement_batch=None,
    calibration=None,
    calibration_steps: int = 20,
    weight_average: bool = False,
) -> list:
    """Resume, NaN guard, CSV and TensorBoard logs, ``.keras`` checkpoint, figures.

    Layout of ``out_dir``: ``model.keras`` (saved after every epoch),
    ``log.csv``, ``figures/``, ``tensorboard/`` and, while a run is
    unfinished, ``backup/`` (what :class:`keras.callbacks.BackupAndRestore`
    resumes from). ``agreement_batch`` ``(image, truth)``: log map
    agreement on those faces every epoch (:class:`GroundTruthAgreement`).
    ``calibration`` (training pairs): recalibrate batch norm every epoch
    before the checkpoint (:class:`PreciseBatchNorm`). ``weight_average``:
    the optimiser keeps a moving average of the weights (``use_ema``); it is
    swapped into the model at each epoch's end, after the backup (which so
    keeps the weights and their average apart, for a resumed run to start
    from) and before the other callbacks.
    """
    callbacks = [
        keras.callbacks.BackupAndRestore(str(out_dir / "backup")),
        keras.callbacks.TerminateOnNaN(),
        *([keras.callbacks.SwapEMAWeights(swap_on_epoch=True)] if weight_average else []),
        *([PreciseBatchNorm(calibration, calibration_steps)] if calibration is not None and calibration_steps else []),
        *([GroundTruthAgreement(*agreement_batch)] if agreement_batch is not None else []),
        keras.callbacks.CSVLogger(str(out_dir / "log.csv"), append=True),
        keras.callbacks.ModelCheckpoint(str(out_dir / "model.keras")),
    ]
    if tensorboard:
        callbacks.append(TensorBoardScalars(out_dir / "tensorboard"))
    if figure_batch is not None:
        callbacks.append(EpochFigure(out_dir / "figures", *figure_batch))
    return callbacks
