"""The spectral tables and the constants derived from them, against golden numbers."""

import numpy as np
import pytest

from bioface_tf import spectra


def test_camera_pca_reproduces_reference(reference_values):
    pca = spectra.camera_pca()
    np.testing.assert_allclose(
        pca.explained_variance_ratio, reference_values["camera_pca_explained_variance_ratio"], rtol=1e-4
    )
    np.testing.assert_allclose(pca.mean[:5], reference_values["camera_mean_first5"], rtol=1e-6)


def test_camera_pca_components_reconstruct_database_cameras():
    pca = spectra.camera_pca()
    assert pca.components.shape == (2, 99)
    largest = np.argmax(np.abs(pca.components), axis=1)
    assert np.all(pca.components[[0, 1], largest] > 0), "MATLAB sign convention"
    # Projecting database cameras onto the 2 scaled components and back must
    # reduce their distance to the mean by the explained share, on average.
    data = spectra.camera_database().sensitivities.reshape(28, 99)
    approx = pca.scores @ pca.components + pca.mean
    residual = np.sum((data - approx) ** 2)
    total = np.sum((data - pca.mean) ** 2)
    np.testing.assert_allclose(1 - residual / total, pca.explained_variance_ratio.sum(), rtol=1e-9)


@pytest.mark.parametrize("case", range(3))
def test_raw_to_xyz_matrix_matches_golden(reference_values, case):
    golden = reference_values["T_raw2xyz"][case]
    t = spectra.raw_to_xyz_matrix(np.array(golden["b"]))
    expected = np.array(golden["T_rowmajor"]).reshape(3, 3)
    np.testing.assert_allclose(t, expected, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(t.sum(axis=1), [0.3253, 0.3425, 0.3723], rtol=1e-12)


@pytest.mark.parametrize("case", range(4))
def test_skin_reflectance_matches_golden(reference_values, case):
    golden = reference_values["skin_reflectance"][case]
    r = spectra.skin_reflectance(golden["melanin"], golden["haemoglobin"])
    np.testing.assert_allclose(r, golden["R"], rtol=1e-9)


def test_skin_table_layout_and_range():
    table = spectra.skin_reflectance_table()
    assert table.shape == (256, 256, 33)
    assert table.min() >= 0.0 and table.max() < 1.0
    melanin, haemoglobin = spectra.skin_grid()
    for row, column in [(0, 0), (10, 200), (255, 3), (128, 128)]:
        np.testing.assert_array_equal(
            table[row, column], spectra.skin_reflectance(melanin[column], haemoglobin[row])
        )


def test_mid_grid_skin_is_skin_coloured():
    """At mid-grid the reflectance rises from blue to red, as skin does."""
    r = spectra.skin_reflectance_table()[128, 128]
    blue = r[(spectra.WAVELENGTHS_NM >= 440) & (spectra.WAVELENGTHS_NM <= 480)].mean()
    green = r[(spectra.WAVELENGTHS_NM >= 520) & (spectra.WAVELENGTHS_NM <= 560)].mean()
    red = r[(spectra.WAVELENGTHS_NM >= 620) & (spectra.WAVELENGTHS_NM <= 680)].mean()
    assert blue < green < red


def test_illuminants_normalised_and_daylight_basis_agrees_with_table():
    tables = spectra.illuminants()
    np.testing.assert_allclose(tables.a.sum(), 1.0)
    np.testing.assert_allclose(tables.fluorescent.sum(axis=1), 1.0)
    np.testing.assert_allclose(tables.d_series.sum(axis=1), 1.0)
    # The table uses the 1.4388/1.4380 CCT correction; the basis evaluated at
    # the corrected temperature must reproduce it.
    for i, kelvin in enumerate(spectra.D_SERIES_KELVIN):
        np.testing.assert_allclose(
            spectra.daylight_from_basis(kelvin * 1.4388 / 1.4380), tables.d_series[i], rtol=2e-3
        )


def test_raw_to_xyz_table_agrees_with_exact_matrix():
    rng = np.random.default_rng(0)
    table = spectra.raw_to_xyz_table()
    grid = np.linspace(-3, 3, 128)
    i, j = rng.integers(0, 128, size=(2, 20))
    exact = spectra.raw_to_xyz_matrix(np.stack([grid[i], grid[j]], -1)).reshape(20, 9)
    np.testing.assert_allclose(table[i, j], exact, rtol=1e-12)


def test_missing_tables_name_the_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("BIOFACE_SPECTRA_DIR", str(tmp_path))
    with pytest.raises(spectra.SpectraError, match=str(tmp_path)):
        spectra.spectra_dir()


def test_truncated_table_names_the_file(tmp_path, monkeypatch):
    for source in spectra.spectra_dir().glob("*.csv"):
        lines = source.read_text().splitlines()
        if source.name == "cie1931_xyz_cmf.csv":
            lines = lines[:20]
        (tmp_path / source.name).write_text("\n".join(lines))
    monkeypatch.setenv("BIOFACE_SPECTRA_DIR", str(tmp_path))
    with pytest.raises(spectra.SpectraError, match="cie1931_xyz_cmf.csv: expected rows at 400"):
        spectra._wavelength_table("cie1931_xyz_cmf.csv")


def test_summary_reports_what_is_loaded():
    info = spectra.summary()
    assert info["skin_table_shape"] == [256, 256, 33]
    assert 0.0 <= info["skin_table_min"] < info["skin_table_max"] < 1.0
    assert len(info["camera_pca_explained_variance_ratio"]) == 2
