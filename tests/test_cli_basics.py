"""The `bioface` command: help, spectra report, and the skin palettes."""

import json

import numpy as np
import pytest

from bioface_tf import cli, spectra
from bioface_tf.palette import illuminant_parameters, render_palette


def test_help_lists_subcommands(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for name in ("spectra", "demo"):
        assert name in text


def test_no_subcommand_prints_help_and_fails(capsys):
    assert cli.main([]) == 2
    assert "usage: bioface" in capsys.readouterr().out


def test_spectra_json_reports_loaded_tables(capsys):
    assert cli.main(["spectra", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    np.testing.assert_allclose(info["camera_pca_explained_variance_ratio"], [0.2793, 0.2678], atol=5e-5)
    assert info["skin_table_shape"] == [256, 256, 33]
    table = spectra.skin_reflectance_table()
    assert info["skin_table_max"] == pytest.approx(float(table.max()))


def test_spectra_text_names_folder(capsys):
    assert cli.main(["spectra"]) == 0
    assert str(spectra.spectra_dir()) in capsys.readouterr().out


def test_missing_spectra_is_a_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("BIOFACE_SPECTRA_DIR", str(tmp_path))
    assert cli.main(["spectra"]) == 1
    err = capsys.readouterr().err
    assert "spectral tables not found" in err and str(tmp_path) in err


def _luminance(rgb):
    return rgb @ np.array([0.2126, 0.7152, 0.0722])


def test_palette_darkens_with_melanin_and_reddens_with_blood():
    palette = render_palette(n=4, patch=1)
    assert palette.shape == (4, 4, 3)
    luminance = _luminance(palette)
    assert np.all(np.diff(luminance, axis=1) < 0), "melanin increases along columns"
    redness = palette[..., 0] / np.maximum(palette[..., 1], 1e-6)
    assert np.all(np.diff(redness[:, :3], axis=0) > 0), "haemoglobin increases along rows"


def test_unknown_illuminant_is_rejected():
    with pytest.raises(ValueError, match="unknown illuminant"):
        illuminant_parameters("D50")
    weights, cct = illuminant_parameters("F2")
    assert weights.sum() == 1 and weights[spectra.ILLUMINANT_NAMES.index("F2")] == 1
