"""The CelebA (Shu et al.) HDF5 reader: layout, pairing, normals, shading."""

import h5py
import numpy as np
import pytest

from bioface_tf.data.celeba import CelebAFaces
from data_builders import expected_shading, random_faces, write_pair, zx7_stack


@pytest.mark.parametrize("encoding", ["signed", "unit01"])
def test_reads_images_masks_normals_and_shading(tmp_path, encoding):
    faces = random_faces(5, 8, seed=1)
    images, _ = write_pair(tmp_path, faces, encoding=encoding)
    with CelebAFaces([images], image_size=8) as reader:
        assert reader.files[0].normal_encoding == encoding
        batch = reader.read(range(5))
    np.testing.assert_array_equal(batch["image"], faces["image"])
    np.testing.assert_array_equal(batch["mask"][..., 0], faces["mask"])
    np.testing.assert_allclose(batch["normals"], faces["normals"], atol=1e-6)
    shading = expected_shading(faces["normals"], faces["sh"].astype(np.float64), faces["mask"])
    np.testing.assert_allclose(batch["shading"][..., 0], shading, rtol=1e-4, atol=1e-5)
    assert shading.max() > 0.5, "the test lighting should light the faces"
    np.testing.assert_array_equal(batch["shading_valid"], np.ones(5))


def test_several_pairs_from_a_glob_read_in_any_order(tmp_path):
    first, second = random_faces(4, 8, seed=2), random_faces(3, 8, seed=3)
    write_pair(tmp_path, first, tag="01")
    write_pair(tmp_path, second, tag="02", encoding="unit01")
    with CelebAFaces([str(tmp_path / "zx_7_*celebA_*.hdf5")], image_size=8) as reader:
        assert len(reader) == 7, "lighting files matched by the glob are paired, not read as images"
        assert [f.normal_encoding for f in reader.files] == ["signed", "unit01"]
        order = [6, 0, 4, 2]
        batch = reader.read(order)
    all_images = np.concatenate([first["image"], second["image"]])
    all_normals = np.concatenate([first["normals"], second["normals"]])
    np.testing.assert_array_equal(batch["image"], all_images[order])
    np.testing.assert_allclose(batch["normals"], all_normals[order], atol=1e-6)


def test_lighting_file_by_general_name_rule_and_explicitly(tmp_path):
    faces = random_faces(2, 8, seed=4)
    images, lighting = tmp_path / "faces_inmc.h5", tmp_path / "faces_lrgb.h5"
    with h5py.File(images, "w") as f:
        f["zx_7"] = zx7_stack(faces)
    with h5py.File(lighting, "w") as f:
        f["zx_7"] = faces["sh"]
    with CelebAFaces([images], image_size=8) as reader:
        assert reader.files[0].lighting == lighting
    renamed = tmp_path / "my_lights.h5"
    lighting.rename(renamed)
    with CelebAFaces([images], lighting=[renamed], image_size=8) as reader:
        shading = reader.read([0, 1])["shading"][..., 0]
    expected = expected_shading(faces["normals"], faces["sh"].astype(np.float64), faces["mask"])
    np.testing.assert_allclose(shading, expected, rtol=1e-4, atol=1e-5)


def test_lighting_held_in_the_image_file(tmp_path):
    faces = random_faces(2, 8, seed=5)
    path = tmp_path / "one_file.h5"
    with h5py.File(path, "w") as f:
        f["zx_7"] = zx7_stack(faces)
        f["lrgb"] = faces["sh"]
    with CelebAFaces([path], image_size=8) as reader:
        assert reader.files[0].lighting == path
        shading = reader.read([1])["shading"][0, ..., 0]
    expected = expected_shading(faces["normals"][1:], faces["sh"][1:].astype(np.float64), faces["mask"][1:])[0]
    np.testing.assert_allclose(shading, expected, rtol=1e-4, atol=1e-5)


def test_reads_only_the_faces_asked_for(tmp_path, monkeypatch):
    faces = random_faces(40, 8, seed=6)
    images, _ = write_pair(tmp_path, faces)
    selections = []
    original = h5py.Dataset.__getitem__

    def spy(self, selection):
        selections.append(selection)
        return original(self, selection)

    with CelebAFaces([images], image_size=8) as reader:
        monkeypatch.setattr(h5py.Dataset, "__getitem__", spy)
        reader.read([3, 17, 30])
    sizes = [len(range(40)[s]) if isinstance(s, slice) else len(s) for s in selections]
    assert sizes and max(sizes) == 3, f"whole-file reads: {selections}"
