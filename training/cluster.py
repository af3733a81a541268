"""Training on several machines: ``train.distribute=multi_worker``.

TensorFlow's convention: every machine (a *worker*) runs the same
``bioface train`` command with its own ``TF_CONFIG`` environment variable,
a JSON object naming the whole cluster and this worker's place in it::

    {"cluster": {"worker": ["node0:12345", "node1:12345"]},
     "task": {"type": "worker", "index": 0}}

``tf.distribute.MultiWorkerMirroredStrategy`` reads it, keeps a copy of
the weights on every device of every worker and all-reduces the gradients
after each step. Here:

- **batch**: ``train.batch_size`` is the *global* batch, split evenly over
  all replicas (every GPU of every worker, or one CPU replica per worker):
  each replica trains on ``batch_size / replicas`` faces a step
  (:func:`per_replica`). The losses are sums over the batch, so the summed
  gradients are those of the global batch and the learning rate means the
  same as on one machine.
- **data**: each worker builds its own pipeline. Rendered faces come from
  the stream with the seed offset by the worker's index
  (:data:`WORKER_SEED_OFFSET`), so no two workers render the same faces;
  faces from files are sharded, worker ``i`` of ``n`` reading faces
  ``i, i + n, i + 2n, …`` (:class:`FaceShard`).
  Rendered-face pools (``train.rendered_pool``) are per worker.
- **writing**: only the *chief* (task ``chief``, or worker 0 when the
  cluster has no chief) writes into ``--out``: model, ``log.csv``,
  figures, TensorBoard logs, the resume backup. The other workers run the
  same saving code (it may take part in collective operations) into a
  scratch folder of their own that is deleted when they finish
  (:func:`scratch_dir`).
- **resume**: every worker restores from the chief's backup,
  ``OUT/backup`` (written after every epoch), which is why resuming needs
  ``--out`` on storage all workers share; before training, the workers
  check that they resume at the same epoch (:func:`check_same_epoch`) and
  stop with an error otherwise. When one worker dies the others stop with
  an error too (TensorFlow's health check); rerunning every worker's
  command resumes the cluster at the first unfinished epoch.

Keras 3's ``fit`` needs two fixes to run on more than one worker
(:func:`keras_fit_fixes`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import pathlib
import shutil
import tempfile

import numpy as np

from bioface_tf.errors import BioFaceError

TF_CONFIG = "TF_CONFIG"
WORKER_SEED_OFFSET = 104_729
"""Worker ``i`` renders the stream of seed ``train.seed + i·WORKER_SEED_OFFSET``."""
BACKUP_METADATA = "training_metadata.json"


@dataclasses.dataclass(frozen=True)
class WorkerRole:
    """This process's place in a cluster of ``workers`` training processes."""

    task_type: str
    task_id: int
    workers: int
    has_chief: bool

    @property
    def is_chief(self) -> bool:
        """Task ``chief``, or worker 0 of a cluster without one (TensorFlow's rule)."""
        return self.task_type == "chief" or (self.task_type == "worker" and self.task_id == 0 and not self.has_chief)

    def describe(self) -> str:
        return f"{self.task_type} {self.task_id} of a cluster of {self.workers}"


SINGLE = WorkerRole("chief", 0, 1, has_chief=True)
"""The role of a process that trains alone."""


