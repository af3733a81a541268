"""Streamed rendered faces: the batch contract, determinism, masks, ground truth, variety."""

import types

import numpy as np
import pytest
import tensorflow as tf

from bioface_tf import spectra
from bioface_tf.data import stream
from bioface_tf.data.celeba import CelebAFaces
from bioface_tf.data.pipeline import make_dataset
from bioface_tf.data.synth import write_synthetic
from bioface_tf.physics import PhysicsDecoder

SIZE, B = 32, 8


@pytest.fixture(scope="module")
def clean():
    """64 faces without camera effects (two blocks)."""
    return stream.render_batch(5, 2 * stream.BLOCK, SIZE, sensor=False)


def test_batches_have_the_keys_shapes_and_dtypes_of_make_dataset(tmp_path):
    path = write_synthetic(tmp_path / "f.h5", n=2, size=SIZE, progress=False)
    with CelebAFaces([path], image_size=SIZE) as faces:
        reference = make_dataset(faces, batch_size=2, ground_truth=True, validate=False).element_spec
    streamed = stream.make_stream_dataset(B, SIZE, seed=1).element_spec
    assert set(streamed) == set(reference) | {"gt_valid"}
    for key, spec in reference.items():
        assert streamed[key].dtype == spec.dtype == tf.float32, key
        assert streamed[key].shape[1:] == spec.shape[1:] and streamed[key].shape[0] == B, key
    batch = next(iter(stream.make_stream_dataset(B, SIZE, seed=1)))
    np.testing.assert_array_equal(batch["gt_valid"].numpy(), 1.0)
    np.testing.assert_array_equal(batch["shading_valid"].numpy(), 1.0)


def test_a_seed_gives_the_same_stream_and_other_seeds_differ():
    first = [next(iter(stream.make_stream_dataset(B, SIZE, seed=1).skip(k))) for k in (0, 1)]
    again = iter(stream.make_stream_dataset(B, SIZE, seed=1))
    for expected in first:
        batch = next(again)
        for key in ("image", "gt_fmel", "mask", "gt_b"):
            np.testing.assert_array_equal(batch[key].numpy(), expected[key].numpy())
    assert not np.array_equal(first[0]["gt_fmel"].numpy(), first[1]["gt_fmel"].numpy()), "batches differ"
    other = next(iter(stream.make_stream_dataset(B, SIZE, seed=2)))
    assert not np.array_equal(other["gt_fmel"].numpy(), first[0]["gt_fmel"].numpy())
    direct = stream.render_batch(1, B, SIZE, first=B)
    np.testing.assert_array_equal(first[1]["srgb"].numpy(), direct["srgb"])


def test_mask_is_skin_only(clean):
    labels, mask = clean["labels"], clean["mask"][..., 0]
    np.testing.assert_array_equal(mask > 0.5, labels == stream.LABELS.index("skin"))
    for region in ("eyes", "hair", "background"):
        assert np.all(mask[labels == stream.LABELS.index(region)] == 0), region
    assert (labels == stream.LABELS.index("eyes")).any(axis=(1, 2)).mean() > 0.8, "most faces show their eyes"
    assert (labels == stream.LABELS.index("mouth")).any(axis=(1, 2)).any(), "some mouths are open"
    coverage = mask.mean(axis=(1, 2))
    assert np.all((coverage > 0.1) & (coverage < 0.8)), coverage


def test_ground_truth_ranges(clean):
    inside = clean["mask"][..., 0] > 0.5
    assert np.all(np.abs(clean["gt_fmel"]) <= 1) and np.all(np.abs(clean["gt_fblood"]) <= 1)
    assert np.all(clean["gt_shading"][..., 0][inside] > 0) and np.all(clean["gt_specmask"] >= 0)
    assert np.all(clean["gt_shading"][..., 0][~inside] == 0) and np.all(clean["shading"][..., 0][~inside] == 0)
    assert np.all(np.abs(clean["gt_b"]) <= 3) and np.ptp(clean["gt_b"], axis=0).min() > 3
    np.testing.assert_allclose(clean["gt_light_weights"].sum(axis=1), 1.0, atol=1e-5)
    assert np.all(clean["gt_light_weights"] >= 0)
    assert np.all((clean["gt_cct"] >= 1) & (clean["gt_cct"] <= 22))
    norms = np.linalg.norm(clean["normals"][inside], axis=-1)
    np.testing.assert_allclose(norms, 1.0, atol=1e-4)
    assert np.all((clean["srgb"] >= 0) & (clean["srgb"] <= 1))


