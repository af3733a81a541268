"""Evaluation faces: same physics as the decoder, exact ground truth, the file layout, independence."""

import ast
import pathlib

import h5py
import numpy as np
import pytest
import tensorflow as tf

from bioface_tf import spectra
from bioface_tf.data import CelebAFaces
from bioface_tf.data import eval_faces as ef
from bioface_tf.data import shading as sh_shading
from bioface_tf.errors import DataError
from bioface_tf.physics import PhysicsDecoder

N, SIZE, SEED = 5, 48, 11
NOT_SKIN = (ef.BACKGROUND, ef.HAIR, ef.SCLERA, ef.IRIS, ef.PUPIL, ef.MOUTH, ef.TEETH, ef.LASH)


@pytest.fixture(scope="module")
def faces():
    return ef.render_eval_faces(N, SIZE, SEED)


@pytest.fixture(scope="module")
def eval_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("eval") / "eval_faces.h5"
    assert ef.write_eval_faces(path, 3, size=SIZE, seed=SEED, progress=False) == path
    return path


def _decoder_inputs(faces):
    maps = {name: faces[f"gt_{name}"][..., None] for name in ("fmel", "fblood", "shading", "specmask")}
    vectors = {"b": faces["gt_b"], "light_weights": faces["gt_light_weights"], "cct": faces["gt_cct"]}
    return {key: tf.constant(value, tf.float32) for key, value in {**maps, **vectors}.items()}


def test_image_formation_is_the_decoders_for_a_pca_camera(faces):
    """With a PCA-representable camera, the NumPy renderer and PhysicsDecoder agree to float32 rounding."""
    camera = spectra.camera_sensitivity(faces["gt_b"].astype(np.float64))
    spd = ef.illuminant_spd(faces["gt_light_weights"], faces["gt_cct"][:, 0])
    ours = ef.linear_srgb_from_maps(
        faces["gt_fmel"], faces["gt_fblood"], faces["gt_shading"], faces["gt_specmask"], camera, spd
    )
    decoded = PhysicsDecoder()(_decoder_inputs(faces))
    np.testing.assert_allclose(ours, decoded["linear_srgb"].numpy(), atol=1e-4, rtol=0)
    assert ours.max() > 0.05, "the comparison covers lit skin"
    np.testing.assert_allclose(spd, decoded["illuminant_spd"].numpy(), atol=1e-6)
    np.testing.assert_allclose(ef.raw_to_xyz_for_camera(camera), decoded["T_raw2xyz"].numpy(), atol=1e-5)
    np.testing.assert_allclose(
        ef.raw_to_xyz_for_camera(camera), spectra.raw_to_xyz_matrix(faces["gt_b"].astype(np.float64)), atol=1e-9
    )


def test_noise_free_image_is_exactly_the_ground_truth_rendered_with_the_true_camera(faces):
    full_skin = (faces["mask"] > 0.5) & (faces["skin_fraction"] > 0.999)
    assert full_skin.sum() > 0.15 * full_skin.size
    rendered = ef.linear_srgb_from_maps(
        faces["gt_fmel"], faces["gt_fblood"], faces["gt_shading"], faces["gt_specmask"],
        faces["camera_sensitivity"].astype(np.float64), faces["illuminant_spd"].astype(np.float64),
    )
    exposed = faces["linear"] * faces["exposure"][:, None, None, None]
    difference = np.abs(rendered - exposed)[full_skin]
    assert np.median(difference) < 1e-7 and np.mean(difference > 1e-6) < 1e-3, "exact up to rounding"
    assert difference.max() < 1e-3, "bar the final ReLU acting per sample on edge pixels"


def test_pca_camera_of_the_ground_truth_is_close_but_not_the_camera(faces):
    full_skin = (faces["mask"] > 0.5) & (faces["skin_fraction"] > 0.999)
    decoded = PhysicsDecoder()(_decoder_inputs(faces))["linear_srgb"].numpy()
    exposed = faces["linear"] * faces["exposure"][:, None, None, None]
    relative = np.abs(decoded - exposed)[full_skin].mean() / exposed[full_skin].mean()
    assert 1e-5 < relative < 0.08, relative
    fitted = spectra.camera_sensitivity(faces["gt_b"].astype(np.float64))
    assert np.abs(fitted - faces["camera_sensitivity"]).max() > 1e-3, "mixed cameras are not PCA cameras"


def test_pca_coordinates_recover_pca_cameras():
    pca = spectra.camera_pca()
    b = np.random.default_rng(0).uniform(-1.5, 1.5, size=(40, 2))
    b = b[np.all(b @ pca.components + pca.mean > 0, axis=1)]
    assert len(b) > 5
    np.testing.assert_allclose(ef.pca_coordinates(spectra.camera_sensitivity(b)), b, atol=1e-9)


