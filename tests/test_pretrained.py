"""The shipped default model: found by name, used when no model is given, never downloaded."""

import json
import os
import pathlib
import subprocess
import sys
import textwrap

import cv2
import numpy as np
import pytest

from bioface_tf import pretrained
from bioface_tf.analysis import load_model
from bioface_tf.cli import main as bioface
from bioface_tf.errors import BioFaceError
from data_builders import draw_face
from mobile_export.cli import main as bioface_lite

SIZE = 32
CARD = {
    "training_command": "bioface train --preset report --model mobile --data faces.h5 --out runs/m",
    "data": "2 rendered faces",
    "size": {"parameters": 1, "megabytes": 0.1},
    "accuracy": {"r_melanin": 0.5},
}


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    """A folder of presets holding a tiny bioface_mobile (model, card, bundle made by a bare 'bioface export')."""
    from bioface_tf.model import build_bioface

    root = tmp_path_factory.mktemp("pretrained")
    preset = root / pretrained.DEFAULT_MODEL
    preset.mkdir()
    build_bioface(SIZE, "mobile", width_multiplier=0.25).save(preset / pretrained.MODEL_FILE)
    (preset / pretrained.CARD_FILE).write_text(json.dumps(CARD))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(pretrained.DIRECTORY_VARIABLE, str(root))
        assert bioface(["export", "--quantize", "float32", "--out", str(preset / pretrained.LITE_FOLDER)]) == 0
    return root


@pytest.fixture
def installed(shipped, monkeypatch):
    """The tiny shipped model stands in for the package's own."""
    monkeypatch.setenv(pretrained.DIRECTORY_VARIABLE, str(shipped))
    return shipped / pretrained.DEFAULT_MODEL


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A full-size photo and an HDF5 file of rendered faces at the tiny model's size."""
    from bioface_tf.data.synth import write_synthetic

    folder = tmp_path_factory.mktemp("inputs")
    photo = folder / "portrait.png"
    cv2.imwrite(str(photo), draw_face(480, 640, centre=(330, 240), scale=1.6))
    faces = write_synthetic(folder / "faces.h5", n=2, size=SIZE, seed=3, progress=False)
    return {"photo": photo, "faces": faces}


