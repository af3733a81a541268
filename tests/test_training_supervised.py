"""Training with ground truth: file faces with and without truth, fine-tuning, the evaluation-only guard."""

import csv

import h5py
import numpy as np
import pytest

from bioface_tf.data import CelebAFaces
from bioface_tf.data.pipeline import make_dataset, mix_batches, with_ground_truth_flag
from bioface_tf.data.synth import write_synthetic
from bioface_tf.errors import BioFaceError
from training import train as training_train
from training.presets import load_preset
from tests.data_builders import random_faces, write_pair

SMALL = [
    "model.image_size=32",
    "model.width_multiplier=0.125",
    "train.batch_size=8",
    "train.figure_samples=0",
    "train.steps_per_epoch=4",
    "train.epochs=1",
    "train.agreement_faces=4",
    "train.batch_norm_recalibration=2",
]
FILES_ONLY = SMALL + ["train.rendered_per_batch=0"]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    return str(write_synthetic(tmp_path_factory.mktemp("faces") / "faces.h5", n=16, size=32, seed=4, progress=False))


@pytest.fixture(scope="module")
def unlabelled(tmp_path_factory):
    folder = tmp_path_factory.mktemp("celeba")
    images, _ = write_pair(folder, random_faces(16, 32, seed=2))
    return str(images)


def _log(out):
    with open(out / "log.csv") as f:
        return list(csv.DictReader(f))


def test_synthetic_terms_train_from_files_that_hold_truth(rendered, tmp_path):
    preset = load_preset("synthetic", FILES_ONLY)
    training_train.train(preset, [rendered], tmp_path / "run", progress=False, tensorboard=False)
    row = _log(tmp_path / "run")[-1]
    for term in ("gt_melanin", "gt_haemoglobin", "gt_shading", "gt_specular", "gt_camera", "gt_light", "gt_cct"):
        assert float(row[term]) > 0, term
    for key in ("val_r_melanin", "val_r_haemoglobin", "val_melanin_mean_err", "elapsed_s"):
        assert np.isfinite(float(row[key])), key


def test_faces_without_truth_get_a_zero_flag_and_zero_truth(unlabelled):
    faces = CelebAFaces([unlabelled], image_size=32)
    batches = with_ground_truth_flag(make_dataset(faces, batch_size=4, shuffle=False), 32, present=False)
    batch = next(iter(batches))
    assert np.all(batch["gt_valid"].numpy() == 0)
    assert batch["gt_fmel"].shape == (4, 32, 32, 1) and batch["gt_light_weights"].shape == (4, 14)


def test_mixed_batches_put_both_kinds_of_face_in_one_batch(rendered, unlabelled):
    labelled = with_ground_truth_flag(
        make_dataset(CelebAFaces([rendered], image_size=32), batch_size=3, ground_truth=True, shuffle=False), 32, True
    )
    plain = with_ground_truth_flag(make_dataset(CelebAFaces([unlabelled], image_size=32), batch_size=5), 32, False)
    batch = next(iter(mix_batches(labelled, plain)))
    assert batch["image"].shape[0] == 8
    np.testing.assert_array_equal(batch["gt_valid"].numpy(), [1, 1, 1, 0, 0, 0, 0, 0])


def test_fine_tuning_starts_from_the_given_model(rendered, tmp_path):
    base = load_preset("synthetic", FILES_ONLY)
    training_train.train(base, [rendered], tmp_path / "base", progress=False, tensorboard=False)
    start = str(tmp_path / "base" / "model.keras")
    model = training_train.build_and_compile(load_preset("synthetic", FILES_ONLY + [f"train.init_from={start}"]))
    from training.evaluate import load_trained

    for mine, theirs in zip(model.get_weights(), load_trained(start).get_weights()):
        np.testing.assert_array_equal(mine, theirs)
    other = load_preset("synthetic", FILES_ONLY + [f"train.init_from={start}", "model.width_multiplier=0.25"])
    with pytest.raises(BioFaceError, match="differs from the preset"):
        training_train.build_and_compile(other)


@pytest.mark.parametrize("family, message", [("eval_faces", "evaluation-only"), ("validation_faces", "validation")])
def test_the_held_out_families_are_refused_for_training(rendered, tmp_path, family, message):
    held_out = tmp_path / f"{family}.h5"
    held_out.write_bytes(open(rendered, "rb").read())
    with h5py.File(held_out, "a") as f:
        f.attrs["family"] = family
    with pytest.raises(BioFaceError, match=message):
        training_train.train(load_preset("synthetic", FILES_ONLY), [str(held_out)], tmp_path / "run", progress=False)


def test_a_hybrid_run_without_files_says_what_is_missing(tmp_path):
    with pytest.raises(BioFaceError, match="--data"):
        training_train.train(load_preset("hybrid", SMALL + ["train.rendered_per_batch=4"]), [], tmp_path / "run", progress=False)


def test_bioface_synth_writes_the_evaluation_family_on_request(tmp_path):
    from bioface_tf import cli

    out = tmp_path / "eval.h5"
    assert cli.main(["synth", "--family", "eval_faces", "--n", "2", "--size", "32", "--out", str(out)]) == 0
    with h5py.File(out, "r") as f:
        assert f.attrs["family"] == "eval_faces"
        assert f["gt_fmel"].shape == (2, 32, 32)
