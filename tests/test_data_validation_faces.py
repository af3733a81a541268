"""Validation faces: exact ground truth, the decoder's physics, the file layout, determinism, the mask."""

import ast
import pathlib

import h5py
import numpy as np
import pytest

from bioface_tf import cli, spectra
from bioface_tf.data import CelebAFaces
from bioface_tf.data import validation_faces as vf
from bioface_tf.errors import DataError

N, SIZE, SEED = 4, 40, 3
NOT_SKIN = (vf.BACKGROUND, vf.HAIR, vf.SCLERA, vf.IRIS, vf.PUPIL, vf.MOUTH, vf.TEETH, vf.LASH, vf.CLOTH, vf.NECK)


@pytest.fixture(scope="module")
def faces():
    return vf.render_validation_faces(N, SIZE, SEED)


def _reference_linear(fmel, fblood, shading, specmask, camera, spd):
    """PHYSICS.md §6–§8 written out here, independently of the module: per pixel, any camera.

    Bilinear align-corners lookup of the reflectance table, ``Σλ R e S``,
    ``raw = albedo·shading + specmask·light``, white balance, T from the
    camera's own curves, XYZ → linear sRGB, ReLU.
    """
    table = spectra.skin_reflectance_table()
    grid = table.shape[0] - 1
    x = (np.clip(fmel, -1, 1) + 1) / 2 * grid
    y = (np.clip(fblood, -1, 1) + 1) / 2 * grid
    x0 = np.minimum(np.floor(x).astype(int), grid - 1)
    y0 = np.minimum(np.floor(y).astype(int), grid - 1)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    reflectance = (
        (1 - fy) * ((1 - fx) * table[y0, x0] + fx * table[y0, x0 + 1])
        + fy * ((1 - fx) * table[y0 + 1, x0] + fx * table[y0 + 1, x0 + 1])
    )
    lit = camera * spd[None, :]
    light = lit.sum(axis=1)
    raw = (reflectance @ lit.T) * shading[:, None] + specmask[:, None] * light[None, :]
    t = (np.linalg.pinv(camera.T) @ spectra.colour_matching_functions()).T
    t = t * (spectra.XYZ_ROW_SUMS / t.sum(axis=1))[:, None]
    return np.maximum((raw / light) @ (spectra.XYZ_TO_LINEAR_SRGB @ t).T, 0.0)


def test_noise_free_skin_pixels_are_the_ground_truth_rendered_with_the_true_camera(faces):
    full_skin = (faces["mask"] > 0.5) & (faces["skin_fraction"] > 0.999)
    assert full_skin.sum() > 0.08 * full_skin.size, "the comparison covers most of the face"
    exposed = faces["linear"] * faces["gain"][..., None]
    for i in range(N):
        where = full_skin[i]
        expected = _reference_linear(
            *(faces[f"gt_{name}"][i][where].astype(np.float64) for name in ("fmel", "fblood", "shading", "specmask")),
            faces["camera_sensitivity"][i].astype(np.float64),
            faces["illuminant_spd"][i].astype(np.float64),
        )
        # float32 storage of maps and images: a few ulp
        np.testing.assert_allclose(exposed[i][where], expected, rtol=2e-5, atol=2e-6)
        assert expected.max() > 0.03, "lit skin, not black pixels"


