"""Keras model → TFLite flatbuffer, with named signatures and quantization.

Quantization variants (the ``--quantize`` choices of ``bioface export``):

* ``float32``: no quantization.
* ``float16``: weights and constants stored as float16, computed in float32.
* ``dynamic``: weights and large constants stored as int8 (dynamic-range
  quantization), activations float. Dense layers get per-tensor rather than
  per-channel weight scales: per-channel hybrid FULLY_CONNECTED (op version
  12) does not load in tflite-runtime 2.14.
* ``int8``: full-integer quantization calibrated on a representative
  dataset, with float fallback for ops without an int8 kernel. The ops of
  the layers named in ``float_layers`` are kept float (selective
  quantization through ``tf.lite.experimental.QuantizationDebugger``): the
  encoder's input normalisation ``255·x^2.2 − mean`` must be, or its int8
  rounding moves the maps by 0.33 map units (docs/EXPORT.md).

The converter's C++ log lines are filtered once :func:`bioface_tf.native_logs.quiet`
was called (the ``bioface`` command does, unless ``--verbose``).
"""

from __future__ import annotations

import functools
import re
import tempfile
from collections.abc import Callable, Iterable, Sequence

from bioface_tf import native_logs

QUANTIZATIONS = ("float32", "float16", "dynamic", "int8")


def convert(
    model,
    signature: str,
    quantize: str = "float32",
    batch_size: int = 1,
    representative_data: Callable[[], Iterable[dict]] | None = None,
    float_layers: Sequence[str] = (),
) -> bytes:
    """Convert a functional model with named inputs to TFLite.

    Args:
        model: a Keras functional model whose inputs are named.
        signature: the signature name in the flatbuffer (e.g. ``"render"``).
        quantize: one of :data:`QUANTIZATIONS`.
        batch_size: the fixed batch dimension (other ``None`` dimensions stay
            dynamic; resize the interpreter's inputs to use them).
        representative_data: for ``int8``, a callable yielding input dicts.
        float_layers: for ``int8``, names of Keras layers (of ``model`` or
            nested in it) whose ops stay float32 between dequantize and
            quantize ops.

    Returns:
        The TFLite flatbuffer.
    """
    import keras
    import tensorflow as tf

    if quantize not in QUANTIZATIONS:
        raise ValueError(f"quantize must be one of {QUANTIZATIONS}, got {quantize!r}")
    if quantize == "int8" and representative_data is None:
        raise ValueError("int8 quantization needs representative_data to calibrate on")
    spec = {
        tensor.name: tf.TensorSpec((batch_size, *tensor.shape[1:]), tf.float32, name=tensor.name)
        for tensor in model.inputs
    }
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(signature, functools.partial(_call, model), input_signature=[spec])
    with native_logs.filtered(), tempfile.TemporaryDirectory() as folder:
        archive.write_out(folder, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(folder, signature_keys=[signature])
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if quantize != "float32":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantize == "dynamic":
            converter._experimental_disable_per_channel_quantization_for_dense_layers = True
        if quantize == "float16":
            converter.target_spec.supported_types = [tf.float16]
        if quantize == "int8":
            converter.representative_dataset = representative_data
            converter.target_spec.supported_ops = [
                tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
                tf.lite.OpsSet.TFLITE_BUILTINS,
            ]
            if float_layers:
                return _selectively_quantized(converter, folder, signature, representative_data, float_layers)
        return converter.convert()


def _selectively_quantized(converter, folder: str, signature: str, representative_data, float_layers) -> bytes:
    """Full-integer conversion with the ops of ``float_layers`` denylisted (kept float)."""
    import tensorflow as tf

    float_model = tf.lite.TFLiteConverter.from_saved_model(folder, signature_keys=[signature]).convert()
    interpreter = tf.lite.Interpreter(model_content=float_model)
    pattern = re.compile(r"(^|/)(" + "|".join(map(re.escape, float_layers)) + r")(_\d+)?/")
    nodes = sorted({t["name"] for t in interpreter.get_tensor_details() if pattern.search(t["name"])})
    if not nodes:
        raise ValueError(f"no op of the layers {list(float_layers)} in the converted model")
    # the debugger feeds lists in the order of the model's input tensors
    by_index = {d["index"]: name for name, d in interpreter.get_signature_runner(signature).get_input_details().items()}
    inputs = [by_index[d["index"]] for d in interpreter.get_input_details()]

    def debug_data():
        for sample in representative_data():
            yield [sample[name] for name in inputs]

    options = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=nodes)
    debugger = tf.lite.experimental.QuantizationDebugger(
        converter=converter, debug_dataset=debug_data, debug_options=options
    )
    return debugger.get_nondebug_quantized_model()


def _call(model, inputs: dict):
    """The model in inference mode on named inputs (a lone input as a tensor)."""
    if len(model.inputs) == 1:
        (inputs,) = inputs.values()
    return model(inputs, training=False)
