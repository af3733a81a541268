"""BioFaceNet as one Keras model: image → maps → physics → reconstruction."""

from __future__ import annotations

import keras
import tensorflow as tf

from bioface_tf.errors import BioFaceError
from bioface_tf.losses import BioFaceLoss
from bioface_tf.model.mirror import mirror, mirror_average
from bioface_tf.model.photometric import ExposureGain, PhotometricInput, input_channels
from bioface_tf.model.unet import BioFaceBackbone
from bioface_tf.physics import ParameterScaling, PhysicsDecoder

RENDERED_OUTPUTS = ("linear_srgb", "srgb", "albedo", "diffuse", "specular", "light_colour", "T_raw2xyz")
"""Decoder outputs the task model exposes, next to the physical parameters
(``fmel``, ``fblood``, ``shading``, ``specmask``, ``light_weights``, ``cct``, ``b``)."""


def _raw_outputs(image, backbone, photometric=None, exposure_gain=None):
    """Backbone outputs for a preprocessed image, through the photometric input when there is one."""
    if photometric is None:
        return backbone(image)
    features = photometric(image)
    return exposure_gain(backbone(features["features"]), features["log_exposure"])


@keras.saving.register_keras_serializable(package="bioface")
class BioFaceNet(keras.Model):
    """The BioFaceNet task model, trainable with ``fit`` on face batches.

    Network (:class:`BioFaceBackbone`) → :class:`ParameterScaling` →
    :class:`PhysicsDecoder`: one model maps a preprocessed image to the
    reconstruction and every intermediate. The physics is float32 under
    any dtype policy; under ``mixed_float16`` only the network runs in
    half precision.

    ``compile(loss=BioFaceLoss(...))`` sets the training objective; each
    term is logged under its own name (``appearance``, ``shading``, …)
    next to ``loss``, their weighted sum.

    Args:
        backbone: the network; a :class:`BioFaceBackbone`.
        raw2xyz, d_series: :class:`PhysicsDecoder` options.
        preprocessing: how the input images are prepared, ``"reference"``
            or ``"display"`` (:func:`bioface_tf.data.pipeline.preprocess`);
            stored with the model so that evaluation and inference prepare
            photos as training did.
        input_features: what the backbone sees: ``"image"`` (the
            preprocessed image, as in the paper) or ``"photometric"``
            (:class:`~bioface_tf.model.photometric.PhotometricInput`: relative
            brightness and chromaticity, blind to exposure, which
            :class:`~bioface_tf.model.photometric.ExposureGain` hands back
            to the shading maps). The backbone must have 3 or 6 input
            channels accordingly.
        mirror_average: at inference (any call but ``training=True``),
            estimate the parameters of the photo and of its left–right
            mirror image and decode their average
            (:mod:`bioface_tf.model.mirror`): truer maps for a second pass
            of the network. Training is unaffected. Settable on a loaded
            model (``model.mirror_average = False``).

    Call arguments:
        image: (B, H, W, 3), preprocessed as in training
            (:func:`bioface_tf.data.pipeline.preprocess`).

    Returns:
        dict with the physical parameters ``fmel``, ``fblood``,
        ``shading``, ``specmask`` (B, H, W, 1), ``light_weights`` (B, 14),
        ``cct`` (B, 1), ``b`` (B, 2), and the rendering ``linear_srgb``,
        ``srgb``, ``albedo``, ``diffuse``, ``specular`` (B, H, W, 3),
        ``light_colour`` (B, 3), ``T_raw2xyz`` (B, 3, 3).

    Example:

    >>> model = BioFaceNet(BioFaceBackbone(image_size=64, width_multiplier=0.25))  # doctest: +SKIP
    >>> model.compile(optimizer=keras.optimizers.Adam(1e-5), loss=BioFaceLoss())  # doctest: +SKIP
    >>> model.fit(pairs, epochs=1)                                                  # doctest: +SKIP
    """

    def __init__(
        self,
        backbone,
        raw2xyz: str = "exact",
        d_series: str = "table",
        preprocessing: str = "reference",
        input_features: str = "image",
        mirror_average: bool = True,
        **kwargs,
    ):
        channels = input_channels(input_features)
        if backbone.input_shape[-1] != channels:
            raise BioFaceError(
                f"input_features={input_features!r} needs a backbone with {channels} input channels, "
                f"this one has {backbone.input_shape[-1]}"
            )
        photometric = PhotometricInput(preprocessing, name="photometric") if channels != 3 else None
        exposure_gain = ExposureGain(name="exposure_gain") if channels != 3 else None
        image = keras.Input((backbone.image_size, backbone.image_size, 3), name="image")
        parameters = ParameterScaling(name="scaling")(_raw_outputs(image, backbone, photometric, exposure_gain))
        rendered = PhysicsDecoder(raw2xyz=raw2xyz, d_series=d_series, name="physics")(parameters)
        outputs = {**parameters, **{name: rendered[name] for name in RENDERED_OUTPUTS}}
        super().__init__(inputs=image, outputs=outputs, **kwargs)
        self.backbone = backbone
        self.photometric = photometric
        self.exposure_gain = exposure_gain
        self.raw2xyz = raw2xyz
        self.d_series = d_series
        self.preprocessing = preprocessing
        self.input_features = input_features
        self.mirror_average = bool(mirror_average)
        self.objective = BioFaceLoss()
        self._term_trackers = {}

    @property
    def image_size(self) -> int:
        return self.backbone.image_size

    def raw_outputs(self, image):
        """The backbone's raw outputs for a preprocessed image (B, H, W, 3), exposure given back.

        Shared by the task model and the on-device encoder
        (:func:`mobile_export.encoder.build_encoder`), so both see the same
        input features.
        """
        return _raw_outputs(image, self.backbone, self.photometric, self.exposure_gain)

    def physical_parameters(self, image) -> dict:
        """The decoder's inputs for a preprocessed image (B, H, W, 3), without mirror averaging."""
        return self.get_layer("scaling")(self.raw_outputs(image))

    def call(self, inputs, training=None, mask=None, **kwargs):
        if training or not self.mirror_average:
            return super().call(inputs, training=training, mask=mask, **kwargs)
        mirrored = self.physical_parameters(mirror(inputs))
        parameters = mirror_average(self.physical_parameters(inputs), mirrored)
        rendered = self.get_layer("physics")(parameters)
        return {**parameters, **{name: rendered[name] for name in RENDERED_OUTPUTS}}

    def compile(self, optimizer="adam", loss=None, **kwargs):
        """Configure training; ``loss`` is a :class:`BioFaceLoss` (default: reference weights)."""
        super().compile(optimizer=optimizer, **kwargs)
        self.objective = loss if loss is not None else BioFaceLoss()
        self._term_trackers = {name: keras.metrics.Mean(name=name) for name in self.objective.active_terms}

    def get_compile_config(self):
        config = super().get_compile_config()
        if config:
            config["bioface_loss"] = self.objective.get_config()
        return config

    def compile_from_config(self, config):
        """Re-compile a loaded model with its optimizer state and loss weights."""
        config = dict(config)
        loss_config = config.pop("bioface_loss", None)
        config.pop("loss", None)
        config = keras.saving.deserialize_keras_object(config)
        self.compile(loss=BioFaceLoss(**loss_config) if loss_config else None, **config)
        if self.built:
            self.optimizer.build(self.trainable_variables)

    @property
    def metrics(self):
        return super().metrics + list(self._term_trackers.values())

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """Weighted sum of the objective's terms; ``y`` holds the targets.

        Every term is a sum over the batch, so under a ``tf.distribute``
        strategy the per-replica sums add up (gradients are summed across
        replicas) to the loss of the global batch.
        """
        terms = self.objective(y, y_pred)
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        for name, value in terms.items():
            self._term_trackers[name].update_state(value * replicas)
        total = tf.add_n(list(terms.values())) if terms else tf.zeros(())
        for loss in self.losses:
            total = total + tf.cast(loss, total.dtype)
        return total

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "backbone": keras.saving.serialize_keras_object(self.backbone),
            "raw2xyz": self.raw2xyz,
            "d_series": self.d_series,
            "preprocessing": self.preprocessing,
            "input_features": self.input_features,
            "mirror_average": self.mirror_average,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["backbone"] = keras.saving.deserialize_keras_object(config["backbone"])
        return cls(**config)


