"""Each physics layer, in float32, against the golden numbers of the reference."""

import numpy as np
import pytest
import tensorflow as tf

from bioface_tf import spectra
from bioface_tf.physics import (
    CameraSensitivity,
    IlluminantSpectrum,
    PhysicsDecoder,
    RawToXYZMatrix,
    SkinReflectance,
)

RTOL = 1e-4


@pytest.mark.parametrize("case", range(2))
def test_illuminant_spectrum_matches_golden(reference_values, case):
    golden = reference_values["illuminant"][case]
    weights = np.array([[golden["wA"], golden["wD"], *golden["F"]]], np.float32)
    spd = IlluminantSpectrum()({"light_weights": weights, "cct": np.array([[golden["cct"]]], np.float32)})
    np.testing.assert_allclose(spd.numpy()[0], golden["e"], rtol=RTOL)


def test_daylight_interpolates_linearly_between_tabulated_temperatures():
    layer = IlluminantSpectrum()
    layer.build()
    table = spectra.illuminants().d_series
    cct = np.array([[1.0], [7.0], [7.25], [22.0]], np.float32)
    daylight = layer.daylight(tf.constant(cct)).numpy()
    np.testing.assert_allclose(daylight[0], table[0], rtol=1e-6)
    np.testing.assert_allclose(daylight[1], table[6], rtol=1e-6)
    np.testing.assert_allclose(daylight[2], 0.75 * table[6] + 0.25 * table[7], rtol=1e-6)
    np.testing.assert_allclose(daylight[3], table[21], rtol=1e-6)


def test_continuous_daylight_option_follows_cie_basis():
    layer = IlluminantSpectrum(d_series="continuous")
    layer.build()
    daylight = layer.daylight(tf.constant([[2.5]], tf.float32)).numpy()[0]
    np.testing.assert_allclose(daylight, spectra.daylight_from_basis(5500.0), rtol=1e-4)


