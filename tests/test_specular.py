"""Specular / diffuse separation (bioface_tf.specular) on dichromatic scenes."""

import subprocess
import sys

import cv2
import numpy as np
import pytest

from bioface_tf import specular
from bioface_tf.dichromatic_scene import render_face

# CIE chromaticities (x, y) of standard illuminants, converted to linear sRGB
# here, independently of the Planckian-locus approximation used by the code.
ILLUMINANT_A_XY = (0.44757, 0.40745)
FLUORESCENT_F2_XY = (0.37208, 0.37529)
XYZ_TO_SRGB = np.array([[3.2406, -1.5372, -0.4986], [-0.9689, 1.8758, 0.0415], [0.0557, -0.2040, 1.0570]])


def _xy_to_rgb(x, y):
    rgb = XYZ_TO_SRGB @ np.array([x / y, 1.0, (1.0 - x - y) / y])
    return rgb / rgb.mean()


def _angle_deg(a, b):
    cosine = np.dot(a, b) / np.linalg.norm(a) / np.linalg.norm(b)
    return float(np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0))))


def _scores(estimates, scenes):
    """Mean absolute error and Pearson r inside the masks."""
    mae, r = [], []
    for estimate, scene in zip(estimates, scenes):
        m = scene.mask
        mae.append(np.abs(estimate[m] - scene.specular[m]).mean())
        r.append(np.corrcoef(estimate[m], scene.specular[m])[0, 1])
    return float(np.mean(mae)), float(np.mean(r))


@pytest.fixture(scope="module")
def faces():
    return [render_face(48, seed=seed) for seed in range(6)]


@pytest.fixture(scope="module")
def separated(faces):
    images = np.stack([face.image_srgb for face in faces])
    masks = np.stack([face.mask for face in faces])
    return specular.separate_batch(images, masks)


def test_importing_specular_does_not_import_tensorflow():
    code = "import sys, bioface_tf.specular; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_srgb_curve_matches_the_standard_and_inverts():
    # IEC 61966-2-1: 0.5 decodes to 0.21404; the linear segment ends at 0.04045.
    assert specular.linearise(np.float32(0.5)) == pytest.approx(0.21404, abs=1e-5)
    assert specular.linearise(np.float32(0.04)) == pytest.approx(0.04 / 12.92, rel=1e-5)
    assert specular.linearise(np.float32(0.5), "gamma2.2") == pytest.approx(0.5**2.2, rel=1e-5)
    x = np.linspace(0, 1, 101, dtype=np.float32)
    for curve in specular.LINEARISATION_CURVES:
        np.testing.assert_allclose(specular.encode(specular.linearise(x, curve), curve), x, atol=2e-5)


def test_refined_estimate_beats_the_dark_channel(faces, separated):
    dark_mae, dark_r = _scores(separated.specular_dark, faces)
    mae, r = _scores(separated.specular, faces)
    assert mae < 0.25 * dark_mae
    assert r > dark_r + 0.05
    assert r > 0.9


def test_diffuse_floor_is_removed_without_highlights():
    face = render_face(48, seed=3, specular_strength=0.0)
    result = specular.separate(face.image_srgb, face.mask)
    dark_floor = result.specular_dark[face.mask].mean()
    assert dark_floor > 0.03  # skin's dark channel is far from zero
    assert result.specular[face.mask].mean() < 0.1 * dark_floor


def test_components_are_valid_and_reproduce_the_image(faces, separated):
    linear = specular.linearise(np.stack([face.image_srgb for face in faces]))
    masks = np.stack([face.mask for face in faces])
    assert np.all(separated.specular >= 0)
    assert np.all(separated.specular <= separated.specular_dark + 1e-6)
    assert np.all(separated.specular[~masks] == 0)
    assert np.all(separated.diffuse >= 0)
    np.testing.assert_allclose(separated.diffuse + separated.specular_image(), linear, atol=1e-5)


def test_batch_and_single_solves_agree(faces, separated):
    single = specular.separate(faces[2].image_srgb, faces[2].mask)
    np.testing.assert_allclose(single.specular, separated.specular[2], atol=1e-5)
    np.testing.assert_allclose(single.diffuse, separated.diffuse[2], atol=1e-5)