VARIANTS = {
    "full": {},
    "mobile": {
        "width_multiplier": 0.5,
        "separable": True,
        "decoder": "shared",
        "vector_pooling": "average",
        "vector_units": 128,
    },
}


def build_bioface(
    image_size: int = 64,
    variant: str = "full",
    raw2xyz: str = "exact",
    d_series: str = "table",
    preprocessing: str = "reference",
    input_features: str = "image",
    **backbone_options,
) -> BioFaceNet:
    """A BioFaceNet of one of the named variants.

    - ``"full"``: the paper's network (28.0 M parameters at 64×64);
    - ``"mobile"``: for phones: width ×0.5, depthwise-separable
      convolutions, one shared decoder trunk with four heads, the light /
      camera branch on the pooled bottleneck (0.41 M parameters).

    ``input_features`` is ``"image"`` (the paper) or ``"photometric"``
    (exposure-invariant input, see :class:`BioFaceNet`). ``backbone_options``
    override the variant's :class:`BioFaceBackbone` arguments (e.g.
    ``bottleneck="aspp"``, ``width_multiplier=0.25``).
    """
    if variant not in VARIANTS:
        raise BioFaceError(f"model variant must be one of {tuple(VARIANTS)}, got {variant!r}")
    options = {**VARIANTS[variant], "input_channels": input_channels(input_features), **backbone_options}
    backbone = BioFaceBackbone(image_size=image_size, name="backbone", **options)
    return BioFaceNet(
        backbone,
        raw2xyz=raw2xyz,
        d_series=d_series,
        preprocessing=preprocessing,
        input_features=input_features,
        name=f"bioface_{variant}",
    )
