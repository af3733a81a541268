"""The BioFaceNet network: a U-Net encoder, map decoders and a vector branch."""

from __future__ import annotations

import keras

from bioface_tf.errors import BioFaceError
from bioface_tf.model.aspp import AtrousSpatialPyramidPooling, default_atrous_rates
from bioface_tf.model.blocks import ConvBatchNormReLU
from bioface_tf.model.heads import HEAD_INITIALIZERS, light_camera_head, map_head

ENCODER_FILTERS = (32, 64, 128, 256, 512)
RAW_MAPS = ("fmel_raw", "fblood_raw", "shading_raw", "spec_raw")
DECODERS = ("separate", "shared")
BOTTLENECKS = ("plain", "aspp")
SIZE_MULTIPLE = 2 ** (len(ENCODER_FILTERS) - 1)


def _conv_stack(x, filters: int, count: int, separable: bool, name: str, reads_input: bool = False):
    """``count`` conv3×3 + BN + ReLU units; the one that reads the network's input stays full."""
    for i in range(count):
        full = not separable or (reads_input and i == 0)
        x = ConvBatchNormReLU(filters, separable=not full, name=f"{name}_conv{i + 1}")(x)
    return x


def _decode(bottleneck, skips, filters, count, separable, name):
    """Per level: ×2 nearest upsampling, concatenate the skip, ``count`` convs."""
    x = bottleneck
    for level, (skip, level_filters) in enumerate(zip(reversed(skips), reversed(filters)), start=1):
        x = keras.layers.UpSampling2D(2, name=f"{name}_up{level}")(x)
        x = keras.layers.Concatenate(name=f"{name}_skip{level}")([x, skip])
        x = _conv_stack(x, level_filters, count, separable, f"{name}_level{level}")
    return x


