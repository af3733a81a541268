"""Analysis: model + faces → maps, params.json fields, figures, files."""

import json

import numpy as np
import pytest

from bioface_tf import spectra
from bioface_tf.analysis import (
    analyse,
    analyse_files,
    cct_kelvin,
    decoder_of,
    illuminant_and_camera,
    load_model,
    nearest_camera,
)
from bioface_tf.editing import Edit, edit_faces, edit_parameters, render
from bioface_tf.errors import BioFaceError

SIZE = 32


@pytest.fixture(scope="module")
def model():
    from bioface_tf.model import build_bioface

    return build_bioface(SIZE, "mobile")


@pytest.fixture(scope="module")
def faces_file(tmp_path_factory):
    from bioface_tf.data.synth import write_synthetic

    return write_synthetic(tmp_path_factory.mktemp("faces") / "faces.h5", n=3, size=SIZE, seed=1, progress=False)


@pytest.fixture(scope="module")
def analysed(model, faces_file):
    from bioface_tf.data import CelebAFaces

    with CelebAFaces([faces_file], image_size=None) as faces:
        batch = faces.read(np.arange(3))
    return analyse(model, batch["image"], batch["mask"], batch_size=2)


def test_cct_maps_to_the_tabulated_daylights():
    np.testing.assert_allclose(cct_kelvin([1.0, 2.0, 22.0]), [4000.0, 5000.0, 25000.0])
    assert cct_kelvin(3.5) == pytest.approx(6500.0)


def test_nearest_camera_finds_each_database_camera_near_its_own_b():
    pca, names = spectra.camera_pca(), spectra.camera_database().names
    rng = np.random.default_rng(0)
    for k in rng.choice(len(names), 5, replace=False):
        gaps = np.linalg.norm(pca.scores - pca.scores[k], axis=1)
        gaps[k] = np.inf
        nudge = 0.4 * gaps.min() * np.array([0.6, 0.8])
        name, distance = nearest_camera(pca.scores[k] + nudge)
        assert name == names[k]
        assert distance == pytest.approx(0.4 * gaps.min(), rel=1e-6)


def test_analysis_holds_every_map_with_its_shape(analysed):
    assert len(analysed) == 3
    for key in ("fmel", "fblood", "shading", "specmask"):
        assert analysed.params[key].shape == (3, SIZE, SIZE, 1)
    assert analysed.params["b"].shape == (3, 2) and analysed.params["light_weights"].shape == (3, 14)
    assert analysed.reconstruction.shape == analysed.albedo.shape == (3, SIZE, SIZE, 3)
    assert np.all(np.abs(analysed.params["fmel"]) <= 1)
    assert not np.allclose(analysed.albedo, analysed.reconstruction), "the albedo is unlit, without highlights"


def test_unedited_rerender_equals_the_reconstruction(model, analysed):
    decoder = decoder_of(model)
    np.testing.assert_array_equal(render(edit_parameters(analysed.params, Edit()), decoder), analysed.reconstruction)
    np.testing.assert_allclose(edit_faces(analysed, Edit(), decoder), analysed.image, atol=1e-6)


def test_params_json_fields(analysed):
    record = illuminant_and_camera(analysed.params, 1)
    assert list(record["light_weights"]) == ["A", "D"] + [f"F{i}" for i in range(1, 13)]
    assert sum(record["light_weights"].values()) == pytest.approx(1.0, abs=1e-5)
    assert 4000 <= record["cct_kelvin"] <= 25000
    assert record["nearest_camera"] in spectra.camera_database().names
    assert len(record["camera_b"]) == 2
    json.dumps(record)


def test_analyse_files_writes_each_face_and_the_figure(model, faces_file, tmp_path):
    run = analyse_files(model, [faces_file], tmp_path / "out", limit=2, progress=False)
    assert run.names == ["faces_0", "faces_1"] and run.failures == []
    for name in run.names:
        folder = tmp_path / "out" / name
        for image in ("input", "reconstruction", "melanin", "haemoglobin", "diffuse_shading",
                      "specular_shading", "diffuse_albedo"):
            assert (folder / f"{image}.png").stat().st_size > 0
        record = json.loads((folder / "params.json").read_text())
        assert {"cct_kelvin", "light_weights", "camera_b", "nearest_camera"} <= set(record)
        assert 0 < record["mean_melanin_volume_fraction"] < spectra.MELANIN_MAX
        maps = np.load(folder / "maps.npz")
        assert maps["fmel"].shape == (SIZE, SIZE, 1)
    import cv2

    figure = cv2.imread(str(run.figure))
    assert figure is not None and figure.shape[0] > 2 * 128 and figure.shape[1] > 6 * 128


def test_faces_of_the_wrong_size_are_refused(model):
    with pytest.raises(BioFaceError, match="32, 32, 3"):
        analyse(model, np.zeros((1, 64, 64, 3), np.float32), np.ones((1, 64, 64, 1), np.float32))


def test_load_model_names_the_file(tmp_path):
    with pytest.raises(BioFaceError, match="not found"):
        load_model(tmp_path / "missing.keras")
    bad = tmp_path / "bad.keras"
    bad.write_text("not a model")
    with pytest.raises(BioFaceError, match=str(bad)):
        load_model(bad)
