"""Presets: shipped files, their documented values, overrides and errors."""

import json

import pytest

from training.presets import FORMAT_VERSION, PRESET_DIR, PresetError, apply_override, available, load_preset


def test_shipped_presets_are_versioned_and_complete():
    assert available() == ["hybrid", "improved", "paper", "report", "synthetic"]
    for name in available():
        raw = json.loads((PRESET_DIR / f"{name}.json").read_text())
        assert raw["version"] == FORMAT_VERSION and raw["name"] == name
        assert load_preset(name).name == name


def test_presets_carry_the_documented_settings():
    paper, report, improved = (load_preset(n) for n in ("paper", "report", "improved"))
    assert (paper.train.batch_size, paper.train.learning_rate, paper.loss.sparsity) == (64, 1e-5, 1e-5)
    assert (paper.loss.appearance, paper.loss.camera_prior, paper.loss.shading) == (1e-3, 1e-4, 1e-5)
    assert paper.loss.appearance_space == "linear" and paper.loss.specular_target == 0
    assert (report.train.batch_size, report.train.learning_rate, report.loss.sparsity) == (25, 1e-5, 1e-8)
    assert improved.loss.appearance_space == "display" and improved.loss.ms_ssim > 0
    assert improved.loss.specular_target > 0 and improved.model.bottleneck == "aspp"


def test_supervised_presets_render_faces_and_weigh_ground_truth():
    synthetic, hybrid = load_preset("synthetic"), load_preset("hybrid")
    assert synthetic.train.rendered_per_batch == synthetic.train.batch_size, "synthetic needs no files"
    assert 0 < hybrid.train.rendered_per_batch < hybrid.train.batch_size, "hybrid mixes both kinds of face"
    for preset in (synthetic, hybrid):
        assert preset.loss.gt_melanin > 0 and preset.loss.gt_haemoglobin > 0 and preset.loss.gt_shading > 0
    assert hybrid.loss.appearance == 1e-3 and hybrid.loss.shading == 1e-5, "the paper's terms on all faces"


def test_any_field_can_be_overridden_with_type_checks():
    preset = load_preset("paper", ["loss.sparsity=1e-8", "train.steps_per_epoch=5", "model.atrous_rates=[1, 2]",
                                   "train.jit_compile=true", "model.variant=mobile", "loss.appearance_space=display"])
    assert preset.loss.sparsity == 1e-8 and preset.train.steps_per_epoch == 5
    assert preset.model.atrous_rates == [1, 2] and preset.train.jit_compile is True
    assert preset.model.variant == "mobile" and preset.loss.appearance_space == "display"
    assert apply_override(preset, "train.steps_per_epoch=null").train.steps_per_epoch is None
    assert load_preset("paper").loss.sparsity == 1e-5, "overrides do not leak into the shipped preset"
    with pytest.raises(PresetError, match="expected int"):
        apply_override(preset, "train.batch_size=2.5")
    with pytest.raises(PresetError, match="no field"):
        apply_override(preset, "train.batchsize=2")
    with pytest.raises(PresetError, match="section.field=value"):
        apply_override(preset, "batch_size=2")


def test_preset_files_with_problems_are_named(tmp_path):
    with pytest.raises(PresetError, match="available"):
        load_preset("fastest")
    bad = tmp_path / "mine.json"
    bad.write_text(json.dumps({"version": 1, "loss": {"sparsity": "tiny"}}))
    with pytest.raises(PresetError, match=r"mine.json: loss.sparsity"):
        load_preset(str(bad))
    bad.write_text(json.dumps({"version": 99}))
    with pytest.raises(PresetError, match="version 99"):
        load_preset(str(bad))
    bad.write_text("{not json")
    with pytest.raises(PresetError, match="mine.json"):
        load_preset(str(bad))
    round_trip = tmp_path / "copy.json"
    round_trip.write_text(load_preset("report").to_json())
    assert load_preset(str(round_trip)) == load_preset("report")