def _dense_smooth_reference(image_srgb, mask, params=specular.RefinementParams()):
    """The smooth model written out for one face in float64 over its mask's pixels (no batching, no packing)."""
    linear = specular.linearise(image_srgb).astype(np.float64)
    grey = linear.mean(axis=-1)
    dark = np.maximum(linear.min(axis=-1), 0.0)
    chromatic = specular._edge_preserving_blur(
        (linear - grey[..., None]).astype(np.float32), mask.astype(np.float32), params.chroma_blur, params.chroma_range
    )
    a = np.sqrt(np.sum(chromatic.astype(np.float64) ** 2, axis=-1))[mask]
    rows, cols = np.nonzero(mask)
    x = (2.0 * cols - cols.min() - cols.max()) / max(cols.max() - cols.min(), 1)
    y = (2.0 * rows - rows.min() - rows.max()) / max(rows.max() - rows.min(), 1)
    design = np.stack([a * x**i * y**j for i in range(params.order + 1) for j in range(params.order + 1 - i)], axis=1)
    g = grey[mask]
    floor = 1e-3 * g.mean()
    w = np.ones_like(g)
    for _ in range(params.irls_iterations):
        lhs = design.T @ (w[:, None] * design) + 1e-9 * np.eye(design.shape[1])
        residual = g - design @ np.linalg.solve(lhs, design.T @ (w * g))
        w = np.where(residual > 0, params.quantile, 1 - params.quantile) / np.maximum(np.abs(residual), floor)
    full = np.zeros(mask.shape, np.float32)
    full[mask] = residual
    if params.median > 1:
        full = cv2.medianBlur(full, params.median)
    return np.clip(full, 0.0, dark) * mask


@pytest.mark.parametrize("median", [3, 0])
def test_batched_smooth_solver_matches_a_dense_float64_fit(faces, median):
    # The solver gathers each face's mask pixels, pads the batch and solves
    # in float32; the plain float64 fit of one face at a time must agree to
    # float tolerance (estimates reach ~0.35; a misplaced pixel costs ~1e-2).
    params = specular.RefinementParams(median=median)
    images = np.stack([face.image_srgb for face in faces])
    masks = np.stack([face.mask for face in faces])
    fast = specular.separate_batch(images, masks, params=params).specular
    reference = np.stack([_dense_smooth_reference(f.image_srgb, f.mask, params) for f in faces])
    assert fast.max() > 0.1
    np.testing.assert_allclose(fast, reference, atol=5e-5)


def test_an_empty_mask_in_the_batch_changes_nothing_else(faces, separated):
    images = np.stack([face.image_srgb for face in faces])
    masks = np.stack([face.mask for face in faces])
    masks_with_empty = masks.copy()
    masks_with_empty[1] = False
    result = specular.separate_batch(images, masks_with_empty)
    assert np.all(np.isfinite(result.specular))
    assert np.all(result.specular[1] == 0)
    keep = [0, 2, 3, 4, 5]
    np.testing.assert_allclose(result.specular[keep], separated.specular[keep], atol=1e-5)


def test_specular_scales_with_image_intensity(faces):
    linear = specular.linearise(faces[0].image_srgb)[None]
    mask = faces[0].mask[None]
    white = np.ones((1, 3), np.float32)
    full, _ = specular.specular_maps(linear, mask, white)
    half, _ = specular.specular_maps(0.5 * linear, mask, white)
    np.testing.assert_allclose(half, 0.5 * full, atol=1e-5)


def test_given_illuminant_normalises_a_coloured_light():
    colour = _xy_to_rgb(*FLUORESCENT_F2_XY)
    tinted = [render_face(48, seed=seed, illuminant=colour) for seed in range(4)]
    results = [specular.separate(face.image_srgb, face.mask, illuminant=3.0 * colour) for face in tinted]
    assert all(np.allclose(r.illuminant, colour / colour.mean(), atol=1e-5) for r in results)
    normalised_mae, normalised_r = _scores([r.specular for r in results], tinted)
    assumed_white = [specular.separate(face.image_srgb, face.mask) for face in tinted]
    assumed_white_mae, _ = _scores([r.specular for r in assumed_white], tinted)
    # The same scenes under white light: normalising should make up the difference.
    untinted = [render_face(48, seed=seed) for seed in range(4)]
    untinted_mae, _ = _scores([specular.separate(f.image_srgb, f.mask).specular for f in untinted], untinted)
    dark_mae, _ = _scores([r.specular_dark for r in results], tinted)
    assert normalised_mae < 0.95 * assumed_white_mae
    assert normalised_mae < 1.3 * untinted_mae
    assert normalised_mae < 0.2 * dark_mae
    assert normalised_r > 0.9


