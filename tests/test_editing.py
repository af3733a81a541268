"""Editing in biophysical space: identity, direction of each edit, clipping, mask."""

import numpy as np
import pytest

from bioface_tf.editing import Edit, composite, edit_faces, edit_parameters, feather_mask, render


def _face_params(size=16, seed=0):
    """A small rendered 'face': varying maps and shading, some specular."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / (size - 1)
    return {
        "fmel": (0.3 * np.sin(6 * xx) - 0.2)[None, ..., None].astype(np.float32),
        "fblood": (0.4 * yy - 0.3)[None, ..., None].astype(np.float32),
        "shading": (0.5 + 0.8 * (1 - (xx - 0.5) ** 2))[None, ..., None].astype(np.float32),
        "specmask": (0.05 * rng.random((size, size)))[None, ..., None].astype(np.float32),
        "b": np.float32([[0.5, -0.5]]),
        "light_weights": np.eye(14, dtype=np.float32)[1:2],
        "cct": np.float32([[3.0]]),
    }


def _srgb_to_lab(rgb):
    """CIE L*a*b* (D65) of display sRGB, written out independently of the library."""
    rgb = np.asarray(rgb, np.float64)
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    m = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    xyz = linear @ m.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1)


def test_unedited_rerender_equals_reconstruction():
    params = _face_params()
    reconstruction = render(params)
    np.testing.assert_array_equal(render(edit_parameters(params, Edit())), reconstruction)


def test_unedited_composite_returns_the_photo():
    params = _face_params()
    rng = np.random.default_rng(1)
    photo = np.clip(render(params) + rng.normal(0, 0.02, (1, 16, 16, 3)), 0, 1).astype(np.float32)
    mask = np.zeros((1, 16, 16), np.float32)
    mask[:, 3:13, 4:12] = 1
    reconstruction = render(params)
    out = composite(photo, reconstruction, reconstruction, mask)
    np.testing.assert_allclose(out, photo, atol=1e-6)


def test_melanin_darkens_and_haemoglobin_reddens_skin():
    params = _face_params()
    lab = _srgb_to_lab(render(params))
    darker = _srgb_to_lab(render(edit_parameters(params, Edit(melanin=0.4))))
    redder = _srgb_to_lab(render(edit_parameters(params, Edit(haemoglobin=0.3))))
    assert np.mean(darker[..., 0] - lab[..., 0]) < -3, "L* drops with melanin"
    assert np.all(darker[..., 0] < lab[..., 0] + 1e-6)
    assert np.mean(redder[..., 1] - lab[..., 1]) > 2, "a* rises with haemoglobin"


def test_edits_clip_at_range_ends():
    params = _face_params()
    maxed = edit_parameters(params, Edit(melanin=5.0, haemoglobin=-5.0))
    assert np.all(maxed["fmel"] == 1.0) and np.all(maxed["fblood"] == -1.0)
    again = edit_parameters(maxed, Edit(melanin=0.4))
    np.testing.assert_array_equal(render(again), render(maxed))


def test_outside_mask_unchanged_inside_changed():
    params = _face_params()
    reconstruction = render(params)
    edited = render(edit_parameters(params, Edit(melanin=0.4, specular=0.0)))
    photo = reconstruction.copy()
    mask = np.zeros((1, 16, 16), np.float32)
    mask[:, 4:12, 4:12] = 1
    out = composite(photo, reconstruction, edited, mask)
    np.testing.assert_array_equal(out[mask == 0], photo[mask == 0])
    assert np.abs(out[mask == 1] - photo[mask == 1]).mean() > 0.01


def test_relighting_changes_light_but_not_maps():
    params = _face_params()
    relit = edit_parameters(params, Edit(illuminant="A"))
    for name in ("fmel", "fblood", "shading", "specmask", "b"):
        np.testing.assert_array_equal(relit[name], params[name])
    assert relit["light_weights"][0, 0] == 1 and relit["cct"].shape == (1, 1)
    assert not np.allclose(render(relit), render(params))


def test_specular_scale_removes_highlights():
    params = _face_params()
    matte = edit_parameters(params, Edit(specular=0.0))
    assert np.all(matte["specmask"] == 0)
    assert render(matte).mean() < render(params).mean()


@pytest.mark.parametrize("bad", [dict(melanin=float("nan")), dict(specular=-1.0), dict(illuminant="D50")])
def test_invalid_edits_are_rejected(bad):
    with pytest.raises(ValueError):
        Edit(**bad)


@pytest.fixture(scope="module")
def rendered_face(tmp_path_factory):
    """A face rendered by ``bioface synth``: its true decoder inputs and mask."""
    from bioface_tf.data import CelebAFaces
    from bioface_tf.data.synth import write_synthetic

    path = write_synthetic(tmp_path_factory.mktemp("synth") / "faces.h5", n=1, size=48, seed=5, progress=False)
    with CelebAFaces([path], image_size=None) as faces:
        face = faces.read([0], ground_truth=True)
    params = {k: face[f"gt_{k}"] for k in ("fmel", "fblood", "specmask", "b", "light_weights", "cct")}
    params["shading"] = np.maximum(face["gt_shading"], 1e-3)
    return params, face["mask"]


def test_melanin_darkens_and_haemoglobin_reddens_a_rendered_faces_skin(rendered_face):
    params, mask = rendered_face
    skin = (mask[..., 0] > 0.5) & (params["fmel"][..., 0] < 0.2) & (params["fblood"][..., 0] < 0.5)
    assert skin.sum() > 100, "the rendered face has a skin region to measure"
    lab = _srgb_to_lab(render(params))[skin]
    darker = _srgb_to_lab(render(edit_parameters(params, Edit(melanin=0.4))))[skin]
    redder = _srgb_to_lab(render(edit_parameters(params, Edit(haemoglobin=0.3))))[skin]
    assert np.median(darker[:, 0] - lab[:, 0]) < -3, "L* drops on the skin"
    assert np.mean(darker[:, 0] < lab[:, 0]) > 0.95
    assert np.median(redder[:, 1] - lab[:, 1]) > 2, "a* rises on the skin"
    assert np.mean(redder[:, 1] > lab[:, 1]) > 0.95


def test_feathered_mask_is_zero_outside_and_one_deep_inside():
    mask = np.zeros((1, 64, 64, 1), np.float32)
    mask[:, 8:56, 12:52] = 1
    soft = feather_mask(mask)
    assert soft.shape == mask.shape and soft.dtype == np.float32
    assert np.all(soft[mask == 0] == 0)
    assert soft[0, 32, 32, 0] == pytest.approx(1.0, abs=1e-3)
    edge = soft[0, 32, 12:20, 0]
    assert 0 <= edge[0] < 0.35 and np.all(np.diff(edge) >= 0), "it rises from the edge inwards"
    np.testing.assert_array_equal(feather_mask(mask, 0.0), mask)


class _Analysis:
    """The fields of a FaceAnalysis that edit_faces uses."""

    def __init__(self, params, image, mask):
        self.params, self.image, self.mask = params, image, mask
        self.reconstruction = render(params)


def test_edit_faces_keeps_pixels_outside_the_mask_and_is_identity_unedited(rendered_face):
    params, mask = rendered_face
    rng = np.random.default_rng(2)
    photo = np.clip(render(params) + rng.normal(0, 0.03, render(params).shape), 0, 1).astype(np.float32)
    faces = _Analysis(params, photo, mask)
    np.testing.assert_allclose(edit_faces(faces, Edit()), photo, atol=1e-6)
    edited = edit_faces(faces, Edit(melanin=0.4, haemoglobin=0.3))
    outside = mask[..., 0] == 0
    np.testing.assert_array_equal(edited[outside], photo[outside])
    assert np.abs(edited - photo)[mask[..., 0] == 1].mean() > 0.02


def test_edit_faces_clips_at_the_range_ends(rendered_face):
    params, mask = rendered_face
    faces = _Analysis(params, render(params), mask)
    np.testing.assert_array_equal(edit_faces(faces, Edit(melanin=2.0)), edit_faces(faces, Edit(melanin=9.0)))
    np.testing.assert_array_equal(
        edit_faces(faces, Edit(haemoglobin=-2.0)), edit_faces(faces, Edit(haemoglobin=-9.0))
    )
