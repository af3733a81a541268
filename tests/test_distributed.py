"""Multi-worker training: TF_CONFIG roles, per-worker data, and a two-process cluster on 127.0.0.1."""

import csv
import json
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from bioface_tf.data import CelebAFaces
from bioface_tf.data.synth import write_synthetic
from bioface_tf.errors import BioFaceError
from training import cluster
from training.presets import load_preset
from training.train import training_batches

CLUSTER_TIMEOUT_S = 420
TINY = [
    "--preset", "report", "--model", "mobile", "--epochs", "2", "--steps", "2", "--batch-size", "4",
    "--set", "model.image_size=32", "--set", "train.learning_rate=1e-3", "--set", "train.figure_samples=2",
    "--set", "train.batch_norm_recalibration=2", "--set", "train.distribute=multi_worker", "--no-tensorboard",
]
CRASH_AFTER_FIRST_EPOCH = """
import os, keras
from training import train as training_train

class Crash(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 1:
            os._exit(3)

original = training_train.standard_callbacks
training_train.standard_callbacks = lambda *a, **k: original(*a, **k) + [Crash()]
"""


def _tf_config(ports, index):
    workers = [f"127.0.0.1:{port}" for port in ports]
    return json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})


def test_roles_follow_tensorflow_chief_rule():
    two = {"worker": ["a:1", "b:1"]}
    first = cluster.role_from_tf_config(json.dumps({"cluster": two, "task": {"type": "worker", "index": 0}}))
    second = cluster.role_from_tf_config(json.dumps({"cluster": two, "task": {"type": "worker", "index": 1}}))
    assert first.is_chief and not second.is_chief and first.workers == 2
    with_chief = {"chief": ["c:1"], "worker": ["a:1"]}
    chief = cluster.role_from_tf_config(json.dumps({"cluster": with_chief, "task": {"type": "chief", "index": 0}}))
    worker0 = cluster.role_from_tf_config(json.dumps({"cluster": with_chief, "task": {"type": "worker", "index": 0}}))
    assert chief.is_chief and not worker0.is_chief and chief.workers == 2
    assert cluster.SINGLE.is_chief and cluster.SINGLE.workers == 1


@pytest.mark.parametrize(
    "text, problem",
    [
        (None, "needs the TF_CONFIG environment variable"),
        ("{not json", "not a JSON object"),
        ('{"cluster": {"worker": ["a:1"]}}', "not a JSON object"),
        ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 1}}', "worker 1 is not in the cluster"),
        ('{"cluster": {"worker": ["a:1"], "ps": ["b:1"]}, "task": {"type": "ps", "index": 0}}', "does not train"),
    ],
)
def test_bad_tf_config_is_named(text, problem):
    with pytest.raises(BioFaceError, match=problem):
        cluster.role_from_tf_config(text)


def test_global_batch_must_split_evenly_over_replicas():
    assert cluster.per_replica(24, 4, "train.batch_size") == 6
    with pytest.raises(BioFaceError, match=r"train.batch_size \(25\) must be a multiple of the 2 replicas"):
        cluster.per_replica(25, 2, "train.batch_size")


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    return str(write_synthetic(tmp_path_factory.mktemp("faces") / "faces.h5", n=24, size=32, seed=5, progress=False))


def test_file_faces_are_sharded_disjointly_over_workers(faces):
    source = CelebAFaces([faces], image_size=32)
    shards = [cluster.FaceShard(source, 3, i) for i in range(3)]
    assert [len(s) for s in shards] == [8, 8, 8]
    np.testing.assert_array_equal(shards[1].read([0, 2])["image"], source.read([1, 7])["image"])
    assert shards[2].has_ground_truth == source.has_ground_truth and shards[2].image_size == 32


def _first_batch(preset, faces, worker):
    context = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=worker, num_replicas_in_sync=2)
    return next(iter(training_batches(preset, faces, context=context)))


