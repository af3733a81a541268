"""The network's unit: a 3×3 convolution, batch normalisation and a ReLU."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf


@keras.saving.register_keras_serializable(package="bioface")
class ConvBatchNormReLU(keras.layers.Layer):
    """Convolution → batch normalisation → ReLU, as one fused layer.

    The unit the BioFaceNet U-Net stacks three times per level (Alotaibi &
    Smith, BMVC 2019). One layer instead of three Keras layers so the batch
    normalisation can use TensorFlow's fused kernel (``FusedBatchNormV3``,
    one pass over the activations instead of the separate moments,
    normalise, scale and shift ops of ``keras.layers.BatchNormalization``),
    which matters on a 2-core CPU and lowers to XLA too. The convolution has
    no bias: batch normalisation's offset replaces it.

    Args:
        filters: output channels.
        kernel_size: square kernel size (3 in the paper).
        dilation_rate: atrous rate (for the ASPP branches); 1 = plain.
        separable: a depthwise k×k then pointwise 1×1 convolution
            (MobileNet-style, about k² times fewer weights) instead of a
            full convolution.
        momentum: moving-average momentum of the batch statistics.
        epsilon: added to the variance before the square root.

    Call arguments:
        inputs: (B, H, W, C) features, channels last.
        training: use the batch statistics (and update the moving ones).

    Returns:
        (B, H, W, filters) features ≥ 0.

    Example:

    >>> import numpy as np
    >>> ConvBatchNormReLU(8)(np.zeros((2, 16, 16, 3), "float32")).shape
    TensorShape([2, 16, 16, 8])
    """

    def __init__(
        self,
        filters: int,
        kernel_size: int = 3,
        dilation_rate: int = 1,
        separable: bool = False,
        momentum: float = 0.99,
        epsilon: float = 1e-3,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.kernel_size = int(kernel_size)
        self.dilation_rate = int(dilation_rate)
        self.separable = bool(separable)
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)

    def build(self, input_shape):
        channels = int(input_shape[-1])
        k = self.kernel_size
        if self.separable:
            self.depthwise_kernel = self.add_weight(
                name="depthwise_kernel", shape=(k, k, channels, 1), initializer="he_normal"
            )
            self.kernel = self.add_weight(
                name="kernel", shape=(1, 1, channels, self.filters), initializer="he_normal"
            )
        else:
            self.kernel = self.add_weight(
                name="kernel", shape=(k, k, channels, self.filters), initializer="he_normal"
            )
        statistic = dict(shape=(self.filters,), autocast=False)
        self.gamma = self.add_weight(name="gamma", initializer="ones", **statistic)
        self.beta = self.add_weight(name="beta", initializer="zeros", **statistic)
        self.moving_mean = self.add_weight(
            name="moving_mean", initializer="zeros", trainable=False, aggregation="mean", **statistic
        )
        self.moving_variance = self.add_weight(
            name="moving_variance", initializer="ones", trainable=False, aggregation="mean", **statistic
        )

    def _convolve(self, x):
        dilations = (self.dilation_rate, self.dilation_rate)
        if self.separable:
            depthwise = tf.cast(self.depthwise_kernel, x.dtype)
            x = tf.nn.depthwise_conv2d(x, depthwise, (1, 1, 1, 1), "SAME", dilations=dilations)
            return tf.nn.conv2d(x, tf.cast(self.kernel, x.dtype), 1, "SAME")
        kernel = tf.cast(self.kernel, x.dtype)
        if self.dilation_rate == 1:
            return tf.nn.conv2d(x, kernel, 1, "SAME")
        return tf.nn.convolution(x, kernel, padding="SAME", dilations=dilations)

    def call(self, inputs, training=None):
        if training and _filter_gradient_by_matmul(inputs.shape, self.kernel_size, self.dilation_rate, self.separable):
            features = conv3x3_matmul_filter_gradient(inputs, tf.cast(self.kernel, inputs.dtype))
        else:
            features = self._convolve(inputs)
        gamma = tf.cast(self.gamma, tf.float32)
        beta = tf.cast(self.beta, tf.float32)
        if training:
            normalised, mean, variance = tf.compat.v1.nn.fused_batch_norm(
                features, gamma, beta, epsilon=self.epsilon, is_training=True
            )
            keep = self.momentum
            self.moving_mean.assign(keep * self.moving_mean + (1.0 - keep) * mean)
            self.moving_variance.assign(keep * self.moving_variance + (1.0 - keep) * variance)
        else:
            normalised, _, _ = tf.compat.v1.nn.fused_batch_norm(
                features,
                gamma,
                beta,
                mean=tf.cast(self.moving_mean, tf.float32),
                variance=tf.cast(self.moving_variance, tf.float32),
                epsilon=self.epsilon,
                is_training=False,
            )
        return tf.nn.relu(normalised)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.filters,)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "dilation_rate": self.dilation_rate,
            "separable": self.separable,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
        }


MATMUL_FILTER_GRADIENT_MAX_SIZE = 8
"""Largest feature-map side whose 3×3 convolution takes its weight gradient from matrix products."""


def _filter_gradient_by_matmul(shape, kernel_size: int, dilation_rate: int, separable: bool) -> bool:
    """Whether a training step's convolution takes :func:`conv3x3_matmul_filter_gradient`'s path."""
    if separable or kernel_size != 3 or dilation_rate != 1 or len(shape) != 4:
        return False
    height, width = shape[1], shape[2]
    return height is not None and width is not None and max(height, width) <= MATMUL_FILTER_GRADIENT_MAX_SIZE


@tf.custom_gradient
def conv3x3_matmul_filter_gradient(x, kernel):
    """``tf.nn.conv2d(x, kernel, 1, "SAME")`` for a 3×3 kernel, with the weight gradient as 9 matrix products.

    The same convolution and the same gradients, computed differently:
    the weight gradient of tap (i, j) is ``shifted(x)ᵀ · dy`` over every
    batch pixel (one matrix product of (B·H·W, C_in)ᵀ by (B·H·W, C_out),
    accumulated in float32 by oneDNN as its convolution kernel does, and
    rounded once to the activations' dtype, as it is). On small feature maps
    (8×8 and 4×4 at 64×64 input) oneDNN's bfloat16 weight-gradient
    convolution kernel on CPUs without AMX is 2-3× slower than its forward
    convolution of the same size, and slower still when other processes
    share the cores; the matrix products are not (measured on a 2-core
    EPYC with avx512_bf16, see ``benchmarks/results/training_cpu.md``). The
    input gradient stays oneDNN's ``Conv2DBackpropInput``.

    Args:
        x: (B, H, W, C_in) features, H and W static.
        kernel: (3, 3, C_in, C_out), ``x``'s dtype.

    Returns:
        (B, H, W, C_out).
    """
    y = tf.nn.conv2d(x, kernel, 1, "SAME")

    def gradient(dy):
        dx = tf.raw_ops.Conv2DBackpropInput(
            input_sizes=tf.shape(x), filter=kernel, out_backprop=dy, strides=[1, 1, 1, 1], padding="SAME"
        )
        height, width, channels, filters = x.shape[1], x.shape[2], kernel.shape[2], kernel.shape[3]
        padded = tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]])
        rows = tf.reshape(dy, [-1, filters])
        taps = [
            tf.matmul(tf.reshape(padded[:, i : i + height, j : j + width, :], [-1, channels]), rows, transpose_a=True)
            for i in range(3)
            for j in range(3)
        ]
        return dx, tf.reshape(tf.stack(taps), [3, 3, channels, filters])

    return y, gradient


def batch_norm_layers(model) -> list[ConvBatchNormReLU]:
    """Every :class:`ConvBatchNormReLU` inside ``model``, nested models included."""
    found, stack = [], [model]
    while stack:
        layer = stack.pop()
        if isinstance(layer, ConvBatchNormReLU):
            found.append(layer)
        stack.extend(getattr(layer, "layers", []))
    return found


def compiled_training_forward(model):
    """``model(image, training=True)`` as one ``tf.function`` (for :func:`recalibrate_batch_norm`)."""
    return tf.function(lambda image: model(image, training=True), reduce_retracing=True)


def recalibrate_batch_norm(model, images, forward=None) -> int:
    """Set every batch norm's moving statistics to their average over ``images``.

    During training the moving averages (momentum 0.99) trail weights that
    keep changing, so inference, which uses them, sees features normalised
    with stale statistics; with a learning rate of 1e-3 that cost the maps
    a large part of their agreement (r 0.82 → 0.65 for melanin after 500
    steps, measured). Running the frozen network over a few batches and
    averaging their batch statistics gives the statistics of the final
    weights ("precise BN", Wu & Johnson 2021).
    Weights are not changed.

    Args:
        model: a model holding :class:`ConvBatchNormReLU` layers.
        images: iterable of network-input batches `(B, H, W, 3)`.
        forward: ``model``'s training-mode forward pass compiled by
            :func:`compiled_training_forward`, to reuse one from an earlier
            call (tracing it again costs seconds); None compiles a new one.

    Returns:
        the number of batches used.
    """
    layers = batch_norm_layers(model)
    momenta = [layer.momentum for layer in layers]
    # With momentum 0 each forward pass leaves its batch's statistics in the moving
    # ones; they are summed here and averaged at the end. One compiled forward pass
    # serves every batch (eager calls cost seconds per batch in Python overhead).
    if forward is None:
        forward = compiled_training_forward(model)
    sums = [np.zeros((2, layer.filters), np.float64) for layer in layers]
    count = 0
    try:
        for layer in layers:
            layer.momentum = 0.0
        for count, image in enumerate(images, start=1):
            forward(image)
            for total, layer in zip(sums, layers):
                total += np.stack([layer.moving_mean.numpy(), layer.moving_variance.numpy()])
    finally:
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum
    if count:
        for total, layer in zip(sums, layers):
            layer.moving_mean.assign((total[0] / count).astype(np.float32))
            layer.moving_variance.assign((total[1] / count).astype(np.float32))
    return count
