"""The tf.data pipeline: preprocessing, flips, shuffling, batching, determinism."""

import numpy as np
import pytest

from bioface_tf.data.celeba import CelebAFaces
from bioface_tf.data.pipeline import MEAN_RGB, make_dataset
from data_builders import expected_shading, random_faces, write_pair

N = 10


@pytest.fixture(scope="module")
def faces_and_reader(tmp_path_factory):
    faces = random_faces(N, 8, seed=20)
    images, _ = write_pair(tmp_path_factory.mktemp("pipeline"), faces)
    faces["shading"] = expected_shading(faces["normals"], faces["sh"].astype(np.float64), faces["mask"])
    with CelebAFaces([images], image_size=8) as reader:
        yield faces, reader


def collect(dataset):
    batches = [{k: v.numpy() for k, v in b.items()} for b in dataset]
    return {k: np.concatenate([b[k] for b in batches]) for k in batches[0]}, [len(b["image"]) for b in batches]


@pytest.mark.parametrize("mode", ["reference", "display"])
def test_preprocessing(faces_and_reader, mode):
    faces, reader = faces_and_reader
    out, sizes = collect(make_dataset(reader, batch_size=4, preprocessing=mode, flip=False, shuffle=False))
    assert sizes == [4, 4, 2]
    srgb = faces["image"].astype(np.float64)
    intensity = srgb**2.2 if mode == "reference" else srgb
    expected = 255.0 * intensity - np.array(MEAN_RGB)
    np.testing.assert_allclose(out["image"], expected, rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(out["srgb"], srgb, atol=1e-7)
    np.testing.assert_allclose(out["shading"][..., 0], faces["shading"], rtol=1e-4, atol=1e-5)
    assert set(out) == {"image", "srgb", "mask", "normals", "shading", "shading_valid"}
    np.testing.assert_array_equal(out["shading_valid"], np.ones(N))


def test_flips_mirror_maps_and_normals_x(faces_and_reader):
    faces, reader = faces_and_reader
    out, _ = collect(make_dataset(reader, batch_size=3, flip=True, shuffle=False, seed=3))
    mirrored_normals = faces["normals"][:, :, ::-1] * np.array([-1.0, 1.0, 1.0])
    flipped = []
    for i in range(N):
        is_flipped = not np.array_equal(out["srgb"][i], faces["image"][i])
        flipped.append(is_flipped)
        source = (lambda a: a[i, :, ::-1]) if is_flipped else (lambda a: a[i])
        np.testing.assert_array_equal(out["srgb"][i], source(faces["image"]))
        np.testing.assert_array_equal(out["mask"][i, ..., 0], source(faces["mask"]))
        np.testing.assert_allclose(out["shading"][i, ..., 0], source(faces["shading"]), rtol=1e-4, atol=1e-5)
        normals = mirrored_normals[i] if is_flipped else faces["normals"][i]
        np.testing.assert_allclose(out["normals"][i], normals, atol=1e-6)
    assert 0 < sum(flipped) < N, "some faces are flipped, some are not"


def identify(out, faces):
    means = faces["image"].mean(axis=(1, 2, 3))
    return [int(np.argmin(np.abs(means - m))) for m in out["srgb"].mean(axis=(1, 2, 3))]


def test_shuffling_visits_every_face_once_and_is_deterministic(faces_and_reader):
    faces, reader = faces_and_reader
    dataset = make_dataset(reader, batch_size=4, seed=7)
    first, _ = collect(dataset)
    second, _ = collect(dataset)
    order_1, order_2 = identify(first, faces), identify(second, faces)
    assert sorted(order_1) == list(range(N)) and sorted(order_2) == list(range(N))
    assert order_1 != list(range(N)), "shuffled"
    assert order_1 != order_2, "a new order each epoch"
    again, _ = collect(make_dataset(reader, batch_size=4, seed=7))
    np.testing.assert_array_equal(again["image"], first["image"])
    other, _ = collect(make_dataset(reader, batch_size=4, seed=8))
    assert identify(other, faces) != order_1


def test_photos_have_no_shading_target(tmp_path):
    import cv2

    from bioface_tf.data.photos import PhotoFaces
    from data_builders import draw_face

    cv2.imwrite(str(tmp_path / "face.png"), draw_face(160, 160, centre=(80, 80), scale=0.7))
    photos = PhotoFaces([tmp_path], image_size=16, progress=False)
    batch = next(iter(make_dataset(photos, batch_size=2, seed=0)))
    assert batch["image"].shape == (1, 16, 16, 3)
    np.testing.assert_array_equal(batch["shading_valid"].numpy(), [0.0])


def test_drop_remainder_and_static_batch_size(faces_and_reader):
    _, reader = faces_and_reader
    dataset = make_dataset(reader, batch_size=4, drop_remainder=True)
    _, sizes = collect(dataset)
    assert sizes == [4, 4]
    assert dataset.element_spec["image"].shape.as_list() == [None, 8, 8, 3]
