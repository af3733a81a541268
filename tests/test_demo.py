"""``bioface demo`` end to end in its fast mode, and its map-agreement figures."""

import json
import re

import cv2
import numpy as np
import pytest

from bioface_tf import pretrained
from bioface_tf.demo import map_agreement, shipped_model
from fresh_process import command, native_log_lines, run


@pytest.fixture
def shipped_tiny(tmp_path, monkeypatch):
    """A tiny untrained 'shipped' model at the demo's face size, with a card."""
    from bioface_tf.model import build_bioface

    preset = tmp_path / "pretrained" / pretrained.DEFAULT_MODEL
    preset.mkdir(parents=True)
    build_bioface(64, "mobile", width_multiplier=0.25).save(preset / pretrained.MODEL_FILE)
    (preset / pretrained.CARD_FILE).write_text(json.dumps({
        "training_command": "bioface train --preset report --model mobile --out runs/shipped",
        "data": "no training (a test stand-in)", "size": "tiny", "accuracy": {"r_melanin": 0.0},
    }))
    monkeypatch.setenv(pretrained.DIRECTORY_VARIABLE, str(preset.parent))
    return preset


def test_fast_demo_writes_every_output_and_a_report_whose_links_resolve(shipped_tiny, tmp_path):
    """In a fresh process, as a user runs it: also no native log lines (the first training step logs a
    oneDNN fallback from C++, the export LiteRT's XNNPACK)."""
    out = tmp_path / "demo_out"
    done = run([*command("bioface"), "demo", "--out", str(out), "--faces", "24", "--steps", "3"])
    assert done.returncode == 0, done.stderr[-3000:]
    assert native_log_lines(done.stderr) == []
    printed = done.stdout
    for name in ("model.keras", "report.html", "edit_melanin.png", "edit_haemoglobin.png",
                 "analysis/figure.png", "training_faces.png", "loss.png", "shipped_model_figure.png"):
        assert (out / name).is_file(), name
    faces = sorted(p for p in (out / "analysis").iterdir() if p.is_dir())
    assert len(faces) == 6
    for folder in faces:
        record = json.loads((folder / "params.json").read_text())
        assert {"cct_kelvin", "light_weights", "camera_b", "nearest_camera"} <= set(record)
    figure = cv2.imread(str(out / "edit_melanin.png"))
    assert figure.shape[1] > 4 * 128, "four columns"
    html = (out / "report.html").read_text()
    targets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert len(targets) >= 10
    for target in targets:
        assert (out / target).exists(), target
    assert "CelebA" in html and "finished in" in printed and str(out / "report.html") in printed
    exported = list(out.rglob("*.tflite"))
    assert exported and all(p.stat().st_size > 0 for p in exported), "the TFLite export ran"
    assert all(p.relative_to(out).as_posix() in targets for p in exported)
    assert "Pearson r per face inside the mask, averaged over 6 faces" in html
    assert "<th>shipped bioface_mobile</th>" in html and "The shipped model (bioface_mobile)" in html
    assert "runs/shipped" in html, "the card's training command"


def test_without_a_shipped_model_the_demo_compares_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv(pretrained.DIRECTORY_VARIABLE, str(tmp_path))
    assert shipped_model() is None


def test_demo_agreement_is_bioface_evaluates(tmp_path):
    from bioface_tf.analysis import analyse
    from bioface_tf.data import CelebAFaces
    from bioface_tf.data.synth import write_synthetic
    from bioface_tf.model import build_bioface
    from training.evaluate import MAP_TRUTH, evaluate

    model = build_bioface(32, "mobile", width_multiplier=0.25)
    model.save(tmp_path / "m.keras")
    data = write_synthetic(tmp_path / "faces.h5", n=5, size=32, seed=2, progress=False)
    with CelebAFaces([data], image_size=None) as source:
        held_out = source.read(np.arange(len(source)), ground_truth=True)
    faces = analyse(model, held_out["image"], held_out["mask"])
    demo = map_agreement(faces.params, held_out, faces.mask)
    evaluated = evaluate(tmp_path / "m.keras", [str(data)], progress=False)
    assert set(demo) == set(MAP_TRUTH)
    for key, value in demo.items():
        assert value == pytest.approx(evaluated[key], abs=1e-5), key


def test_demo_agreement_does_not_pool_pixels_over_faces():
    """Faces that differ in level but whose patterns are unrelated: pooling would call that skill."""
    rng = np.random.default_rng(0)
    levels = np.array([-0.6, -0.2, 0.2, 0.6])[:, None, None, None]
    shape = (4, 16, 16, 1)
    truth = {f"gt_{k}": levels + 0.05 * rng.standard_normal(shape) for k in ("fmel", "fblood", "shading", "specmask")}
    params = {k: levels + 0.05 * rng.standard_normal(shape) for k in ("fmel", "fblood", "shading", "specmask")}
    mask = np.ones(shape, np.float32)
    pooled = np.corrcoef(params["fblood"].ravel(), truth["gt_fblood"].ravel())[0, 1]
    per_face = [np.corrcoef(p.ravel(), t.ravel())[0, 1] for p, t in zip(params["fblood"], truth["gt_fblood"])]
    agreement = map_agreement(params, truth, mask)
    assert pooled > 0.95
    assert agreement["r_haemoglobin"] == pytest.approx(np.mean(per_face), abs=1e-9)
    assert abs(agreement["r_haemoglobin"]) < 0.2
