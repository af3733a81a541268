"""The on-device renderer: TFLite conversion, builtin ops only, parity with Keras."""

import numpy as np
import pytest

from bioface_tf.editing import Edit, edit_parameters
from mobile_export.renderer import build_renderer
from mobile_export.tflite import convert

Interpreter = pytest.importorskip("ai_edge_litert.interpreter").Interpreter

EDIT_NAMES = ("melanin_offset", "haemoglobin_offset", "specular_scale")


def _inputs(height, width, seed=0, edit=(0.0, 0.0, 1.0)):
    rng = np.random.default_rng(seed)
    weights = rng.random((1, 14))
    values = {
        "fmel": rng.uniform(-1, 1, (1, height, width, 1)),
        "fblood": rng.uniform(-1, 1, (1, height, width, 1)),
        "shading": rng.uniform(0.2, 1.5, (1, height, width, 1)),
        "specmask": rng.uniform(0, 0.2, (1, height, width, 1)),
        "b": rng.uniform(-3, 3, (1, 2)),
        "light_weights": weights / weights.sum(),
        "cct": rng.uniform(1, 22, (1, 1)),
        **{name: np.full((1, 1), value) for name, value in zip(EDIT_NAMES, edit)},
    }
    return {k: np.asarray(v, np.float32) for k, v in values.items()}


@pytest.fixture(scope="module")
def renderer():
    model = build_renderer()
    return model, convert(model, "render", "float32")


def _run(flatbuffer, inputs):
    interpreter = Interpreter(model_content=flatbuffer, num_threads=1)
    signature = interpreter.get_signature_runner("render")
    return signature(**inputs), interpreter


def test_renderer_uses_builtin_ops_only(renderer):
    _, flatbuffer = renderer
    _, interpreter = _run(flatbuffer, _inputs(8, 8))
    ops = {detail["op_name"] for detail in interpreter._get_ops_details()}
    assert "GATHER" in ops and "BATCH_MATMUL" in ops
    assert not any(op.startswith("Flex") or op == "CUSTOM" for op in ops), ops


@pytest.mark.parametrize("size", [(64, 64), (24, 40)])
def test_tflite_renderer_matches_keras(renderer, size):
    model, flatbuffer = renderer
    inputs = _inputs(*size, edit=(0.3, -0.2, 0.5))
    out, _ = _run(flatbuffer, inputs)
    expected = model(inputs)
    assert out["srgb"].shape == (1, *size, 3)
    np.testing.assert_allclose(out["srgb"], expected["srgb"].numpy(), atol=1e-4)
    np.testing.assert_allclose(out["linear_srgb"], expected["linear_srgb"].numpy(), rtol=1e-3, atol=1e-5)


def test_renderer_edit_offsets_match_numpy_editing(renderer):
    model, _ = renderer
    inputs = _inputs(16, 16, seed=3, edit=(0.4, 0.3, 0.0))
    params = {k: v for k, v in inputs.items() if k not in EDIT_NAMES}
    edited = edit_parameters(params, Edit(melanin=0.4, haemoglobin=0.3, specular=0.0))
    unedited_inputs = {**edited, **{n: np.float32([[v]]) for n, v in zip(EDIT_NAMES, (0, 0, 1))}}
    np.testing.assert_allclose(
        model(inputs)["srgb"].numpy(), model(unedited_inputs)["srgb"].numpy(), atol=1e-6
    )


def test_dynamic_range_quantized_renderer_stays_accurate():
    model = build_renderer()
    flatbuffer = convert(model, "render", "dynamic")
    inputs = _inputs(32, 32, seed=7)
    out, _ = _run(flatbuffer, inputs)
    error = out["srgb"] - model(inputs)["srgb"].numpy()
    psnr = -10 * np.log10(np.mean(error**2))
    assert psnr > 40, psnr
