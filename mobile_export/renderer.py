"""The on-device renderer: maps + parameters + edit offsets → image.

An editing app runs the encoder once per photo and this renderer on every
slider move. It is the physics decoder preceded by :class:`ApplyEdit`, as a
Keras functional model with named inputs, so it converts to a TFLite model
with builtin ops only.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from bioface_tf.physics import PhysicsDecoder

MAP_INPUTS = ("fmel", "fblood", "shading", "specmask")
EDIT_INPUTS = ("melanin_offset", "haemoglobin_offset", "specular_scale")
RENDERER_OUTPUTS = ("srgb", "linear_srgb")


@keras.saving.register_keras_serializable(package="bioface")
class ApplyEdit(keras.layers.Layer):
    """Biophysical edit of the scaled maps (PHYSICS.md §11), in TensorFlow.

    ``fmel ← clip(fmel + melanin_offset, −1, 1)``, the same for ``fblood``
    with ``haemoglobin_offset``, and ``specmask ← specular_scale · specmask``
    (the NumPy twin is :func:`bioface_tf.editing.edit_parameters`).

    Call arguments:
        inputs: dict with ``fmel``, ``fblood``, ``specmask`` (B, H, W, 1) and
            ``melanin_offset``, ``haemoglobin_offset``, ``specular_scale``
            (B, 1).

    Returns:
        dict with the edited ``fmel``, ``fblood``, ``specmask``.
    """

    def __init__(self, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)

    def call(self, inputs):
        melanin, haemoglobin, specular = (inputs[name][:, None, None, :] for name in EDIT_INPUTS)
        return {
            "fmel": tf.clip_by_value(inputs["fmel"] + melanin, -1.0, 1.0),
            "fblood": tf.clip_by_value(inputs["fblood"] + haemoglobin, -1.0, 1.0),
            "specmask": inputs["specmask"] * tf.maximum(specular, 0.0),
        }

    def compute_output_shape(self, input_shape):
        return {name: tuple(input_shape[name]) for name in ("fmel", "fblood", "specmask")}


def build_renderer(
    skin_spectral_rank: int | None = None, raw2xyz: str = "exact", d_series: str = "table"
) -> keras.Model:
    """The renderer as a functional model.

    Args:
        skin_spectral_rank: None for the exact skin table, or K for a rank-K
            spectral basis (a smaller model).
        raw2xyz: ``"exact"`` or ``"table"``, see :class:`PhysicsDecoder`.
        d_series: ``"table"`` or ``"continuous"``, see :class:`PhysicsDecoder`
            (match the model whose maps it renders).

    Returns:
        A model taking ``fmel``, ``fblood``, ``shading``, ``specmask``
        (B, H, W, 1), ``b`` (B, 2), ``light_weights`` (B, 14), ``cct``
        (B, 1), ``melanin_offset``, ``haemoglobin_offset``,
        ``specular_scale`` (B, 1), and returning ``srgb`` and ``linear_srgb``
        (B, H, W, 3).
    """
    inputs = {name: keras.Input((None, None, 1), name=name) for name in MAP_INPUTS}
    inputs["b"] = keras.Input((2,), name="b")
    inputs["light_weights"] = keras.Input((14,), name="light_weights")
    inputs["cct"] = keras.Input((1,), name="cct")
    for name in EDIT_INPUTS:
        inputs[name] = keras.Input((1,), name=name)
    edited = ApplyEdit(name="apply_edit")(
        {name: inputs[name] for name in ("fmel", "fblood", "specmask", *EDIT_INPUTS)}
    )
    params = {**{k: inputs[k] for k in ("shading", "b", "light_weights", "cct")}, **edited}
    decoder = PhysicsDecoder(
        raw2xyz=raw2xyz, d_series=d_series, skin_spectral_rank=skin_spectral_rank, name="physics"
    )
    rendered = decoder(params)
    outputs = {name: keras.layers.Identity(name=name)(rendered[name]) for name in RENDERER_OUTPUTS}
    return keras.Model(inputs, outputs, name="bioface_renderer")
