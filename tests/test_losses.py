"""Loss terms: reference formulas, their guards, and MS-SSIM on 64×64 faces."""

import numpy as np
import pytest
import tensorflow as tf
from numpy.lib.stride_tricks import sliding_window_view

from bioface_tf import losses
from bioface_tf.errors import BioFaceError


def _numpy_ms_ssim(a, b, filter_size, sigma, weights, k1=0.01, k2=0.03):
    """MS-SSIM from Wang et al. (2003), written directly in NumPy, per image."""
    x = np.arange(filter_size) - (filter_size - 1) / 2
    g = np.exp(-x**2 / (2 * sigma**2))
    w = np.outer(g, g) / np.outer(g, g).sum()
    c1, c2 = k1**2, k2**2
    values = []
    for img_a, img_b in zip(a.astype(np.float64), b.astype(np.float64)):
        channel_values = []
        for c in range(img_a.shape[-1]):
            p, q = img_a[..., c], img_b[..., c]
            result = 1.0
            for j, beta in enumerate(weights):
                filt = lambda z: np.einsum("ijkl,kl->ij", sliding_window_view(z, w.shape), w)
                mp, mq = filt(p), filt(q)
                vp, vq, cov = filt(p * p) - mp**2, filt(q * q) - mq**2, filt(p * q) - mp * mq
                cs = (2 * cov + c2) / (vp + vq + c2)
                lum = (2 * mp * mq + c1) / (mp**2 + mq**2 + c1)
                term = (lum * cs).mean() if j == len(weights) - 1 else cs.mean()
                result *= max(term, 1e-6) ** beta
                h, wd = p.shape
                p = p.reshape(h // 2, 2, wd // 2, 2).mean(axis=(1, 3))
                q = q.reshape(h // 2, 2, wd // 2, 2).mean(axis=(1, 3))
            channel_values.append(result)
        values.append(np.mean(channel_values))
    return np.array(values)


def _faces(seed=0, size=64, noise=0.05, batch=3):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] / size
    base = np.stack([0.6 + 0.2 * np.sin(6 * xx), 0.4 + 0.2 * yy, 0.3 + 0.1 * xx * yy], -1)
    a = np.clip(base[None] + 0.05 * rng.standard_normal((batch, size, size, 3)), 0, 1)
    b = np.clip(a + noise * rng.standard_normal(a.shape), 0, 1)
    return a.astype(np.float32), b.astype(np.float32)


def test_tensorflow_default_ms_ssim_fails_at_64_pixels():
    a, b = _faces()
    with pytest.raises(tf.errors.InvalidArgumentError):
        tf.image.ssim_multiscale(a, b, 1.0)


@pytest.mark.parametrize("size,filter_size,expected", [(64, 7, 4), (64, 11, 3), (175, 11, 4), (176, 11, 5), (224, 7, 5)])
def test_scale_count_keeps_the_filter_inside_the_coarsest_scale(size, filter_size, expected):
    scales = losses.ms_ssim_scales(size, filter_size)
    assert scales == expected
    assert size // 2 ** (scales - 1) >= filter_size
    weights = losses.ms_ssim_power_factors(scales)
    assert np.isclose(sum(weights), 1.0)


def test_ms_ssim_too_small_for_filter_is_a_clear_error():
    with pytest.raises(BioFaceError, match="smaller than"):
        losses.ms_ssim_scales(4, 7)


@pytest.mark.parametrize("size,noise", [(64, 0.05), (64, 0.3), (32, 0.1)])
def test_ms_ssim_matches_an_independent_numpy_computation(size, noise):
    a, b = _faces(size=size, noise=noise)
    weights = losses.ms_ssim_power_factors(losses.ms_ssim_scales(size, 7))
    expected = _numpy_ms_ssim(a, b, 7, 1.0, weights)
    np.testing.assert_allclose(losses.ms_ssim(a, b).numpy(), expected, atol=2e-5)


def test_ms_ssim_agrees_with_tensorflow_given_the_same_scales():
    a, b = _faces(noise=0.05)
    weights = losses.ms_ssim_power_factors(4)
    reference = tf.image.ssim_multiscale(a, b, 1.0, power_factors=weights, filter_size=7, filter_sigma=1.0)
    np.testing.assert_allclose(losses.ms_ssim(a, b).numpy(), reference.numpy(), atol=1e-5)


def test_ms_ssim_is_one_for_identical_images_and_falls_with_noise():
    a, _ = _faces()
    np.testing.assert_allclose(losses.ms_ssim(a, a).numpy(), 1.0, atol=1e-6)
    scores = [losses.ms_ssim(a, _faces(noise=n)[1]).numpy().mean() for n in (0.02, 0.08, 0.3)]
    assert scores[0] > scores[1] > scores[2]
    a, b = _faces(noise=0.1)
    np.testing.assert_allclose(losses.ms_ssim(a, b).numpy(), losses.ms_ssim(b, a).numpy(), rtol=1e-6)


def test_ms_ssim_loss_gradient_is_finite_where_tensorflows_is_not():
    rng = np.random.default_rng(3)
    a = rng.random((2, 64, 64, 3)).astype(np.float32)
    b = tf.Variable(rng.random((2, 64, 64, 3)).astype(np.float32))
    mask = np.ones((2, 64, 64, 1), np.float32)
    with tf.GradientTape(persistent=True) as tape:
        ours = losses.ms_ssim_loss(a, b, mask)
        theirs = tf.reduce_sum(
            1 - tf.image.ssim_multiscale(a, b, 1.0, power_factors=losses.ms_ssim_power_factors(4), filter_size=7)
        )
    assert not np.all(np.isfinite(tape.gradient(theirs, b).numpy())), "premise: tf's gradient has NaN here"
    gradient = tape.gradient(ours, b).numpy()
    assert np.all(np.isfinite(gradient)) and np.abs(gradient).sum() > 0


def test_appearance_l2_is_the_masked_reference_formula():
    a, b = _faces(batch=2)
    mask = np.zeros((2, 64, 64, 1), np.float32)
    mask[:, 10:50, 20:40] = 1
    expected = np.sum((mask * 255 * (a.astype(np.float64) - b)) ** 2) / (64 * 64)
    np.testing.assert_allclose(losses.appearance_l2(a, b, mask).numpy(), expected, rtol=1e-5)
    outside = b.copy()
    outside[:, :5] = 0.0
    np.testing.assert_allclose(losses.appearance_l2(a, outside, mask).numpy(), expected, rtol=1e-5)


def test_shading_loss_is_scale_invariant_and_guards_empty_masks():
    rng = np.random.default_rng(1)
    target = rng.random((3, 16, 16, 1)).astype(np.float32)
    shading = (rng.random((3, 16, 16, 1)) + 0.1).astype(np.float32)
    mask = np.ones_like(target)
    value = losses.scale_invariant_shading(target, shading, mask).numpy()
    np.testing.assert_allclose(losses.scale_invariant_shading(target, 7.0 * shading, mask).numpy(), value, rtol=1e-4)
    assert losses.scale_invariant_shading(target, 2.5 * target, mask).numpy() < 1e-8
    k = (target * shading).sum(axis=(1, 2, 3)) / (shading**2).sum(axis=(1, 2, 3))
    np.testing.assert_allclose(value, np.sum((target - k[:, None, None, None] * shading) ** 2), rtol=1e-4)

    mask[0] = 0
    variable = tf.Variable(shading)
    with tf.GradientTape() as tape:
        guarded = losses.scale_invariant_shading(target, variable, mask)
    assert np.isfinite(guarded.numpy()) and np.all(np.isfinite(tape.gradient(guarded, variable).numpy()))
    partial = losses.scale_invariant_shading(target[1:], shading[1:], mask[1:]).numpy()
    np.testing.assert_allclose(guarded.numpy(), partial, rtol=1e-5)
    invalid = losses.scale_invariant_shading(target, shading, np.ones_like(mask), np.array([0, 1, 0], np.float32))
    np.testing.assert_allclose(invalid.numpy(), losses.scale_invariant_shading(target[1:2], shading[1:2], mask[1:2]).numpy(), rtol=1e-5)


def _outputs_and_targets(seed=0):
    a, b = _faces(seed, batch=2)
    rng = np.random.default_rng(seed)
    specmask = rng.random((2, 64, 64, 1)).astype(np.float32)
    outputs = {
        "linear_srgb": b,
        "srgb": b,
        "b": np.array([[1.0, -2.0], [0.5, 0.0]], np.float32),
        "shading": (rng.random((2, 64, 64, 1)) + 0.5).astype(np.float32),
        "specmask": specmask,
        "specular": specmask * np.array([0.2, 0.3, 0.4], np.float32),
    }
    targets = {"srgb": a, "mask": np.ones((2, 64, 64, 1), np.float32), "shading": rng.random((2, 64, 64, 1)).astype(np.float32)}
    return outputs, targets


def test_bioface_loss_weights_each_named_term():
    outputs, targets = _outputs_and_targets()
    reference = losses.BioFaceLoss()
    assert reference.active_terms == ("appearance", "camera_prior", "shading", "sparsity")
    terms = {k: v.numpy() for k, v in reference(targets, outputs).items()}
    np.testing.assert_allclose(terms["camera_prior"], 1e-4 * (1 + 4 + 0.25), rtol=1e-6)
    np.testing.assert_allclose(terms["sparsity"], 1e-5 * outputs["specular"].astype(np.float64).sum(), rtol=1e-5)
    linear_target = targets["srgb"].astype(np.float64) ** 2.2
    np.testing.assert_allclose(
        terms["appearance"], 1e-3 * np.sum((255 * (linear_target - outputs["linear_srgb"])) ** 2) / 64**2, rtol=1e-4
    )
    report = losses.BioFaceLoss(sparsity=1e-8)(targets, outputs)
    np.testing.assert_allclose(report["sparsity"].numpy(), 1e-3 * terms["sparsity"], rtol=1e-5)


def test_appearance_space_switches_between_linear_and_display():
    outputs, targets = _outputs_and_targets()
    outputs["srgb"] = targets["srgb"]
    display = losses.BioFaceLoss(appearance_space="display", ms_ssim=1.0)(targets, outputs)
    assert display["appearance"].numpy() == 0 and abs(display["ms_ssim"].numpy()) < 1e-5
    linear = losses.BioFaceLoss(appearance_space="linear")(targets, outputs)
    assert linear["appearance"].numpy() > 0
    with pytest.raises(BioFaceError, match="appearance space"):
        losses.BioFaceLoss(appearance_space="log")


def test_specular_target_slot_needs_its_target_and_compares_in_linear_srgb():
    outputs, targets = _outputs_and_targets()
    loss = losses.BioFaceLoss(specular_target=2.0)
    with pytest.raises(BioFaceError, match="specular_target"):
        loss(targets, outputs)
    grey = np.array([[3.2406, -1.5372, -0.4986], [-0.9689, 1.8758, 0.0415], [0.0557, -0.2040, 1.0570]]) @ [0.3253, 0.3425, 0.3723]
    assert np.allclose(grey, losses.SPECULAR_TO_LINEAR_SRGB, atol=1e-3)
    targets["specular_target"] = losses.SPECULAR_TO_LINEAR_SRGB * outputs["specmask"]
    assert loss(targets, outputs)["specular_target"].numpy() < 1e-6
    targets["specular_target"] = targets["specular_target"] + 0.1
    np.testing.assert_allclose(loss(targets, outputs)["specular_target"].numpy(), 2.0 * 2 * 0.1, rtol=1e-4)


def test_missing_shading_target_names_the_fix_and_negative_weights_are_refused():
    outputs, targets = _outputs_and_targets()
    del targets["shading"]
    with pytest.raises(BioFaceError, match="loss.shading=0"):
        losses.BioFaceLoss()(targets, outputs)
    assert "shading" not in losses.BioFaceLoss(shading=0)(targets, outputs)
    with pytest.raises(BioFaceError, match="sparsity"):
        losses.BioFaceLoss(sparsity=-1)
