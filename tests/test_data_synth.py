"""Rendered faces: file layout, ground truth, and the image the ground truth implies."""

import h5py
import numpy as np
import pytest
import tensorflow as tf

from bioface_tf.cli import main
from bioface_tf.data.celeba import CelebAFaces
from bioface_tf.data.pipeline import make_dataset
from bioface_tf.data.stream import render_batch
from bioface_tf.physics import PhysicsDecoder

N, SIZE = 6, 32


@pytest.fixture(scope="module")
def synth_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("synth") / "faces.h5"
    assert main(["synth", "--n", str(N), "--size", str(SIZE), "--seed", "3", "--out", str(path)]) == 0
    return path


def srgb_to_linear(v):
    v = np.clip(v, 0.0, 1.0)
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


def test_layout_and_ground_truth_ranges(synth_file):
    with h5py.File(synth_file, "r") as f:
        assert f["zx_7"].shape == (N, 10, SIZE, SIZE) and f["lrgb"].shape == (N, 3, 9)
        for name in ("gt_fmel", "gt_fblood", "gt_shading", "gt_specmask"):
            assert f[name].shape == (N, SIZE, SIZE)
        gt = {name: f[name][:] for name in f if name.startswith("gt_")}
        mask = f["zx_7"][:, 6] > 0.5
    assert gt["gt_b"].shape == (N, 2) and np.all(np.abs(gt["gt_b"]) <= 3)
    assert gt["gt_light_weights"].shape == (N, 14)
    np.testing.assert_allclose(gt["gt_light_weights"].sum(axis=1), 1.0, atol=1e-5)
    assert np.all(gt["gt_light_weights"] >= 0)
    assert gt["gt_cct"].shape == (N, 1) and np.all((gt["gt_cct"] >= 1) & (gt["gt_cct"] <= 22))
    assert np.all(np.abs(gt["gt_fmel"]) <= 1) and np.all(np.abs(gt["gt_fblood"]) <= 1)
    assert np.all(gt["gt_shading"][mask] > 0) and np.all(gt["gt_specmask"] >= 0)
    coverage = mask.mean(axis=(1, 2))
    assert np.all((coverage > 0.2) & (coverage < 0.8)), coverage
    per_face_melanin = [gt["gt_fmel"][i][mask[i]] for i in range(N)]
    assert min(np.std(m) for m in per_face_melanin) > 0.05, "melanin varies within each face"
    assert np.ptp([np.median(m) for m in per_face_melanin]) > 0.3, "skin types differ between faces"
    assert max(gt["gt_specmask"][i][mask[i]].max() for i in range(N)) > 0.05, "highlights present"


def test_reader_loads_it_and_its_shading_is_the_sh_fit_of_the_ground_truth(synth_file):
    with CelebAFaces([synth_file], image_size=SIZE) as faces:
        assert faces.files[0].normal_encoding == "signed" and faces.has_ground_truth
        batch = faces.read(range(N), ground_truth=True)
    inside = batch["mask"] > 0.5
    streamed = render_batch(3, N, SIZE)
    np.testing.assert_allclose(batch["shading"], streamed["shading"], rtol=1e-5, atol=1e-6)
    correlations = []
    for i in range(N):
        pseudo, exact = batch["shading"][i][inside[i]], batch["gt_shading"][i][inside[i]]
        correlations.append(np.corrcoef(pseudo, exact)[0, 1])
        assert abs(pseudo.mean() - exact.mean()) < 0.05 * exact.mean() + 0.01, "least squares keeps the mean"
    assert min(correlations) > 0.5 and np.median(correlations) > 0.8, "the SH fit follows the rendered shading"
    norms = np.linalg.norm(batch["normals"][inside[..., 0]], axis=-1)
    np.testing.assert_allclose(norms, 1.0, atol=1e-4)


def test_image_is_the_decoder_rendering_of_the_ground_truth_through_a_camera(synth_file):
    with h5py.File(synth_file, "r") as f:
        image = f["zx_7"][:, :3].transpose(0, 2, 3, 1)
        mask = f["zx_7"][:, 6] > 0.5
        gt = {name: f[name][:] for name in f if name.startswith("gt_")}
    inputs = {
        "fmel": gt["gt_fmel"][..., None], "fblood": gt["gt_fblood"][..., None],
        "shading": np.maximum(gt["gt_shading"], 1e-3)[..., None], "specmask": gt["gt_specmask"][..., None],
        "b": gt["gt_b"], "light_weights": gt["gt_light_weights"], "cct": gt["gt_cct"],
    }
    expected = PhysicsDecoder()({k: tf.constant(v, tf.float32) for k, v in inputs.items()})["linear_srgb"].numpy()
    interior = np.stack([
        tf.nn.erosion2d(m[None, ..., None].astype(np.float32), np.zeros((3, 3, 1), np.float32),
                        [1, 1, 1, 1], "SAME", "NHWC", [1, 1, 1, 1]).numpy()[0, ..., 0] > 0.5
        for m in mask
    ])
    for i in range(N):
        observed, rendered = srgb_to_linear(image[i])[interior[i]], np.clip(expected[i], 0, 1)[interior[i]]
        gain = (observed * rendered).sum(axis=0) / (rendered * rendered).sum(axis=0)
        assert np.all((gain > 0.55) & (gain < 1.9)), "exposure and white-balance error, per channel"
        residual = observed - gain * rendered
        assert abs(residual.mean()) < 0.01, "no bias beyond exposure and white balance"
        assert 0.0005 < residual.std() < 0.05, "blur, noise and compression present, and small"
    noise_free = render_batch(3, N, SIZE, sensor=False)
    inside = noise_free["mask"][..., 0] > 0.5
    np.testing.assert_allclose(srgb_to_linear(noise_free["srgb"])[inside], np.clip(expected, 0, 1)[inside], atol=2e-3)


