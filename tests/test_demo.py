"""``bioface demo`` end to end in its fast mode."""

import json
import re

import cv2

from bioface_tf.cli import main


def test_fast_demo_writes_every_output_and_a_report_whose_links_resolve(tmp_path, capsys):
    out = tmp_path / "demo_out"
    status = main(["demo", "--out", str(out), "--faces", "24", "--steps", "3"])
    printed = capsys.readouterr().out
    assert status == 0
    for name in ("model.keras", "report.html", "edit_melanin.png", "edit_haemoglobin.png",
                 "analysis/figure.png", "training_faces.png", "loss.png"):
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