def test_gain_is_exposure_times_a_vignette_not_above_one(faces):
    ratio = faces["gain"] / faces["exposure"][:, None, None]
    assert np.all(ratio <= 1.0 + 1e-6) and np.all(ratio > 0.6)
    np.testing.assert_allclose(ratio[:, SIZE // 2, SIZE // 2], 1.0, atol=0.01)


def test_image_formation_is_the_decoders_for_a_pca_camera_and_decoder_illuminant(faces):
    import tensorflow as tf

    from bioface_tf.physics import PhysicsDecoder

    camera = spectra.camera_sensitivity(faces["gt_b"].astype(np.float64))
    spd = vf.decoder_illuminant(faces["gt_light_weights"], faces["gt_cct"][:, 0])
    ours = np.stack([
        vf.render_skin(faces["gt_fmel"][i], faces["gt_fblood"][i], faces["gt_shading"][i], faces["gt_specmask"][i],
                       camera[i], spd[i])
        for i in range(N)
    ])
    inputs = {name: faces[f"gt_{name}"][..., None] for name in ("fmel", "fblood", "shading", "specmask")}
    inputs.update(b=faces["gt_b"], light_weights=faces["gt_light_weights"], cct=faces["gt_cct"])
    decoded = PhysicsDecoder()({k: tf.constant(v, tf.float32) for k, v in inputs.items()})
    np.testing.assert_allclose(ours, decoded["linear_srgb"].numpy(), atol=2e-4, rtol=0)
    assert ours.max() > 0.1
    np.testing.assert_allclose(spd, decoded["illuminant_spd"].numpy(), atol=1e-6)


def test_camera_and_light_are_not_exactly_the_decoders(faces):
    """The true camera is a (perturbed) measured camera, not its PCA fit; the light is nearest-represented."""
    fitted = spectra.camera_sensitivity(faces["gt_b"].astype(np.float64))
    assert np.all(np.abs(fitted - faces["camera_sensitivity"]).max(axis=(1, 2)) > 1e-3)
    b = np.array([[0.4, -0.7]])
    np.testing.assert_allclose(spectra.camera_pca_fit(spectra.camera_sensitivity(b)), b, atol=1e-9)
    represented = vf.decoder_illuminant(faces["gt_light_weights"], faces["gt_cct"][:, 0])
    true = faces["illuminant_spd"]
    error = np.linalg.norm(represented - true, axis=1) / np.linalg.norm(true, axis=1)
    np.testing.assert_allclose(error, faces["illuminant_error"], atol=1e-4)


def test_nearest_representation_recovers_a_decoder_illuminant():
    rng = np.random.default_rng(1)
    for _ in range(3):
        weights = np.zeros(14)
        weights[[1, 0, 2 + rng.integers(12)]] = rng.dirichlet(np.ones(3))
        cct = rng.uniform(2.0, 20.0)
        spd = vf.decoder_illuminant(weights[None], np.array([cct]))[0]
        fitted, fitted_cct, error = vf.nearest_representation(spd)
        assert error < 1e-3
        assert abs(fitted_cct - cct) <= vf.CCT_STEP
        np.testing.assert_allclose(fitted, weights, atol=0.02)
    _, _, led_error = vf.nearest_representation(vf.white_led(450.0, 560.0, 1.0, 0.0))
    assert led_error > 0.05, "an LED is not a mixture of CIE illuminants"
    np.testing.assert_allclose(vf.nearest_representation(vf.blackbody(2856.0))[0][0], 1.0, atol=0.02)


def test_ground_truth_ranges(faces):
    mask = faces["mask"] > 0.5
    assert np.all(np.abs(faces["gt_fmel"]) <= 1) and np.all(np.abs(faces["gt_fblood"]) <= 1)
    assert np.all(faces["gt_shading"][mask] > 0) and np.all(faces["gt_shading"][~mask] == 0)
    assert np.all(faces["gt_specmask"] >= 0) and np.all(faces["gt_specmask"][~mask] == 0)
    assert np.all(faces["gt_fmel"][~mask] == 0) and np.all(faces["gt_fblood"][~mask] == 0)
    assert np.all(np.abs(faces["gt_b"]) <= 3)
    np.testing.assert_allclose(faces["gt_light_weights"].sum(axis=1), 1.0, atol=1e-5)
    assert np.all(faces["gt_light_weights"] >= 0) and np.all((faces["gt_cct"] >= 1) & (faces["gt_cct"] <= 22))
    np.testing.assert_allclose(faces["illuminant_spd"].sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(faces["camera_sensitivity"].sum(axis=2), 1.0, atol=1e-5)
    coverage = mask.mean(axis=(1, 2))
    assert np.all((coverage > 0.05) & (coverage < 0.7)), coverage
    assert np.all((faces["image"] >= 0) & (faces["image"] <= 1))
    np.testing.assert_allclose(np.linalg.norm(faces["normals"][mask], axis=-1), 1.0, atol=1e-4)
    assert np.all(faces["normals"][mask][:, 2] > -0.2), "skin faces the camera"
    assert min(faces["gt_fmel"][i][mask[i]].std() for i in range(N)) > 0.02, "melanin varies within each face"


def test_mask_holds_face_skin_only(faces):
    mask = faces["mask"] > 0.5
    material = faces["material"]
    assert not np.any(mask & np.isin(material, NOT_SKIN)), "no hair, eyes, mouth, neck, clothes or background"
    assert np.all(material[mask] == vf.SKIN)
    assert np.all((faces["skin_fraction"][mask] > 0.5))
    outside = [set(np.unique(material[i][~mask[i]])) for i in range(N)]
    assert all(vf.BACKGROUND in kinds for kinds in outside)
    assert sum(bool(kinds & {vf.HAIR, vf.SCLERA, vf.IRIS, vf.PUPIL}) for kinds in outside) >= N - 1


def test_face_depends_only_on_seed_and_index():
    whole = vf.render_validation_faces(3, 20, seed=4)
    third = vf.render_validation_faces(1, 20, seed=4, start=2)
    for key in ("image", "gt_fmel", "gt_shading", "gt_b", "lrgb", "gt_light_weights"):
        np.testing.assert_array_equal(whole[key][2], third[key][0])
    other = vf.render_validation_faces(1, 20, seed=5, start=2)
    assert not np.array_equal(other["gt_fmel"][0], third["gt_fmel"][0])
    assert not np.array_equal(whole["image"][1], whole["image"][2])


def test_file_layout_reader_and_cli(tmp_path):
    path = tmp_path / "validation.h5"
    assert cli.main(["synth", "--family", "validation_faces", "--n", "2", "--size", "24", "--seed", "9",
                     "--out", str(path)]) == 0
    with h5py.File(path, "r") as f:
        assert f.attrs["family"] == "validation_faces" and f.attrs["seed"] == 9
        assert f.attrs["normal_encoding"] == "signed"
        assert f["zx_7"].shape == (2, 10, 24, 24) and f["zx_7"].dtype == np.float32
        shapes = {name: f[name].shape for name in f}
        stored = f["zx_7"][:, :3].transpose(0, 2, 3, 1)
    assert shapes["lrgb"] == (2, 3, 9)
    for name in ("gt_fmel", "gt_fblood", "gt_shading", "gt_specmask"):
        assert shapes[name] == (2, 24, 24)
    assert shapes["gt_b"] == (2, 2) and shapes["gt_light_weights"] == (2, 14) and shapes["gt_cct"] == (2, 1)
    assert shapes["camera_sensitivity"] == (2, 3, 33) and shapes["illuminant_spd"] == (2, 33)
    np.testing.assert_array_equal(stored, vf.render_validation_faces(2, 24, seed=9)["image"])
    with CelebAFaces([path], image_size=24) as reader:
        assert reader.has_ground_truth and reader.files[0].normal_encoding == "signed"
        batch = reader.read(range(2), ground_truth=True)
    inside = batch["mask"][..., 0] > 0.5
    for i in range(2):
        gt, pseudo = batch["gt_shading"][i, ..., 0][inside[i]], batch["shading"][i, ..., 0][inside[i]]
        assert np.corrcoef(gt, pseudo)[0, 1] > 0.6, "the SH fit follows the shading used"


def test_bad_arguments_name_the_file(tmp_path):
    with pytest.raises(DataError, match="out.h5"):
        vf.write_validation_faces(tmp_path / "out.h5", 0)
    with pytest.raises(DataError, match=str(tmp_path)):
        vf.write_validation_faces(tmp_path, 1, size=16, progress=False)


def test_independent_of_the_other_families_and_the_decoder():
    source = pathlib.Path(vf.__file__).read_text()
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module)
            imported.update(f"{node.module}.{alias.name}" for alias in node.names)
    banned = ("synth", "stream", "eval_faces")
    assert not any(word in name for name in imported for word in banned), imported
    assert not any(name.startswith(("bioface_tf.physics", "tensorflow", "keras")) for name in imported), imported


def test_nnls_meets_the_optimality_conditions():
    from bioface_tf.data.validation_faces import nnls

    rng = np.random.default_rng(3)
    for _ in range(20):
        matrix, target = rng.normal(size=(33, 14)), rng.normal(size=33)
        x, residual = nnls(matrix, target)
        gradient = matrix.T @ (target - matrix @ x)
        assert np.all(x >= 0)
        assert np.all(gradient <= 1e-8), "no coordinate can still lower the error"
        np.testing.assert_allclose(gradient[x > 0], 0.0, atol=1e-8)
        assert residual == pytest.approx(np.linalg.norm(matrix @ x - target))
