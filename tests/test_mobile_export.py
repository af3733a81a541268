"""TFLite bundles: builtin ops only, metadata an app can read, parity with the Keras model per variant."""

import json

import numpy as np
import pytest

from bioface_tf.editing import Edit, edit_parameters
from bioface_tf.errors import BioFaceError

litert = pytest.importorskip("ai_edge_litert.interpreter")
schema = pytest.importorskip("ai_edge_litert.schema_py_generated")

SIZE = 32
QUANTIZATIONS = ("float32", "float16", "dynamic", "int8")
EDIT = Edit(melanin=0.3, haemoglobin=-0.2, specular=0.5)
MIN_PSNR = {"float32": 40.0, "float16": 40.0, "dynamic": 30.0, "int8": 30.0}
BUILTINS = {name for name in vars(schema.BuiltinOperator) if name.isupper()} - {"CUSTOM"}


@pytest.fixture(scope="module")
def model():
    """The shipped recipe's kind of network: photometric input (its ops stay float in int8)."""
    from bioface_tf.model import build_bioface

    return build_bioface(SIZE, "mobile", width_multiplier=0.25, input_features="photometric")


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    from bioface_tf.data import CelebAFaces
    from bioface_tf.data.synth import write_synthetic

    path = write_synthetic(tmp_path_factory.mktemp("faces") / "faces.h5", n=6, size=SIZE, seed=2, progress=False)
    with CelebAFaces([path], image_size=None) as source:
        return {**source.read(np.arange(6)), "path": path}


@pytest.fixture(scope="module", params=QUANTIZATIONS)
def bundle(request, model, faces, tmp_path_factory):
    from mobile_export.export import calibration_from_files, export_bundle

    quantize = request.param
    folder = tmp_path_factory.mktemp(f"bundle_{quantize}")
    calibration = calibration_from_files([faces["path"]], SIZE) if quantize == "int8" else None
    return quantize, export_bundle(model, folder, quantize, calibration, calibration_note="test faces")


def _signature(path, name):
    interpreter = litert.Interpreter(model_path=str(path))
    return interpreter.get_signature_runner(name), interpreter


def _psnr(a, b):
    return -10 * np.log10(np.mean((np.asarray(a, np.float64) - b) ** 2))


def test_every_exported_model_uses_builtin_ops_only(bundle):
    from mobile_export.runtime import operators

    quantize, files = bundle
    for path in (files.encoder, files.renderer):
        ops = operators(path)
        print(f"{quantize} {path.name}: {' '.join(f'{op}/v{version}' for op, version in ops.items())}")
        assert ops and set(ops) <= BUILTINS, set(ops) - BUILTINS
        interpreter = litert.Interpreter(
            model_path=str(path), experimental_op_resolver_type=litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        )
        assert {op["op_name"] for op in interpreter._get_ops_details()} == set(ops), "every operator is listed"
    assert {"CONV_2D", "DEPTHWISE_CONV_2D", "LOGISTIC", "SOFTMAX"} <= set(operators(files.encoder))
    assert {"GATHER", "BATCH_MATMUL"} <= set(operators(files.renderer))


def test_operator_versions_load_in_tflite_runtime_2_14(bundle):
    from mobile_export.runtime import operators

    _, files = bundle
    for path in (files.encoder, files.renderer):
        assert operators(path).get("FULLY_CONNECTED", 1) <= 11, "tflite-runtime 2.14 refuses FULLY_CONNECTED v12"


def test_metadata_names_every_signature_tensor_with_its_shape(bundle):
    quantize, files = bundle
    record = json.loads(files.metadata.read_text())
    assert record["quantize"] == quantize and record["image_size"] == SIZE
    for part in ("encoder", "renderer"):
        runner, interpreter = _signature(files.metadata.parent / record[part]["file"], record[part]["signature"])
        inputs, outputs = runner.get_input_details(), runner.get_output_details()
        assert {t["name"] for t in record[part]["inputs"]} == set(inputs)
        assert {t["name"] for t in record[part]["outputs"]} == set(outputs)
        for tensor in record[part]["inputs"] + record[part]["outputs"]:
            detail = {**inputs, **outputs}[tensor["name"]]
            assert list(detail["shape_signature"]) == tensor["shape"], tensor["name"]
            assert detail["dtype"] == np.float32, "float input/output in every variant"
    assert record["encoder"]["normalisation"]["formula"] == "255 * max(image, 0)^2.2 - mean_rgb"
    assert len(record["illuminants"]["names"]) == 14 and len(record["cameras"]) == 28