@pytest.mark.parametrize("xy", [ILLUMINANT_A_XY, FLUORESCENT_F2_XY], ids=["A", "F2"])
def test_estimated_illuminant_is_close_to_the_given_one(xy):
    colour = _xy_to_rgb(*xy)
    tinted = [render_face(48, seed=seed, illuminant=colour) for seed in range(3)]
    results = [specular.separate(face.image_srgb, face.mask, illuminant="estimate") for face in tinted]
    assert all(bool(r.illuminant_estimated) for r in results)
    errors = [_angle_deg(r.illuminant, colour) for r in results]
    assert max(errors) < 8.0
    assert max(errors) < 0.35 * _angle_deg(np.ones(3), colour)
    mae, _ = _scores([r.specular for r in results], tinted)
    dark_mae, _ = _scores([r.specular_dark for r in results], tinted)
    assert mae < 0.5 * dark_mae


def test_estimation_without_highlights_falls_back_to_white():
    face = render_face(48, seed=1, specular_strength=0.0, noise=0.0)
    result = specular.separate(face.image_srgb, face.mask, illuminant="estimate")
    assert not result.illuminant_estimated
    np.testing.assert_array_equal(result.illuminant, np.ones(3, np.float32))


def test_planckian_locus_passes_near_standard_white_points():
    # Illuminant A is a 2856 K black body; D65 lies close to 6504 K.
    a_rgb = specular.planckian_locus_rgb(np.array([2856.0]))[0]
    d65_rgb = specular.planckian_locus_rgb(np.array([6504.0]))[0]
    assert _angle_deg(a_rgb, _xy_to_rgb(*ILLUMINANT_A_XY)) < 0.5
    assert _angle_deg(d65_rgb, np.ones(3)) < 2.0


@pytest.mark.parametrize(
    "call",
    [
        lambda: specular.separate(np.zeros((8, 8))),
        lambda: specular.separate(np.zeros((8, 8, 3)), illuminant=(1.0, 0.0, 1.0)),
        lambda: specular.separate(np.zeros((8, 8, 3)), illuminant="daylight"),
        lambda: specular.separate_batch(np.zeros((8, 8, 3))),
        lambda: specular.linearise(np.zeros(3), curve="rec709"),
    ],
)
def test_bad_arguments_are_refused(call):
    with pytest.raises(ValueError):
        call()


def test_piecewise_chromaticity_model_is_still_available(faces):
    images = np.stack([face.image_srgb for face in faces])
    masks = np.stack([face.mask for face in faces])
    params = specular.RefinementParams(chromaticity="piecewise")
    result = specular.separate_batch(images, masks, params=params)
    dark_mae, _ = _scores(result.specular_dark, faces)
    mae, r = _scores(result.specular, faces)
    assert mae < 0.25 * dark_mae
    assert r > 0.95
    with pytest.raises(ValueError, match="chromaticity"):
        specular.separate_batch(images, masks, params=specular.RefinementParams(chromaticity="flat"))


