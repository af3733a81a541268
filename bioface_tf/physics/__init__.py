"""The BioFaceNet physics decoder as Keras layers, one physical stage each.

>>> from bioface_tf.physics import PhysicsDecoder, ParameterScaling
"""

from bioface_tf.physics.camera import CameraSensitivity
from bioface_tf.physics.colour import (
    RawToLinearSRGB,
    RawToXYZMatrix,
    SRGBEncoding,
    srgb_decode,
    srgb_encode,
)
from bioface_tf.physics.decoder import DECODER_INPUTS, PhysicsDecoder
from bioface_tf.physics.illumination import IlluminantSpectrum
from bioface_tf.physics.image_formation import ImageFormation
from bioface_tf.physics.scaling import ParameterScaling
from bioface_tf.physics.skin import SkinReflectance
from bioface_tf.physics.white_balance import WhiteBalance
from bioface_tf.spectra import map_to_volume_fraction

__all__ = [
    "CameraSensitivity",
    "DECODER_INPUTS",
    "IlluminantSpectrum",
    "ImageFormation",
    "ParameterScaling",
    "PhysicsDecoder",
    "RawToLinearSRGB",
    "RawToXYZMatrix",
    "SRGBEncoding",
    "SkinReflectance",
    "WhiteBalance",
    "map_to_volume_fraction",
    "srgb_decode",
    "srgb_encode",
]
