"""The BioFaceNet network and task model.

* :mod:`~bioface_tf.model.blocks` — conv3×3 + fused batch norm + ReLU;
* :mod:`~bioface_tf.model.aspp` — DeepLab v3 ASPP sized for a face bottleneck;
* :mod:`~bioface_tf.model.heads` — map heads and the light/camera branch;
* :mod:`~bioface_tf.model.unet` — :class:`BioFaceBackbone`, the U-Net;
* :mod:`~bioface_tf.model.bioface` — :class:`BioFaceNet`, network + scaling +
  physics decoder + losses, and :func:`build_bioface` for the named variants.
"""

from bioface_tf.model.aspp import AtrousSpatialPyramidPooling, default_atrous_rates
from bioface_tf.model.bioface import VARIANTS, BioFaceNet, build_bioface
from bioface_tf.model.blocks import ConvBatchNormReLU
from bioface_tf.model.unet import BioFaceBackbone

__all__ = [
    "AtrousSpatialPyramidPooling",
    "BioFaceBackbone",
    "BioFaceNet",
    "ConvBatchNormReLU",
    "VARIANTS",
    "build_bioface",
    "default_atrous_rates",
]
