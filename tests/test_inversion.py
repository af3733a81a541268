"""Per-pixel skin-table inversion (bioface_tf.inversion) against the physics decoder."""

import numpy as np
import pytest

from bioface_tf import inversion, spectra
from bioface_tf.data.synth import random_illuminant
from bioface_tf.physics import PhysicsDecoder
from bioface_tf.specular import encode

SIZE = 48
CAMERAS = (2, 20, 24)
WELL_POSED = {"fmel": (-0.6, 0.3), "fblood": (-0.4, 0.6)}
"""Where the table is well conditioned: enough melanin to move the
chromaticity, haemoglobin above the fold, no ReLU-clipped channel."""


@pytest.fixture(scope="module")
def decoder():
    return PhysicsDecoder()


def smooth_map(rng, low, high, size=SIZE):
    """A smooth random (size, size) field spanning [low, high]."""
    y, x = np.mgrid[0:size, 0:size] / size
    field = sum(
        np.sin(2 * np.pi * rng.uniform(0.5, 2.0) * (x * np.cos(a) + y * np.sin(a)) + rng.uniform(0, 6))
        for a in rng.uniform(0, np.pi, 4)
    )
    return low + (high - low) * (field - field.min()) / (field.max() - field.min())


def scene(seed, fmel_range=(-1.0, 1.0), fblood_range=(-1.0, 1.0)):
    """Random smooth maps and shading, database camera ``seed`` and a random light; batch of one."""
    rng = np.random.default_rng(seed)
    weights, cct = random_illuminant(rng)
    maps = {
        "fmel": smooth_map(rng, *fmel_range),
        "fblood": smooth_map(rng, *fblood_range),
        "shading": smooth_map(rng, 0.3, 1.2),
    }
    batch = {name: value[None, ..., None] for name, value in maps.items()}
    batch["specmask"] = np.zeros_like(batch["shading"])
    batch["b"] = spectra.camera_pca().scores[seed % 28][None]
    batch["light_weights"] = weights[None]
    batch["cct"] = np.array([[cct]])
    return {name: value.astype(np.float32) for name, value in batch.items()}


def invert(decoder, batch, mask=None, blur_sigma=0.0):
    srgb = decoder(batch)["srgb"].numpy()
    mask = np.ones(srgb.shape[:3] + (1,), np.float32) if mask is None else mask
    return inversion.invert_faces(srgb, mask, batch["b"], batch["light_weights"], batch["cct"], blur_sigma)


def pearson(a, b):
    return np.corrcoef(a.ravel(), b.ravel())[0, 1]


