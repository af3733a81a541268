"""``bioface-lite``: the LiteRT runtime analyses and edits like ``bioface``, without TensorFlow."""

import json
import subprocess
import sys
import textwrap

import cv2
import numpy as np
import pytest

from bioface_tf.cli import main as bioface
from data_builders import NO_TENSORFLOW, draw_face
from mobile_export.cli import main as bioface_lite

pytest.importorskip("ai_edge_litert.interpreter")

SIZE = 32



@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A saved tiny model, its float32 bundle (via 'bioface export'), a photo and an HDF5 file."""
    from bioface_tf.data.synth import write_synthetic
    from bioface_tf.model import build_bioface

    folder = tmp_path_factory.mktemp("lite")
    model = folder / "tiny.keras"
    build_bioface(SIZE, "mobile", width_multiplier=0.25).save(model)
    bundle = folder / "bundle"
    assert bioface(["export", "--model", str(model), "--quantize", "float32", "--out", str(bundle)]) == 0
    photo = folder / "portrait.png"
    cv2.imwrite(str(photo), draw_face(480, 640, centre=(330, 240), scale=1.6))
    faces = write_synthetic(folder / "faces.h5", n=2, size=SIZE, seed=4, progress=False)
    return {"model": model, "bundle": bundle, "photo": photo, "faces": faces}


EDIT_FLAGS = ["--melanin", "0.4", "--haemoglobin", "-0.2", "--specular", "0.5"]


@pytest.mark.parametrize("source, flags", [("photo", EDIT_FLAGS), ("faces", ["--face", "1", "--illuminant", "A"])])
def test_lite_edit_writes_what_bioface_edit_writes(files, tmp_path, source, flags):
    keras_out, lite_out = tmp_path / "keras.png", tmp_path / "lite.png"
    assert bioface(["edit", str(files[source]), "--model", str(files["model"]), "--no-refine", *flags, "--out", str(keras_out)]) == 0
    assert bioface_lite(["edit", str(files[source]), "--models", str(files["bundle"]), *flags,
                         "--out", str(lite_out)]) == 0
    expected, got = cv2.imread(str(keras_out)).astype(int), cv2.imread(str(lite_out)).astype(int)
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() <= 1, "equal up to 8-bit rounding"
    if source == "photo":
        assert np.abs(got - cv2.imread(str(files["photo"])).astype(int)).max() > 10, "the face was edited"


def test_lite_analyze_writes_what_bioface_analyze_writes(files, tmp_path):
    inputs = [str(files["photo"]), str(files["faces"])]
    assert bioface(["analyze", *inputs, "--model", str(files["model"]), "--no-refine", "--out", str(tmp_path / "keras")]) == 0
    assert bioface_lite(["analyze", *inputs, "--models", str(files["bundle"]), "--out", str(tmp_path / "lite")]) == 0
    names = sorted(p.name for p in (tmp_path / "keras").iterdir() if p.is_dir())
    assert len(names) == 3 and names == sorted(p.name for p in (tmp_path / "lite").iterdir() if p.is_dir())
    for name in names:
        expected = json.loads((tmp_path / "keras" / name / "params.json").read_text())
        got = json.loads((tmp_path / "lite" / name / "params.json").read_text())
        assert got.keys() == expected.keys()
        assert got["nearest_camera"] == expected["nearest_camera"]
        assert got["cct_kelvin"] == pytest.approx(expected["cct_kelvin"], rel=1e-4)
        with np.load(tmp_path / "keras" / name / "maps.npz") as a, np.load(tmp_path / "lite" / name / "maps.npz") as b:
            for key in a.files:
                np.testing.assert_allclose(b[key], a[key], rtol=1e-4, atol=1e-5, err_msg=key)
    assert (tmp_path / "lite" / "figure.png").is_file()


def test_runtime_analyses_and_edits_with_tensorflow_not_importable(files, tmp_path):
    script = NO_TENSORFLOW + textwrap.dedent(
        f"""
        from mobile_export.cli import main
        assert main(["analyze", {str(files["photo"])!r}, "--models", {str(files["bundle"])!r},
                     "--out", {str(tmp_path / "maps")!r}]) == 0
        assert main(["edit", {str(files["photo"])!r}, "--models", {str(files["bundle"])!r},
                     "--melanin", "0.3", "--out", {str(tmp_path / "edited.png")!r}]) == 0
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras"))
        print("TF-MODULES", loaded)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "TF-MODULES []" in result.stdout
    assert cv2.imread(str(tmp_path / "edited.png")).shape == (480, 640, 3)
    (face,) = [p for p in (tmp_path / "maps").iterdir() if p.is_dir()]
    assert json.loads((face / "params.json").read_text())["nearest_camera"]


def test_bundle_problems_name_the_file(files, tmp_path, capsys):
    out = str(tmp_path / "x.png")
    assert bioface_lite(["edit", str(files["photo"]), "--models", str(tmp_path), "--out", out]) == 1
    assert f"{tmp_path / 'metadata.json'}: not found" in capsys.readouterr().err
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "metadata.json").write_text((files["bundle"] / "metadata.json").read_text())
    (broken / "encoder.tflite").write_bytes(b"not a flatbuffer")
    assert bioface_lite(["edit", str(files["photo"]), "--models", str(broken), "--out", out]) == 1
    assert f"{broken / 'encoder.tflite'}: not a usable TFLite model" in capsys.readouterr().err