def test_decoder_renders_the_ground_truth_into_the_noise_free_image(clean):
    inputs = {
        "fmel": clean["gt_fmel"], "fblood": clean["gt_fblood"], "specmask": clean["gt_specmask"],
        "shading": np.maximum(clean["gt_shading"], 1e-3),
        "b": clean["gt_b"], "light_weights": clean["gt_light_weights"], "cct": clean["gt_cct"],
    }
    rendered = PhysicsDecoder()({k: tf.constant(v) for k, v in inputs.items()})["srgb"].numpy()
    inside = clean["mask"][..., 0] > 0.5
    np.testing.assert_allclose(clean["srgb"][inside], rendered[inside], atol=2e-3)
    with_camera = stream.render_batch(5, 8, SIZE)
    assert np.abs(with_camera["srgb"] - clean["srgb"][:8]).mean() > 0.005, "camera effects change the image"
    np.testing.assert_array_equal(with_camera["gt_fmel"], clean["gt_fmel"][:8])


def test_shading_is_the_readers_pseudo_ground_truth_of_an_sh_fit(clean):
    from bioface_tf.data import shading as sh_shading

    pseudo = sh_shading.grey_shading(clean["normals"], clean["lighting"])
    inside = clean["mask"][..., 0] > 0.5
    np.testing.assert_allclose(clean["shading"][..., 0], np.where(inside, pseudo, 0.0), rtol=1e-6, atol=1e-6)
    errors = [np.abs(pseudo[i][inside[i]] - clean["gt_shading"][i, ..., 0][inside[i]]).mean()
              / clean["gt_shading"][i, ..., 0][inside[i]].mean() for i in range(len(pseudo))]
    assert np.median(errors) < 0.15, "second-order SH explains most of the rendered shading"


def test_skin_types_span_the_melanin_range(clean):
    inside = clean["mask"][..., 0] > 0.5
    medians = np.array([np.median(clean["gt_fmel"][i, ..., 0][inside[i]]) for i in range(len(inside))])
    assert medians.min() < -0.5 and medians.max() > 0.5
    assert np.histogram(medians, bins=[-1, -0.3, 0.3, 1])[0].min() >= 5, "light, medium and dark skin"
    brightness = np.array([clean["srgb"][i][inside[i]].mean() for i in range(len(inside))])
    assert np.corrcoef(medians, brightness)[0, 1] < -0.3, "more melanin, darker skin"


def test_flip_mirrors_maps_and_keeps_vectors():
    plain = next(iter(stream.make_stream_dataset(B, SIZE, seed=3)))
    flipped = next(iter(stream.make_stream_dataset(B, SIZE, seed=3, flip=True)))
    mirrored = [not np.array_equal(plain["srgb"][i].numpy(), flipped["srgb"][i].numpy()) for i in range(B)]
    assert 0 < sum(mirrored) < B
    for i in range(B):
        expected = plain["gt_fmel"][i].numpy()[:, ::-1] if mirrored[i] else plain["gt_fmel"][i].numpy()
        np.testing.assert_array_equal(flipped["gt_fmel"][i].numpy(), expected)
    np.testing.assert_array_equal(flipped["gt_b"].numpy(), plain["gt_b"].numpy())


