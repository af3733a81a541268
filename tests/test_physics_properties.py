"""Physical properties every decoder stage must have, checked over random inputs."""

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given
from hypothesis import strategies as st

from bioface_tf.physics import (
    CameraSensitivity,
    IlluminantSpectrum,
    ImageFormation,
    PhysicsDecoder,
    SkinReflectance,
    srgb_decode,
    srgb_encode,
)
from conftest import decoder_inputs

unit = st.floats(-1.0, 1.0)
camera_b = st.tuples(st.floats(-3.0, 3.0), st.floats(-3.0, 3.0))
cct = st.floats(1.0, 22.0)
light_weights = st.lists(st.floats(0.0, 1.0), min_size=14, max_size=14).filter(
    lambda w: sum(w) > 1e-3
).map(lambda w: np.asarray(w) / np.sum(w))

DECODER = PhysicsDecoder()
SKIN = SkinReflectance()


def _reflectance(fmel, fblood):
    shape = np.broadcast_shapes(np.shape(fmel), np.shape(fblood))
    return SKIN(
        {
            "fmel": np.broadcast_to(np.float32(fmel), shape).reshape(1, 1, -1, 1),
            "fblood": np.broadcast_to(np.float32(fblood), shape).reshape(1, 1, -1, 1),
        }
    ).numpy()[0, 0]


@given(st.lists(unit, min_size=1, max_size=8), st.lists(unit, min_size=1, max_size=8))
def test_reflectance_in_unit_interval(fmel, fblood):
    n = min(len(fmel), len(fblood))
    reflectance = _reflectance(np.array(fmel[:n]), np.array(fblood[:n]))
    assert np.all(reflectance >= 0.0) and np.all(reflectance < 1.0)


@given(unit, unit, unit, camera_b, light_weights, cct)
def test_more_melanin_never_raises_reflectance_or_albedo(fmel_a, fmel_b, fblood, b, weights, temperature):
    low, high = sorted((fmel_a, fmel_b))
    reflectance = _reflectance(np.array([low, high]), fblood)
    assert np.all(reflectance[1] <= reflectance[0] * (1 + 1e-6) + 1e-30)
    out = DECODER(decoder_inputs([[low, high]], fblood, 1.0, 0.0, b, weights, temperature))
    albedo = out["albedo"].numpy()[0, 0]
    assert np.all(albedo[1] <= albedo[0] * (1 + 1e-5) + 1e-12)


@given(unit, st.floats(-1.0, 0.8), st.floats(0.1, 0.2), camera_b, light_weights, cct)
def test_more_blood_raises_red_relative_to_green(fmel, fblood, step, b, weights, temperature):
    inputs = decoder_inputs(fmel, [[fblood, fblood + step]], 1.0, 0.0, b, weights, temperature)
    linear = DECODER(inputs)["linear_srgb"].numpy()[0, 0]
    green = np.maximum(linear[:, 1], 1e-12)
    ratio = linear[:, 0] / green
    assert ratio[1] > ratio[0]


@given(camera_b, light_weights, cct, st.floats(0.01, 10.0))
def test_white_balance_maps_light_coloured_specular_to_white(b, weights, temperature, strength):
    out = DECODER(decoder_inputs(0.0, 0.0, 0.0, strength, b, weights, temperature))
    white_balanced = out["white_balanced"].numpy()[0, 0, 0]
    np.testing.assert_allclose(white_balanced, strength, rtol=1e-5)
    linear = out["linear_srgb"].numpy()[0, 0, 0]
    # T maps (1,1,1) to XYZ (0.3253, 0.3425, 0.3723) whatever the camera: a
    # neutral grey in sRGB, equal channels to within 0.3 %.
    np.testing.assert_allclose(linear, linear.mean(), rtol=3e-3)


@given(light_weights, cct)
def test_illuminant_spectrum_is_a_normalised_positive_spd(weights, temperature):
    spd = IlluminantSpectrum()(
        {"light_weights": weights[None].astype(np.float32), "cct": np.float32([[temperature]])}
    ).numpy()
    np.testing.assert_allclose(spd.sum(), 1.0, rtol=1e-5)
    assert np.all(spd >= 0)


@given(camera_b)
def test_camera_sensitivity_non_negative(b):
    assert np.all(CameraSensitivity()(np.float32([b])).numpy() >= 0)