def test_same_seed_same_faces(tmp_path, synth_file):
    again = tmp_path / "again.h5"
    assert main(["synth", "--n", "2", "--size", str(SIZE), "--seed", "3", "--out", str(again)]) == 0
    other = tmp_path / "other.h5"
    assert main(["synth", "--n", "2", "--size", str(SIZE), "--seed", "4", "--out", str(other)]) == 0
    with h5py.File(synth_file) as a, h5py.File(again) as b, h5py.File(other) as c:
        np.testing.assert_array_equal(a["gt_fmel"][:2], b["gt_fmel"][:])
        np.testing.assert_array_equal(a["zx_7"][:2], b["zx_7"][:])
        assert not np.array_equal(a["gt_fmel"][:2], c["gt_fmel"][:])


def test_pipeline_flips_ground_truth_with_the_image(synth_file):
    with CelebAFaces([synth_file], image_size=SIZE) as faces:
        stored = faces.read(range(N), ground_truth=True)
        batch = next(iter(make_dataset(faces, batch_size=N, shuffle=False, flip=True, seed=1, ground_truth=True)))
    flipped = 0
    for i in range(N):
        mirrored = not np.array_equal(batch["srgb"][i].numpy(), stored["image"][i])
        flipped += mirrored
        expected = stored["gt_fmel"][i][:, ::-1] if mirrored else stored["gt_fmel"][i]
        np.testing.assert_array_equal(batch["gt_fmel"][i].numpy(), expected)
        np.testing.assert_array_equal(batch["gt_b"][i].numpy(), stored["gt_b"][i])
    assert 0 < flipped < N


def test_figure_and_bad_arguments(tmp_path, capsys):
    figure = tmp_path / "sheet.png"
    assert main(["synth", "--n", "2", "--size", "16", "--out", str(tmp_path / "f.h5"), "--figure", str(figure)]) == 0
    assert figure.stat().st_size > 0
    assert main(["synth", "--n", "0", "--out", str(tmp_path / "g.h5")]) == 1
    assert "at least 1 face" in capsys.readouterr().err


def test_faces_across_blocks_are_render_batch_faces_in_order(tmp_path):
    from bioface_tf.data import stream
    from bioface_tf.data.synth import write_synthetic

    n = stream.BLOCK + 3
    path = write_synthetic(tmp_path / "f.h5", n=n, size=16, seed=9, progress=False)
    direct = render_batch(9, n, 16)
    with h5py.File(path, "r") as f:
        assert f["gt_fmel"].shape == (n, 16, 16)
        np.testing.assert_array_equal(f["gt_fmel"][:], direct["gt_fmel"][..., 0])
        np.testing.assert_array_equal(f["gt_b"][:], direct["gt_b"])


def test_synth_writes_a_variety_the_stream_renders(tmp_path, capsys):
    out = tmp_path / "wide.h5"
    assert main(["synth", "--n", "3", "--size", "32", "--seed", "4", "--variety", "wide_metered", "--out", str(out)]) == 0
    expected = render_batch(4, 3, 32, variety="wide_metered")
    with h5py.File(out, "r") as f:
        assert f.attrs["variety"] == "wide_metered"
        np.testing.assert_allclose(f["gt_fblood"][:], expected["gt_fblood"][..., 0], atol=1e-6)
        standard = render_batch(4, 3, 32)
        assert np.abs(f["gt_fblood"][:] - standard["gt_fblood"][..., 0]).max() > 0.05
    assert main(["synth", "--n", "2", "--variety", "nonsense", "--out", str(tmp_path / "x.h5")]) != 0
    assert "nonsense" in capsys.readouterr().err
    assert main(["synth", "--n", "2", "--family", "eval_faces", "--variety", "wide", "--out", str(tmp_path / "e.h5")]) != 0
    assert "training family" in capsys.readouterr().err
