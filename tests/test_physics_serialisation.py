"""Scaling layer, configs, `.keras` round trips and mixed precision."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from bioface_tf import physics
from bioface_tf.physics import DECODER_INPUTS, ParameterScaling, PhysicsDecoder


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _raw_outputs(seed=0, batch=2, size=4):
    rng = np.random.default_rng(seed)
    raw = {name: rng.normal(0, 2, (batch, size, size, 1)).astype(np.float32)
           for name in ("fmel_raw", "fblood_raw", "shading_raw", "spec_raw")}
    raw["light_camera_raw"] = rng.normal(0, 2, (batch, 17)).astype(np.float32)
    return raw


def test_parameter_scaling_follows_reference_formulas():
    raw = _raw_outputs()
    out = {k: v.numpy() for k, v in ParameterScaling()(raw).items()}
    vector = raw["light_camera_raw"]
    np.testing.assert_allclose(out["fmel"], 2 * _sigmoid(raw["fmel_raw"]) - 1, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["fblood"], 2 * _sigmoid(raw["fblood_raw"]) - 1, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["shading"], np.exp(raw["shading_raw"]), rtol=1e-5)
    np.testing.assert_allclose(out["specmask"], np.exp(raw["spec_raw"]), rtol=1e-5)
    softmax = np.exp(vector[:, :14]) / np.exp(vector[:, :14]).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(out["light_weights"], softmax, rtol=1e-5)
    np.testing.assert_allclose(out["cct"], 21 * _sigmoid(vector[:, 14:15]) + 1, rtol=1e-5)
    np.testing.assert_allclose(out["b"], 6 * _sigmoid(vector[:, 15:17]) - 3, rtol=1e-5, atol=1e-6)


def test_parameter_scaling_stays_finite_for_extreme_raw_values():
    raw = _raw_outputs()
    raw["shading_raw"][:] = 1e30
    raw["spec_raw"][:] = -1e30
    raw["light_camera_raw"][:] = 1e30
    out = ParameterScaling()(raw)
    for name, tensor in out.items():
        assert np.all(np.isfinite(tensor.numpy())), name
    assert np.all(out["specmask"].numpy() >= 0)


def _render_model(**decoder_options):
    """Raw network outputs → scaling → decoder, as a functional model."""
    inputs = {
        name: keras.Input((None, None, 1), name=name)
        for name in ("fmel_raw", "fblood_raw", "shading_raw", "spec_raw")
    }
    inputs["light_camera_raw"] = keras.Input((17,), name="light_camera_raw")
    params = ParameterScaling(name="scaling")(inputs)
    rendered = PhysicsDecoder(name="physics", **decoder_options)(params)
    return keras.Model(inputs, {"srgb": rendered["srgb"], "linear_srgb": rendered["linear_srgb"]})


@pytest.mark.parametrize("options", [{}, {"raw2xyz": "table", "d_series": "continuous"}])
def test_keras_file_round_trip_in_safe_mode(tmp_path, options):
    model = _render_model(**options)
    raw = _raw_outputs(seed=1)
    expected = model(raw)
    path = tmp_path / "render.keras"
    model.save(path)
    assert path.stat().st_size < 200_000, "spectral constants must not be saved as weights"
    loaded = keras.saving.load_model(path, safe_mode=True)
    restored = loaded(raw)
    np.testing.assert_allclose(restored["srgb"].numpy(), expected["srgb"].numpy(), rtol=1e-6)
    decoder = loaded.get_layer("physics")
    assert (decoder.raw2xyz, decoder.d_series) == (options.get("raw2xyz", "exact"), options.get("d_series", "table"))


def test_every_layer_config_round_trips():
    for name in physics.__all__:
        cls = getattr(physics, name)
        if isinstance(cls, type) and issubclass(cls, keras.layers.Layer):
            layer = cls(name=f"my_{name.lower()}")
            clone = cls.from_config(layer.get_config())
            assert clone.get_config() == layer.get_config(), name


def test_decoder_rejects_invalid_options_and_missing_inputs():
    with pytest.raises(ValueError, match="mode"):
        PhysicsDecoder(raw2xyz="nearest")
    with pytest.raises(ValueError, match="d_series"):
        PhysicsDecoder(d_series="rounded")
    partial = {k: np.zeros((1, 2, 2, 1), np.float32) for k in ("fmel", "fblood")}
    with pytest.raises(ValueError, match="lack"):
        PhysicsDecoder()(partial)
    assert set(DECODER_INPUTS) == {"fmel", "fblood", "shading", "specmask", "b", "light_weights", "cct"}


def test_physics_stays_float32_under_mixed_precision():
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        decoder = PhysicsDecoder()
        raw = {k: tf.cast(v, tf.float16) for k, v in _raw_outputs(seed=2).items()}
        out = decoder(ParameterScaling()(raw))
    finally:
        keras.config.set_dtype_policy(previous)
    assert out["linear_srgb"].dtype == tf.float32
    assert np.all(np.isfinite(out["linear_srgb"].numpy()))
