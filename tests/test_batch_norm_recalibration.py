"""Precise batch norm: moving statistics become the average statistics of the current weights."""

import numpy as np

from bioface_tf.model import build_bioface
from bioface_tf.model.blocks import batch_norm_layers, recalibrate_batch_norm


def test_recalibration_sets_the_batch_averages_and_leaves_weights_alone():
    model = build_bioface(32, "mobile", width_multiplier=0.125)
    rng = np.random.default_rng(0)
    batches = [rng.normal(50.0, 30.0, (4, 32, 32, 3)).astype(np.float32) for _ in range(3)]
    layers = batch_norm_layers(model)
    assert layers, "the mobile network has batch norms"
    first = next(l for l in layers if l.kernel.shape[-2] == 3)
    trainable = [w.numpy().copy() for w in model.trainable_weights]
    momentum = first.momentum

    assert recalibrate_batch_norm(model, batches) == 3
    features = [first._convolve(b).numpy() for b in batches]
    expected_mean = np.mean([f.mean(axis=(0, 1, 2)) for f in features], axis=0)
    np.testing.assert_allclose(first.moving_mean.numpy(), expected_mean, rtol=1e-4, atol=1e-4)
    assert first.momentum == momentum, "the training momentum is restored"
    for before, after in zip(trainable, model.trainable_weights):
        np.testing.assert_array_equal(before, after.numpy())
