"""The trained network's row of benchmarks/eval_specular_families.py."""

import importlib.util
import pathlib
import sys

import numpy as np
import pytest

BENCHMARKS = pathlib.Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def families():
    sys.path.insert(0, str(BENCHMARKS))  # the script imports its sibling modules
    spec = importlib.util.spec_from_file_location("eval_specular_families", BENCHMARKS / "eval_specular_families.py")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.path.remove(str(BENCHMARKS))


def test_network_specular_is_what_its_decoder_adds_to_the_linear_image(families):
    from bioface_tf.analysis import decoder_of, estimate, load_model
    from bioface_tf.dichromatic_scene import render_face

    model = load_model()
    images = np.stack([render_face(model.image_size, seed=seed).image_srgb for seed in range(3)]).astype(np.float32)
    predicted = families.network_specular(model, images)
    params = estimate(model, images)
    decoder = decoder_of(model)
    lit = np.asarray(decoder(params)["linear_srgb"])
    unlit = np.asarray(decoder(dict(params, specmask=np.zeros_like(params["specmask"])))["linear_srgb"])
    added = (lit - unlit).mean(axis=-1)
    # The decoder's final ReLU hides part of the grey where the diffuse
    # linear sRGB is negative (out of gamut); compare where it is not.
    in_gamut = np.all(unlit > 0, axis=-1)
    assert predicted.shape == images.shape[:3]
    assert in_gamut.mean() > 0.8
    assert predicted[in_gamut].max() > 1e-3  # the model does predict some specular on these faces
    np.testing.assert_allclose(predicted[in_gamut], added[in_gamut], atol=1e-5, rtol=1e-3)


def test_network_row_is_scored_like_the_other_rows(families, tmp_path):
    from bioface_tf import specular

    def as_dark_channel(images, masks, extras):
        return specular.dark_channel(specular.linearise(images)) * masks

    report = families.evaluate(2, tmp_path, tuning=True, network=as_dark_channel)
    for table in report.split("## ")[1:]:
        rows = {line.split(" | ")[0].lstrip("| "): line.split(" | ")[1:3] for line in table.splitlines() if line.startswith("| ")}
        assert rows[families.NETWORK_ROW] == rows["plain dark channel"]
    assert report.count(families.NETWORK_ROW) == 3  # the three tuning families
