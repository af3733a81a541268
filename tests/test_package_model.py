"""training.package_model: a run folder becomes a shipped model folder with a truthful card."""

import json

import keras

from bioface_tf.model import build_bioface
from training.package_model import main as package_main

SIZE = 32


def test_card_records_the_network_as_saved_and_the_accuracy_given(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    model = build_bioface(SIZE, "mobile", width_multiplier=0.25)
    model.save(run / "model.keras")
    (run / "config.json").write_text(json.dumps({"model": {"variant": "mobile", "width_multiplier": 0.25}}))
    (run / "log.csv").write_text("epoch,loss\n0,1.0\n")
    scores = tmp_path / "validation.json"
    scores.write_text(json.dumps({"r_melanin": 0.123456, "n_faces": 3}))
    destination = tmp_path / "shipped"

    assert package_main([str(run), str(destination), "--command", "bioface train x", "--data", "faces",
                         "--accuracy", f"validation_family={scores}"]) == 0

    card = json.loads((destination / "card.json").read_text())
    assert card["size"]["variant"] == "mobile"
    assert card["size"]["width_multiplier"] == 0.25
    assert card["size"]["parameters"] == model.count_params()
    assert card["size"]["model_keras_bytes"] == (destination / "model.keras").stat().st_size
    assert card["size"]["image_size"] == SIZE
    assert card["accuracy"] == {"validation_family": {"r_melanin": 0.1235, "n_faces": 3}}
    assert card["training_command"] == "bioface train x"
    assert (destination / "log.csv").read_text() == (run / "log.csv").read_text()
    shipped = keras.saving.load_model(destination / "model.keras", safe_mode=True, compile=False)
    assert shipped.count_params() == model.count_params()
