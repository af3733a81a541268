"""Mirror averaging: a face and its mirror image estimated, the two estimates averaged."""

import keras
import numpy as np
import tensorflow as tf

from bioface_tf.data.pipeline import preprocess
from bioface_tf.model import build_bioface
from bioface_tf.model.mirror import MAPS, Mirror, MirrorAverage
from mobile_export.encoder import build_encoder


def _faces(n=2, size=32, seed=0):
    return np.random.default_rng(seed).uniform(0.05, 0.95, (n, size, size, 3)).astype("float32")


def _parameters(seed, n=2, size=8):
    rng = np.random.default_rng(seed)
    weights = rng.uniform(0.0, 1.0, (n, 14))
    return {
        "fmel": rng.uniform(-1, 1, (n, size, size, 1)),
        "fblood": rng.uniform(-1, 1, (n, size, size, 1)),
        "shading": rng.uniform(0.1, 3, (n, size, size, 1)),
        "specmask": rng.uniform(0.0, 1, (n, size, size, 1)),
        "light_weights": weights / weights.sum(axis=-1, keepdims=True),
        "cct": rng.uniform(1, 22, (n, 1)),
        "b": rng.uniform(-3, 3, (n, 2)),
    }


def test_mirror_reverses_columns_only():
    image = np.arange(2 * 3 * 4 * 2, dtype="float32").reshape(2, 3, 4, 2)
    np.testing.assert_array_equal(Mirror()(image).numpy(), image[:, :, ::-1, :])


def test_averaging_a_face_with_its_own_mirror_estimate_returns_it():
    p = _parameters(0)
    mirrored = {k: (v[:, :, ::-1] if k in MAPS else v) for k, v in p.items()}
    averaged = MirrorAverage()(p, mirrored)
    for k, v in p.items():
        np.testing.assert_allclose(averaged[k].numpy(), v, rtol=1e-6, atol=1e-6)


def test_average_keeps_every_parameter_in_its_range():
    averaged = MirrorAverage()(_parameters(1), _parameters(2))
    np.testing.assert_allclose(averaged["light_weights"].numpy().sum(axis=-1), 1.0, rtol=1e-6)
    assert np.abs(averaged["fmel"].numpy()).max() <= 1 and averaged["shading"].numpy().min() > 0
    assert averaged["cct"].numpy().min() >= 1 and averaged["cct"].numpy().max() <= 22


def test_inference_is_mirror_equivariant_and_training_sees_one_pass():
    model = build_bioface(32, "mobile", input_features="photometric", width_multiplier=0.25)
    x = preprocess(tf.constant(_faces()))
    mirrored_x = tf.reverse(x, axis=[2])
    out, out_of_mirror = model(x, training=False), model(mirrored_x, training=False)
    for name in MAPS + ("srgb",):
        np.testing.assert_allclose(out_of_mirror[name].numpy()[:, :, ::-1], out[name].numpy(), rtol=1e-4, atol=1e-5)
    for name in ("b", "cct", "light_weights"):
        np.testing.assert_allclose(out_of_mirror[name].numpy(), out[name].numpy(), rtol=1e-5, atol=1e-6)
    model.mirror_average = False
    single, single_of_mirror = model(x, training=False), model(mirrored_x, training=False)
    assert np.abs(single_of_mirror["fmel"].numpy()[:, :, ::-1] - single["fmel"].numpy()).max() > 1e-4
    expected = 0.5 * (single["fmel"].numpy() + single_of_mirror["fmel"].numpy()[:, :, ::-1])
    np.testing.assert_allclose(out["fmel"].numpy(), expected, rtol=1e-5, atol=1e-6)


def test_training_step_runs_the_network_once():
    model = build_bioface(32, "mobile", width_multiplier=0.25)
    calls = []
    original = model.backbone.call
    model.backbone.call = lambda *a, **k: calls.append(k.get("training")) or original(*a, **k)
    x = preprocess(tf.constant(_faces()))
    model(x, training=True)
    assert len(calls) == 1
    model(x, training=False)
    assert len(calls) == 3


def test_setting_survives_a_safe_mode_round_trip_and_the_encoder_follows_it(tmp_path):
    model = build_bioface(32, "mobile", input_features="photometric", width_multiplier=0.25)
    model.mirror_average = False
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    assert loaded.mirror_average is False
    srgb = tf.constant(_faces())
    single = loaded(preprocess(srgb), training=False)
    np.testing.assert_allclose(build_encoder(loaded)(srgb)["fmel"], single["fmel"], rtol=1e-5, atol=1e-6)
    loaded.mirror_average = True
    averaged = loaded(preprocess(srgb), training=False)
    encoded = build_encoder(loaded)(srgb)
    for name in ("fmel", "shading", "b"):
        np.testing.assert_allclose(encoded[name], averaged[name], rtol=1e-5, atol=1e-6)
    assert np.abs(averaged["fmel"].numpy() - single["fmel"].numpy()).max() > 1e-4