def _skin_face(size=48, seed=0, highlight=0.06):
    """A face-like disc of skin (table colours under a camera and daylight off the gamut's grid),
    sphere shading, smooth pigment variation and one grey highlight; returns (sRGB, mask, truth)."""
    from bioface_tf.inversion import rendered_colour, _unclipped_colours

    rng = np.random.default_rng(seed)
    yy, xx = (np.mgrid[:size, :size] + 0.5) / size * 2.0 - 1.0
    mask = xx**2 / 0.8**2 + yy**2 < 1.0
    z = np.sqrt(np.clip(1.0 - xx**2 - yy**2, 0.0, 1.0))
    light = np.array([0.3, -0.3, 0.9]) / np.linalg.norm([0.3, -0.3, 0.9])
    shading = 0.25 + 0.75 * np.clip(xx * light[0] + yy * light[1] + z * light[2], 0.0, 1.0)
    # melanin and haemoglobin maps (grid positions), smooth over the face
    # (gentle gradients: the skin model smooths the chromaticity over 8 px, so
    # steep pigment gradients, e.g. 80 grid cells across the face, leak into it)
    blood = 120 + 12 * xx + 6 * np.sin(3 * yy) + rng.normal(0, 2, (size, size))
    melanin = 90 + 10 * yy + rng.normal(0, 2, (size, size))
    colours = _unclipped_colours(np.array([0.7, -0.4]), np.eye(14)[1], 2.3)
    albedo = rendered_colour(colours, np.stack([blood, melanin], -1).reshape(-1, 2).clip(0, 255)).reshape(size, size, 3)
    albedo = 0.6 * albedo / albedo.mean()
    cx, cy = 0.25 * light[0] / light[2], 0.25 * light[1] / light[2]
    truth = highlight * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * 0.15**2)) * mask
    linear = shading[..., None] * albedo + truth[..., None]
    linear = linear + rng.normal(0, 0.002, linear.shape)
    return specular.encode(np.clip(linear, 0, 1)), mask, truth.astype(np.float32)


def test_skin_model_recovers_a_grey_highlight_on_skin_better_than_the_dark_channel():
    data = [_skin_face(seed=seed) for seed in range(4)]
    images, masks, truths = (np.stack(x) for x in zip(*data))
    result = specular.separate_batch(images, masks, params=specular.RefinementParams(chromaticity="skin"))
    for name, estimate in (("skin", result.specular), ("dark", result.specular_dark)):
        mae = np.mean([np.abs(e[m] - t[m]).mean() for e, t, m in zip(estimate, truths, masks)])
        r = np.mean([np.corrcoef(e[m], t[m])[0, 1] for e, t, m in zip(estimate, truths, masks)])
        if name == "skin":
            skin_mae, skin_r = mae, r
        else:
            dark_mae, dark_r = mae, r
    assert skin_mae < 0.1 * dark_mae
    assert skin_r > dark_r + 0.2  # measured 0.72 against 0.42
    # a valid map: in [0, dark] and zero outside the mask
    assert np.all(result.specular >= 0) and np.all(result.specular <= result.specular_dark + 1e-7)
    assert np.all(result.specular[~masks] == 0)


def test_skin_gamut_brackets_a_skin_colour_plus_grey():
    from bioface_tf.inversion import table_colours

    kappa_min, kappa_max = specular.skin_gamut_bounds()
    assert kappa_min.shape == (360,) and np.all(kappa_min <= kappa_max) and np.all(kappa_min > 0)
    # a skin colour of a camera on the gamut's grid, and the same colour plus a grey k:
    colour = table_colours(np.zeros(2), np.eye(14)[1], 3.5)[100, 80]
    for k in (0.0, 0.05, 0.2):
        pixel = colour + k
        g, u = pixel.mean(), pixel - pixel.mean()
        a = np.linalg.norm(u)
        hue = np.arctan2(u @ np.array([1, 1, -2]) / np.sqrt(6), u @ np.array([1, -1, 0]) / np.sqrt(2))
        b = int((hue + np.pi) * 360 / (2 * np.pi)) % 360
        low, high = g - kappa_max[b] * a, g - kappa_min[b] * a
        assert low - 1e-3 <= k <= high + 1e-3
    # a grey pixel far too pale for skin: the bound forces a specular
    pale = colour * 0.2 + 0.5
    g, a = pale.mean(), np.linalg.norm(pale - pale.mean())
    assert g - kappa_max.max() * a > 0.2


def test_skin_model_leaves_other_faces_of_the_batch_alone(faces):
    images = np.stack([face.image_srgb for face in faces])
    masks = np.stack([face.mask for face in faces])
    params = specular.RefinementParams(chromaticity="skin")
    together = specular.separate_batch(images, masks, params=params).specular
    alone = specular.separate_batch(images[2:3], masks[2:3], params=params).specular
    # float32 sums vectorise differently for a batch of one: ~1e-6 apart; a leak from another face is far larger
    np.testing.assert_allclose(together[2], alone[0], atol=1e-5)


def test_skin_model_does_not_import_tensorflow():
    code = (
        "import sys, numpy as np; from bioface_tf import specular;"
        "specular.separate(np.full((8, 8, 3), 0.5), params=specular.RefinementParams(chromaticity='skin'));"
        "assert 'tensorflow' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
