"""Published separation baselines and the normal-space lobe refinement, on dichromatic scenes."""

import numpy as np
import pytest

from bioface_tf import specular, specular_lobes, specular_separation
from bioface_tf.dichromatic_scene import render_face


def _scores(estimates, scenes):
    mae, r = [], []
    for estimate, scene in zip(estimates, scenes):
        e, t = estimate[scene.mask], scene.specular[scene.mask]
        mae.append(np.abs(e - t).mean())
        r.append(np.corrcoef(e, t)[0, 1])
    return float(np.mean(mae)), float(np.mean(r))


@pytest.fixture(scope="module")
def scenes():
    return [render_face(48, seed=seed) for seed in range(6)]


@pytest.fixture(scope="module")
def balanced(scenes):
    return specular.linearise(np.stack([s.image_srgb for s in scenes])), np.stack([s.mask for s in scenes])


def test_yang2010_removes_the_diffuse_floor_and_follows_the_lobe(scenes, balanced):
    linear, masks = balanced
    dark_mae, _ = _scores(specular.dark_channel(linear) * masks, scenes)
    mae, r = _scores(specular_separation.yang2010(linear, masks), scenes)
    assert mae < 0.25 * dark_mae
    assert r > 0.8


def test_kim2013_stays_below_the_dark_channel_and_lowers_its_error(scenes, balanced):
    linear, masks = balanced
    dark = specular.dark_channel(linear) * masks
    estimate = specular_separation.kim2013(linear, masks)
    assert np.all(estimate >= 0) and np.all(estimate <= dark + 1e-6)
    assert _scores(estimate, scenes)[0] < 0.9 * _scores(dark, scenes)[0]


def test_lobe_fit_recovers_a_map_that_is_a_lobe_of_the_normal(scenes):
    scene = scenes[0]
    normals, mask = scene.normals[None], scene.mask[None]
    half = np.array([0.2, -0.1, 1.0]) / np.linalg.norm([0.2, -0.1, 1.0])
    truth = 0.3 * np.clip(normals @ half, 0, None) ** 20 * mask
    noise = np.random.default_rng(0).normal(0, 0.01, truth.shape) * mask
    fitted = specular_lobes.fit_lobes(truth + noise, normals, mask)
    assert np.abs(fitted - truth)[mask].mean() < 0.004
    assert np.corrcoef(fitted[mask], truth[mask])[0, 1] > 0.97


def test_lobes_refinement_beats_the_smooth_model_on_scenes(scenes):
    images = np.stack([s.image_srgb for s in scenes])
    masks = np.stack([s.mask for s in scenes])
    normals = np.stack([s.normals for s in scenes])
    smooth = specular.separate_batch(images, masks).specular
    lobes = specular.separate_batch(
        images, masks, params=specular.RefinementParams(geometry="lobes"), normals=normals
    ).specular
    assert _scores(lobes, scenes)[1] > _scores(smooth, scenes)[1]
    assert _scores(lobes, scenes)[0] < 0.02


def test_lobes_without_normals_are_refused(scenes):
    with pytest.raises(ValueError, match="normals"):
        specular.separate_batch(scenes[0].image_srgb[None], params=specular.RefinementParams(geometry="lobes"))
