"""Training BioFaceNet: presets, the ``fit`` entry point, callbacks, evaluation.

* :mod:`~training.presets` — typed, versioned configurations
  (``paper``, ``report``, ``improved``) and command-line overrides;
* :mod:`~training.environment` — TensorFlow settings that must precede its import,
  and the precision the hardware suits;
* :mod:`~training.callbacks` — Keras callbacks, the per-epoch figure
  (:func:`bioface_tf.figures.figure_grid`) included;
* :mod:`~training.optimizers` — :class:`~training.optimizers.FusedAdam`, Keras's Adam
  through TensorFlow's fused kernel, which ``bioface train`` uses;
* :mod:`~training.train` — ``train()``, behind ``bioface train``;
* :mod:`~training.cluster` — training on several machines (``TF_CONFIG``,
  per-worker data, only the chief writes);
* :mod:`~training.evaluate` — ``evaluate()``, behind ``bioface evaluate``.

Importing this package does not import TensorFlow.
"""
