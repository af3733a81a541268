"""``bioface separate`` and ``bioface specular-targets`` on tiny files."""

import hashlib

import cv2
import h5py
import numpy as np
import pytest

from bioface_tf import specular
from bioface_tf.cli import main
from bioface_tf.dichromatic_scene import render_face
from bioface_tf.specular_targets import Sidecar, TargetOptions, find_sources, sidecar_path

SIZE = 32


def _faces(n, seed=0):
    return [render_face(SIZE, seed=seed + i) for i in range(n)]


def _write_zx7(path, faces, normals=None):
    """A file in the CelebA layout: zx_7 (N, 10, H, W), image 0-2, mask 6; normals 3-5
    (``"signed"`` or ``"unit01"``-encoded) or zeros."""
    data = np.zeros((len(faces), 10, SIZE, SIZE), np.float32)
    for i, face in enumerate(faces):
        data[i, 0:3] = np.moveaxis(face.image_srgb, -1, 0)
        data[i, 6] = face.mask
        if normals is not None:
            n = face.normals if normals == "signed" else (face.normals + 1) / 2
            data[i, 3:6] = np.moveaxis(n, -1, 0)
    with h5py.File(path, "w") as f:
        f.create_dataset("zx_7", data=data)
    return path


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_targets_for_a_face_file_match_the_library_and_leave_it_untouched(tmp_path, capsys):
    faces = _faces(5)
    source = _write_zx7(tmp_path / "zx_7_d10_inmc_celebA_01.hdf5", faces)
    before = _digest(source)
    assert main(["specular-targets", str(source), "--workers", "2", "--chunk", "2"]) == 0
    assert _digest(source) == before
    sidecar = tmp_path / "zx_7_d10_inmc_celebA_01_specular.hdf5"
    expected = specular.separate_batch(
        np.stack([f.image_srgb for f in faces]), np.stack([f.mask for f in faces])
    )
    with h5py.File(sidecar, "r") as f:
        assert f["specular"].shape == f["specular_dark"].shape == (5, SIZE, SIZE)
        assert f["specular"].dtype == f["specular_dark"].dtype == np.float32
        np.testing.assert_allclose(f["specular"][:], expected.specular, atol=1e-5)
        np.testing.assert_allclose(f["specular_dark"][:], expected.specular_dark, atol=1e-6)
        assert f.attrs["curve"] == "srgb"
    assert not list(tmp_path.glob("*.partial"))


@pytest.mark.parametrize("encoding", ["signed", "unit01"])
def test_face_files_with_normals_get_the_light_geometry_by_default(tmp_path, encoding):
    faces = _faces(4)
    source = _write_zx7(tmp_path / "faces.hdf5", faces, normals=encoding)
    images, masks = np.stack([f.image_srgb for f in faces]), np.stack([f.mask for f in faces])
    normals = np.stack([f.normals for f in faces])
    light = specular.separate_batch(
        images, masks, params=specular.RefinementParams(geometry="light"), normals=normals
    ).specular
    smooth = specular.separate_batch(images, masks).specular
    assert np.abs(light - smooth).max() > 1e-3  # the two defaults differ on these faces
    assert main(["specular-targets", str(source), "--workers", "1", "--chunk", "3"]) == 0
    with h5py.File(tmp_path / "faces_specular.hdf5", "r") as f:
        np.testing.assert_allclose(f["specular"][:], light, atol=5e-5)  # chunks of 3 + 1 against one batch
        assert f.attrs["geometry"] == "light"
    assert main(["specular-targets", str(source), "--workers", "1", "--geometry", "none", "--overwrite"]) == 0
    with h5py.File(tmp_path / "faces_specular.hdf5", "r") as f:
        np.testing.assert_allclose(f["specular"][:], smooth, atol=1e-5)
        assert f.attrs["geometry"] == "none"


def test_face_files_without_normals_fall_back_to_colour_only(tmp_path):
    source = _write_zx7(tmp_path / "faces.hdf5", _faces(2))
    assert main(["specular-targets", str(source), "--workers", "1"]) == 0
    with h5py.File(tmp_path / "faces_specular.hdf5", "r") as f:
        assert f.attrs["geometry"] == "none"


