"""Keras model → TFLite flatbuffer, with named signatures and quantization.

Quantization variants (the ``--quantize`` choices of ``bioface export``):

* ``float32``: no quantization.
* ``float16``: weights and constants stored as float16, computed in float32.
* ``dynamic``: weights and large constants stored as int8 (dynamic-range
  quantization), activations float. Dense layers get per-tensor rather than
  per-channel weight scales: per-channel hybrid FULLY_CONNECTED (op version
  12) does not load in tflite-runtime 2.14.
* ``int8``: full-integer quantization calibrated on a representative
  dataset, with float fallback for ops without an int8 kernel.
"""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Callable, Iterable

QUANTIZATIONS = ("float32", "float16", "dynamic", "int8")


def convert(
    model,
    signature: str,
    quantize: str = "float32",
    batch_size: int = 1,
    representative_data: Callable[[], Iterable[dict]] | None = None,
) -> bytes:
    """Convert a functional model with named inputs to TFLite.

    Args:
        model: a Keras functional model whose inputs are named.
        signature: the signature name in the flatbuffer (e.g. ``"render"``).
        quantize: one of :data:`QUANTIZATIONS`.
        batch_size: the fixed batch dimension (other ``None`` dimensions stay
            dynamic; resize the interpreter's inputs to use them).
        representative_data: for ``int8``, a callable yielding input dicts.

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
    with tempfile.TemporaryDirectory() as folder:
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
        return converter.convert()


def _call(model, inputs: dict):
    """The model in inference mode on named inputs (a lone input as a tensor)."""
    if len(model.inputs) == 1:
        (inputs,) = inputs.values()
    return model(inputs, training=False)
