"""``bioface inspect``: the summary of a training set, checked independently."""

import json

import cv2
import numpy as np

from bioface_tf.cli import main
from data_builders import draw_face, expected_shading, random_faces, write_pair

KEYS = {
    "n_faces", "image_size", "normal_encoding", "mask_coverage_mean", "shading_min",
    "shading_mean", "shading_max", "nonfinite", "has_ground_truth",
}


def inspect_json(capsys, *args):
    status = main(["inspect", "--json", *map(str, args)])
    return status, json.loads(capsys.readouterr().out)


def test_json_summary_of_two_pairs(tmp_path, capsys):
    first, second = random_faces(3, 8, seed=30), random_faces(2, 8, seed=31)
    write_pair(tmp_path, first, tag="01", encoding="unit01")
    write_pair(tmp_path, second, tag="02", encoding="unit01")
    status, info = inspect_json(capsys, tmp_path / "zx_7_d10_inmc_*.hdf5")
    assert status == 0
    assert KEYS <= set(info)
    masks = np.concatenate([first["mask"], second["mask"]])
    shading = np.concatenate(
        [expected_shading(f["normals"], f["sh"].astype(np.float64), f["mask"]) for f in (first, second)]
    )
    inside = shading[masks > 0.5]
    assert info["n_faces"] == 5 and info["image_size"] == 8
    assert info["normal_encoding"] == "unit01"
    assert np.isclose(info["mask_coverage_mean"], masks.mean(), atol=1e-9)
    assert np.isclose(info["shading_min"], inside.min(), rtol=1e-4, atol=1e-5)
    assert np.isclose(info["shading_mean"], inside.mean(), rtol=1e-4)
    assert np.isclose(info["shading_max"], inside.max(), rtol=1e-4)
    assert info["nonfinite"] == 0 and info["has_ground_truth"] is False


def test_nonfinite_values_are_counted_and_fail(tmp_path, capsys):
    faces = random_faces(3, 8, seed=32)
    faces["image"][0, 1, 1, 0] = np.nan
    faces["image"][2, 3, 3, :] = np.inf
    images, _ = write_pair(tmp_path, faces)
    status, info = inspect_json(capsys, images)
    assert status == 1 and info["nonfinite"] == 4


def test_text_summary_of_photos(tmp_path, capsys):
    cv2.imwrite(str(tmp_path / "face.png"), draw_face(160, 160, centre=(80, 80), scale=0.7))
    cv2.imwrite(str(tmp_path / "wall.png"), np.full((160, 160, 3), 30, np.uint8))
    status = main(["inspect", str(tmp_path)])
    out, err = capsys.readouterr()
    assert status == 0
    assert "faces:             1" in out and "normal encoding:   n/a" in out
    assert "wall.png: no face found" in err