def test_int8_bundle_quantizes_the_encoder_and_keeps_the_renderer_arithmetic_float(bundle):
    quantize, files = bundle
    record = json.loads(files.metadata.read_text())
    encoder = litert.Interpreter(model_path=str(files.encoder))
    renderer = litert.Interpreter(model_path=str(files.renderer))
    encoder_types = {t["dtype"] for t in encoder.get_tensor_details()}
    renderer_int8 = [t["name"] for t in renderer.get_tensor_details() if t["dtype"] == np.int8]
    if quantize == "int8":
        assert np.int8 in encoder_types and record["encoder"]["calibration"] == "test faces"
        assert record["renderer"]["quantization"] == "dynamic"
    else:
        assert np.int8 not in encoder_types or quantize == "dynamic"
    if quantize in ("dynamic", "int8"):
        assert renderer_int8, "the skin table is stored as int8"
        ops = {op["op_name"] for op in renderer._get_ops_details()}
        assert "QUANTIZE" not in ops, "no activation is quantized in the renderer"
    else:
        assert not renderer_int8


def test_encoder_mirrors_the_crop_in_float_in_every_variant(bundle):
    quantize, files = bundle
    record = json.loads(files.metadata.read_text())
    assert record["encoder"]["mirror_average"] is True
    interpreter = litert.Interpreter(model_path=str(files.encoder))
    mirrored = [t for t in interpreter.get_tensor_details() if "/mirror" in t["name"]]
    assert any("/mirror_" in t["name"] and "ReverseV2" in t["name"] for t in mirrored), "the crop is mirrored"
    assert mirrored and all(t["dtype"] == np.float32 for t in mirrored), f"{quantize}: mirror ops quantized"


def test_bundle_edits_like_the_keras_model(bundle, model, faces):
    from bioface_tf.analysis import analyse, decoder_of
    from bioface_tf.editing import render
    from mobile_export.runtime import LiteBioFace

    quantize, files = bundle
    keras_faces = analyse(model, faces["image"], faces["mask"])
    lite = LiteBioFace(files.metadata.parent)
    lite_params = lite.encode(faces["image"])
    expected = render(edit_parameters(keras_faces.params, EDIT), decoder_of(model))
    edited = lite.render(lite_params, EDIT)
    assert edited.shape == expected.shape == (6, SIZE, SIZE, 3)
    psnr = _psnr(edited, expected)
    map_error = max(np.abs(lite_params[k] - keras_faces.params[k]).mean() for k in ("fmel", "fblood"))
    print(f"{quantize}: edited-image PSNR {psnr:.1f} dB, map MAE {map_error:.4f}")
    assert psnr >= MIN_PSNR[quantize]
    if quantize == "float32":
        assert map_error < 1e-5


def test_renderer_offsets_give_the_numpy_edit(bundle, model, faces):
    from mobile_export.runtime import LiteBioFace

    quantize, files = bundle
    if quantize != "float32":
        pytest.skip("one variant is enough: the offsets are the same graph in every variant")
    lite = LiteBioFace(files.metadata.parent)
    params = lite.encode(faces["image"][:2])
    for edit in (EDIT, Edit(melanin=2.0, specular=0.0), Edit(haemoglobin=0.5, illuminant="A")):
        np.testing.assert_allclose(lite.render(params, edit), lite(edit_parameters(params, edit))["srgb"], atol=2e-6)


def test_export_refuses_an_unknown_quantization(model, tmp_path):
    from mobile_export.export import export_bundle

    with pytest.raises(BioFaceError, match="int4"):
        export_bundle(model, tmp_path, "int4")


def test_float32_encoder_with_a_low_rank_int8_renderer(model, faces, tmp_path):
    from bioface_tf.analysis import analyse
    from mobile_export.export import export_bundle
    from mobile_export.runtime import LiteBioFace

    files = export_bundle(model, tmp_path, "dynamic", skin_spectral_rank=4, encoder_quantize="float32")
    record = json.loads(files.metadata.read_text())
    assert record["encoder"]["quantization"] == "float32" and record["renderer"]["quantization"] == "dynamic"
    assert record["renderer"]["skin_spectral_rank"] == 4
    assert files.renderer.stat().st_size < 1e6, "a rank-4 table with int8 constants is small"
    expected = analyse(model, faces["image"], faces["mask"])
    lite = LiteBioFace(tmp_path)
    params = lite.encode(faces["image"])
    assert max(np.abs(params[k] - expected.params[k]).max() for k in ("fmel", "fblood")) < 1e-4
    assert _psnr(lite(params)["srgb"], expected.reconstruction) > 35
