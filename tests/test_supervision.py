"""Ground-truth terms: their forms, the per-face flag, and how they join BioFaceLoss."""

import numpy as np
import pytest
import tensorflow as tf

from bioface_tf import supervision
from bioface_tf.errors import BioFaceError
from bioface_tf.losses import BioFaceLoss
from training.evaluate import masked_mean_error, masked_pearson


def _maps(seed=0, batch=4, size=16):
    rng = np.random.default_rng(seed)
    truth = rng.uniform(-1, 1, (batch, size, size, 1)).astype(np.float32)
    mask = (rng.random((batch, size, size, 1)) > 0.3).astype(np.float32)
    return truth, mask, rng


def test_masked_correlation_matches_the_evaluation_definition():
    truth, mask, rng = _maps()
    prediction = (0.5 * truth + 0.3 * rng.standard_normal(truth.shape)).astype(np.float32)
    ours = supervision.masked_correlation(prediction, truth, mask).numpy()
    reference = masked_pearson(prediction, truth, mask)
    np.testing.assert_allclose(ours, reference, atol=1e-4)


def test_map_error_rewards_the_pattern_not_only_the_mean():
    truth, mask, _ = _maps()
    inside = mask > 0.5
    means = np.array([t[m].mean() for t, m in zip(truth, inside)], np.float32)
    flat = np.broadcast_to(means[:, None, None, None], truth.shape).astype(np.float32)
    perfect = supervision.map_error(truth, truth, mask, pattern=1.0).numpy()
    constant = supervision.map_error(flat, truth, mask, pattern=1.0).numpy()
    np.testing.assert_allclose(perfect, 0.0, atol=1e-4)
    squared_only = supervision.map_error(flat, truth, mask, pattern=0.0).numpy()
    assert np.all(constant > squared_only + 0.9), "a flat map of the right mean pays ≈ 1 for its r of 0"


def test_log_shading_error_is_blind_to_a_global_factor_only():
    rng = np.random.default_rng(1)
    truth = rng.uniform(0.2, 2.0, (3, 8, 8, 1)).astype(np.float32)
    mask = np.ones_like(truth)
    scaled = supervision.log_shading_error(3.7 * truth, truth, mask).numpy()
    np.testing.assert_allclose(scaled, 0.0, atol=1e-6)
    wrong = supervision.log_shading_error(truth[:, ::-1], truth, mask).numpy()
    assert np.all(wrong > 0.05)


def test_cct_error_counts_only_with_daylight():
    cct, truth = np.array([[3.0], [3.0]], np.float32), np.array([[10.0], [10.0]], np.float32)
    light = np.zeros((2, 14), np.float32)
    light[0, 1], light[1, 0] = 1.0, 1.0
    error = supervision.cct_error(cct, truth, light).numpy()
    np.testing.assert_allclose(error, [(7 / 21) ** 2, 0.0], rtol=1e-5)


def _targets_outputs(valid):
    truth, mask, rng = _maps(batch=2)
    targets = {
        "srgb": np.full((2, 16, 16, 3), 0.5, np.float32),
        "mask": mask,
        "gt_fmel": truth,
        "gt_fblood": truth,
        "gt_shading": np.ones_like(truth),
        "gt_specmask": np.zeros_like(truth),
        "gt_b": np.zeros((2, 2), np.float32),
        "gt_light_weights": np.tile(np.eye(14, dtype=np.float32)[1], (2, 1)),
        "gt_cct": np.full((2, 1), 5.0, np.float32),
        "gt_valid": np.asarray(valid, np.float32),
    }
    outputs = {
        "fmel": -truth,
        "fblood": truth,
        "shading": np.ones_like(truth),
        "specmask": np.zeros_like(truth),
        "b": np.ones((2, 2), np.float32),
        "light_weights": np.full((2, 14), 1 / 14, np.float32),
        "cct": np.full((2, 1), 5.0, np.float32),
    }
    return targets, outputs


def test_faces_without_ground_truth_add_nothing_whatever_their_truth_holds():
    targets, outputs = _targets_outputs([1.0, 0.0])
    targets["gt_fmel"][1] = 1e3
    targets["gt_b"][1] = -1e3
    loss = BioFaceLoss(appearance=0, camera_prior=0, shading=0, sparsity=0, gt_melanin=1.0, gt_camera=1.0)
    flagged = loss(targets, outputs)
    alone = loss({k: v[:1] for k, v in targets.items()}, {k: v[:1] for k, v in outputs.items()})
    for name in ("gt_melanin", "gt_camera"):
        np.testing.assert_allclose(flagged[name].numpy(), alone[name].numpy(), rtol=1e-5)
        assert flagged[name].numpy() > 0


def test_a_ground_truth_term_without_truth_in_the_data_says_how_to_fix_it():
    targets, outputs = _targets_outputs([1.0, 1.0])
    del targets["gt_fblood"]
    loss = BioFaceLoss(appearance=0, camera_prior=0, shading=0, sparsity=0, gt_haemoglobin=1.0)
    with pytest.raises(BioFaceError, match="gt_haemoglobin.*gt_fblood|gt_fblood.*gt_haemoglobin"):
        loss(targets, outputs)


def test_ground_truth_terms_have_finite_gradients():
    targets, outputs = _targets_outputs([1.0, 1.0])
    variables = {k: tf.Variable(v) for k, v in outputs.items()}
    loss = BioFaceLoss(
        appearance=0, camera_prior=0, shading=0, sparsity=0,
        **{name: 1.0 for name in supervision.GT_TERMS},
    )
    with tf.GradientTape() as tape:
        total = tf.add_n(list(loss(targets, dict(variables)).values()))
    gradients = tape.gradient(total, list(variables.values()))
    for name, g in zip(variables, gradients):
        assert g is not None and np.all(np.isfinite(g.numpy())), name


def test_mean_error_is_the_error_of_the_masked_means():
    truth = np.zeros((2, 4, 4, 1), np.float32)
    prediction = np.zeros_like(truth)
    prediction[0, :2] = 1.0
    mask = np.zeros_like(truth)
    mask[0, :2, :2] = 1.0
    mask[0, 3, 3] = 1.0
    error = masked_mean_error(prediction, truth, mask)
    np.testing.assert_allclose(error[0], 4 / 5)
    assert np.isnan(error[1]), "an empty mask has no mean"
