"""The loader picks up specular-target sidecars (``X_specular.hdf5``) by name."""

import h5py
import numpy as np
import pytest

from bioface_tf.cli import main
from bioface_tf.data.celeba import CelebAFaces
from bioface_tf.data.pipeline import make_dataset
from bioface_tf.errors import DataError
from data_builders import random_faces, write_pair

N, SIZE = 6, 8


def write_sidecar(path, specular, **extra):
    """A sidecar as the loader reads it: float32 ``specular`` (N, H, W)."""
    with h5py.File(path, "w") as f:
        f["specular"] = specular.astype(np.float32)
        f["specular_dark"] = (specular + 0.1).astype(np.float32)
        f.attrs["curve"] = "srgb"
        for name, value in extra.items():
            f[name] = value
    return path


def sidecar_for(image_path, folder=None):
    folder = image_path.parent if folder is None else folder
    return folder / (image_path.stem + "_specular.hdf5")


@pytest.fixture
def pair(tmp_path):
    faces = random_faces(N, SIZE, seed=31)
    images, _ = write_pair(tmp_path, faces)
    targets = np.random.default_rng(5).uniform(0.0, 0.2, size=(N, SIZE, SIZE)).astype(np.float32)
    return faces, images, targets


def test_sidecar_beside_the_image_file_is_read_in_the_order_asked(pair):
    _, images, targets = pair
    write_sidecar(sidecar_for(images), targets)
    with CelebAFaces([images], image_size=SIZE) as faces:
        assert faces.has_specular_targets
        assert faces.files[0].specular == sidecar_for(images)
        assert faces.files[0].specular_curve == "srgb"
        batch = faces.read([4, 0, 2], specular_target=True)
    assert batch["specular_target"].shape == (3, SIZE, SIZE, 1)
    np.testing.assert_array_equal(batch["specular_target"][..., 0], targets[[4, 0, 2]])


def test_sidecar_in_a_named_folder_comes_first(pair, tmp_path):
    _, images, targets = pair
    write_sidecar(sidecar_for(images), np.zeros_like(targets))
    folder = tmp_path / "targets"
    folder.mkdir()
    write_sidecar(sidecar_for(images, folder), targets)
    with CelebAFaces([images], image_size=SIZE, specular_dir=folder) as faces:
        assert faces.files[0].specular == sidecar_for(images, folder)
        np.testing.assert_array_equal(faces.read([1], specular_target=True)["specular_target"][0, ..., 0], targets[1])
    with pytest.raises(DataError, match="no such folder"):
        CelebAFaces([images], image_size=SIZE, specular_dir=tmp_path / "absent")


def test_a_sidecar_of_the_wrong_shape_names_both_files(pair):
    _, images, targets = pair
    sidecar = write_sidecar(sidecar_for(images), targets[:-1])
    with pytest.raises(DataError) as err:
        CelebAFaces([images], image_size=SIZE)
    assert str(sidecar) in str(err.value) and str(images) in str(err.value)
    assert "(5, 8, 8)" in str(err.value) and "(6, 8, 8)" in str(err.value)


def test_a_sidecar_without_specular_is_refused(pair):
    _, images, targets = pair
    with h5py.File(sidecar_for(images), "w") as f:
        f["specular_dark"] = targets
    with pytest.raises(DataError, match="no 'specular' dataset"):
        CelebAFaces([images], image_size=SIZE)


def test_glob_over_a_folder_skips_the_sidecars(pair):
    _, images, targets = pair
    write_sidecar(sidecar_for(images), targets)
    with CelebAFaces([str(images.parent / "*.hdf5")], image_size=SIZE) as faces:
        assert [f.images for f in faces.files] == [images]
        assert len(faces) == N


def test_pipeline_yields_targets_flipped_with_the_image(pair):
    faces, images, targets = pair
    write_sidecar(sidecar_for(images), targets)
    with CelebAFaces([images], image_size=SIZE) as reader:
        batches = [
            {k: v.numpy() for k, v in b.items()}
            for b in make_dataset(reader, batch_size=4, flip=True, shuffle=False, seed=3)
        ]
    out = {k: np.concatenate([b[k] for b in batches]) for k in batches[0]}
    assert out["specular_target"].shape == (N, SIZE, SIZE, 1)
    flipped = 0
    for i in range(N):
        mirrored = not np.array_equal(out["srgb"][i], faces["image"][i])
        flipped += mirrored
        expected = targets[i, :, ::-1] if mirrored else targets[i]
        np.testing.assert_array_equal(out["specular_target"][i, ..., 0], expected)
    assert 0 < flipped < N, "some faces are flipped, some are not"


def test_pipeline_without_sidecars(pair, tmp_path):
    _, images, targets = pair
    with CelebAFaces([images], image_size=SIZE) as reader:
        assert not reader.has_specular_targets
        batch = next(iter(make_dataset(reader, batch_size=4, seed=0)))
        assert "specular_target" not in batch
        with pytest.raises(DataError) as err:
            make_dataset(reader, batch_size=4, specular_target=True)
    assert str(images) in str(err.value) and "bioface specular-targets" in str(err.value)

    write_sidecar(sidecar_for(images), targets)
    with CelebAFaces([images], image_size=SIZE) as reader:
        batch = next(iter(make_dataset(reader, batch_size=4, seed=0, specular_target=False)))
    assert "specular_target" not in batch


def test_only_some_files_with_sidecars(pair, tmp_path):
    _, images, targets = pair
    other_folder = tmp_path / "other"
    other_folder.mkdir()
    other, _ = write_pair(other_folder, random_faces(3, SIZE, seed=32), tag="02")
    write_sidecar(sidecar_for(images), targets)
    with CelebAFaces([images, other], image_size=SIZE) as reader:
        assert not reader.has_specular_targets
        assert "specular_target" not in next(iter(make_dataset(reader, batch_size=4, seed=0)))
        with pytest.raises(DataError) as err:
            reader.read([0], specular_target=True)
    assert str(other) in str(err.value) and str(images) not in str(err.value)


def test_non_finite_targets_stop_validation(pair):
    _, images, targets = pair
    targets[3, 2, 2] = np.nan
    sidecar = write_sidecar(sidecar_for(images), targets)
    with CelebAFaces([images], image_size=SIZE) as reader:
        with pytest.raises(DataError) as err:
            make_dataset(reader, batch_size=4)
    assert str(sidecar) in str(err.value) and "[3]" in str(err.value)


def test_targets_written_by_the_command_are_picked_up(tmp_path):
    faces = random_faces(3, 16, seed=33)
    images, _ = write_pair(tmp_path, faces)
    assert main(["specular-targets", str(images), "--workers", "1", "--out", str(tmp_path / "t")]) == 0
    with h5py.File(sidecar_for(images, tmp_path / "t"), "r") as f:
        written = f["specular"][:]
    with CelebAFaces([images], image_size=16, specular_dir=tmp_path / "t") as reader:
        batch = next(iter(make_dataset(reader, batch_size=3, flip=False, shuffle=False)))
    np.testing.assert_array_equal(batch["specular_target"].numpy()[..., 0], written)
