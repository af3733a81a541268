"""Training end to end on rendered faces: loss falls, resume, round trip, CLI, distribution, precision."""

import csv
import json
import os
import shutil
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from bioface_tf import cli
from bioface_tf.data.synth import write_synthetic
from bioface_tf.errors import BioFaceError
from bioface_tf.analysis import analyse
from bioface_tf.data import CelebAFaces
from training import train as training_train
from training.environment import choose_precision, cpu_flags
from training.evaluate import evaluate
from training.presets import load_preset

SMALL = [
    "model.image_size=32",
    "model.width_multiplier=0.125",
    "train.batch_size=8",
    "train.learning_rate=1e-3",
    "train.figure_samples=2",
]


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    return str(write_synthetic(tmp_path_factory.mktemp("faces") / "faces.h5", n=48, size=32, seed=3, progress=False))


class Interrupt(keras.callbacks.Callback):
    """Stop the run as a crash would, at the start of the second epoch."""

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 1:
            raise RuntimeError("simulated interruption")


@pytest.fixture(scope="module")
def trained(faces, tmp_path_factory):
    """Three epochs of ten steps, interrupted after the first and resumed."""
    out = tmp_path_factory.mktemp("run")
    preset = load_preset("report", SMALL + ["train.epochs=3", "train.steps_per_epoch=10"])
    original = training_train.standard_callbacks
    training_train.standard_callbacks = lambda *a, **k: original(*a, **k) + [Interrupt()]
    try:
        with pytest.raises(RuntimeError, match="simulated"):
            training_train.train(preset, [faces], out, progress=False)
    finally:
        training_train.standard_callbacks = original
    assert (out / "backup").exists()
    training_train.train(preset, [faces], out, progress=False)
    return out


def _log(out):
    with open(out / "log.csv") as f:
        return list(csv.DictReader(f))


def test_loss_falls_and_every_term_is_logged(trained):
    rows = _log(trained)
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2], "resumed run continues the epochs, no repeats"
    losses = [float(r["loss"]) for r in rows]
    assert losses[-1] < 0.7 * losses[0], losses
    for term in ("appearance", "camera_prior", "shading", "sparsity"):
        assert all(float(r[term]) > 0 for r in rows), term
    total = sum(float(rows[-1][t]) for t in ("appearance", "camera_prior", "shading", "sparsity"))
    assert np.isclose(total, losses[-1], rtol=1e-3)
    assert not (trained / "backup").exists(), "a finished run leaves no backup"
    assert sorted(p.name for p in (trained / "figures").iterdir()) == ["epoch_001.png", "epoch_002.png", "epoch_003.png"]
    assert any((trained / "tensorboard").iterdir())
    assert json.loads((trained / "config.json").read_text())["loss"]["sparsity"] == 1e-8


def test_trained_model_round_trips_in_safe_mode_and_evaluates(trained, faces):
    model = keras.saving.load_model(trained / "model.keras", safe_mode=True)
    again = keras.saving.load_model(trained / "model.keras", safe_mode=True)
    image = np.random.default_rng(0).normal(0, 40, (2, 32, 32, 3)).astype(np.float32)
    np.testing.assert_allclose(model(image)["srgb"].numpy(), again(image)["srgb"].numpy(), rtol=1e-6)
    assert model.objective.weights["sparsity"] == 1e-8, "loss weights travel with the compiled model"
    results = evaluate(trained / "model.keras", [faces], batch_size=16, progress=False)
    assert results["n_faces"] == 48
    for key in ("psnr", "ssim", "r_melanin", "r_haemoglobin", "r_shading", "r_specular", "b_mae", "cct_mae"):
        assert np.isfinite(results[key]), key
    assert -1 <= results["r_melanin"] <= 1 and results["b_mae"] >= 0


