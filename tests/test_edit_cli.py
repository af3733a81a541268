"""``bioface analyze`` and ``bioface edit`` on photos of any size, HDF5 faces and bad files."""

import cv2
import numpy as np
import pytest

from bioface_tf.cli import main
from bioface_tf.data.photos import crop_box, detect_face, paste_change, read_photo
from bioface_tf.errors import DataError
from data_builders import draw_face


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    from bioface_tf.model import build_bioface

    path = tmp_path_factory.mktemp("model") / "mobile.keras"
    build_bioface(64, "mobile").save(path)
    return path


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    """A 800x600 PNG photo with a face the detector finds."""
    path = tmp_path_factory.mktemp("photos") / "portrait.png"
    cv2.imwrite(str(path), draw_face(600, 800, centre=(420, 300), scale=2.0))
    return path


def _bad_photos(folder):
    """One file for each way a photo can be bad; returns {path: words the message must hold}."""
    wall = folder / "wall.png"  # neither small nor square, so not taken whole as a face crop
    cv2.imwrite(str(wall), np.full((200, 320, 3), 200, np.uint8))
    grey = folder / "grey.png"
    cv2.imwrite(str(grey), np.full((200, 200), 90, np.uint8))
    tiny = folder / "tiny.png"
    cv2.imwrite(str(tiny), np.full((8, 8, 3), 90, np.uint8))
    text = folder / "notes.jpg"
    text.write_text("not an image")
    whole = folder / "whole.jpg"
    cv2.imwrite(str(whole), draw_face(300, 300, centre=(150, 150), scale=1.0))
    cut = folder / "cut.jpg"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    whole.unlink()
    return {wall: "no face", grey: "greyscale", tiny: "8x8", text: "unreadable", cut: "truncated"}


def test_truncated_jpeg_is_refused_although_opencv_decodes_it(tmp_path):
    whole = tmp_path / "whole.jpg"
    cv2.imwrite(str(whole), draw_face(200, 200, centre=(100, 100), scale=0.8))
    assert read_photo(whole).shape == (200, 200, 3)
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(whole.read_bytes()[:-300])
    assert cv2.imread(str(cut)) is not None, "OpenCV alone does not notice"
    with pytest.raises(DataError, match="cut.jpg: truncated"):
        read_photo(cut)


def test_paste_change_adds_the_change_at_full_resolution_and_nowhere_else():
    rng = np.random.default_rng(0)
    photo = rng.random((90, 120, 3)).astype(np.float32)
    square = (80, -10, 60)  # reaches past the right and top edges
    before = np.full((16, 16, 3), 0.5, np.float32)
    after = before.copy()
    after[6:10, 6:10] += 0.1
    out = paste_change(photo, square, before, after)
    assert out.shape == photo.shape
    changed = np.abs(out - photo).max(axis=-1) > 1e-6
    rows, cols = np.nonzero(changed)
    assert rows.min() >= 0 and rows.max() < 50 and cols.min() >= 80
    assert changed[18, 102], "the middle of the square moved"
    np.testing.assert_array_equal(paste_change(photo, square, before, before), photo)


def test_edit_a_full_size_photo_keeps_its_size_and_the_outside(model_path, photo, tmp_path, capsys):
    out = tmp_path / "edited.png"
    status = main(["edit", str(photo), "--model", str(model_path), "--no-refine", "--melanin", "+0.4", "--haemoglobin", "+0.3",
                   "--out", str(out)])
    assert status == 0, capsys.readouterr().err
    before = cv2.imread(str(photo)).astype(int)
    after = cv2.imread(str(out)).astype(int)
    assert after.shape == before.shape == (600, 800, 3)
    left, top, side = crop_box(detect_face(read_photo(photo)))
    outside = np.ones(before.shape[:2], bool)
    outside[max(top, 0) : top + side, max(left, 0) : left + side] = False
    np.testing.assert_array_equal(after[outside], before[outside])
    face = (slice(top + side // 3, top + 2 * side // 3), slice(left + side // 3, left + 2 * side // 3))
    assert np.abs(after[face] - before[face]).mean() > 1, "the face changed"
    assert "edited.png (800x600)" in capsys.readouterr().out


def test_unedited_photo_comes_back_unchanged(model_path, photo, tmp_path):
    out = tmp_path / "same.png"
    assert main(["edit", str(photo), "--model", str(model_path), "--no-refine", "--out", str(out)]) == 0
    difference = np.abs(cv2.imread(str(out)).astype(int) - cv2.imread(str(photo)).astype(int))
    assert difference.max() <= 1, "identity up to 8-bit rounding"


def test_edit_one_face_of_an_hdf5_file(model_path, tmp_path, capsys):
    from bioface_tf.data.synth import write_synthetic

    faces = write_synthetic(tmp_path / "faces.h5", n=2, size=64, seed=3, progress=False)
    out = tmp_path / "face1.png"
    assert main(["edit", str(faces), "--face", "1", "--model", str(model_path), "--no-refine", "--specular", "0",
                 "--illuminant", "A", "--out", str(out)]) == 0
    assert cv2.imread(str(out)).shape == (64, 64, 3)
    assert main(["edit", str(faces), "--face", "5", "--model", str(model_path), "--no-refine", "--out", str(out)]) == 1
    assert "no face 5" in capsys.readouterr().err


@pytest.mark.parametrize("bad", ["wall.png", "grey.png", "tiny.png", "notes.jpg", "cut.jpg"])
def test_edit_of_a_bad_photo_names_the_file_and_fails(model_path, tmp_path, capsys, bad):
    expected = {path.name: words for path, words in _bad_photos(tmp_path).items()}
    status = main(["edit", str(tmp_path / bad), "--model", str(model_path), "--no-refine", "--melanin", "0.4",
                   "--out", str(tmp_path / "out.png")])
    err = capsys.readouterr().err
    assert status == 1
    assert str(tmp_path / bad) in err and expected[bad] in err
    assert not (tmp_path / "out.png").exists()


def test_analyze_batch_reports_bad_photos_and_goes_on(model_path, photo, tmp_path, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    bad = _bad_photos(folder)
    (folder / photo.name).write_bytes(photo.read_bytes())
    status = main(["analyze", str(folder), "--model", str(model_path), "--no-refine", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert status == 1
    for path, words in bad.items():
        assert any(str(path) in line and words in line for line in err.splitlines()), (path, err)
    assert (tmp_path / "out" / "portrait" / "params.json").exists()
    assert (tmp_path / "out" / "figure.png").exists()
    assert not (tmp_path / "out" / "wall").exists()


def test_analyze_with_no_usable_input_fails(model_path, tmp_path, capsys):
    wall = tmp_path / "wall.png"
    cv2.imwrite(str(wall), np.full((160, 300, 3), 200, np.uint8))
    assert main(["analyze", str(wall), "--model", str(model_path), "--no-refine", "--out", str(tmp_path / "out")]) == 1
    assert "no face analysed" in capsys.readouterr().err