def role_from_tf_config(text: str | None) -> WorkerRole:
    """Parse ``TF_CONFIG`` (its JSON text) into this process's :class:`WorkerRole`.

    Raises:
        BioFaceError: ``TF_CONFIG`` missing, not JSON, or naming a task that
            is not in its cluster; or a task type that does not train.
    """
    if not text:
        raise BioFaceError(
            f"train.distribute=multi_worker needs the {TF_CONFIG} environment variable on every worker, "
            'e.g. {"cluster": {"worker": ["node0:12345", "node1:12345"]}, "task": {"type": "worker", "index": 0}}'
        )
    try:
        config = json.loads(text)
        cluster, task = config["cluster"], config["task"]
        task_type, task_id = str(task["type"]), int(task["index"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
        raise BioFaceError(
            f"{TF_CONFIG} is not a JSON object with 'cluster' and 'task' {{'type', 'index'}} ({err!r}): {text!r}"
        ) from None
    if task_type not in ("chief", "worker"):
        raise BioFaceError(f"{TF_CONFIG}: task type {task_type!r} does not train; use 'chief' or 'worker'")
    members = cluster.get(task_type, [])
    if not 0 <= task_id < len(members):
        raise BioFaceError(
            f"{TF_CONFIG}: task {task_type} {task_id} is not in the cluster, which has {len(members)} {task_type}(s)"
        )
    workers = len(cluster.get("chief", [])) + len(cluster.get("worker", []))
    return WorkerRole(task_type, task_id, workers, has_chief=bool(cluster.get("chief")))


def scratch_dir(role: WorkerRole) -> pathlib.Path:
    """A fresh local folder for a non-chief worker's writes (deleted by :func:`finish`)."""
    return pathlib.Path(tempfile.mkdtemp(prefix=f"bioface-{role.task_type}{role.task_id}-"))


def finish(role: WorkerRole, write_dir: pathlib.Path) -> None:
    """After training: a non-chief worker deletes its scratch folder."""
    if not role.is_chief:
        shutil.rmtree(write_dir, ignore_errors=True)


def copy_backup(source: pathlib.Path, target: pathlib.Path) -> None:
    """Give a non-chief worker the chief's resume backup (``OUT/backup``) to restore from."""
    if source.is_dir():
        shutil.copytree(source, target, dirs_exist_ok=True)


def backup_epoch(backup: pathlib.Path) -> int:
    """The epoch a run resumes at from ``backup`` (0: nothing to resume)."""
    metadata = backup / BACKUP_METADATA
    if not metadata.exists():
        return 0
    return int(json.loads(metadata.read_text())["epoch"])


def check_same_epoch(strategy, epoch: int) -> None:
    """Stop unless every worker resumes at the same epoch.

    A worker that does not see the chief's backup (``--out`` not on shared
    storage) would start at epoch 0 while the others resume, and the
    cluster would hang; this finds it before training, with one all-reduce
    (of the epoch, its square and a count: equal epochs iff the variance is 0).

    Raises:
        BioFaceError: the workers would resume at different epochs.
    """
    import tensorflow as tf

    local = tf.constant([float(epoch), float(epoch) ** 2, 1.0], tf.float64)

    @tf.function
    def gather():
        return strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(lambda: tf.identity(local)), axis=None)

    total, squares, count = gather().numpy()
    if not np.isclose(count * squares, total**2):
        raise BioFaceError(
            f"the workers would resume at different epochs (this one at {epoch}, the mean {total / count:.2f}): "
            "every worker restores from the chief's OUT/backup, so --out must be on storage all workers share"
        )


@contextlib.contextmanager
def keras_fit_fixes(model):
    """Work around Keras 3's ``fit`` under ``MultiWorkerMirroredStrategy`` with 2+ workers.

    Keras 3 (3.15 here; keras-team/keras#20585) fails there twice, in code
    that one worker alone never reaches:

    - ``fit`` starts by all-reducing a whole input batch (a nested
      structure, which ``strategy.reduce`` cannot take across workers:
      "Attempt to convert a value (PerReplica…) to a Tensor") only to
      build the model symbolically. The functional model is built already,
      so the optimizer's variables are created here and the model is left
      to use the strategy of the scope ``fit`` runs in, Keras's own path
      for models built outside a strategy;
    - the per-step logs (scalars) are averaged over workers with
      ``axis=0`` ("Invalid reduction dimension 0 for input with 0
      dimensions"); while inside, they are averaged with ``axis=None``.

    Enter in the strategy's scope, around ``fit``.
    """
    import tensorflow as tf
    from keras.src.backend.tensorflow import trainer as keras_trainer

    original = keras_trainer.reduce_per_replica

    def reduce_per_replica(values, strategy, reduction="auto"):
        if reduction not in ("auto", "mean") or not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
            return original(values, strategy, reduction)

        def mean(value):
            if not isinstance(value, tf.distribute.DistributedValues):
                return value
            return strategy.reduce(tf.distribute.ReduceOp.MEAN, value, axis=None)

        return tf.nest.map_structure(mean, values)

    recorded = model._distribute_strategy
    model.optimizer.build(model.trainable_variables)
    model._distribute_strategy = None
    keras_trainer.reduce_per_replica = reduce_per_replica
    try:
        yield
    finally:
        keras_trainer.reduce_per_replica = original
        model._distribute_strategy = recorded


def per_replica(total: int, replicas: int, what: str) -> int:
    """``total`` faces of a global batch split over ``replicas``.

    Raises:
        BioFaceError: ``total`` is not a multiple of ``replicas``.
    """
    if total % replicas:
        raise BioFaceError(
            f"{what} ({total}) must be a multiple of the {replicas} replicas training in sync: each "
            "replica takes an equal share of the global batch"
        )
    return total // replicas


class FaceShard:
    """Faces ``index, index + count, index + 2·count, …`` of a face source.

    Stands in for the source (:class:`~bioface_tf.data.CelebAFaces`) in
    :func:`~bioface_tf.data.pipeline.make_dataset`: its length and
    ``read`` are the shard's, everything else (image size, ground truth,
    files for validation) is the source's.
    """

    def __init__(self, faces, count: int, index: int):
        if not 0 <= index < count:
            raise BioFaceError(f"shard {index} of {count} does not exist")
        if len(faces) < count:
            raise BioFaceError(f"{len(faces)} faces cannot be shared out among {count} workers")
        self._faces = faces
        self.count = count
        self.index = index

    def __len__(self) -> int:
        return (len(self._faces) - self.index + self.count - 1) // self.count

    def read(self, indices, *args, **kwargs):
        return self._faces.read(np.asarray(indices) * self.count + self.index, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._faces, name)
