"""The BioFaceNet network: architecture, sizes, options and building blocks."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from bioface_tf.errors import BioFaceError
from bioface_tf.model import (
    AtrousSpatialPyramidPooling,
    BioFaceBackbone,
    ConvBatchNormReLU,
    build_bioface,
    default_atrous_rates,
)

RAW = ("fmel_raw", "fblood_raw", "shading_raw", "spec_raw")


def _paper_parameter_count(size=64, filters=(32, 64, 128, 256, 512), hidden=512):
    """Count the paper's network by hand from its description."""
    unit = lambda cin, cout: 9 * cin * cout + 4 * cout  # conv3×3 without bias, BN γ β μ σ²
    count, cin = 0, 3
    for f in filters:
        count += unit(cin, f) + 2 * unit(f, f)
        cin = f
    decoder = 0
    for below, f in zip(filters[:0:-1], filters[-2::-1]):
        decoder += unit(below + f, f) + 2 * unit(f, f)
    decoder += 9 * filters[0] + 1
    bottleneck = (size // 16) ** 2 * filters[-1]
    fc = bottleneck * hidden + hidden + hidden * hidden + hidden + hidden * 17 + 17
    return count + 4 * decoder + fc


def test_full_network_has_the_papers_architecture():
    net = BioFaceBackbone(image_size=64)
    assert net.count_params() == _paper_parameter_count()
    assert 27e6 < net.count_params() < 29e6
    convs = [layer for layer in net.layers if isinstance(layer, ConvBatchNormReLU)]
    assert len(convs) == 5 * 3 + 4 * 4 * 3
    assert sum(isinstance(layer, keras.layers.MaxPooling2D) for layer in net.layers) == 4


@pytest.mark.parametrize("size", [32, 64, 224])
def test_any_multiple_of_16_maps_image_to_full_resolution_maps(size):
    net = BioFaceBackbone(image_size=size, width_multiplier=0.125, vector_pooling="average", vector_units=16)
    out = net(np.zeros((1, size, size, 3), np.float32))
    for name in RAW:
        assert tuple(out[name].shape) == (1, size, size, 1)
    assert tuple(out["light_camera_raw"].shape) == (1, 17)


@pytest.mark.parametrize("size", [0, 40, 63, None])
def test_sizes_the_encoder_cannot_halve_are_refused(size):
    with pytest.raises(BioFaceError, match="multiple of 16"):
        BioFaceBackbone(image_size=size)


def test_mobile_variant_is_small_and_shares_one_decoder():
    full = build_bioface(64, "full")
    mobile = build_bioface(64, "mobile")
    assert mobile.count_params() * 20 < full.count_params()
    names = [layer.name for layer in mobile.backbone.layers]
    assert not any("fmel_decoder" in n for n in names) and any("shared_decoder" in n for n in names)
    assert {f"{r.replace('_raw', '_head')}" for r in RAW} <= set(names)
    with pytest.raises(BioFaceError, match="variant"):
        build_bioface(64, "tiny")


def test_default_atrous_rates_are_meaningful_on_the_bottleneck():
    assert default_atrous_rates(4) == (1, 2)
    assert default_atrous_rates(14) == (2, 5, 7)
    for n in (1, 2, 4, 7, 14, 28):
        rates = default_atrous_rates(n)
        assert min(rates) >= 1 and max(rates) <= max(1, n // 2)


def test_aspp_image_pooling_reaches_the_far_corner():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 4, 4, 8)).astype(np.float32)
    aspp = AtrousSpatialPyramidPooling(6, atrous_rates=(1,))
    base = aspp(x, training=False).numpy()
    x[:, 0, 0] += 5.0
    moved = aspp(x, training=False).numpy()
    assert base.shape == (2, 4, 4, 6)
    assert not np.allclose(base[:, 3, 3], moved[:, 3, 3]), "a 3×3 branch cannot see 3 pixels away; pooling must"
    clone = AtrousSpatialPyramidPooling.from_config(aspp.get_config())
    assert clone.get_config() == aspp.get_config()
    net = BioFaceBackbone(image_size=64, width_multiplier=0.125, bottleneck="aspp")
    assert net.get_layer("aspp").atrous_rates == (1, 2)


def test_conv_unit_normalises_with_batch_statistics_then_moving_ones():
    rng = np.random.default_rng(0)
    x = rng.normal(2.0, 3.0, (4, 6, 6, 3)).astype(np.float32)
    unit = ConvBatchNormReLU(5, momentum=0.5)
    y = unit(x, training=True).numpy()
    conv = tf.nn.conv2d(x, unit.kernel.numpy(), 1, "SAME").numpy().astype(np.float64)
    mean, var = conv.mean(axis=(0, 1, 2)), conv.var(axis=(0, 1, 2))
    expected = np.maximum((conv - mean) / np.sqrt(var + unit.epsilon), 0)
    np.testing.assert_allclose(y, expected, atol=1e-4)
    np.testing.assert_allclose(unit.moving_mean.numpy(), 0.5 * mean, rtol=1e-4, atol=1e-5)
    inference = unit(x, training=False).numpy()
    moving = np.maximum((conv - unit.moving_mean.numpy()) / np.sqrt(unit.moving_variance.numpy() + unit.epsilon), 0)
    np.testing.assert_allclose(inference, moving, atol=1e-4)
    clone = ConvBatchNormReLU.from_config(unit.get_config())
    assert clone.get_config() == unit.get_config()


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_matmul_weight_gradient_equals_the_convolutions(dtype):
    from bioface_tf.model.blocks import conv3x3_matmul_filter_gradient

    rng = np.random.default_rng(0)
    x = tf.cast(rng.normal(size=(3, 4, 4, 6)), dtype)
    kernel = tf.cast(rng.normal(size=(3, 3, 6, 5)), dtype)
    weights = tf.cast(rng.normal(size=(3, 4, 4, 5)), dtype)
    gradients = []
    for convolve in (lambda a, k: tf.nn.conv2d(a, k, 1, "SAME"), conv3x3_matmul_filter_gradient):
        with tf.GradientTape() as tape:
            tape.watch([x, kernel])
            y = convolve(x, kernel)
            loss = tf.reduce_sum(tf.cast(y * weights, tf.float32))
        gradients.append([y] + tape.gradient(loss, [x, kernel]))
    for ours, reference in zip(*gradients):
        assert ours.dtype == reference.dtype
        scale = float(tf.reduce_max(tf.abs(tf.cast(reference, tf.float32))))
        np.testing.assert_allclose(
            tf.cast(ours, tf.float32).numpy(), tf.cast(reference, tf.float32).numpy(),
            atol=(1e-5 if dtype == "float32" else 1e-2) * scale,
        )