def test_fit_sh_is_each_faces_ridge_least_squares_fit():
    rng = np.random.default_rng(0)
    normals = rng.normal(size=(3, 6, 6, 3)).astype(np.float32)
    normals /= np.linalg.norm(normals, axis=-1, keepdims=True)
    shading = rng.uniform(0.1, 2.0, (3, 6, 6)).astype(np.float32)
    mask = np.stack([np.ones((6, 6)), rng.random((6, 6)) < 0.5, np.eye(6)]).astype(np.float32)
    fitted = stream.fit_sh(normals, shading, mask)
    for i in range(3):
        inside = mask[i] > 0.5
        basis = stream.sh_basis(normals[i][inside].astype(np.float64))
        gram = basis.T @ basis
        ridge = stream.SH_RIDGE * max(np.trace(gram), 1.0) * np.eye(9)
        expected = np.linalg.solve(gram + ridge, basis.T @ shading[i][inside])
        np.testing.assert_allclose(fitted[i], expected, rtol=1e-10, atol=1e-12)
    assert not np.allclose(fitted[0], fitted[1])


def test_non_skin_layer_in_two_compiled_stages_is_the_one_stage_layer():
    params = stream.sample_parameters(np.random.default_rng(3), stream.BLOCK)
    arrays, layout = stream.pack(params)
    arrays = tuple(tf.constant(a) for a in arrays)
    p = stream.unpack(arrays, layout)
    surface = stream._surface(p, 16)
    light = stream._lighting(p, surface)
    fields = stream._compiled(stream._layer_fields, layout, 16)(arrays, surface, light)
    staged = stream._compiled(stream._composite, layout, 16)(arrays, surface, light, fields)["overlay"].numpy()
    whole = stream._layers(p, surface, light, 16)["overlay"].numpy()
    assert staged.shape == (stream.BLOCK, 16, 16, 3) and np.ptp(whole) > 0.1
    np.testing.assert_allclose(staged, whole, rtol=1e-4, atol=1e-5)


def test_render_blocks_are_render_batch_blocks_in_order():
    blocks = list(stream.render_blocks(4, 16, [2, 0], sensor=False, albedo=True, workers=2, depth=1))
    assert len(blocks) == 2
    for k, block in zip([2, 0], blocks):
        direct = stream.render_batch(4, stream.BLOCK, 16, first=k * stream.BLOCK, sensor=False, albedo=True)
        assert set(block) == set(direct)
        for key in ("srgb", "gt_fmel", "lighting", "albedo"):
            np.testing.assert_array_equal(block[key], direct[key], err_msg=key)
    assert not np.array_equal(blocks[0]["gt_fmel"], blocks[1]["gt_fmel"])


def test_wide_variety_keeps_each_faces_scene_and_widens_its_pigment(clean):
    wide = stream.render_batch(5, 2 * stream.BLOCK, SIZE, sensor=False, variety="wide")
    np.testing.assert_array_equal(wide["mask"], clean["mask"])
    np.testing.assert_array_equal(wide["gt_shading"], clean["gt_shading"])
    np.testing.assert_array_equal(wide["gt_b"], clean["gt_b"])
    skin = clean["mask"][..., 0] > 0.5
    for key in ("gt_fmel", "gt_fblood"):
        assert np.all(np.abs(wide[key]) <= 1.0)
        spread = [np.std(face[..., 0][inside]) for face, inside in zip(clean[key], skin)]
        wider = [np.std(face[..., 0][inside]) for face, inside in zip(wide[key], skin)]
        assert np.mean(wider) > 1.1 * np.mean(spread), key
    changed = np.abs(wide["gt_fblood"] - clean["gt_fblood"])[..., 0][skin]
    assert np.mean(changed > 0.05) > 0.3


def test_wide_faces_are_rendered_through_the_decoder_like_standard_ones():
    wide = stream.render_batch(6, 4, SIZE, sensor=False, variety="wide")
    inputs = {k: wide[f"gt_{k}"] for k in ("fmel", "fblood", "specmask", "b", "light_weights", "cct")}
    inputs["shading"] = np.maximum(wide["gt_shading"], 1e-3)
    rendered = PhysicsDecoder()({k: tf.constant(v) for k, v in inputs.items()})["srgb"].numpy()
    skin = wide["mask"][..., 0] > 0.5
    np.testing.assert_allclose(wide["srgb"][skin], rendered[skin], atol=2e-3)