@keras.saving.register_keras_serializable(package="bioface")
class BioFaceBackbone(keras.Model):
    """Image → four raw biophysical maps and the raw light/camera vector.

    The network of Alotaibi & Smith, "BioFaceNet: Deep Biophysical Face
    Image Interpretation" (BMVC 2019): a U-Net encoder (32, 64, 128, 256,
    512 filters; three conv3×3 + BN + ReLU per level; 2×2 max-pooling
    between levels), one decoder per map (melanin, haemoglobin, diffuse
    shading, specular shading; per level ×2 upsampling, the encoder skip
    concatenated, three conv3×3 + BN + ReLU; a final conv3×3 to one
    channel) and a fully connected branch from the bottleneck to the 15
    lighting and 2 camera parameters.

    Options beyond the paper: an ASPP bottleneck (DeepLab v3), a width
    multiplier on every filter count, depthwise-separable convolutions, and
    a ``"shared"`` decoder (one trunk, four small heads) for phones.

    Args:
        image_size: input side in pixels, a multiple of 16 (64 for the
            CelebA files users have, 224 in the paper).
        width_multiplier: scales every filter count (0.25 … 1).
        decoder: ``"separate"`` (the paper: four decoders) or ``"shared"``
            (one decoder trunk; per map one conv3×3 + BN + ReLU and the
            final conv).
        bottleneck: ``"plain"`` (the paper) or ``"aspp"``.
        atrous_rates: ASPP rates; ``None`` → :func:`default_atrous_rates`
            for the bottleneck size.
        vector_pooling: ``"flatten"`` (the reference) or ``"average"``.
        vector_units: width of the two hidden dense layers of the branch.
        separable: depthwise-separable convolutions (all but the first).
        convs_per_level: conv units per level (3 in the paper).
        input_channels: channels of the input: 3 for the preprocessed
            image, 6 for :class:`~bioface_tf.model.photometric.PhotometricInput`'s features.
        head_initializer: kernel initialiser of the four final map
            convolutions, ``"glorot_uniform"`` (Keras's default) or
            ``"zeros"`` (all raw maps start at 0). With Glorot heads a
            mobile network of width ×1.0 starts with diffuse shading up to
            ~3600 on rendered faces (×0.5: ~60) and learns far more slowly
            per step; zero heads remove that (docs/TRAINING.md, "Capacity").

    Call arguments:
        image: (B, image_size, image_size, input_channels) preprocessed
            image or photometric features.

    Returns:
        dict with ``fmel_raw``, ``fblood_raw``, ``shading_raw``,
        ``spec_raw`` (B, H, W, 1) and ``light_camera_raw`` (B, 17), float32:
        the inputs of :class:`~bioface_tf.physics.ParameterScaling`.

    Example:

    >>> net = BioFaceBackbone(image_size=32, width_multiplier=0.25)
    >>> net(np.zeros((1, 32, 32, 3), "float32"))["spec_raw"].shape  # doctest: +SKIP
    TensorShape([1, 32, 32, 1])
    """

    def __init__(
        self,
        image_size: int = 64,
        width_multiplier: float = 1.0,
        decoder: str = "separate",
        bottleneck: str = "plain",
        atrous_rates=None,
        vector_pooling: str = "flatten",
        vector_units: int = 512,
        separable: bool = False,
        convs_per_level: int = 3,
        input_channels: int = 3,
        head_initializer: str = "glorot_uniform",
        **kwargs,
    ):
        if image_size is None or int(image_size) <= 0 or int(image_size) % SIZE_MULTIPLE:
            raise BioFaceError(
                f"image size {image_size} is not a positive multiple of {SIZE_MULTIPLE} "
                f"(the encoder halves it {len(ENCODER_FILTERS) - 1} times)"
            )
        if decoder not in DECODERS:
            raise BioFaceError(f"decoder must be one of {DECODERS}, got {decoder!r}")
        if bottleneck not in BOTTLENECKS:
            raise BioFaceError(f"bottleneck must be one of {BOTTLENECKS}, got {bottleneck!r}")
        if head_initializer not in HEAD_INITIALIZERS:
            raise BioFaceError(f"head initializer must be one of {HEAD_INITIALIZERS}, got {head_initializer!r}")
        if not 0 < width_multiplier <= 4:
            raise BioFaceError(f"width multiplier must be in (0, 4], got {width_multiplier}")
        image_size = int(image_size)
        filters = [max(4, int(round(f * width_multiplier))) for f in ENCODER_FILTERS]
        bottleneck_size = image_size // SIZE_MULTIPLE
        if bottleneck == "aspp" and atrous_rates is None:
            atrous_rates = default_atrous_rates(bottleneck_size)

        image = keras.Input((image_size, image_size, int(input_channels)), name="image")
        skips = []
        x = image
        for level, level_filters in enumerate(filters, start=1):
            if level > 1:
                x = keras.layers.MaxPooling2D(2, name=f"encoder_pool{level - 1}")(x)
            x = _conv_stack(x, level_filters, convs_per_level, separable, f"encoder_level{level}", reads_input=level == 1)
            skips.append(x)
        x = skips.pop()
        if bottleneck == "aspp":
            x = AtrousSpatialPyramidPooling(filters[-1], atrous_rates=atrous_rates, name="aspp")(x)

        outputs = {}
        if decoder == "separate":
            for raw in RAW_MAPS:
                features = _decode(x, skips, filters[:-1], convs_per_level, separable, raw.replace("_raw", "_decoder"))
                outputs[raw] = map_head(features, raw, head_initializer)
        else:
            trunk = _decode(x, skips, filters[:-1], convs_per_level, separable, "shared_decoder")
            for raw in RAW_MAPS:
                head = ConvBatchNormReLU(filters[0], separable=separable, name=raw.replace("_raw", "_head"))(trunk)
                outputs[raw] = map_head(head, raw, head_initializer)
        outputs["light_camera_raw"] = light_camera_head(x, int(vector_units), vector_pooling)
        super().__init__(inputs=image, outputs=outputs, **kwargs)

        self.image_size = image_size
        self.width_multiplier = float(width_multiplier)
        self.decoder = decoder
        self.bottleneck = bottleneck
        self.atrous_rates = None if atrous_rates is None else [int(r) for r in atrous_rates]
        self.vector_pooling = vector_pooling
        self.vector_units = int(vector_units)
        self.separable = bool(separable)
        self.convs_per_level = int(convs_per_level)
        self.input_channels = int(input_channels)
        self.head_initializer = head_initializer

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "image_size": self.image_size,
            "width_multiplier": self.width_multiplier,
            "decoder": self.decoder,
            "bottleneck": self.bottleneck,
            "atrous_rates": self.atrous_rates,
            "vector_pooling": self.vector_pooling,
            "vector_units": self.vector_units,
            "separable": self.separable,
            "convs_per_level": self.convs_per_level,
            "input_channels": self.input_channels,
            "head_initializer": self.head_initializer,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)