def test_table_colours_are_the_decoders_rendering(decoder):
    rng = np.random.default_rng(7)
    nodes = np.arange(0, 256, 15)
    values = (2.0 * nodes / 255.0 - 1.0).astype(np.float32)
    fblood, fmel = np.meshgrid(values, values, indexing="ij")
    weights, cct = random_illuminant(rng)
    b = rng.uniform(-3.0, 3.0, 2)
    ones = np.ones((1,) + fmel.shape + (1,), np.float32)
    batch = {
        "fmel": fmel[None, ..., None],
        "fblood": fblood[None, ..., None],
        "shading": ones,
        "specmask": 0.0 * ones,
        "b": b[None].astype(np.float32),
        "light_weights": weights[None].astype(np.float32),
        "cct": np.array([[cct]], np.float32),
    }
    rendered = decoder(batch)["linear_srgb"].numpy()[0]
    colours = inversion.table_colours(b, weights, cct)[nodes][:, nodes]
    np.testing.assert_allclose(colours, rendered, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("seed", CAMERAS)
def test_recovers_maps_where_the_table_is_well_conditioned(decoder, seed):
    batch = scene(seed, WELL_POSED["fmel"], WELL_POSED["fblood"])
    out = invert(decoder, batch)
    for name in ("fmel", "fblood"):
        error = np.abs(out[name] - batch[name])
        assert error.mean() < 0.005, name
        assert np.quantile(error, 0.99) < 0.01, name
        assert pearson(out[name], batch[name]) > 0.999, name
    ratio = out["shading"] / batch["shading"]
    assert np.median(np.abs(ratio - 1.0)) < 1e-3
    assert pearson(out["shading"], batch["shading"]) > 0.999


@pytest.mark.parametrize("seed", CAMERAS)
def test_whole_table_range_still_correlates(decoder, seed):
    """Over all of [-1, 1]² the degenerate corners cost accuracy, not the trend."""
    batch = scene(seed)
    out = invert(decoder, batch)
    for name in ("fmel", "fblood"):
        assert np.abs(out[name] - batch[name]).mean() < 0.12, name
        assert pearson(out[name], batch[name]) > 0.85, name


def test_shading_is_recovered_up_to_the_photos_scale(decoder):
    batch = scene(3, WELL_POSED["fmel"], WELL_POSED["fblood"])
    dim = dict(batch, shading=0.5 * batch["shading"])
    bright, dark = invert(decoder, batch), invert(decoder, dim)
    for name in ("fmel", "fblood"):
        assert np.quantile(np.abs(dark[name] - bright[name]), 0.99) < 2e-3, name
    assert np.quantile(np.abs(dark["shading"] / bright["shading"] - 0.5), 0.99) < 5e-3


def test_blur_stays_inside_the_mask_and_reduces_noise(decoder):
    batch = scene(4, WELL_POSED["fmel"], WELL_POSED["fblood"])
    rendered = decoder(batch)["linear_srgb"].numpy()
    rng = np.random.default_rng(0)
    mask = np.zeros((1, SIZE, SIZE, 1), np.float32)
    mask[:, 8:40, 8:40] = 1.0
    noisy = np.where(mask > 0, rendered * (1.0 + 0.01 * rng.normal(size=rendered.shape)), 1.0)
    srgb = encode(np.clip(noisy, 0.0, 1.0))
    args = (batch["b"], batch["light_weights"], batch["cct"])
    sharp = inversion.invert_faces(srgb, mask, *args, blur_sigma=0.0)
    blurred = inversion.invert_faces(srgb, mask, *args, blur_sigma=0.8)
    inside = mask[..., 0] > 0
    for name in ("fmel", "fblood"):
        truth = batch[name][..., 0][inside]
        error_sharp = np.abs(sharp[name][..., 0][inside] - truth).mean()
        error_blurred = np.abs(blurred[name][..., 0][inside] - truth).mean()
        assert error_blurred < 0.8 * error_sharp, name
        assert np.all(blurred[name][..., 0][~inside] == 0.0)


def test_black_pixels_empty_masks_and_bad_values_give_finite_maps():
    srgb = np.random.default_rng(1).uniform(0.2, 0.9, (3, 16, 16, 3)).astype(np.float32)
    srgb[0, :8] = 0.0
    srgb[1, 2, 3] = np.nan
    mask = np.ones((3, 16, 16, 1), np.float32)
    mask[2] = 0.0
    camera = (np.zeros((3, 2)), np.tile(np.eye(14)[1], (3, 1)), np.full((3, 1), 3.0))
    for blur_sigma in (0.0, 0.8):
        out = inversion.invert_faces(srgb, mask, *camera, blur_sigma=blur_sigma)
        for name, value in out.items():
            assert value.shape == (3, 16, 16, 1), name
            assert np.all(np.isfinite(value)), name
            assert np.all(value[2] == 0.0), name
        assert np.all(np.abs(out["fmel"]) <= 1.0) and np.all(np.abs(out["fblood"]) <= 1.0)
    assert np.all(out["shading"][0, :5] == 0.0)
    assert np.all(inversion.invert_faces(srgb, mask, *camera, blur_sigma=0.0)["shading"][0, :8] == 0.0)


def test_batch_matches_single_faces(decoder):
    batches = [scene(seed, WELL_POSED["fmel"], WELL_POSED["fblood"]) for seed in (5, 6)]
    stacked = {name: np.concatenate([b[name] for b in batches]) for name in batches[0]}
    together = invert(decoder, stacked, blur_sigma=0.8)
    srgb = decoder(batches[1])["srgb"].numpy()[0]
    alone = inversion.invert_face(
        srgb, np.ones((SIZE, SIZE)), batches[1]["b"][0], batches[1]["light_weights"][0], batches[1]["cct"][0, 0]
    )
    for name in ("fmel", "fblood", "shading"):
        np.testing.assert_allclose(together[name][1, ..., 0], alone[name], atol=1e-5)