def test_camera_sensitivity_matches_numpy_model():
    b = np.array([[0.0, 0.0], [1.5, -2.0], [-3.0, 3.0]], np.float32)
    sensitivity = CameraSensitivity()(b).numpy()
    np.testing.assert_allclose(sensitivity, spectra.camera_sensitivity(b), rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("mode,rtol", [("exact", RTOL), ("table", 1.5e-4)])
def test_raw_to_xyz_matrix_matches_golden(reference_values, mode, rtol):
    goldens = reference_values["T_raw2xyz"]
    b = np.array([g["b"] for g in goldens], np.float32)
    t = RawToXYZMatrix(mode=mode)(b).numpy().reshape(len(goldens), 9)
    for row, golden in zip(t, goldens):
        expected = np.array(golden["T_rowmajor"])
        assert np.max(np.abs(row - expected)) <= rtol * np.max(np.abs(expected))


def test_skin_lookup_at_grid_nodes_returns_table_entries(reference_values):
    table = spectra.skin_reflectance_table()
    rows = np.array([0, 37, 128, 254, 255])
    columns = np.array([255, 0, 128, 1, 255])
    fblood = (2 * rows / 255 - 1).astype(np.float32).reshape(1, 1, -1, 1)
    fmel = (2 * columns / 255 - 1).astype(np.float32).reshape(1, 1, -1, 1)
    reflectance = SkinReflectance()({"fmel": fmel, "fblood": fblood}).numpy()[0, 0]
    np.testing.assert_allclose(reflectance, table[rows, columns], rtol=RTOL, atol=1e-12)
    darkest = reference_values["skin_reflectance"][3]
    assert (darkest["melanin"], darkest["haemoglobin"]) == (0.43, 0.07)
    np.testing.assert_allclose(reflectance[-1], darkest["R"], rtol=RTOL)


def test_skin_lookup_between_nodes_is_bilinear():
    table = spectra.skin_reflectance_table()
    fmel = np.float32(2 * 100.25 / 255 - 1)
    fblood = np.float32(2 * 30.5 / 255 - 1)
    reflectance = SkinReflectance()(
        {"fmel": np.full((1, 1, 1, 1), fmel), "fblood": np.full((1, 1, 1, 1), fblood)}
    ).numpy()[0, 0, 0]
    expected = (
        0.5 * 0.75 * table[30, 100] + 0.5 * 0.25 * table[30, 101]
        + 0.5 * 0.75 * table[31, 100] + 0.5 * 0.25 * table[31, 101]
    )
    np.testing.assert_allclose(reflectance, expected, rtol=1e-3)


def _golden_render_inputs(golden):
    inputs = {k: np.array(golden[k], np.float32)[None, ..., None] for k in ("fmel", "fblood", "shading", "specmask")}
    inputs["b"] = np.array([golden["b"]], np.float32)
    inputs["light_weights"] = np.array([[golden["wA"], golden["wD"], *golden["wF"]]], np.float32)
    inputs["cct"] = np.array([[golden["cct"]]], np.float32)
    return inputs


@pytest.mark.parametrize("raw2xyz,rtol", [("exact", RTOL), ("table", 5e-4)])
def test_decoder_renders_golden_pixels(reference_values, raw2xyz, rtol):
    golden = reference_values["render_pixels"]
    out = PhysicsDecoder(raw2xyz=raw2xyz)(_golden_render_inputs(golden))
    np.testing.assert_allclose(out["linear_srgb"].numpy()[0], golden["linear_srgb"], rtol=rtol)
    np.testing.assert_allclose(out["light_colour"].numpy()[0], golden["light_colour"], rtol=RTOL)
    t = spectra.raw_to_xyz_matrix(np.array(golden["b"]))
    np.testing.assert_allclose(out["T_raw2xyz"].numpy()[0], t, rtol=rtol, atol=1e-6)


def test_decoder_stages_compose_as_documented(reference_values):
    """raw = albedo·shading + specmask·light, wb = raw/light, sRGB = relu(M·T·wb)."""
    golden = reference_values["render_pixels"]
    inputs = _golden_render_inputs(golden)
    out = {k: v.numpy() for k, v in PhysicsDecoder()(inputs).items()}
    light = out["light_colour"][0]
    raw = out["albedo"][0] * inputs["shading"][0] + inputs["specmask"][0] * light
    np.testing.assert_allclose(out["raw"][0], raw, rtol=1e-5)
    wb = raw / light
    linear = np.maximum(np.einsum("kx,xc,hwc->hwk", spectra.XYZ_TO_LINEAR_SRGB, out["T_raw2xyz"][0], wb), 0)
    np.testing.assert_allclose(out["linear_srgb"][0], linear, rtol=1e-4, atol=1e-7)
    srgb = np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * np.clip(linear, 0, 1) ** (1 / 2.4) - 0.055)
    np.testing.assert_allclose(out["srgb"][0], np.clip(srgb, 0, 1), rtol=1e-5, atol=1e-6)


def test_low_rank_skin_table_approximates_full_render():
    rng = np.random.default_rng(5)
    inputs = {
        "fmel": rng.uniform(-1, 1, (1, 32, 32, 1)).astype(np.float32),
        "fblood": rng.uniform(-1, 1, (1, 32, 32, 1)).astype(np.float32),
        "shading": rng.uniform(0.3, 1.2, (1, 32, 32, 1)).astype(np.float32),
        "specmask": rng.uniform(0.0, 0.1, (1, 32, 32, 1)).astype(np.float32),
        "b": np.float32([[0.4, -0.7]]),
        "light_weights": np.eye(14, dtype=np.float32)[1:2],
        "cct": np.float32([[3.5]]),
    }
    full = PhysicsDecoder()(inputs)["srgb"].numpy()
    psnr = {}
    for rank in (4, 12):
        approx = PhysicsDecoder(skin_spectral_rank=rank)(inputs)["srgb"].numpy()
        psnr[rank] = -10 * np.log10(np.mean((approx - full) ** 2))
    assert psnr[12] > 40 and psnr[12] > psnr[4]
    coefficients, basis = spectra.skin_reflectance_basis(33)
    np.testing.assert_allclose(coefficients @ basis, spectra.skin_reflectance_table(), atol=1e-12)
