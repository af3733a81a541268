"""Ground-truth loss terms: learning the maps from faces that carry their truth.

Rendered faces (``bioface synth``, :mod:`bioface_tf.data.stream`) come with
the maps and parameters that made them (``gt_fmel``, ``gt_fblood``,
``gt_shading``, ``gt_specmask``, ``gt_b``, ``gt_light_weights``,
``gt_cct``); CelebA faces and photos do not. Every term here is computed per
face and multiplied by the per-face flag ``gt_valid`` `(B,)` (1 = this face
has ground truth), so one batch may mix both kinds of face. Like the
reference terms (:mod:`bioface_tf.losses`), each is a sum over the batch.

Forms (docs/TRAINING.md §"Ground-truth terms" says why):

=================  ===========================================================
term               per face, inside the mask
=================  ===========================================================
``gt_melanin``     ``mean((fmel − gt)²) + pattern·(1 − r)`` where ``r`` is the
``gt_haemoglobin`` Pearson correlation of the map with its truth: the squared
                   error alone is dominated by the per-face mean (skin type),
                   the correlation term asks for the pattern inside the face
``gt_shading``     scale-invariant squared error of log shading: the
                   variance of ``log S − log S_gt`` (exposure is not
                   identifiable apart from shading, so a global factor is free)
``gt_specular``    ``mean(|specmask − gt|)`` in the decoder's units
``gt_camera``      ``Σ (b − gt_b)²`` (2 numbers)
``gt_light``       cross-entropy of the illuminant weights, ``−Σ gt·log w``
``gt_cct``         ``((cct − gt_cct) / 21)²``, weighted by the truth's
                   daylight weight (cct means nothing without daylight)
=================  ===========================================================
"""

from __future__ import annotations

import tensorflow as tf

CCT_SPAN = 21.0
LOG_FLOOR = 1e-4
EPS = 1e-6
DAYLIGHT = 1

MAP_TERMS = {"gt_melanin": ("fmel", "gt_fmel"), "gt_haemoglobin": ("fblood", "gt_fblood")}
GT_TERMS = ("gt_melanin", "gt_haemoglobin", "gt_shading", "gt_specular", "gt_camera", "gt_light", "gt_cct")
TARGET_OF = {
    "gt_melanin": "gt_fmel",
    "gt_haemoglobin": "gt_fblood",
    "gt_shading": "gt_shading",
    "gt_specular": "gt_specmask",
    "gt_camera": "gt_b",
    "gt_light": "gt_light_weights",
    "gt_cct": "gt_cct",
}


def _masked_moments(x: tf.Tensor, mask: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Per face mean and count inside the mask; x, mask `(B, H, W, 1)` → `(B,)` each."""
    count = tf.reduce_sum(mask, axis=(1, 2, 3))
    mean = tf.math.divide_no_nan(tf.reduce_sum(mask * x, axis=(1, 2, 3)), count)
    return mean, count


def masked_correlation(prediction: tf.Tensor, truth: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    """Per face Pearson r inside the mask, `(B, H, W, 1)` → `(B,)`; 0 for a constant map."""
    mean_p, count = _masked_moments(prediction, mask)
    mean_t, _ = _masked_moments(truth, mask)
    p = mask * (prediction - mean_p[:, None, None, None])
    t = mask * (truth - mean_t[:, None, None, None])
    covariance = tf.reduce_sum(p * t, axis=(1, 2, 3))
    spread = tf.sqrt(tf.reduce_sum(p * p, axis=(1, 2, 3)) * tf.reduce_sum(t * t, axis=(1, 2, 3)) + EPS)
    return tf.where(count > 1, covariance / spread, tf.zeros_like(covariance))


def map_error(prediction, truth, mask, pattern: float = 1.0) -> tf.Tensor:
    """``mean((p − t)²) + pattern·(1 − r)`` inside the mask, per face `(B,)`."""
    squared = tf.math.divide_no_nan(
        tf.reduce_sum(mask * tf.square(prediction - truth), axis=(1, 2, 3)), tf.reduce_sum(mask, axis=(1, 2, 3))
    )
    if pattern == 0:
        return squared
    return squared + pattern * (1.0 - masked_correlation(prediction, truth, mask))


def log_shading_error(shading, truth, mask) -> tf.Tensor:
    """Variance inside the mask of ``log S − log S_gt``, per face `(B,)`: blind to a global factor."""
    difference = tf.math.log(tf.maximum(shading, LOG_FLOOR)) - tf.math.log(tf.maximum(truth, LOG_FLOOR))
    mean, count = _masked_moments(difference, mask)
    centred = mask * (difference - mean[:, None, None, None])
    return tf.math.divide_no_nan(tf.reduce_sum(tf.square(centred), axis=(1, 2, 3)), count)


def specular_error(specmask, truth, mask) -> tf.Tensor:
    """Mean absolute error of the specular map inside the mask, per face `(B,)`."""
    return tf.math.divide_no_nan(
        tf.reduce_sum(mask * tf.abs(specmask - truth), axis=(1, 2, 3)), tf.reduce_sum(mask, axis=(1, 2, 3))
    )


def camera_error(b, truth) -> tf.Tensor:
    """``Σ (b − gt_b)²`` per face `(B,)`; b `(B, 2)`."""
    return tf.reduce_sum(tf.square(b - truth), axis=-1)


def light_error(weights, truth) -> tf.Tensor:
    """Cross-entropy ``−Σ gt·log w`` of the illuminant weights `(B, 14)`, per face `(B,)`."""
    return -tf.reduce_sum(truth * tf.math.log(tf.maximum(weights, EPS)), axis=-1)


def cct_error(cct, truth, light_truth) -> tf.Tensor:
    """``((cct − gt) / 21)²`` weighted by the true daylight weight, per face `(B,)`."""
    return tf.square((cct[:, 0] - truth[:, 0]) / CCT_SPAN) * light_truth[:, DAYLIGHT]


def ground_truth_term(name: str, targets: dict, outputs: dict, pattern: float = 1.0) -> tf.Tensor:
    """One ground-truth term, summed over the faces whose ``gt_valid`` is 1.

    Args:
        name: one of :data:`GT_TERMS`.
        targets: the batch's targets: ``mask`` `(B, H, W, 1)`, ``gt_valid``
            `(B,)` (all ones when absent) and the term's ``gt_*`` tensor.
        outputs: the task model's outputs.
        pattern: weight of the correlation part of the map terms.

    Returns:
        scalar (float32).
    """
    mask = tf.cast(targets["mask"], tf.float32)
    truth = tf.cast(targets[TARGET_OF[name]], tf.float32)
    predicted = lambda key: tf.cast(outputs[key], tf.float32)
    if name in MAP_TERMS:
        per_face = map_error(predicted(MAP_TERMS[name][0]), truth, mask, pattern)
    elif name == "gt_shading":
        per_face = log_shading_error(predicted("shading"), truth, mask)
    elif name == "gt_specular":
        per_face = specular_error(predicted("specmask"), truth, mask)
    elif name == "gt_camera":
        per_face = camera_error(predicted("b"), truth)
    elif name == "gt_light":
        per_face = light_error(predicted("light_weights"), truth)
    else:
        per_face = cct_error(predicted("cct"), truth, tf.cast(targets["gt_light_weights"], tf.float32))
    valid = targets.get("gt_valid")
    if valid is not None:
        per_face = tf.where(tf.cast(valid, tf.float32) > 0.5, per_face, tf.zeros_like(per_face))
    return tf.reduce_sum(per_face)
