"""The summary of benchmarks/eval_face_means.py on face means whose relation to the truth is known."""

import importlib.util
import pathlib

import numpy as np
import pytest

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "eval_face_means.py"


@pytest.fixture(scope="module")
def face_means():
    spec = importlib.util.spec_from_file_location("eval_face_means", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_compressed_lighter_reading_with_darkness_in_the_shading_is_reported_as_such(face_means):
    rng = np.random.default_rng(0)
    n = 400
    true_mel = rng.uniform(-1, 1, n)
    true_blood = rng.uniform(-1, 1, n)
    true_shading = np.exp(rng.normal(0, 0.3, n))
    context = np.exp(rng.normal(0, 0.5, n))
    means = {
        "true_fmel": true_mel,
        "fmel": 0.5 * true_mel - 0.2 - 0.1 * np.log(context),
        "true_fblood": true_blood,
        "fblood": true_blood,
        "true_shading": true_shading,
        "shading": true_shading * np.exp(-0.4 * (true_mel + 1)),
        "skin_over_image": context,
    }
    bias = -0.5 * true_mel - 0.2 - 0.1 * np.log(context)
    row = face_means.summarise(means)
    assert row["faces"] == n
    assert row["melanin_slope"] == pytest.approx(0.5, abs=0.02)
    assert row["melanin_bias"] == pytest.approx(np.mean(bias))
    assert row["melanin_mean_err"] == pytest.approx(np.mean(np.abs(bias)))
    assert row["mel bias per log skin/image"] == pytest.approx(-0.1)
    assert row["skin/image luminance"] == pytest.approx(np.exp(np.median(np.log(context))))
    assert row["haemoglobin_slope"] == pytest.approx(1.0)
    assert row["haemoglobin_mean_err"] == pytest.approx(0.0, abs=1e-12)
    assert row["corr(mel bias, true mel)"] < -0.9
    assert row["corr(log ratio, true mel)"] == pytest.approx(-1.0)
    assert row["shading ratio"] == pytest.approx(np.exp(np.median(-0.4 * (true_mel + 1))))
    assert abs(row["corr(mel bias, log true shading)"]) < 0.2
