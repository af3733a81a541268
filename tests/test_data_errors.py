"""Each kind of bad input named in DATA.md gets a clear error and exit status 1."""

import cv2
import h5py
import numpy as np
import pytest

from bioface_tf.cli import main
from bioface_tf.data.celeba import CelebAFaces
from bioface_tf.data.pipeline import make_dataset
from bioface_tf.errors import DataError
from data_builders import random_faces, write_pair, zx7_stack


def run_inspect(capsys, *args):
    status = main(["inspect", *map(str, args)])
    return status, capsys.readouterr().err


def assert_cli_error(capsys, path, *words, args=()):
    status, err = run_inspect(capsys, path, *args)
    assert status == 1
    assert str(path) in err
    for word in words:
        assert word in err, err


@pytest.fixture
def pair(tmp_path):
    faces = random_faces(3, 8, seed=10)
    images, lighting = write_pair(tmp_path, faces)
    return faces, images, lighting


def test_missing_zx7_dataset(tmp_path, capsys):
    path = tmp_path / "zx_7_d10_inmc_celebA_01.hdf5"
    with h5py.File(path, "w") as f:
        f["images"] = np.zeros((2, 10, 8, 8), np.float32)
    assert_cli_error(capsys, path, "no 'zx_7' dataset", "images")


def test_wrong_channel_count(tmp_path, capsys):
    faces = random_faces(2, 8)
    images, _ = write_pair(tmp_path, faces)
    with h5py.File(images, "w") as f:
        f["zx_7"] = zx7_stack(faces)[:, :7]
    assert_cli_error(capsys, images, "7", "10 channels")


def test_wrong_spatial_size(pair, capsys):
    _, images, _ = pair
    assert_cli_error(capsys, images, "8x8", "expected 64x64", args=("--size", "64"))
    with pytest.raises(DataError, match="8x8, expected 64x64"):
        CelebAFaces([images])


def test_non_square_images(tmp_path, capsys):
    faces = random_faces(2, 8)
    images, _ = write_pair(tmp_path, faces)
    with h5py.File(images, "w") as f:
        f["zx_7"] = zx7_stack(faces)[..., :6]
    assert_cli_error(capsys, images, "8x6", "square")


def test_image_and_lighting_files_of_different_lengths(pair, capsys):
    faces, images, lighting = pair
    with h5py.File(lighting, "w") as f:
        f["zx_7"] = faces["sh"][:2]
    assert_cli_error(capsys, images, "3 faces", str(lighting), "2")


def test_missing_lighting_file(pair, capsys):
    _, images, lighting = pair
    lighting.unlink()
    assert_cli_error(capsys, images, str(lighting), "not there")


def test_lighting_of_the_wrong_shape(pair, capsys):
    faces, images, lighting = pair
    with h5py.File(lighting, "w") as f:
        f["zx_7"] = faces["sh"][:, :, :4]
    status, err = run_inspect(capsys, images)
    assert status == 1 and str(lighting) in err and "(N, 3, 9)" in err


@pytest.mark.parametrize("where", ["image", "normals", "sh"])
def test_nan_and_inf_values(tmp_path, capsys, where):
    faces = random_faces(4, 8, seed=11)
    faces[where][2].flat[5] = np.nan
    faces[where][2].flat[7] = np.inf
    images, _ = write_pair(tmp_path, faces)
    assert_cli_error(capsys, images, "2 NaN/Inf values", "faces 2")
    reader = CelebAFaces([images], image_size=8)
    with pytest.raises(DataError, match="NaN/Inf"):
        make_dataset(reader, batch_size=2)


def test_empty_masks(tmp_path, capsys):
    faces = random_faces(4, 8, seed=12)
    faces["mask"][1] = 0.0
    faces["mask"][3] = 0.0
    images, _ = write_pair(tmp_path, faces)
    assert_cli_error(capsys, images, "empty face mask", "faces 1, 3")


def test_normals_that_are_not_unit_vectors(tmp_path, capsys):
    faces = random_faces(2, 8, seed=13)
    faces["normals"] *= 3.0
    images, _ = write_pair(tmp_path, faces)
    assert_cli_error(capsys, images, "not unit vectors")


def test_images_outside_zero_one(tmp_path, capsys):
    faces = random_faces(2, 8, seed=14)
    faces["image"] *= 255.0
    images, _ = write_pair(tmp_path, faces)
    assert_cli_error(capsys, images, "expected sRGB in [0, 1]")


def test_unreadable_file(tmp_path, capsys):
    path = tmp_path / "zx_7_d10_inmc_celebA_01.hdf5"
    path.write_bytes(b"this is not HDF5" * 100)
    assert_cli_error(capsys, path, "unreadable")


def test_truncated_file(tmp_path, capsys):
    faces = random_faces(20, 16, seed=15)
    images, _ = write_pair(tmp_path, faces)
    data = images.read_bytes()
    images.write_bytes(data[: len(data) // 2])
    status, err = run_inspect(capsys, images)
    assert status == 1 and str(images) in err
    assert "truncated" in err


def test_missing_file(tmp_path, capsys):
    assert_cli_error(capsys, tmp_path / "zx_7_d10_inmc_celebA_99.hdf5", "not found")


def test_glob_matching_nothing(tmp_path, capsys):
    status, err = run_inspect(capsys, tmp_path / "*.hdf5")
    assert status == 1 and "no files match" in err


def test_greyscale_photo(tmp_path, capsys):
    path = tmp_path / "grey.png"
    cv2.imwrite(str(path), np.full((100, 100), 128, np.uint8))
    assert_cli_error(capsys, path, "greyscale, not RGB")


def test_photo_far_too_small(tmp_path, capsys):
    path = tmp_path / "tiny.png"
    cv2.imwrite(str(path), np.full((20, 24, 3), 128, np.uint8))
    assert_cli_error(capsys, path, "24x20", "too small")


def test_unreadable_photo(tmp_path, capsys):
    path = tmp_path / "broken.jpg"
    path.write_bytes(b"\xff\xd8\xff not really a jpeg")
    assert_cli_error(capsys, path, "unreadable")


def test_photo_without_a_face(tmp_path, capsys):
    path = tmp_path / "wall.png"
    cv2.imwrite(str(path), np.full((120, 120, 3), 200, np.uint8))
    assert_cli_error(capsys, path, "no face found")