def _paired_parameters(seed: int, n: int, variety: str, changed: tuple = ()) -> tuple[dict, dict]:
    """``(wide_metered, variety)`` parameters of the same faces, checked equal but for the ``changed`` keys."""
    metered = stream.sample_parameters(np.random.default_rng(seed), n, "wide_metered")
    other = stream.sample_parameters(np.random.default_rng(seed), n, variety)
    for key in metered:
        if key not in changed:
            np.testing.assert_array_equal(other[key], metered[key], err_msg=key)
    return metered, other


def test_uniform_variety_spreads_every_skin_type_over_the_melanin_range_and_keeps_the_rest():
    n = 4000
    metered, uniform = _paired_parameters(9, n, "wide_metered_uniform", changed=("skin_type",))
    skin = uniform["skin_type"].ravel()
    counts, _ = np.histogram(skin, bins=4, range=(-1.0, 1.0))
    assert skin.min() >= -1.0 and skin.max() <= 1.0
    assert counts.min() > 0.85 * n / 4, counts
    darkest = np.mean(metered["skin_type"].ravel() > 0.85)
    assert np.mean(skin > 0.85) > 2.0 * darkest


def test_camera_variety_changes_only_the_camera_of_the_chosen_faces():
    metered, cameras = _paired_parameters(11, 400, "wide_metered_cameras", changed=("b",))
    pca_camera = spectra.camera_sensitivity(metered["b"])
    kept = np.all(np.isclose(cameras["camera_curves"], pca_camera, rtol=1e-5, atol=1e-7), axis=(1, 2))
    assert 0.3 < np.mean(~kept) < 0.9
    np.testing.assert_array_equal(cameras["b"][kept], metered["b"][kept])
    off = cameras["camera_curves"][~kept]
    assert np.min(off) >= 0.0
    np.testing.assert_allclose(off.sum(-1), pca_camera[~kept].sum(-1), rtol=1e-6)
    residual = off.reshape(len(off), -1) - spectra.camera_sensitivity(cameras["b"][~kept]).reshape(len(off), -1)
    assert np.median(np.abs(residual).max(axis=1)) > 1e-3
    np.testing.assert_allclose(cameras["raw_to_xyz"][kept], spectra.raw_to_xyz_matrix(metered["b"][kept]), rtol=1e-4,
                               atol=1e-6)


def test_context_variety_scales_what_surrounds_the_face_and_nothing_else():
    _, context = _paired_parameters(12, 400, "wide_metered_context")
    gain = context["context_gain"].ravel()
    low, high, share = stream.CONTEXT_GAIN
    assert np.all((gain >= low) & (gain <= high))
    assert abs(np.mean(gain != 1.0) - share) < 0.08
    assert np.mean(gain > 1.0) > 0.2 and np.mean(gain < 1.0) > 0.2


def test_context_gain_leaves_the_skin_pixels_and_brightens_or_darkens_the_background():
    plain = stream.render_batch(7, 16, SIZE, sensor=False, variety="wide_metered")
    context = stream.render_batch(7, 16, SIZE, sensor=False, variety="wide_metered_context")
    gain = stream.sample_parameters(np.random.default_rng([7, 0]), stream.BLOCK, "wide_metered_context")["context_gain"]
    skin = plain["mask"][..., 0] > 0.5
    background = plain["labels"] == stream.LABELS.index("background")
    for i in range(16):
        np.testing.assert_array_equal(context["srgb"][i][skin[i]], plain["srgb"][i][skin[i]])
        ratio = np.median(context["srgb"][i][background[i]] / np.maximum(plain["srgb"][i][background[i]], 1e-3))
        g = gain[i].item()
        if g == 1.0:
            assert ratio == 1.0, i
        elif abs(np.log(g)) > 0.1:
            assert (ratio - 1.0) * (g - 1.0) > 0, (i, ratio, g)