def test_targets_go_to_the_out_folder_and_lighting_files_are_skipped(tmp_path):
    data = tmp_path / "celeba"
    data.mkdir()
    _write_zx7(data / "a_inmc.hdf5", _faces(2))
    with h5py.File(data / "a_lrgb.hdf5", "w") as f:
        f.create_dataset("zx_7", data=np.zeros((2, 3, 9), np.float32))
    out = tmp_path / "targets"
    assert main(["specular-targets", str(data), "--out", str(out), "--workers", "1"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["a_inmc_specular.hdf5"]
    assert sorted(p.name for p in data.iterdir()) == ["a_inmc.hdf5", "a_lrgb.hdf5"]


def test_an_interrupted_run_resumes_without_redoing_finished_chunks(tmp_path):
    source = _write_zx7(tmp_path / "faces.hdf5", _faces(4))
    options = TargetOptions(chunk=2)
    (src,) = find_sources([source], options)
    # Simulate a run killed after its first chunk: a marker value there must survive.
    sidecar = Sidecar(src, sidecar_path(source), options)
    first = next(iter(sidecar.pending()))
    sidecar.file["specular"][first[0] : first[1]] = -7.0
    sidecar.file["done"][0] = True
    sidecar.file.close()
    assert not sidecar_path(source).exists()
    assert main(["specular-targets", str(source), "--chunk", "2", "--workers", "1"]) == 0
    with h5py.File(sidecar_path(source), "r") as f:
        assert np.all(f["specular"][0:2] == -7.0)
        assert np.all(f["specular"][2:4] >= 0) and np.any(f["specular"][2:4] > 0)
        assert f["done"][:].all()


def test_a_partial_file_from_other_options_is_started_over(tmp_path):
    source = _write_zx7(tmp_path / "faces.hdf5", _faces(2))
    (src,) = find_sources([source])
    sidecar = Sidecar(src, sidecar_path(source), TargetOptions(chunk=1, curve="gamma2.2"))
    sidecar.file["specular"][0] = -7.0
    sidecar.file["done"][0] = True
    sidecar.file.close()
    assert main(["specular-targets", str(source), "--chunk", "1", "--workers", "1"]) == 0
    with h5py.File(sidecar_path(source), "r") as f:
        assert np.all(f["specular"][:] >= 0)
        assert f.attrs["curve"] == "srgb"


def test_photo_folder_targets_are_written_per_photo(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    face = render_face(40, seed=2)
    encoded = np.round(face.image_srgb * 255).astype(np.uint8)
    cv2.imwrite(str(folder / "me.png"), cv2.cvtColor(encoded, cv2.COLOR_RGB2BGR))
    assert main(["specular-targets", str(folder), "--workers", "1"]) == 0
    with h5py.File(folder / "me_specular.hdf5", "r") as f:
        assert f["specular"].shape == (1, 40, 40)
        expected = specular.separate(encoded)
        np.testing.assert_allclose(f["specular"][0], expected.specular, atol=1e-5)


@pytest.mark.parametrize(
    "build, problem",
    [
        (lambda p: h5py.File(p, "w").create_dataset("images", data=np.zeros((1, 10, 4, 4))), "no 'zx_7'"),
        (lambda p: h5py.File(p, "w").create_dataset("zx_7", data=np.zeros((1, 3, 4, 4))), "expected (N, C, H, W)"),
        (lambda p: h5py.File(p, "w").create_dataset("zx_7", data=np.full((1, 10, 4, 4), np.nan)), "non-finite"),
        (lambda p: h5py.File(p, "w").create_dataset("zx_7", data=np.full((1, 10, 4, 4), 255.0)), "expected sRGB"),
        (lambda p: p.write_bytes(b"not hdf5"), "not a readable HDF5"),
    ],
    ids=["no-zx7", "few-channels", "nan", "0-255", "garbage"],
)
def test_bad_face_files_give_a_clear_error(tmp_path, capsys, build, problem):
    path = tmp_path / "bad.hdf5"
    handle = build(path)
    if hasattr(handle, "file"):
        handle.file.close()
    assert main(["specular-targets", str(path), "--workers", "1"]) == 1
    err = capsys.readouterr().err
    assert str(path) in err and problem in err


def test_separate_writes_components_that_add_up_to_the_photo(tmp_path, capsys):
    face = render_face(48, seed=4)
    encoded = np.round(face.image_srgb * 255).astype(np.uint8)
    photo = tmp_path / "face.png"
    cv2.imwrite(str(photo), cv2.cvtColor(encoded, cv2.COLOR_RGB2BGR))
    assert main(["separate", str(photo), "--out", str(tmp_path / "out")]) == 0
    read = {
        name: specular.linearise(cv2.imread(str(tmp_path / "out" / f"face_{name}.png"))[..., ::-1])
        for name in ("diffuse", "specular", "specular_dark")
    }
    total = read["diffuse"] + read["specular"]
    # Both files are 8-bit sRGB, so the sum matches to quantisation.
    np.testing.assert_allclose(total, specular.linearise(encoded), atol=0.02)
    assert read["specular"].sum() < 0.5 * read["specular_dark"].sum()
    assert "illuminant (assumed)" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, problem",
    [
        (["missing.png"], "not a readable image"),
        (["{photo}", "--illuminant", "1,0,1"], "three positive numbers"),
        (["{photo}", "--mask", "{blank}"], "the mask is empty"),
    ],
)
def test_separate_reports_bad_input(tmp_path, capsys, args, problem):
    photo, blank = tmp_path / "p.png", tmp_path / "blank.png"
    cv2.imwrite(str(photo), np.full((16, 16, 3), 128, np.uint8))
    cv2.imwrite(str(blank), np.zeros((16, 16), np.uint8))
    args = [a.format(photo=photo, blank=blank) for a in args]
    assert main(["separate", *args]) == 1
    assert problem in capsys.readouterr().err