def test_each_worker_trains_on_its_own_per_replica_batches(faces):
    source = CelebAFaces([faces], image_size=32)
    from_files = load_preset("report", ["model.image_size=32", "train.batch_size=4"])
    first, second = (_first_batch(from_files, source, w) for w in (0, 1))
    assert first["image"].shape[0] == 2, "a global batch of 4 over 2 replicas: 2 faces each"
    assert not np.allclose(first["srgb"], second["srgb"]), "the workers read different faces"
    rendered = load_preset(
        "synthetic", ["model.image_size=32", "train.batch_size=4", "train.rendered_per_batch=4", "train.rendered_pool=0"]
    )
    first, second = (_first_batch(rendered, None, w) for w in (0, 1))
    assert first["image"].shape[0] == 2
    assert not np.allclose(first["gt_fmel"], second["gt_fmel"]), "the workers render different faces"


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _run_cluster(tmp_path, faces, outs, prelude=""):
    """Two worker processes on 127.0.0.1, each `bioface train` with its TF_CONFIG; bounded in time."""
    ports = _free_ports(2)
    script = prelude + "\nimport sys\nfrom bioface_tf.cli import main\nsys.exit(main(sys.argv[1:]))\n"
    processes = []
    for index, out in enumerate(outs):
        scratch = tmp_path / f"tmp{index}"
        scratch.mkdir(exist_ok=True)
        env = {
            **os.environ, "TF_CONFIG": _tf_config(ports, index), "TMPDIR": str(scratch),
            "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": "",
        }
        command = [sys.executable, "-c", textwrap.dedent(script), "train", "--data", faces, "--out", str(out), *TINY]
        processes.append(subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    try:
        outputs = [p.communicate(timeout=CLUSTER_TIMEOUT_S)[0] for p in processes]
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
                p.wait()
    return [p.returncode for p in processes], outputs


def _epochs(out):
    with open(out / "log.csv") as f:
        return [int(row["epoch"]) for row in csv.DictReader(f)]


def test_two_workers_train_and_only_the_chief_writes(tmp_path, faces):
    chief_out, worker_out = tmp_path / "chief", tmp_path / "worker"
    codes, outputs = _run_cluster(tmp_path, faces, [chief_out, worker_out])
    assert codes == [0, 0], "\n\n".join(o[-3000:] for o in outputs)
    assert _epochs(chief_out) == [0, 1]
    assert (chief_out / "model.keras").exists() and (chief_out / "config.json").exists()
    assert sorted(p.name for p in (chief_out / "figures").iterdir()) == ["epoch_001.png", "epoch_002.png"]
    assert not worker_out.exists(), "the worker wrote into its --out"
    assert "writes only to" in outputs[1] and "writes only to" not in outputs[0]
    assert not list((tmp_path / "tmp1").iterdir()), "the worker's scratch folder is removed at the end"
    losses = [line.split(" - loss: ")[1].split()[0] for line in outputs[0].splitlines() if " - loss: " in line]
    assert losses and losses == [l.split(" - loss: ")[1].split()[0] for l in outputs[1].splitlines() if " - loss: " in l]


def test_rerun_after_a_crash_resumes_the_cluster_at_the_next_epoch(tmp_path, faces):
    out = tmp_path / "shared"
    codes, outputs = _run_cluster(tmp_path, faces, [out, out], prelude=CRASH_AFTER_FIRST_EPOCH)
    assert codes == [3, 3], "\n\n".join(o[-3000:] for o in outputs)
    assert _epochs(out) == [0] and (out / "backup").exists()
    codes, outputs = _run_cluster(tmp_path, faces, [out, out])
    assert codes == [0, 0], "\n\n".join(o[-3000:] for o in outputs)
    for output in outputs:
        assert "Epoch 2/2" in output and "Epoch 1/2" not in output, "epoch 1 is not trained again"
    assert _epochs(out) == [0, 1]
    assert not (out / "backup").exists() and (out / "model.keras").exists()