def test_small_maps_train_with_the_matmul_weight_gradient_and_match_plain_convolution():
    x = np.random.default_rng(1).normal(size=(4, 8, 8, 3)).astype(np.float32)
    unit = ConvBatchNormReLU(4)
    unit.build(x.shape)
    with tf.GradientTape() as tape:
        ours = tf.reduce_sum(unit(x, training=True) ** 2)
    grad = tape.gradient(ours, unit.kernel)
    with tf.GradientTape() as tape:
        features = tf.nn.conv2d(x, unit.kernel, 1, "SAME")
        normalised, _, _ = tf.compat.v1.nn.fused_batch_norm(features, unit.gamma, unit.beta, epsilon=unit.epsilon)
        reference = tf.reduce_sum(tf.nn.relu(normalised) ** 2)
    np.testing.assert_allclose(ours.numpy(), reference.numpy(), rtol=1e-5)
    np.testing.assert_allclose(grad.numpy(), tape.gradient(reference, unit.kernel).numpy(), rtol=1e-4, atol=1e-5)


def test_separable_and_dilated_units_keep_the_shape():
    x = np.ones((1, 8, 8, 4), np.float32)
    for unit in (ConvBatchNormReLU(6, separable=True), ConvBatchNormReLU(6, dilation_rate=2)):
        assert tuple(unit(x).shape) == (1, 8, 8, 6)


def test_mixed_precision_runs_the_network_in_half_and_the_physics_in_float32():
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        model = build_bioface(32, "full", width_multiplier=0.125)
        out = model(np.zeros((1, 32, 32, 3), np.float32))
        hidden = model.backbone.get_layer("encoder_level1_conv1")
    finally:
        keras.config.set_dtype_policy(previous)
    assert hidden.compute_dtype == "float16"
    for name in ("linear_srgb", "fmel", "b", "specular"):
        assert out[name].dtype == tf.float32, name
    assert np.all(np.isfinite(out["linear_srgb"].numpy()))


def test_task_model_exposes_reconstruction_and_every_intermediate():
    model = build_bioface(32, "full", width_multiplier=0.125)
    out = model(np.zeros((2, 32, 32, 3), np.float32))
    for name in ("fmel", "fblood", "shading", "specmask", "linear_srgb", "srgb", "albedo", "diffuse", "specular"):
        assert out[name].shape[:3] == (2, 32, 32), name
    assert tuple(out["b"].shape) == (2, 2) and tuple(out["cct"].shape) == (2, 1)
    assert tuple(out["light_weights"].shape) == (2, 14) and tuple(out["T_raw2xyz"].shape) == (2, 3, 3)
    assert np.all(np.abs(out["fmel"].numpy()) <= 1)


def test_task_model_round_trips_through_a_keras_file_in_safe_mode(tmp_path):
    model = build_bioface(32, "mobile", bottleneck="aspp", raw2xyz="table")
    x = np.random.default_rng(0).normal(0, 40, (2, 32, 32, 3)).astype(np.float32)
    expected = model(x)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    restored = loaded(x)
    for name in ("srgb", "fmel", "b"):
        np.testing.assert_allclose(restored[name].numpy(), expected[name].numpy(), rtol=1e-5, atol=1e-6)
    assert loaded.backbone.get_config() == model.backbone.get_config()
    assert loaded.get_layer("physics").raw2xyz == "table"


def test_zero_heads_start_every_raw_map_at_zero_and_survive_a_save(tmp_path):
    images = np.random.default_rng(0).normal(0, 1, (2, 32, 32, 6)).astype("float32")
    glorot = BioFaceBackbone(image_size=32, width_multiplier=0.25, input_channels=6)
    zeros = BioFaceBackbone(image_size=32, width_multiplier=0.25, input_channels=6, head_initializer="zeros")
    for name in RAW:
        assert np.abs(glorot(images, training=True)[name].numpy()).max() > 0
        assert np.abs(zeros(images, training=True)[name].numpy()).max() == 0
    model = build_bioface(32, "mobile", input_features="photometric", head_initializer="zeros")
    path = tmp_path / "zero_heads.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert loaded.backbone.head_initializer == "zeros"
    with pytest.raises(BioFaceError, match="head initializer"):
        BioFaceBackbone(image_size=32, head_initializer="ones")
