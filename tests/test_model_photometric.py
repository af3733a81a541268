"""The photometric input: features blind to exposure, exposure handed back to the shading."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st

from bioface_tf.data.pipeline import DISPLAY, REFERENCE, preprocess
from bioface_tf.errors import BioFaceError
from bioface_tf.model import build_bioface
from bioface_tf.model.photometric import ExposureGain, PhotometricInput
from mobile_export.encoder import build_encoder



def _faces(n=2, size=32, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0.05, 0.95, (n, size, size, 3)).astype("float32")


def _decode(srgb):
    return np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)


def _encode(linear):
    return np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)


def _scaled_exposure(srgb, factor):
    """The same photo with every linear pixel times ``factor`` (exact sRGB curve, as a camera's exposure acts)."""
    return _encode(factor * _decode(srgb)).astype("float32")


@pytest.mark.parametrize("preprocessing", [REFERENCE, DISPLAY])
@settings(max_examples=20, deadline=None)
@given(factor=st.floats(0.05, 1.0))
def test_features_ignore_exposure_and_log_exposure_takes_it(preprocessing, factor):
    layer = PhotometricInput(preprocessing)
    srgb = _faces()
    np.testing.assert_allclose(layer.linear(preprocess(tf.constant(srgb), preprocessing)), _decode(srgb), atol=2e-5)
    before = layer(preprocess(tf.constant(srgb), preprocessing))
    after = layer(preprocess(tf.constant(_scaled_exposure(srgb, factor)), preprocessing))
    np.testing.assert_allclose(after["features"], before["features"], rtol=1e-3, atol=3e-3)
    np.testing.assert_allclose(after["log_exposure"] - before["log_exposure"], np.log(factor), atol=1e-3)


def test_chromaticity_channels_are_grey_for_grey_pixels_and_red_for_red():
    srgb = np.full((1, 16, 16, 3), 0.5, "float32")
    srgb[0, :8] = (0.8, 0.3, 0.3)
    features = PhotometricInput()(preprocess(tf.constant(srgb)))["features"].numpy()
    chromaticity = features[..., 3:]
    assert np.all(np.abs(chromaticity[0, 8:]) < 0.05)
    assert np.all(chromaticity[0, :8, :, 0] > 0.5) and np.all(chromaticity[0, :8, :, 1] < 0)


def test_exposure_gain_shifts_only_the_light_carrying_maps():
    raw = {name: tf.zeros((1, 4, 4, 1)) for name in ("fmel_raw", "fblood_raw", "shading_raw", "spec_raw")}
    raw["light_camera_raw"] = tf.zeros((1, 17))
    out = ExposureGain()(raw, tf.fill((1, 1, 1, 1), 0.7))
    for name in ("shading_raw", "spec_raw"):
        np.testing.assert_allclose(out[name], 0.7)
    for name in ("fmel_raw", "fblood_raw", "light_camera_raw"):
        np.testing.assert_allclose(out[name], 0.0)


def test_photometric_model_maps_do_not_move_with_exposure_and_shading_takes_it():
    model = build_bioface(32, "mobile", input_features="photometric", width_multiplier=0.25)
    srgb = _faces()
    before = model(preprocess(tf.constant(srgb)), training=False)
    after = model(preprocess(tf.constant(_scaled_exposure(srgb, 0.5))), training=False)
    for name in ("fmel", "fblood", "b", "cct", "light_weights"):
        np.testing.assert_allclose(after[name], before[name], atol=1e-4)
    np.testing.assert_allclose(after["shading"] / before["shading"], 0.5, rtol=1e-3)
    np.testing.assert_allclose(after["specmask"] / before["specmask"], 0.5, rtol=1e-3)


def test_image_model_is_not_exposure_invariant_which_is_why_the_option_exists():
    model = build_bioface(32, "mobile", width_multiplier=0.25)
    srgb = _faces()
    before = model(preprocess(tf.constant(srgb)), training=False)
    after = model(preprocess(tf.constant(_scaled_exposure(srgb, 0.5))), training=False)
    assert np.abs(after["fmel"] - before["fmel"]).max() > 1e-3


def test_photometric_model_round_trips_in_safe_mode_and_its_encoder_agrees(tmp_path):
    model = build_bioface(32, "mobile", input_features="photometric", width_multiplier=0.25)
    srgb = _faces()
    expected = model(preprocess(tf.constant(srgb)), training=False)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    assert loaded.input_features == "photometric"
    got = loaded(preprocess(tf.constant(srgb)), training=False)
    np.testing.assert_allclose(got["fmel"], expected["fmel"], atol=1e-6)
    encoded = build_encoder(loaded)(tf.constant(srgb))
    for name in ("fmel", "shading", "b"):
        np.testing.assert_allclose(encoded[name], expected[name], rtol=1e-5, atol=1e-6)


def test_image_input_encoder_agrees_with_its_model():
    model = build_bioface(32, "mobile", width_multiplier=0.25)
    srgb = _faces()
    expected = model(preprocess(tf.constant(srgb)), training=False)
    encoded = build_encoder(model)(tf.constant(srgb))
    for name in ("fmel", "shading", "b"):
        np.testing.assert_allclose(encoded[name], expected[name], rtol=1e-5, atol=1e-6)


def test_unknown_input_features_and_mismatched_backbones_are_refused():
    with pytest.raises(BioFaceError, match="input_features"):
        build_bioface(32, "mobile", input_features="hsv")
    with pytest.raises(BioFaceError, match="6 input channels"):
        build_bioface(32, "mobile", input_features="photometric", input_channels=3)