def test_ground_truth_ranges(faces):
    mask = faces["mask"] > 0.5
    assert np.all(np.abs(faces["gt_fmel"]) <= 1) and np.all(np.abs(faces["gt_fblood"]) <= 1)
    assert np.all(faces["gt_shading"][mask] > 0) and np.all(faces["gt_shading"][~mask] == 0)
    assert np.all(faces["gt_specmask"] >= 0) and np.all(faces["gt_specmask"][~mask] == 0)
    assert np.all(np.abs(faces["gt_b"]) <= 3)
    weights = faces["gt_light_weights"]
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-6)
    assert np.all(weights >= 0) and np.all(np.isin((weights > 0).sum(axis=1), (2, 3))), "2-3 illuminant mixes"
    assert np.all((faces["gt_cct"] >= 1) & (faces["gt_cct"] <= 22))
    coverage = mask.mean(axis=(1, 2))
    assert np.all((coverage > 0.1) & (coverage < 0.7)), coverage
    assert np.all((faces["image"] >= 0) & (faces["image"] <= 1))
    norms = np.linalg.norm(faces["normals"][mask], axis=-1)
    np.testing.assert_allclose(norms, 1.0, atol=1e-4)
    per_face = [faces["gt_fmel"][i][mask[i]] for i in range(N)]
    assert min(np.std(m) for m in per_face) > 0.02, "melanin varies within each face"


def test_mask_holds_skin_only(faces):
    mask = faces["mask"] > 0.5
    material = faces["material"]
    assert not np.any(mask & np.isin(material, NOT_SKIN)), "no eyes, hair, mouth or background in the mask"
    assert np.all(material[mask] == ef.SKIN)
    eyes = np.isin(material, (ef.SCLERA, ef.IRIS, ef.PUPIL))
    assert eyes.any(axis=(1, 2)).all(), "eyes are drawn and left out of the mask"


def test_same_seed_and_index_same_face():
    whole = ef.render_eval_faces(3, 24, seed=4)
    third = ef.render_eval_faces(1, 24, seed=4, start=2)
    for key in ("image", "gt_fmel", "gt_shading", "gt_b", "lrgb"):
        np.testing.assert_array_equal(whole[key][2], third[key][0])
    other = ef.render_eval_faces(1, 24, seed=5, start=2)
    assert not np.array_equal(other["gt_fmel"][0], third["gt_fmel"][0])


def test_file_layout_and_reader(eval_file):
    with h5py.File(eval_file, "r") as f:
        assert f.attrs["family"] == "eval_faces" and f.attrs["seed"] == SEED
        assert f.attrs["normal_encoding"] == "signed" and "evaluation" in f.attrs["description"]
        assert f["zx_7"].shape == (3, 10, SIZE, SIZE) and f["zx_7"].dtype == np.float32
        assert f["lrgb"].shape == (3, 3, 9)
        for name in ("gt_fmel", "gt_fblood", "gt_shading", "gt_specmask"):
            assert f[name].shape == (3, SIZE, SIZE)
        shapes = {name: f[name].shape for name in ("gt_b", "gt_light_weights", "gt_cct", "camera_sensitivity")}
        stored_image = f["zx_7"][:, :3].transpose(0, 2, 3, 1)
    assert shapes == {"gt_b": (3, 2), "gt_light_weights": (3, 14), "gt_cct": (3, 1), "camera_sensitivity": (3, 3, 33)}
    np.testing.assert_array_equal(stored_image, ef.render_eval_faces(3, SIZE, SEED)["image"])
    with CelebAFaces([eval_file], image_size=SIZE) as reader:
        assert reader.has_ground_truth and reader.files[0].normal_encoding == "signed"
        batch = reader.read(range(3), ground_truth=True)
    inside = batch["mask"][..., 0] > 0.5
    for i in range(3):
        gt, pseudo = batch["gt_shading"][i, ..., 0][inside[i]], batch["shading"][i, ..., 0][inside[i]]
        assert np.corrcoef(gt, pseudo)[0, 1] > 0.75, "the SH fit follows the shading used"
        assert abs(pseudo.mean() / gt.mean() - 1.0) < 0.15


def test_sh_fit_is_exact_for_sh_shading():
    rng = np.random.default_rng(2)
    normals = rng.normal(size=(16, 16, 3))
    normals[..., 2] = np.abs(normals[..., 2])
    normals /= np.linalg.norm(normals, axis=-1, keepdims=True)
    sh = sh_shading.directional_sh(np.array([[0.3, 0.4, 0.866]]), 0.8, 0.3)
    shading = sh_shading.grey_shading(normals[None], np.repeat(sh[:, None], 3, axis=1))[0]
    fitted = ef.fit_sh_lighting(normals, shading, np.ones((16, 16), bool))
    refit = sh_shading.grey_shading(normals[None].astype(np.float32), np.repeat(fitted[None, None], 3, axis=1))[0]
    np.testing.assert_allclose(refit, shading, atol=1e-4)


def test_bad_arguments_name_the_file(tmp_path):
    with pytest.raises(DataError, match="out.h5"):
        ef.write_eval_faces(tmp_path / "out.h5", 0)
    with pytest.raises(DataError, match=str(tmp_path)):
        ef.write_eval_faces(tmp_path, 1, size=16, progress=False)


def test_independent_of_the_training_generator_and_the_decoder():
    source = pathlib.Path(ef.__file__).read_text()
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module)
            imported.update(f"{node.module}.{alias.name}" for alias in node.names)
    assert not any("synth" in name or name.startswith("bioface_tf.physics") for name in imported), imported
    assert not any(name.startswith(("tensorflow", "keras")) for name in imported)