@given(st.floats(0.0, 1.0))
def test_srgb_encoding_round_trips(value):
    x = tf.constant([value], tf.float32)
    np.testing.assert_allclose(srgb_decode(srgb_encode(x)).numpy(), [value], rtol=1e-4, atol=1e-6)


def test_specular_has_the_light_colour():
    out = DECODER(decoder_inputs(0.3, -0.2, 0.0, 2.0, (1.0, -1.0), np.eye(14)[4], 3.0))
    np.testing.assert_allclose(out["specular"].numpy()[0, 0, 0], 2.0 * out["light_colour"].numpy()[0], rtol=1e-6)


finite32 = st.floats(width=32, allow_nan=False, allow_infinity=False)


@given(st.lists(finite32, min_size=4 + 2 + 14 + 1, max_size=4 + 2 + 14 + 1))
def test_no_nan_or_inf_for_any_finite_input(values):
    values = np.float32(values)
    inputs = decoder_inputs(values[0], values[1], values[2], values[3], values[4:6], values[6:20], values[20])
    for name, tensor in DECODER(inputs).items():
        assert np.all(np.isfinite(tensor.numpy())), name


def _random_inputs(seed, height=6, width=5, batch=2):
    rng = np.random.default_rng(seed)
    weights = rng.random((batch, 14)).astype(np.float32)
    return {
        "fmel": rng.uniform(-0.9, 0.9, (batch, height, width, 1)).astype(np.float32),
        "fblood": rng.uniform(-0.9, 0.9, (batch, height, width, 1)).astype(np.float32),
        "shading": rng.uniform(0.2, 1.5, (batch, height, width, 1)).astype(np.float32),
        "specmask": rng.uniform(0.01, 0.3, (batch, height, width, 1)).astype(np.float32),
        "b": rng.uniform(-2.5, 2.5, (batch, 2)).astype(np.float32),
        "light_weights": weights / weights.sum(axis=1, keepdims=True),
        "cct": rng.uniform(1.5, 21.5, (batch, 1)).astype(np.float32),
    }


@pytest.mark.parametrize("raw2xyz", ["exact", "table"])
def test_gradients_finite_and_non_zero_for_every_input(raw2xyz):
    inputs = {k: tf.Variable(v) for k, v in _random_inputs(1).items()}
    decoder = PhysicsDecoder(raw2xyz=raw2xyz)
    with tf.GradientTape() as tape:
        out = decoder(inputs)
        loss = tf.reduce_sum(out["srgb"]) + tf.reduce_sum(out["linear_srgb"])
    grads = tape.gradient(loss, inputs)
    for name, grad in grads.items():
        assert grad is not None, name
        grad = grad.numpy()
        assert np.all(np.isfinite(grad)), name
        assert np.any(grad != 0), name


def test_xla_compiled_decoder_matches_eager():
    inputs = _random_inputs(2)
    eager = DECODER(inputs)
    compiled = tf.function(DECODER.__call__, jit_compile=True)(inputs)
    for name in ("linear_srgb", "srgb", "light_colour", "T_raw2xyz"):
        np.testing.assert_allclose(compiled[name].numpy(), eager[name].numpy(), rtol=1e-4, atol=1e-6)


def test_decoder_first_built_inside_a_graph_works_eagerly_and_in_other_graphs():
    decoder = PhysicsDecoder()
    inputs = _random_inputs(4)
    traced = tf.function(decoder.__call__)(inputs)["srgb"].numpy()
    np.testing.assert_allclose(decoder(inputs)["srgb"].numpy(), traced, rtol=1e-6)
    np.testing.assert_allclose(tf.function(decoder.__call__)(inputs)["srgb"].numpy(), traced, rtol=1e-6)


@pytest.mark.parametrize("size", [(1, 1), (3, 7), (64, 64), (224, 224)])
def test_any_image_size(size):
    out = DECODER(_random_inputs(3, *size, batch=1))
    assert out["srgb"].shape == (1, *size, 3)
    assert out["linear_srgb"].shape == (1, *size, 3)


def test_image_formation_output_shapes_are_declared():
    layer = ImageFormation()
    shapes = layer.compute_output_shape(
        {
            "skin_reflectance": (None, 8, 8, 33),
            "illuminant_spd": (None, 33),
            "camera_sensitivity": (None, 3, 33),
            "shading": (None, 8, 8, 1),
            "specmask": (None, 8, 8, 1),
        }
    )
    assert shapes["albedo"] == (None, 8, 8, 3) and shapes["light_colour"] == (None, 3)
