"""The helpers of benchmarks/eval_real_photos.py (no model, no bundled photos needed)."""

import pathlib
import types

import numpy as np
import pytest

from bioface_tf import spectra
from bioface_tf.specular import linearise
from benchmark_scripts import loaded


@pytest.fixture(scope="module")
def rp():
    with loaded("eval_real_photos.py", "eval_real_photos") as module:
        yield module


def test_exposure_is_halved_in_linear_light_not_in_srgb(rp):
    x = np.linspace(0.0, 1.0, 101, dtype=np.float32)
    darker = rp.scale_exposure(x)
    np.testing.assert_allclose(linearise(darker), 0.5 * linearise(x), atol=2e-6)
    assert darker[0] == 0.0
    # sRGB 1.0 -> linear 0.5 -> 1.055 * 0.5 ** (1/2.4) - 0.055
    assert darker[-1] == pytest.approx(0.735357, abs=1e-5)
    # code value 0.5: exact sRGB curve gives 0.3608; halving the code value would give 0.25,
    # and a plain 2.2 gamma 0.5 * 0.5 ** (1 / 2.2) = 0.3648
    assert darker[50] == pytest.approx(0.36078, abs=1e-4)
    # on the curve's linear segment halving linear light halves the code value
    assert rp.scale_exposure(np.float32(0.02)) == pytest.approx(0.01, abs=1e-6)
    assert np.all(np.diff(darker) >= 0) and np.all(darker <= x)


def test_mean_volume_fraction_converts_pixels_before_averaging(rp):
    mask = np.zeros((4, 4, 1), np.float32)
    mask[:2] = 1.0
    fmel = np.full((4, 4, 1), 0.3, np.float32)
    fmel[0], fmel[1] = -1.0, 1.0  # inside: half -1, half +1; outside ignored
    expected = (spectra.MELANIN_MAX * 0.01**3 + spectra.MELANIN_MAX) / 2
    assert rp.mean_volume_fraction(fmel, mask, spectra.MELANIN_MAX) == pytest.approx(expected)
    # converting the mean map value (0) instead would give 0.43 * 0.505**3 ≈ 0.055
    assert rp.masked_mean(fmel, mask) == pytest.approx(0.0)
    assert rp.masked_std(fmel, mask) == pytest.approx(1.0)
    assert np.isnan(rp.masked_mean(fmel, np.zeros_like(mask)))


def test_relative_change_of_volume_fraction_and_of_map_value(rp):
    vf = spectra.map_to_volume_fraction
    before, after = vf(0.0, spectra.MELANIN_MAX), vf(0.1, spectra.MELANIN_MAX)
    # a map change of 0.1 around 0 is a ~35 % volume fraction change (u**3)
    assert rp.relative_change(before, after, eps=0.0) == pytest.approx(((0.01 + 0.99 * 0.55) / (0.01 + 0.99 * 0.5)) ** 3 - 1)
    assert rp.relative_change(0.06, 0.054, eps=0.0) == pytest.approx(0.1)
    # in map units the same figure explodes near v = 0: why Vf is the reported one
    assert rp.relative_change(0.0, 0.01) == pytest.approx(1e4)


def test_view_squares_keep_the_centre_or_shift_by_five_percent(rp):
    square = (100, 40, 200)
    views = rp.view_squares(square)
    assert views["crop ×0.9"] == (110, 50, 180)
    assert views["crop ×1.1"] == (90, 30, 220)
    assert views["shift left 5%"] == (90, 40, 200)
    assert views["shift right 5%"] == (110, 40, 200)
    assert views["shift up 5%"] == (100, 30, 200)
    assert views["shift down 5%"] == (100, 50, 200)


def test_same_person_views(rp):
    rng = np.random.default_rng(0)
    photo = np.clip(rng.normal(0.5, 0.1, (120, 100, 3)), 0, 1).astype(np.float32)
    views = rp.same_person_views(photo, (10, 20, 80), 32)
    assert len(views) == 9 and all(v.shape == (32, 32, 3) for v in views.values())
    np.testing.assert_array_equal(views["mirrored"], views["crop"][:, ::-1])
    jpeg = views["JPEG q75"]
    assert 0 < np.abs(jpeg - views["crop"]).mean() < 0.05
    assert not np.allclose(views["shift right 5%"], views["crop"])


def test_spread(rp):
    s = rp.spread([0.9, 1.0, 1.1])
    assert s["mean"] == pytest.approx(1.0)
    assert s["range_rel"] == pytest.approx(0.2)
    assert s["std_rel"] == pytest.approx(np.std([0.9, 1.0, 1.1]))


def test_missing_distribution_is_noted_not_fatal(rp, monkeypatch):
    fake = rp.BundledPhoto("nobody", "no-such-distribution-xyz", "x/face.png", "x()", "nobody", "none")
    monkeypatch.setattr(rp, "BUNDLED_PHOTOS", (fake,))
    found, missing = rp.bundled_photos()
    assert found == [] and "no-such-distribution-xyz" in missing[0]


def _result(map_std, vf_change, r):
    maps = {
        "map_before": 0.0, "map_std": map_std, "map_after": 0.0, "map_rel_change": 0.0,
        "vf_before": 0.05, "vf_after": 0.05 * (1 + vf_change), "vf_rel_change": vf_change, "r": r,
        "views": {"crop": 0.05, "mirrored": 0.05}, "spread": {"mean": 0.05, "range_rel": 0.0, "std_rel": 0.0},
    }
    return {"psnr": 30.0, "psnr_darker": 29.0, "shading_ratio": 0.5, "melanin": maps, "haemoglobin": dict(maps)}


def test_report_marks_goals_and_near_constant_maps(rp):
    model = types.SimpleNamespace(image_size=64, preprocessing="reference")
    photos = [rp.Photo("a", pathlib.Path("a.png"), "p", "l", "0" * 64), rp.Photo("b", pathlib.Path("b.png"), "p", "l", "1" * 64)]
    text = rp.report("cmd", "m.keras", model, photos, [], {"a": _result(0.2, 0.05, 0.95), "b": _result(0.001, 0.2, 0.5)})
    rows = {line.split(" | ")[0]: line for line in text.splitlines() if line.startswith("| a | +") or line.startswith("| b | +")}
    assert "**5.0%** | yes | 0.950 | yes" in rows["| a"]
    assert "**20.0%** | **no** | 0.500 | **no**" in rows["| b"]
    assert "Near-constant maps" in text and "b (melanin)" in text and "a (melanin)" not in text
    assert "Only 2 real photo(s)" in text and "not covered" in text


def test_every_view_has_the_mask_of_its_own_square(rp):
    from data_builders import draw_face

    photo = draw_face(240, 240, (120, 120), 1.0)[..., ::-1].astype(np.float32) / 255.0
    square = (40, 40, 160)
    names = list(rp.same_person_views(photo, square, 32))
    ellipse = rp.view_masks(photo, square, 32, "ellipse")
    assert ellipse.shape == (len(names) + 1, 32, 32, 1)
    assert np.all(ellipse == ellipse[0]), "the ellipse is the same for every view"
    skin = rp.view_masks(photo, square, 32, "skin")
    crop = skin[names.index("crop")]
    assert 0 < crop.mean() < 1
    np.testing.assert_array_equal(skin[names.index("mirrored")], crop[:, ::-1])
    np.testing.assert_array_equal(skin[-1], crop)
    shifted = skin[names.index("shift right 5%")]
    assert np.any(shifted != crop), "a shifted crop's skin is found in that crop"