def test_missing_shipped_files_are_named(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(pretrained.DIRECTORY_VARIABLE, str(tmp_path))
    preset = tmp_path / pretrained.DEFAULT_MODEL
    for lookup, missing in (
        (pretrained.model_path, preset / "model.keras"),
        (pretrained.lite_bundle_path, preset / "lite" / "metadata.json"),
        (pretrained.card, preset / "card.json"),
        (load_model, preset / "model.keras"),
    ):
        with pytest.raises(BioFaceError, match=f"{missing}: not found") as raised:
            lookup()
        assert pretrained.DIRECTORY_VARIABLE in str(raised.value) and "--model" in str(raised.value)
    assert bioface(["analyze", "photo.jpg", "--out", str(tmp_path / "out")]) == 1
    assert f"{preset / 'model.keras'}: not found" in capsys.readouterr().err
    assert bioface_lite(["edit", "photo.jpg", "--out", str(tmp_path / "x.png")]) == 1
    assert f"{preset / 'lite' / 'metadata.json'}: not found" in capsys.readouterr().err


def test_paths_and_names_resolve_without_looking_elsewhere(tmp_path, monkeypatch):
    monkeypatch.setenv(pretrained.DIRECTORY_VARIABLE, str(tmp_path))
    assert pretrained.resolve_model("runs/m/model.keras") == pathlib.Path("runs/m/model.keras")
    assert pretrained.resolve_lite_bundle("bundle/") == pathlib.Path("bundle/")
    with pytest.raises(BioFaceError, match="not a shipped model's name"):
        pretrained.model_path("../elsewhere")
    with pytest.raises(BioFaceError, match="other_model/model.keras: not found"):
        pretrained.resolve_model("other_model")


def test_the_package_folder_is_the_default_root(monkeypatch):
    monkeypatch.delenv(pretrained.DIRECTORY_VARIABLE, raising=False)
    assert pretrained.root() == pathlib.Path(pretrained.__file__).parent


def test_card_and_bundle_of_the_shipped_model(installed):
    assert pretrained.available() == [pretrained.DEFAULT_MODEL]
    assert pretrained.card() == CARD
    bundle = pretrained.lite_bundle_path()
    assert bundle == installed / "lite"
    assert {p.name for p in bundle.iterdir()} == {"encoder.tflite", "renderer.tflite", "metadata.json"}


def test_load_model_without_argument_loads_the_shipped_model(installed):
    import keras

    model = load_model()
    saved = keras.saving.load_model(installed / "model.keras", compile=False)
    assert model.image_size == SIZE
    for got, expected in zip(model.get_weights(), saved.get_weights()):
        np.testing.assert_array_equal(got, expected)
    assert load_model(pretrained.DEFAULT_MODEL).count_params() == model.count_params()


def test_analyze_without_model_uses_the_shipped_one(installed, inputs, tmp_path, capsys):
    args = [str(inputs["photo"]), str(inputs["faces"]), "--no-refine"]
    assert bioface(["analyze", *args, "--model", str(installed / "model.keras"), "--out", str(tmp_path / "a")]) == 0
    capsys.readouterr()
    assert bioface(["analyze", *args, "--out", str(tmp_path / "b")]) == 0
    assert f"using the shipped model bioface_mobile ({installed / 'model.keras'})" in capsys.readouterr().err
    _assert_same_analyses(tmp_path / "a", tmp_path / "b")


def test_edit_without_model_uses_the_shipped_one(installed, inputs, tmp_path, capsys):
    flags = [str(inputs["photo"]), "--melanin", "0.4", "--no-refine"]
    assert bioface(["edit", *flags, "--model", str(installed / "model.keras"), "--out", str(tmp_path / "a.png")]) == 0
    capsys.readouterr()
    assert bioface(["edit", *flags, "--out", str(tmp_path / "b.png")]) == 0
    assert "using the shipped model bioface_mobile" in capsys.readouterr().err
    np.testing.assert_array_equal(cv2.imread(str(tmp_path / "b.png")), cv2.imread(str(tmp_path / "a.png")))


def test_evaluate_without_model_keeps_stdout_json(installed, inputs, capsys):
    data = ["--data", str(inputs["faces"]), "--json"]
    assert bioface(["evaluate", "--model", str(installed / "model.keras"), *data]) == 0
    explicit = json.loads(capsys.readouterr().out)
    assert bioface(["evaluate", *data]) == 0
    printed = capsys.readouterr()
    assert json.loads(printed.out) == explicit
    assert "using the shipped model bioface_mobile" in printed.err


def test_no_mirror_average_scores_one_pass_of_the_network(installed, inputs, capsys):
    data = ["--data", str(inputs["faces"]), "--json"]
    assert bioface(["evaluate", *data]) == 0
    averaged = json.loads(capsys.readouterr().out)
    assert bioface(["evaluate", "--no-mirror-average", *data]) == 0
    single = json.loads(capsys.readouterr().out)
    model = load_model(installed / "model.keras")
    assert model.mirror_average is True
    assert single["psnr"] != pytest.approx(averaged["psnr"], abs=1e-4)


def test_lite_without_models_uses_the_shipped_bundle(installed, inputs, tmp_path, capsys):
    pytest.importorskip("ai_edge_litert.interpreter")
    bundle = str(installed / "lite")
    args = [str(inputs["photo"]), str(inputs["faces"])]
    assert bioface_lite(["analyze", *args, "--models", bundle, "--out", str(tmp_path / "a")]) == 0
    capsys.readouterr()
    assert bioface_lite(["analyze", *args, "--out", str(tmp_path / "b")]) == 0
    assert f"bioface-lite analyze: using the shipped model bioface_mobile ({installed / 'lite'})" in capsys.readouterr().err
    _assert_same_analyses(tmp_path / "a", tmp_path / "b")
    flags = [str(inputs["photo"]), "--haemoglobin", "0.3"]
    assert bioface_lite(["edit", *flags, "--models", bundle, "--out", str(tmp_path / "a.png")]) == 0
    assert bioface_lite(["edit", *flags, "--out", str(tmp_path / "b.png")]) == 0
    np.testing.assert_array_equal(cv2.imread(str(tmp_path / "b.png")), cv2.imread(str(tmp_path / "a.png")))


def test_lite_finds_and_runs_the_shipped_bundle_without_importing_tensorflow(installed, inputs, tmp_path):
    pytest.importorskip("ai_edge_litert.interpreter")
    script = textwrap.dedent(
        f"""
        import sys
        from bioface_tf import pretrained
        assert pretrained.lite_bundle_path().name == "lite"
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "tf_keras"))
        print("AFTER-LOOKUP", loaded)
        from mobile_export.cli import main
        assert main(["edit", {str(inputs["photo"])!r}, "--melanin", "0.3", "--out", {str(tmp_path / "e.png")!r}]) == 0
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "tf_keras"))
        print("AFTER-EDIT", loaded)
        """
    )
    env = dict(os.environ, **{pretrained.DIRECTORY_VARIABLE: str(installed.parent)})
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "AFTER-LOOKUP []" in result.stdout and "AFTER-EDIT []" in result.stdout
    assert cv2.imread(str(tmp_path / "e.png")).shape == (480, 640, 3)


def _assert_same_analyses(expected_dir, got_dir):
    names = sorted(p.name for p in expected_dir.iterdir() if p.is_dir())
    assert names and names == sorted(p.name for p in got_dir.iterdir() if p.is_dir())
    for name in names:
        with np.load(expected_dir / name / "maps.npz") as a, np.load(got_dir / name / "maps.npz") as b:
            for key in a.files:
                np.testing.assert_array_equal(b[key], a[key], err_msg=f"{name} {key}")


def test_the_package_model_is_what_its_card_says(monkeypatch):
    """The real shipped model (not the stand-in): safe-mode load, and the card describes this file."""
    from training.evaluate import load_trained

    monkeypatch.delenv(pretrained.DIRECTORY_VARIABLE, raising=False)
    shipped = pretrained.card()
    path = pretrained.model_path()
    model = load_trained(path)  # safe mode
    config = json.loads((path.parent / "config.json").read_text())["model"]
    assert shipped["size"]["parameters"] == model.count_params()
    assert shipped["size"]["model_keras_bytes"] == path.stat().st_size
    assert shipped["size"]["image_size"] == model.image_size == config["image_size"]
    assert shipped["size"]["width_multiplier"] == config["width_multiplier"]
    assert shipped["inference"]["mirror_average"] == model.mirror_average
    metadata = json.loads((pretrained.lite_bundle_path() / "metadata.json").read_text())
    assert metadata["image_size"] == model.image_size
    for family in ("training_family", "validation_family", "evaluation_family"):
        assert shipped["accuracy"][family]["n_faces"] == 300
