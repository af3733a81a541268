"""Face photos: detection with OpenCV's cascade, crop, resize, skin or elliptical mask."""

import pytest

import cv2
import numpy as np

from bioface_tf.data.photos import PhotoFaces, elliptical_mask
from data_builders import draw_face

SKIN_RGB = np.array([220, 180, 150]) / 255.0
BACKGROUND_RGB = np.array([90, 120, 160]) / 255.0


@pytest.mark.parametrize("mask, held", [("ellipse", 0.9), ("skin", 0.8)])
def test_face_is_found_cropped_and_resized(tmp_path, mask, held):
    photo = draw_face(300, 420, centre=(300, 140), scale=0.9)
    cv2.imwrite(str(tmp_path / "face.png"), photo)
    faces = PhotoFaces([tmp_path], image_size=64, progress=False, mask=mask)
    batch = faces.read([0])
    image = batch["image"][0]
    assert image.shape == (64, 64, 3)
    skin = np.abs(image - SKIN_RGB).max(axis=-1) < 0.12
    rows, cols = np.nonzero(skin)
    assert abs(rows.mean() - 32) < 5 and abs(cols.mean() - 32) < 5, "the face is centred"
    inside = batch["mask"][0, ..., 0] > 0.5
    assert inside[skin].mean() > held, "the mask holds the face"
    if mask == "skin":
        white = image.min(axis=-1) > 0.9
        assert white.any() and not inside[white].any(), "and not the white of the eyes"
    assert not inside[0, :].any() and not inside[:, 0].any(), "and not the crop's border"
    corner = image[1, 1]
    assert np.abs(corner - BACKGROUND_RGB).max() < 0.1, "the crop's corner is background"
    assert batch["shading_valid"][0] == 0.0


def test_folder_reports_and_skips_photos_without_a_face(tmp_path):
    cv2.imwrite(str(tmp_path / "a_face.jpg"), draw_face(200, 200, centre=(100, 100), scale=0.8))
    cv2.imwrite(str(tmp_path / "b_wall.png"), np.full((200, 200, 3), 200, np.uint8))
    cv2.imwrite(str(tmp_path / "c_grey.png"), np.full((200, 200), 90, np.uint8))
    faces = PhotoFaces([tmp_path], image_size=32, progress=False)
    assert len(faces) == 1 and faces.paths == [tmp_path / "a_face.jpg"]
    reasons = dict(faces.skipped)
    assert reasons[tmp_path / "b_wall.png"] == "no face found"
    assert "not RGB" in reasons[tmp_path / "c_grey.png"]


def test_elliptical_mask_covers_an_ellipse():
    size = 64
    mask = elliptical_mask(size)[..., 0]
    assert mask.shape == (size, size)
    area_fraction = np.pi * 0.33 * 0.43
    assert abs(mask.mean() - area_fraction) < 0.01
    assert mask[size // 2, size // 2] == 1 and mask[0, 0] == 0
    np.testing.assert_array_equal(mask, mask[:, ::-1])
