"""The light-lobe refinement (``RefinementParams(geometry="light")``, docs/SPECULAR_METHOD.md §10d)."""

import numpy as np
import pytest

from bioface_tf import specular

SIZE = 48
SKIN = np.array([0.62, 0.40, 0.30])  # a linear, white-balanced skin-like colour


def _sphere(size=SIZE):
    """Camera-frame normals of a sphere filling most of the image (x right, y up, z to the camera), and its mask."""
    yy, xx = np.mgrid[0:size, 0:size]
    x = (xx + 0.5) / size * 2 - 1
    y = -((yy + 0.5) / size * 2 - 1)
    r2 = (x * x + y * y) / 0.9**2
    mask = r2 < 1
    z = np.sqrt(np.clip(1 - r2, 0, None))
    normals = np.stack([x / 0.9, y / 0.9, z], -1) * mask[..., None]
    return normals.astype(np.float32), mask


def _face(seed, light=(0.4, 0.3, 1.0), highlight=0.25, exponent=25, blotches=6):
    """A dichromatic sphere: Lambertian shading × a blotchy skin colour + a grey Blinn–Phong highlight.

    Returns ``(sRGB image, mask, normals, true specular)``.
    """
    rng = np.random.default_rng(seed)
    normals, mask = _sphere()
    light = np.asarray(light) / np.linalg.norm(light)
    half = (light + [0, 0, 1]) / np.linalg.norm(light + [0, 0, 1])
    shading = 0.15 + 0.75 * np.clip(normals @ light, 0, None)
    # pigment: smooth blotches that change the colour's saturation (not grey)
    blotch = np.zeros((SIZE, SIZE))
    for _ in range(blotches):
        cx, cy, radius = rng.uniform(0, SIZE, 2).tolist() + [rng.uniform(3, 8)]
        yy, xx = np.mgrid[0:SIZE, 0:SIZE]
        blotch += rng.uniform(-0.5, 0.5) * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * radius**2))
    albedo = SKIN * np.exp(blotch[..., None] * np.array([-0.2, -0.6, -0.9]))
    truth = highlight * np.clip(normals @ half, 0, None) ** exponent * mask
    linear = shading[..., None] * albedo * mask[..., None] + truth[..., None]
    linear = linear + rng.normal(0, 0.002, linear.shape)
    return specular.encode(np.clip(linear, 0, 1)), mask, normals, truth.astype(np.float32)


def _batch(seeds, **kwargs):
    return [np.stack(x) for x in zip(*(_face(seed, **kwargs) for seed in seeds))]


def _scores(estimates, truths, masks):
    mae = np.mean([np.abs(e[m] - t[m]).mean() for e, t, m in zip(estimates, truths, masks)])
    r = np.mean([np.corrcoef(e[m], t[m])[0, 1] for e, t, m in zip(estimates, truths, masks)])
    return float(mae), float(r)


LIGHT = specular.RefinementParams(geometry="light")


def test_light_direction_is_found_from_the_shading():
    normals, mask = _sphere()
    for light in ((0.4, 0.3, 1.0), (-0.6, 0.1, 0.8), (0.0, -0.5, 1.0)):
        light = np.asarray(light) / np.linalg.norm(light)
        grey = (0.1 + 0.8 * np.clip(normals @ light, 0, None)) * mask
        found = specular.light_directions(grey[None], normals[None], mask[None])[0]
        angle = np.degrees(np.arccos(np.clip(found @ light, -1, 1)))
        assert angle < 12, (light, found, angle)


def test_planted_highlight_is_recovered_better_than_by_the_dark_channel_and_the_smooth_model():
    images, masks, normals, truths = _batch(range(4))
    result = specular.separate_batch(images, masks, params=LIGHT, normals=normals)
    smooth = specular.separate_batch(images, masks).specular
    light_mae, light_r = _scores(result.specular, truths, masks)
    dark_mae, dark_r = _scores(result.specular_dark * masks, truths, masks)
    smooth_mae, smooth_r = _scores(smooth, truths, masks)
    assert light_mae < 0.2 * dark_mae
    assert light_r > dark_r + 0.05
    assert light_r > smooth_r
    assert light_r > 0.9


def test_map_is_valid_non_negative_below_the_dark_channel_and_zero_outside_the_mask():
    images, masks, normals, _ = _batch(range(3))
    result = specular.separate_batch(images, masks, params=LIGHT, normals=normals)
    assert result.specular.dtype == np.float32
    assert np.all(result.specular >= 0)
    assert np.all(result.specular <= result.specular_dark + 1e-7)
    assert np.all(result.specular[~masks] == 0)
    assert result.specular[masks].max() > 0.05  # and it does find the highlight


def test_no_highlight_gives_no_specular():
    images, masks, normals, _ = _batch(range(3), highlight=0.0, blotches=0)
    result = specular.separate_batch(images, masks, params=LIGHT, normals=normals)
    for estimate, dark, mask in zip(result.specular, result.specular_dark, masks):
        assert estimate[mask].mean() < 0.01 * dark[mask].mean()  # the diffuse floor is not read as specular


def test_pigment_without_highlight_is_no_more_specular_than_in_the_smooth_model():
    images, masks, normals, _ = _batch(range(3), highlight=0.0)
    light = specular.separate_batch(images, masks, params=LIGHT, normals=normals)
    smooth = specular.separate_batch(images, masks).specular
    for estimate, reference, dark, mask in zip(light.specular, smooth, light.specular_dark, masks):
        # the geometric half is scaled to the smooth map's total and capped by the dark channel
        assert estimate[mask].mean() <= reference[mask].mean() + 1e-6
        assert estimate[mask].mean() < 0.1 * dark[mask].mean()


def test_faces_of_a_batch_do_not_affect_each_other():
    images, masks, normals, _ = _batch(range(3))
    together = specular.separate_batch(images, masks, params=LIGHT, normals=normals).specular
    alone = specular.separate_batch(images[1:2], masks[1:2], params=LIGHT, normals=normals[1:2]).specular
    np.testing.assert_allclose(together[1], alone[0], atol=1e-6)


def test_light_geometry_needs_matching_normals():
    images, masks, normals, _ = _batch([0])
    with pytest.raises(ValueError, match="normals"):
        specular.separate_batch(images, masks, params=LIGHT)
    with pytest.raises(ValueError, match="normals"):
        specular.separate_batch(images, masks, params=LIGHT, normals=normals[:, :-1])