def test_evaluate_command_prints_json(trained, faces, capsys):
    assert cli.main(["evaluate", "--model", str(trained / "model.keras"), "--data", faces, "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert {"psnr", "ssim", "r_melanin", "r_haemoglobin", "r_shading", "r_specular", "b_mae", "cct_mae"} <= set(results)


def test_commands_report_bad_input_without_traceback(tmp_path, faces, trained, capsys):
    assert cli.main(["train", "--data", faces, "--out", str(tmp_path / "a"), "--set", "loss.nope=1"]) == 1
    assert "loss has no field 'nope'" in capsys.readouterr().err
    assert cli.main(["train", "--data", faces, "--out", str(trained), "--preset", "report"] + sum((["--set", s] for s in SMALL), [])) == 1
    assert "finished run" in capsys.readouterr().err
    assert cli.main(["train", "--data", faces, "--out", str(tmp_path / "b"), "--preset", "improved", "--set", "model.image_size=32"]) == 1
    assert "loss.specular_target=0" in capsys.readouterr().err
    assert cli.main(["evaluate", "--model", str(tmp_path / "none.keras"), "--data", faces]) == 1
    assert "model file not found" in capsys.readouterr().err


def test_specular_target_term_trains_on_sidecar_targets(faces, tmp_path):
    data = tmp_path / "faces.h5"
    shutil.copy(faces, data)
    preset = load_preset(
        "report",
        SMALL + ["loss.specular_target=1", "train.epochs=1", "train.steps_per_epoch=2", "train.figure_samples=0"],
    )
    with pytest.raises(BioFaceError, match="bioface specular-targets"):
        training_train.train(preset, [str(data)], tmp_path / "without", progress=False, tensorboard=False)
    assert cli.main(["specular-targets", str(data), "--workers", "1"]) == 0
    training_train.train(preset, [str(data)], tmp_path / "with", progress=False, tensorboard=False)
    term = float(_log(tmp_path / "with")[-1]["specular_target"])
    assert np.isfinite(term) and term > 0


def test_mirrored_strategy_trains_on_two_logical_cpus(faces, tmp_path):
    script = textwrap.dedent(
        f"""
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from training.presets import load_preset
        from training.train import distribution_strategy, train
        print("replicas", distribution_strategy("mirrored").num_replicas_in_sync)
        preset = load_preset("report", {SMALL!r} + ["train.epochs=1", "train.steps_per_epoch=3",
                                                     "train.distribute=mirrored", "train.figure_samples=0"])
        history = train(preset, [{faces!r}], {str(tmp_path / "run")!r}, progress=False, tensorboard=False)
        print("loss", history.history["loss"][-1])
        """
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "replicas 2" in done.stdout
    loss = float(done.stdout.split("loss")[-1])
    assert np.isfinite(loss) and loss > 0
    assert (tmp_path / "run" / "model.keras").exists()


def test_half_written_backup_is_reported_not_resumed(tmp_path):
    backup = tmp_path / "run" / "backup"
    backup.mkdir(parents=True)
    (backup / "latest.weights.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 64)
    with pytest.raises(BioFaceError, match="latest.weights.h5: the resume backup is unreadable"):
        training_train._prepare_out_dir(tmp_path / "run", load_preset("report"))


@pytest.mark.parametrize(
    "setting, gpu, flags, policy",
    [
        ("auto", True, {"avx512_bf16"}, "mixed_float16"),
        ("auto", False, {"avx512f", "avx512_bf16"}, "mixed_bfloat16"),
        ("auto", False, {"amx_bf16", "amx_tile"}, "mixed_bfloat16"),
        ("auto", False, {"avx2", "avx512f"}, "float32"),
        ("auto", False, set(), "float32"),
        ("on", False, {"avx2"}, "mixed_bfloat16"),
        ("on", True, set(), "mixed_float16"),
        ("off", True, {"avx512_bf16"}, "float32"),
        ("float16", False, set(), "mixed_float16"),
        ("bfloat16", True, set(), "mixed_bfloat16"),
    ],
)
def test_precision_follows_the_hardware(setting, gpu, flags, policy):
    chosen = choose_precision(setting, gpu, frozenset(flags))
    assert chosen.policy == policy
    assert f"train.mixed_precision={setting}" in chosen.reason


def test_precision_reasons_name_what_was_found_and_bad_settings_are_refused():
    assert "avx512_bf16" in choose_precision("auto", False, {"avx512_bf16"}).reason
    assert "lacks avx512_bf16 and amx_bf16" in choose_precision("auto", False, {"avx2"}).reason
    assert "GPU" in choose_precision("auto", True, set()).reason
    with pytest.raises(BioFaceError, match="train.mixed_precision must be one of"):
        choose_precision("half", False, set())


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512_bf16 amx_tile\n\nprocessor\t: 1\nflags\t\t: fpu\n")
    assert cpu_flags(str(cpuinfo)) == {"fpu", "avx2", "avx512_bf16", "amx_tile"}
    assert cpu_flags(str(tmp_path / "absent")) == frozenset()


def test_bfloat16_training_is_finite_and_its_model_infers_in_float32(faces, tmp_path):
    preset = load_preset(
        "report", SMALL + ["train.epochs=1", "train.steps_per_epoch=2", "train.figure_samples=0",
                           "train.mixed_precision=bfloat16"]
    )
    history = training_train.train(preset, [faces], tmp_path / "run", progress=False, tensorboard=False)
    model = history.model
    assert model.backbone.get_layer("encoder_level1_conv1").compute_dtype == "bfloat16"
    image = np.random.default_rng(1).normal(0, 40, (2, 32, 32, 3)).astype(np.float32)
    out = model(image)
    assert all(out[name].dtype == "float32" for name in ("linear_srgb", "fmel", "b", "specular")), "physics in float32"
    terms = model.objective(
        {"srgb": np.full((2, 32, 32, 3), 0.5, np.float32), "mask": np.ones((2, 32, 32, 1), np.float32),
         "shading": np.ones((2, 32, 32, 1), np.float32)},
        out,
    )
    assert all(value.dtype == "float32" for value in terms.values()), "losses in float32"
    assert all(np.isfinite(v) and v > 0 for v in history.history["loss"])
    results = evaluate(tmp_path / "run" / "model.keras", [faces], batch_size=16, progress=False)
    assert np.isfinite(results["psnr"]) and np.isfinite(results["r_melanin"])
    loaded = keras.saving.load_model(tmp_path / "run" / "model.keras", safe_mode=True)
    assert loaded.backbone.get_layer("encoder_level1_conv1").compute_dtype == "float32", "inference in float32"
    crops = CelebAFaces([faces], image_size=32).read(np.arange(3))
    analysis = analyse(loaded, crops["image"], crops["mask"])
    assert np.all(np.isfinite(analysis.reconstruction))


def test_fused_adam_updates_as_keras_adam_does():
    import tensorflow as tf

    from training.optimizers import FusedAdam

    rng = np.random.default_rng(0)
    start = [rng.normal(size=(3, 4)).astype("float32"), rng.normal(size=(5,)).astype("float32")]
    gradients = [[rng.normal(size=w.shape).astype("float32") for w in start] for _ in range(4)]
    results = []
    for optimizer_class in (keras.optimizers.Adam, FusedAdam):
        weights = [keras.Variable(w) for w in start]
        optimizer = optimizer_class(keras.optimizers.schedules.CosineDecay(1e-2, 10))
        step = tf.function(lambda g: optimizer.apply(g, weights))
        for g in gradients:
            step([tf.constant(x) for x in g])
        results.append([w.numpy() for w in weights] + [v.numpy() for v in optimizer.variables[1:]])
    for ours, keras_adam in zip(results[1], results[0]):
        np.testing.assert_allclose(ours, keras_adam, rtol=1e-5, atol=1e-6)


def _moving_average(trajectory, momentum):
    """Keras's EMA of weights: the first step's weights, then ``m·average + (1 − m)·w`` after each later step."""
    average = [np.array(w) for w in trajectory[0]]
    for weights in trajectory[1:]:
        average = [momentum * a + (1 - momentum) * w for a, w in zip(average, weights)]
    return average


def test_weight_average_is_what_the_checkpoint_and_the_saved_model_hold(faces, tmp_path):
    class Trajectory(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.weights = []

        def on_train_batch_end(self, batch, logs=None):
            self.weights.append([w.numpy().copy() for w in self.model.trainable_weights])

    trajectory = Trajectory()
    preset = load_preset("report", SMALL + [
        "train.epochs=2", "train.steps_per_epoch=3", "train.weight_average=0.5",
        "train.figure_samples=0", "train.batch_norm_recalibration=0",
    ])
    original = training_train.standard_callbacks
    training_train.standard_callbacks = lambda *a, **k: original(*a, **k) + [trajectory]
    try:
        training_train.train(preset, [faces], tmp_path, progress=False)
    finally:
        training_train.standard_callbacks = original
    saved = [w.numpy() for w in keras.saving.load_model(tmp_path / "model.keras").trainable_weights]
    expected = _moving_average(trajectory.weights, 0.5)
    assert len(trajectory.weights) == 6
    assert max(np.abs(s - w).max() for s, w in zip(saved, trajectory.weights[-1])) > 1e-6
    for got, want in zip(saved, expected):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
    with pytest.raises(BioFaceError, match="weight_average"):
        training_train.optimizer(load_preset("report", ["train.weight_average=1.0"]).train, 10)
