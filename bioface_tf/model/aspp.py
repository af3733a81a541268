"""Atrous spatial pyramid pooling (DeepLab v3) sized for a face bottleneck."""

from __future__ import annotations

import keras
import tensorflow as tf

from bioface_tf.model.blocks import ConvBatchNormReLU


def default_atrous_rates(bottleneck_size: int) -> tuple[int, ...]:
    """Atrous rates that look at different context sizes on an N×N bottleneck.

    A 3×3 convolution at rate r samples the centre and points r pixels away:
    it spans 2r + 1 pixels. Once 2r ≥ N, every off-centre tap of a pixel in
    the middle of the map falls in the zero padding and the branch
    degenerates to a 1×1 convolution, so rates are capped at N / 2. The
    rates used here are the distinct values of round(N/6), round(N/3) and
    N/2 (at least 1): local context, a third of the face, and the whole
    face from the centre — DeepLab v3's 6, 12, 18 on its 33×33 map scaled to
    the map at hand.

    - 64×64 input, 4×4 bottleneck → (1, 2): a 3×3 neighbourhood and the
      full 5×5 span; anything larger only sees padding.
    - 224×224 input, 14×14 bottleneck → (2, 5, 7).

    Args:
        bottleneck_size: N, the side of the square bottleneck in pixels.

    Returns:
        Increasing distinct rates, each ≥ 1.
    """
    n = int(bottleneck_size)
    rates = {max(1, round(n / 6)), max(1, round(n / 3)), max(1, n // 2)}
    return tuple(sorted(rates))


@keras.saving.register_keras_serializable(package="bioface")
class AtrousSpatialPyramidPooling(keras.layers.Layer):
    """DeepLab v3's ASPP: parallel atrous branches, image pooling, projection.

    Chen et al., "Rethinking Atrous Convolution for Semantic Image
    Segmentation" (2017), §3.3. Branches, all conv + BN + ReLU to
    ``filters`` channels: a 1×1 convolution; one 3×3 convolution per atrous
    rate; and image-level pooling (global mean → 1×1 convolution, broadcast
    back to H × W). Their concatenation is projected by a 1×1 convolution.
    On a face bottleneck this lets the decoders see global context
    (illumination, overall skin tone) that three stacked 3×3 convolutions
    on a 4×4 map see only at the corners.

    Args:
        filters: channels of every branch and of the output.
        atrous_rates: rates of the 3×3 branches (see
            :func:`default_atrous_rates`).
        dropout: dropout rate after the projection (0 = none).

    Call arguments:
        inputs: (B, H, W, C) bottleneck features.
        training: batch statistics and dropout on.

    Returns:
        (B, H, W, filters).

    Example:

    >>> import numpy as np
    >>> aspp = AtrousSpatialPyramidPooling(16, atrous_rates=(1, 2))
    >>> aspp(np.zeros((2, 4, 4, 32), "float32")).shape
    TensorShape([2, 4, 4, 16])
    """

    def __init__(self, filters: int, atrous_rates=(1, 2), dropout: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.atrous_rates = tuple(int(r) for r in atrous_rates)
        self.dropout = float(dropout)
        if not self.atrous_rates or min(self.atrous_rates) < 1:
            raise ValueError(f"atrous_rates must be a non-empty list of rates ≥ 1, got {atrous_rates}")

    def build(self, input_shape):
        self.point_branch = ConvBatchNormReLU(self.filters, kernel_size=1, name="conv_1x1")
        self.point_branch.build(input_shape)
        self.atrous_branches = []
        for rate in self.atrous_rates:
            branch = ConvBatchNormReLU(self.filters, dilation_rate=rate, name=f"atrous_rate_{rate}")
            branch.build(input_shape)
            self.atrous_branches.append(branch)
        self.pool_branch = ConvBatchNormReLU(self.filters, kernel_size=1, name="image_pooling")
        self.pool_branch.build(tuple(input_shape[:1]) + (1, 1) + tuple(input_shape[-1:]))
        branches = len(self.atrous_rates) + 2
        self.projection = ConvBatchNormReLU(self.filters, kernel_size=1, name="projection")
        self.projection.build(tuple(input_shape[:-1]) + (branches * self.filters,))
        self.drop = keras.layers.Dropout(self.dropout, name="dropout")

    def call(self, inputs, training=None):
        features = [self.point_branch(inputs, training=training)]
        features += [branch(inputs, training=training) for branch in self.atrous_branches]
        pooled = tf.reduce_mean(inputs, axis=(1, 2), keepdims=True)
        pooled = self.pool_branch(pooled, training=training)
        features.append(tf.broadcast_to(pooled, tf.shape(features[0])))
        projected = self.projection(tf.concat(features, axis=-1), training=training)
        return self.drop(projected, training=training)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.filters,)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "atrous_rates": list(self.atrous_rates),
            "dropout": self.dropout,
        }