def test_skin_through_explicit_curves_of_a_pca_camera_is_the_decoders_skin():
    rng = np.random.default_rng(3)
    n, size = 3, 8
    b = rng.uniform(-3, 3, (n, 2)).astype(np.float32)
    maps = {"fmel": rng.uniform(-1, 1, (n, size, size, 1)), "fblood": rng.uniform(-1, 1, (n, size, size, 1)),
            "shading": rng.uniform(0.2, 1.5, (n, size, size, 1)), "specmask": rng.uniform(0, 0.3, (n, size, size, 1))}
    maps = {k: tf.constant(v, tf.float32) for k, v in maps.items()}
    light = {"light_weights": np.eye(14, dtype=np.float32)[[0, 1, 5]],
             "cct": np.array([[3.0], [12.0], [20.0]], np.float32)}
    plain = types.SimpleNamespace(b=b, **light)
    explicit = types.SimpleNamespace(
        b=b, camera_curves=spectra.camera_sensitivity(b).astype(np.float32),
        raw_to_xyz=spectra.raw_to_xyz_matrix(b).astype(np.float32), **light,
    )
    expected = stream._skin_linear(plain, maps).numpy()
    np.testing.assert_allclose(stream._skin_linear(explicit, maps).numpy(), expected, rtol=2e-4, atol=2e-6)
    shifted = types.SimpleNamespace(**{**vars(explicit), "camera_curves": np.roll(explicit.camera_curves, 1, axis=-1)})
    assert np.abs(stream._skin_linear(shifted, maps).numpy() - expected).max() > 1e-3


def test_an_unknown_variety_is_refused():
    with pytest.raises(ValueError, match="variety"):
        stream.sample_parameters(np.random.default_rng(0), 2, "extreme")
    with pytest.raises(Exception, match="variety"):
        stream.make_stream_dataset(B, SIZE, seed=1, variety="extreme")


def test_skin_metering_brings_the_skin_towards_the_target_luminance():
    from bioface_tf.transfer_curve import linearise

    n, size = 3, 16
    shade = np.array([0.03, 0.08, 0.5], np.float32)[:, None, None, None]
    linear = tf.constant(np.ones((n, size, size, 3), np.float32) * shade)
    mask = np.zeros((n, size, size), np.float32)
    mask[:, 4:12, 4:12] = 1.0
    ones = np.ones((n, 1, 1), np.float32)
    p = types.SimpleNamespace(
        exposure=ones, white_balance_error=np.ones((n, 3), np.float32), blur=0 * ones, noise_gain=0 * ones,
        noise_floor=0 * ones, noise_keys=np.zeros((n, len(stream.LATTICES)), np.int32), skin_metering=ones,
    )
    full = linearise(stream.camera_effects(p, linear, size, 1.0, tf.constant(mask)).numpy())
    np.testing.assert_allclose(full[:, 8, 8].mean(axis=-1), stream.SKIN_METERING_TARGET, rtol=1e-3)
    p.skin_metering = 0.5 * ones
    half = linearise(stream.camera_effects(p, linear, size, 1.0, tf.constant(mask)).numpy())
    gain = half[:, 8, 8, 0] / shade[:, 0, 0, 0]
    np.testing.assert_allclose(gain, np.sqrt(stream.SKIN_METERING_TARGET / shade[:, 0, 0, 0]), rtol=1e-3)
    assert np.all(np.diff(half[:, 8, 8, 0]) > 0), "metering brightens a dark face, it does not invert the order"


def test_tone_curve_keeps_black_and_white_and_the_order_of_values():
    values = tf.constant(np.linspace(0.0, 1.0, 101, dtype=np.float32))
    for gamma, contrast in ((0.8, 0.35), (1.25, -0.15), (1.0, 0.0)):
        out = stream.tone_curve(values, gamma, contrast).numpy()
        np.testing.assert_allclose(out[[0, -1]], [0.0, 1.0], atol=1e-6)
        assert np.all(np.diff(out) > 0)
    np.testing.assert_allclose(stream.tone_curve(values, 1.0, 0.0).numpy(), values.numpy(), atol=1e-6)
    assert stream.tone_curve(values, 0.8, 0.0).numpy()[50] > 0.5 > stream.tone_curve(values, 1.25, 0.0).numpy()[50]
