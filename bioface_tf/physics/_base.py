"""Shared base for the physics layers."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf


class PhysicsLayer(keras.layers.Layer):
    """A weightless layer whose computation is fixed physics.

    Physics runs in float32 whatever the global dtype policy (mixed precision
    autocasts the inputs), and the spectral constants are not weights: they
    are rebuilt from the shipped tables, so ``.keras`` files stay small.
    """

    def __init__(self, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.trainable = False

    @staticmethod
    def constant(array: np.ndarray) -> tf.Tensor:
        """A float32 constant created eagerly, so that a layer first built
        inside a ``tf.function`` can still be called from other graphs."""
        with tf.init_scope():
            return tf.constant(np.asarray(array, dtype=np.float32))


def safe_positive(x: tf.Tensor, floor: float = 1e-12) -> tf.Tensor:
    """``x`` floored at a tiny positive value, for use as a divisor."""
    return tf.maximum(x, floor)
