"""Photos as users bring them: face crops without a detectable face, several faces, quiet commands."""

import json
import os

import cv2
import numpy as np
import pytest

from bioface_tf import native_logs
from bioface_tf.cli import main as bioface
from bioface_tf.data.photos import (
    CROP_DETECTED,
    CROP_WHOLE_ASKED,
    CROP_WHOLE_UNDETECTED,
    detect_faces,
    looks_like_face_crop,
    read_photo,
)
from data_builders import draw_face
from fresh_process import command, native_log_lines, run

SIZE = 32


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A tiny saved model, its float32 bundle, a 64x64 rendered face crop, a two-face photo, an off-centre portrait."""
    from bioface_tf.data.celeba import CelebAFaces
    from bioface_tf.data.synth import write_synthetic
    from bioface_tf.model import build_bioface

    import keras

    folder = tmp_path_factory.mktemp("photo_inputs")
    model = folder / "tiny.keras"
    keras.utils.set_random_seed(0)  # some random initialisations put fmel at +1, where a melanin edit is clipped away
    build_bioface(SIZE, "mobile", width_multiplier=0.25).save(model)
    rendered = write_synthetic(folder / "rendered.h5", n=1, size=64, seed=3, progress=False)
    with CelebAFaces([rendered], image_size=64) as faces:
        crop = faces.read([0])["image"][0]
    crop_path = folder / "crop64.png"
    cv2.imwrite(str(crop_path), cv2.cvtColor(np.round(crop * 255).astype(np.uint8), cv2.COLOR_RGB2BGR))
    two = folder / "two.png"
    cv2.imwrite(str(two), np.hstack([draw_face(400, 400, (200, 200), 1.2), draw_face(400, 400, (190, 210), 1.0)]))
    portrait = folder / "portrait.png"
    cv2.imwrite(str(portrait), draw_face(600, 800, centre=(220, 300), scale=1.5))
    return {"folder": folder, "model": model, "crop": crop_path, "two": two, "portrait": portrait, "h5": rendered}


@pytest.fixture(scope="module")
def bundle(files):
    assert bioface(["export", "--model", str(files["model"]), "--quantize", "float32",
                    "--out", str(files["folder"] / "bundle")]) == 0
    return files["folder"] / "bundle"


def _changed(before_path, after_path, threshold=3) -> np.ndarray:
    """`(H, W)` where two 8-bit images differ by more than ``threshold``."""
    before = cv2.imread(str(before_path)).astype(int)
    after = cv2.imread(str(after_path)).astype(int)
    assert before.shape == after.shape
    return np.abs(after - before).max(axis=-1) > threshold


def _centroid(changed: np.ndarray) -> tuple[float, float]:
    rows, cols = np.nonzero(changed)
    return float(cols.mean()), float(rows.mean())


@pytest.mark.parametrize(
    "height, width, crop",
    [(64, 64, True), (218, 178, True), (112, 96, True), (100, 400, True), (1000, 1000, True),
     (600, 800, False), (480, 640, False), (300, 500, False)],
)
def test_small_or_nearly_square_images_look_like_face_crops(height, width, crop):
    assert looks_like_face_crop(height, width) == crop


def test_a_rendered_64px_face_crop_is_edited_whole(files, tmp_path, capsys):
    assert detect_faces(read_photo(files["crop"])) == [], "the detector finds no face in this crop"
    out = tmp_path / "edited.png"
    status = bioface(["edit", str(files["crop"]), "--model", str(files["model"]), "--no-refine", "--melanin", "0.6", "--out", str(out)])
    err = capsys.readouterr().err
    assert status == 0, err
    assert f"{files['crop']}: no face detected" in err
    changed = _changed(files["crop"], out)
    assert changed.shape == (64, 64)
    assert changed[24:40, 24:40].mean() > 0.5, "the middle of the face changed"
    assert not changed[:4, :4].any() and not changed[-4:, -4:].any(), "the corners are outside the mask"


def test_analyze_says_a_crop_was_taken_whole(files, tmp_path, capsys):
    out = tmp_path / "maps"
    assert bioface(["analyze", str(files["crop"]), "--model", str(files["model"]), "--no-refine", "--out", str(out)]) == 0
    assert "no face detected" in capsys.readouterr().err
    record = json.loads((out / "crop64" / "params.json").read_text())
    assert record["crop"] == CROP_WHOLE_UNDETECTED
    assert record["crop_square"] == [0, 0, 64], "the whole 64x64 image"


def test_crop_none_takes_the_whole_photo_and_detect_its_face(files, tmp_path, capsys):
    photo = files["portrait"]
    height, width = read_photo(photo).shape[:2]
    (box,) = detect_faces(read_photo(photo))
    face_x = box[0] + box[2] / 2
    # the whole 800x600 photo's centre is background, where no skin mask can be found: the ellipse there
    for crop, mask, expected_x in (("detect", "skin", face_x), ("none", "ellipse", width / 2)):
        out = tmp_path / f"{crop}.png"
        assert bioface(["edit", str(photo), "--model", str(files["model"]), "--no-refine", "--crop", crop, "--melanin", "0.6",
                        "--mask", mask, "--out", str(out)]) == 0, capsys.readouterr().err
        x, _ = _centroid(_changed(photo, out))
        assert abs(x - expected_x) < 40, (crop, x, expected_x)
    assert bioface(["analyze", str(photo), "--model", str(files["model"]), "--no-refine", "--crop", "none", "--mask", "ellipse",
                    "--out", str(tmp_path / "maps")]) == 0
    record = json.loads((tmp_path / "maps" / "portrait" / "params.json").read_text())
    assert record["crop"] == CROP_WHOLE_ASKED
    side = max(height, width)
    assert record["crop_square"] == [(width - side) // 2, (height - side) // 2, side]


def test_a_large_non_square_photo_without_a_face_is_an_error_unless_crop_none(files, tmp_path, capsys):
    wall = tmp_path / "wall.png"
    cv2.imwrite(str(wall), np.full((300, 500, 3), 180, np.uint8))
    out = tmp_path / "out.png"
    args = ["edit", str(wall), "--model", str(files["model"]), "--no-refine", "--melanin", "0.4", "--out", str(out)]
    assert bioface(args) == 1
    err = capsys.readouterr().err
    assert f"{wall}: no face found" in err
    assert not out.exists()
    assert bioface([*args, "--crop", "none"]) == 1
    assert f"{wall}: no skin found" in capsys.readouterr().err, "a grey wall has no skin colour"
    assert bioface([*args, "--crop", "none", "--mask", "ellipse"]) == 0
    assert cv2.imread(str(out)).shape == (300, 500, 3)


def test_all_faces_edits_every_face_and_the_default_only_the_largest(files, tmp_path, capsys):
    photo = files["two"]
    boxes = detect_faces(read_photo(photo))
    assert len(boxes) == 2 and boxes[0][0] < 400 <= boxes[1][0], "one face on each half"
    assert boxes[0][2] > boxes[1][2], "the left face is the larger"
    common = ["--model", str(files["model"]), "--no-refine", "--melanin", "0.6"]
    largest, every = tmp_path / "largest.png", tmp_path / "every.png"
    assert bioface(["edit", str(photo), *common, "--out", str(largest)]) == 0
    assert bioface(["edit", str(photo), *common, "--all-faces", "--out", str(every)]) == 0
    assert "(2 faces)" in capsys.readouterr().out
    for out, right_changes in ((largest, False), (every, True)):
        changed = _changed(photo, out)
        assert changed[:, :400].mean() > 0.02, "the left face changed"
        assert bool(changed[:, 400:].mean() > 0.02) == right_changes, "the right face changed only with --all-faces"


def test_all_faces_analyses_each_face_into_its_own_folder(files, tmp_path):
    out = tmp_path / "maps"
    assert bioface(["analyze", str(files["two"]), "--model", str(files["model"]), "--no-refine", "--all-faces", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["two_face0", "two_face1"]
    records = [json.loads((out / f"two_face{k}" / "params.json").read_text()) for k in (0, 1)]
    assert all(r["crop"] == CROP_DETECTED for r in records)
    assert records[0]["crop_square"][0] < 400 <= records[1]["crop_square"][0], "numbered left to right"
    with np.load(out / "two_face0" / "maps.npz") as a, np.load(out / "two_face1" / "maps.npz") as b:
        assert not np.array_equal(a["fmel"], b["fmel"]), "two different faces"


def test_all_faces_is_refused_for_an_hdf5_file(files, tmp_path, capsys):
    assert bioface(["edit", str(files["h5"]), "--model", str(files["model"]), "--no-refine", "--all-faces",
                    "--out", str(tmp_path / "x.png")]) == 1
    assert f"{files['h5']}: --all-faces is for photos" in capsys.readouterr().err


def test_lite_takes_crops_whole_and_edits_every_face(files, bundle, tmp_path, capsys):
    pytest.importorskip("ai_edge_litert.interpreter")
    from mobile_export.cli import main as bioface_lite

    out = tmp_path / "maps"
    assert bioface_lite(["analyze", str(files["crop"]), "--models", str(bundle), "--out", str(out)]) == 0
    assert "no face detected" in capsys.readouterr().err
    assert json.loads((out / "crop64" / "params.json").read_text())["crop"] == CROP_WHOLE_UNDETECTED
    every = tmp_path / "every.png"
    assert bioface_lite(["edit", str(files["two"]), "--models", str(bundle), "--melanin", "0.6", "--all-faces",
                         "--out", str(every)]) == 0
    changed = _changed(files["two"], every)
    assert changed[:, :400].mean() > 0.02 and changed[:, 400:].mean() > 0.02


def test_filtered_drops_native_log_lines_and_keeps_the_rest(monkeypatch, capfd):
    monkeypatch.setattr(native_logs, "_quiet", True)
    with native_logs.filtered():
        os.write(2, b"I0000 00:00:1796204532.283904    3336 port.cc:153] oneDNN custom operations are on.\n")
        os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n")
        os.write(2, b"UserWarning: something the user should see\n")
    err = capfd.readouterr().err
    assert "something the user should see" in err
    assert "oneDNN" not in err and "absl" not in err


def test_bioface_prints_no_native_log_lines_unless_verbose(files, tmp_path):
    args = [*command("bioface"), "analyze", str(files["crop"]), "--model", str(files["model"])]
    quiet = run([*args, "--out", str(tmp_path / "quiet")])
    assert quiet.returncode == 0, quiet.stderr[-3000:]
    assert native_log_lines(quiet.stderr) == []
    assert "no face detected" in quiet.stderr, "messages for the user still come through"
    verbose = run([*args, "--out", str(tmp_path / "verbose"), "--verbose"])
    assert verbose.returncode == 0, verbose.stderr[-3000:]
    assert native_log_lines(verbose.stderr), "TensorFlow does log on this machine"


def test_bioface_lite_prints_no_native_log_lines_unless_verbose(files, bundle, tmp_path):
    pytest.importorskip("ai_edge_litert.interpreter")
    args = [*command("bioface-lite"), "edit", str(files["two"]), "--models", str(bundle), "--melanin", "0.3",
            "--out", str(tmp_path / "out.png")]
    quiet = run(args)
    assert quiet.returncode == 0, quiet.stderr[-3000:]
    assert native_log_lines(quiet.stderr) == []
    verbose = run([*args, "--verbose"])
    assert verbose.returncode == 0, verbose.stderr[-3000:]
    assert "XNNPACK" in verbose.stderr
