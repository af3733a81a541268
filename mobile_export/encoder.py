"""The on-device encoder: face photo → scaled maps, camera and light parameters.

An editing app runs it once per photo. It is a trained
:class:`~bioface_tf.model.BioFaceNet` without its physics decoder, preceded
by the network's input normalisation (:class:`NetworkInput`), so that the
app feeds plain sRGB pixels and gets exactly the inputs of the renderer
(:func:`mobile_export.renderer.build_renderer`).
"""

from __future__ import annotations

import keras

from bioface_tf.data.pipeline import MEAN_RGB, REFERENCE, REFERENCE_GAMMA, preprocess
from bioface_tf.model.mirror import Mirror, MirrorAverage

ENCODER_INPUT = "image"
ENCODER_OUTPUTS = ("fmel", "fblood", "shading", "specmask", "light_weights", "cct", "b")


@keras.saving.register_keras_serializable(package="bioface")
class NetworkInput(keras.layers.Layer):
    """sRGB pixels in [0, 1] → the network's input (PHYSICS.md §10).

    ``"reference"``: ``255·max(srgb, 0)^2.2 − mean_rgb``; ``"display"``:
    ``255·srgb − mean_rgb`` (:func:`bioface_tf.data.pipeline.preprocess`).

    Args:
        preprocessing: ``"reference"`` or ``"display"``, as the model was trained.
    """

    def __init__(self, preprocessing: str = REFERENCE, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.preprocessing = preprocessing

    def call(self, srgb):
        return preprocess(srgb, self.preprocessing)

    def get_config(self):
        return {**super().get_config(), "preprocessing": self.preprocessing}


def normalisation(preprocessing: str) -> dict:
    """How the encoder prepares its input, for ``metadata.json``."""
    power = REFERENCE_GAMMA if preprocessing == REFERENCE else 1.0
    return {
        "preprocessing": preprocessing,
        "inside_model": True,
        "formula": f"255 * max(image, 0)^{power:g} - mean_rgb",
        "mean_rgb": list(MEAN_RGB),
    }


def build_encoder(model, mirror_average: bool | None = None) -> keras.Model:
    """The encoder of a BioFaceNet, sharing its weights.

    Args:
        model: a :class:`~bioface_tf.model.BioFaceNet`.
        mirror_average: run the network on the crop and on its mirror image
            and average (:mod:`bioface_tf.model.mirror`), as the model does
            at inference; None: as ``model.mirror_average``.

    Returns:
        A model taking ``image`` (B, S, S, 3) — a face crop, sRGB-encoded
        in [0, 1], S the model's ``image_size`` — and returning ``fmel``,
        ``fblood`` (B, S, S, 1) in [-1, 1], ``shading`` (B, S, S, 1) > 0,
        ``specmask`` (B, S, S, 1) ≥ 0, ``light_weights`` (B, 14) summing to
        1, ``cct`` (B, 1) in [1, 22] and ``b`` (B, 2) in [-3, 3].
    """
    size = model.image_size
    image = keras.Input((size, size, 3), name=ENCODER_INPUT)
    network_input = NetworkInput(getattr(model, "preprocessing", REFERENCE), name="network_input")(image)
    scaling = model.get_layer("scaling")
    parameters = scaling(model.raw_outputs(network_input))
    if model.mirror_average if mirror_average is None else mirror_average:
        mirrored = scaling(model.raw_outputs(Mirror(name="mirror")(network_input)))
        parameters = MirrorAverage(name="mirror_average")(parameters, mirrored)
    outputs = {name: keras.layers.Identity(name=name)(parameters[name]) for name in ENCODER_OUTPUTS}
    return keras.Model(image, outputs, name="bioface_encoder")
