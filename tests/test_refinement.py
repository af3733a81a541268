"""The per-photo physics fit (:mod:`bioface_tf.refinement`) and ``--refine`` on the commands."""

import json

import cv2
import numpy as np
import pytest

from bioface_tf.analysis import FaceAnalysis, rendering
from bioface_tf.cli import main
from bioface_tf.errors import BioFaceError
from bioface_tf.physics import PhysicsDecoder
from bioface_tf.refinement import Refiner, RefineSettings, masked_psnr, refine, resize_maps
from data_builders import draw_face
from training.evaluate import masked_pearson

SIZE = 32


@pytest.fixture(scope="module")
def decoder():
    return PhysicsDecoder()


def _true_face(size: int, batch: int = 2, seed: int = 0) -> dict[str, np.ndarray]:
    """Decoder inputs of smooth rendered faces: maps with a broad pattern, shading lit from the left."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / (size - 1) * 2 - 1
    params = {k: [] for k in ("fmel", "fblood", "shading", "specmask")}
    for _ in range(batch):
        a, b, c = rng.uniform(0.5, 2.0, 3)
        params["fmel"].append(-0.3 + 0.3 * np.sin(a * x + b * y))
        params["fblood"].append(-0.2 + 0.3 * np.cos(c * x - a * y))
        params["shading"].append(0.7 + 0.25 * x + 0.05 * y)
        params["specmask"].append(0.15 * np.exp(-((x - 0.3) ** 2 + (y + 0.2) ** 2) / 0.02))
    out = {k: np.stack(v)[..., None].astype(np.float32) for k, v in params.items()}
    out["b"] = np.tile(np.float32([[0.4, -0.3]]), (batch, 1))
    out["light_weights"] = np.tile(np.eye(14, dtype=np.float32)[1:2], (batch, 1))
    out["cct"] = np.full((batch, 1), 5.0, np.float32)
    return out


def _analysis(params, decoder, mask=None) -> FaceAnalysis:
    reconstruction, albedo = rendering(params, decoder)
    size = params["fmel"].shape[1]
    if mask is None:
        mask = np.ones((len(reconstruction), size, size, 1), np.float32)
    return FaceAnalysis(reconstruction.copy(), mask, params, reconstruction, albedo)


def _perturbed(truth, rng):
    """A wrong start: noisy maps, shading tilted from top to bottom, no specular."""
    start = {k: v.copy() for k, v in truth.items()}
    for key in ("fmel", "fblood"):
        start[key] = np.clip(truth[key] + rng.normal(0, 0.15, truth[key].shape), -1, 1).astype(np.float32)
    size = truth["shading"].shape[1]
    tilt = np.linspace(0.9, 1.5, size)[None, :, None, None]
    start["shading"] = (truth["shading"] * tilt).astype(np.float32)
    start["specmask"] = np.zeros_like(truth["specmask"])
    return start


def test_settings_refuse_negative_steps_and_weights():
    with pytest.raises(ValueError, match="steps"):
        RefineSettings(steps=-1)
    with pytest.raises(ValueError, match="anchor"):
        RefineSettings(anchor=-0.5)
    with pytest.raises(ValueError, match="smoothness"):
        RefineSettings(smoothness=float("nan"))


def test_the_fit_lowers_the_appearance_error_and_raises_agreement_with_the_truth(decoder):
    truth = _true_face(SIZE)
    photo = rendering(truth, decoder)[0]
    start = _perturbed(truth, np.random.default_rng(1))
    network = _analysis(start, decoder)
    network.image = photo
    settings = RefineSettings(steps=80, anchor=0.0, map_learning_rate=0.02, specular_anchor=0.0)
    fit = refine(network, decoder, settings, progress=False)

    assert fit.loss[-1] < 0.5 * fit.loss[0]
    mask = network.mask
    before = [masked_psnr(photo[i], network.reconstruction[i], mask[i]) for i in range(2)]
    after = [masked_psnr(photo[i], fit.faces.reconstruction[i], mask[i]) for i in range(2)]
    assert min(np.subtract(after, before)) > 5.0
    for key in ("fmel", "fblood", "shading"):
        r_before = masked_pearson(start[key], truth[key], mask).mean()
        r_after = masked_pearson(fit.faces.params[key], truth[key], mask).mean()
        assert r_after > r_before + 0.05, (key, r_before, r_after)
    for key in ("b", "light_weights", "cct"):
        np.testing.assert_array_equal(fit.faces.params[key], start[key])


def test_zero_steps_give_back_the_start_resized(decoder):
    truth = _true_face(SIZE, batch=1)
    network = _analysis(truth, decoder)
    big = cv2.resize(network.image[0], (2 * SIZE, 2 * SIZE))[None]
    fit = refine(network, decoder, RefineSettings(steps=0), image=big, mask=np.ones((1, 2 * SIZE, 2 * SIZE, 1)))
    expected = resize_maps(truth, 2 * SIZE)
    for key in ("fmel", "fblood", "shading", "specmask"):
        assert fit.faces.params[key].shape == (1, 2 * SIZE, 2 * SIZE, 1)
        np.testing.assert_allclose(fit.faces.params[key], expected[key], atol=1e-5)
    assert fit.loss.shape == (1,)


def test_at_a_larger_size_the_maps_gain_detail_the_network_could_not_see(decoder):
    """A pattern finer than the model's pixels is in the photo; the fit puts it into the maps."""
    big_truth = _true_face(2 * SIZE, batch=1)
    y, x = np.mgrid[0 : 2 * SIZE, 0 : 2 * SIZE]
    big_truth["fblood"] = (big_truth["fblood"] + 0.3 * ((x // 2 + y // 2) % 2)[None, ..., None]).astype(np.float32)
    photo = rendering(big_truth, decoder)[0]
    small = {k: (np.stack([cv2.resize(m[..., 0], (SIZE, SIZE), interpolation=cv2.INTER_AREA)[..., None] for m in v])
                 if v.ndim == 4 else v) for k, v in big_truth.items()}
    network = _analysis(small, decoder)
    mask = np.ones((1, 2 * SIZE, 2 * SIZE, 1), np.float32)
    fit = refine(network, decoder, RefineSettings(steps=80, map_learning_rate=0.02), image=photo, mask=mask)
    start_r = masked_pearson(fit.start.params["fblood"], big_truth["fblood"], mask)[0]
    end_r = masked_pearson(fit.faces.params["fblood"], big_truth["fblood"], mask)[0]
    assert end_r > start_r + 0.05, (start_r, end_r)


def test_the_fit_names_what_is_wrong_with_its_input(decoder):
    network = _analysis(_true_face(SIZE, batch=2), decoder)
    empty = network.mask.copy()
    empty[1] = 0
    with pytest.raises(BioFaceError, match=r"mask of face\(s\) \[1\] is empty"):
        refine(network, decoder, RefineSettings(steps=1), image=network.image, mask=empty)
    with pytest.raises(BioFaceError, match="does not match"):
        refine(network, decoder, RefineSettings(steps=1), image=network.image, mask=network.mask[:, :8])
    bad = network.image.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(BioFaceError, match="NaN"):
        refine(network, decoder, RefineSettings(steps=1), image=bad, mask=network.mask)
    with pytest.raises(BioFaceError, match="needs its mask"):
        refine(network, decoder, RefineSettings(steps=1), image=network.image)


def test_refiner_fits_photo_faces_at_its_working_size_and_others_at_their_own(decoder):
    from bioface_tf.data.faces import Face

    network = _analysis(_true_face(SIZE, batch=2), decoder)
    photo = draw_face(200, 200, centre=(100, 100), scale=0.8)[..., ::-1].astype(np.float32) / 255.0
    items = [
        Face("hdf5_0", None, network.image[0], network.mask[0]),
        Face("photo", None, network.image[1], network.mask[1], photo=photo, square=(20, 20, 160), mask_kind="ellipse"),
    ]
    out = Refiner(decoder, RefineSettings(steps=3), work_size=48, progress=False).faces(network, items)
    assert out[0][0].size == SIZE and out[1][0].size == 48
    assert out[1][2]["size"] == 48 and out[1][2]["steps"] == 3 and out[1][2]["seconds"] >= 0


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    from bioface_tf.model import build_bioface

    path = tmp_path_factory.mktemp("model") / "mobile.keras"
    build_bioface(64, "mobile").save(path)
    return path


def test_analyze_refine_writes_maps_at_the_working_size_and_records_the_fit(tmp_path, model_path):
    photo = tmp_path / "portrait.png"
    cv2.imwrite(str(photo), draw_face(300, 400, centre=(200, 150), scale=1.0))
    out = tmp_path / "out"
    assert main(["analyze", str(photo), "--model", str(model_path), "--out", str(out),
                 "--refine", "20", "--refine-size", "96", "--mask", "ellipse"]) == 0
    maps = np.load(out / "portrait" / "maps.npz")
    assert maps["fmel"].shape == (96, 96, 1) and maps["mask"].shape == (96, 96, 1)
    record = json.loads((out / "portrait" / "params.json").read_text())["refinement"]
    assert record["steps"] == 20 and record["size"] == 96
    assert record["psnr_after_db"] > record["psnr_before_db"]
    assert cv2.imread(str(out / "portrait" / "melanin.png")).shape[1] >= 96


def test_edit_refine_rerenders_the_photo_and_keeps_it_outside_the_mask(tmp_path, model_path):
    path = tmp_path / "portrait.png"
    cv2.imwrite(str(path), draw_face(300, 400, centre=(200, 150), scale=1.0))
    out = tmp_path / "edited.png"
    assert main(["edit", str(path), "--model", str(model_path), "--out", str(out), "--melanin", "0.4",
                 "--refine", "5", "--refine-size", "96", "--mask", "ellipse"]) == 0
    before, after = cv2.imread(str(path)), cv2.imread(str(out))
    assert after.shape == before.shape
    changed = np.abs(after.astype(int) - before).max(axis=-1) > 2
    assert changed.any()
    assert not changed[:, :60].any() and not changed[:, -60:].any()


def test_refine_refuses_video_clips(tmp_path, model_path, capsys):
    clip = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 5, (64, 64))
    for _ in range(3):
        writer.write(np.full((64, 64, 3), 128, np.uint8))
    writer.release()
    assert main(["analyze", str(clip), "--model", str(model_path), "--out", str(tmp_path / "o"), "--refine"]) == 1
    assert "--refine is for photos and HDF5 faces, not video clips" in capsys.readouterr().err


def test_photos_are_fitted_at_the_model_size_by_default_and_not_with_no_refine(tmp_path, model_path):
    photo = tmp_path / "portrait.png"
    cv2.imwrite(str(photo), draw_face(300, 400, centre=(200, 150), scale=1.0))
    records = {}
    for name, flags in {"default": [], "none": ["--no-refine"]}.items():
        out = tmp_path / name
        assert main(["analyze", str(photo), "--model", str(model_path), "--out", str(out), "--mask", "ellipse", *flags]) == 0
        records[name] = json.loads((out / "portrait" / "params.json").read_text()).get("refinement")
        assert np.load(out / "portrait" / "maps.npz")["fmel"].shape == (64, 64, 1)
    assert records["none"] is None
    assert records["default"]["size"] == 64 and records["default"]["steps"] == 60
    assert records["default"]["psnr_after_db"] > records["default"]["psnr_before_db"]


def test_refine_and_no_refine_exclude_each_other(tmp_path, model_path):
    with pytest.raises(SystemExit) as stop:
        main(["analyze", str(tmp_path), "--model", str(model_path), "--refine", "--no-refine"])
    assert stop.value.code == 2
