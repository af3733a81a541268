"""Training BioFaceNet: presets, the ``fit`` entry point, callbacks, evaluation.

* :mod:`~training.presets` — typed, versioned configurations
  (``paper``, ``report``, ``improved``) and command-line overrides;
* :mod:`~training.environment` — TensorFlow settings that must precede its import;
* :mod:`~training.figures` — the per-epoch figure (NumPy/OpenCV);
* :mod:`~training.callbacks` — Keras callbacks, the figure callback included;
* :mod:`~training.train` — ``train()``, behind ``bioface train``;
* :mod:`~training.evaluate` — ``evaluate()``, behind ``bioface evaluate``.

Importing this package does not import TensorFlow.
"""
