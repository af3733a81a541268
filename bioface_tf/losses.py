"""Training losses of BioFaceNet, each a named term with its own weight.

The reference terms (PHYSICS.md §10) are sums over the batch, as in the
published code, so their weights are the reference's numbers:

==================  =========  ==============================================
term                reference  what it measures
==================  =========  ==============================================
``appearance``      1e-3       masked L2 between photo and reconstruction,
                               on the 0..255 scale, per pixel (÷ H·W)
``ms_ssim``         0          1 − MS-SSIM of the masked images (improvement)
``camera_prior``    1e-4       Σ b², keeps the camera near the PCA mean
``shading``         1e-5       scale-invariant L2 to the pseudo ground-truth
                               shading, inside the mask
``sparsity``        1e-5       L1 of the specular term specmask·light
``specular_target`` 0          L1 to a specular pseudo ground truth (Kim et
                               al.), when the data holds one
``gt_*``            0          ground-truth terms for rendered faces, counted
                               only where ``gt_valid`` is 1
                               (:mod:`bioface_tf.supervision`)
==================  =========  ==============================================

Appearance terms compare either in the reference's linear space (the photo
linearised with a 2.2 power against the decoder's linear sRGB) or in display
space (the photo as stored against the sRGB-encoded reconstruction), see
PHYSICS.md §9.

Example:

>>> loss = BioFaceLoss(sparsity=1e-8)
>>> terms = loss(targets, outputs)          # doctest: +SKIP
>>> sorted(terms)                           # doctest: +SKIP
['appearance', 'camera_prior', 'shading', 'sparsity']
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from bioface_tf import spectra, supervision
from bioface_tf.errors import BioFaceError

REFERENCE_TERMS = ("appearance", "ms_ssim", "camera_prior", "shading", "sparsity", "specular_target")
TERMS = REFERENCE_TERMS + supervision.GT_TERMS
APPEARANCE_SPACES = ("linear", "display")
REFERENCE_GAMMA = 2.2
INTENSITY_SCALE = 255.0
MS_SSIM_POWER_FACTORS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
MS_SSIM_FLOOR = 1e-6
SSIM_K1, SSIM_K2 = 0.01, 0.03

SPECULAR_TO_LINEAR_SRGB = float(np.mean(spectra.XYZ_TO_LINEAR_SRGB @ spectra.XYZ_ROW_SUMS))
"""Linear sRGB of a unit specular mask: after white balance the specular term
is ``specmask·(1, 1, 1)``, which T(b) maps to the XYZ row sums for every
camera, and the sRGB matrix to a grey of about 0.342 in every channel."""


def _per_image_sum(x: tf.Tensor) -> tf.Tensor:
    """(B, ...) → (B,): sum over everything but the batch axis."""
    return tf.reduce_sum(tf.reshape(x, (tf.shape(x)[0], -1)), axis=-1)


def _pixels(image: tf.Tensor) -> tf.Tensor:
    return tf.cast(tf.shape(image)[1] * tf.shape(image)[2], image.dtype)


def appearance_l2(target: tf.Tensor, reconstruction: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    """Reference appearance loss, ``Σ (mask·255·(target − recon))² / (H·W)``.

    The reference subtracts the same mean RGB from both images, so it
    cancels; it divides by 224·224, its H·W, which is kept per pixel here so
    that the reference weight means the same at 64×64.

    Args:
        target, reconstruction: (B, H, W, 3) in [0, 1].
        mask: (B, H, W, 1) face mask.

    Returns:
        scalar, summed over the batch.
    """
    residual = mask * INTENSITY_SCALE * (target - reconstruction)
    return tf.reduce_sum(tf.square(residual)) / _pixels(target)


def ms_ssim_scales(size: int, filter_size: int, max_scales: int = len(MS_SSIM_POWER_FACTORS)) -> int:
    """How many MS-SSIM scales fit an image: the coarsest must hold the filter.

    ``tf.image.ssim_multiscale``'s defaults (5 scales, 11-pixel filter) need
    (11 − 1)·2⁴ + 1 = 161 pixels; a 64×64 face with a 7-pixel filter has
    room for 4 scales (64, 32, 16, 8).
    """
    scales = 0
    while scales < max_scales and size // 2**scales >= filter_size:
        scales += 1
    if scales == 0:
        raise BioFaceError(f"a {size}-pixel image is smaller than the {filter_size}-pixel MS-SSIM filter")
    return scales


def ms_ssim_power_factors(scales: int) -> tuple[float, ...]:
    """Wang et al.'s (2003) scale weights, the first ``scales`` renormalised to sum 1."""
    factors = np.asarray(MS_SSIM_POWER_FACTORS[:scales])
    return tuple(float(f) for f in factors / factors.sum())


def _gaussian_window(size: int, sigma: float) -> np.ndarray:
    offsets = np.arange(size) - (size - 1) / 2.0
    g = np.exp(-0.5 * (offsets / sigma) ** 2)
    g /= g.sum()
    return np.outer(g, g)


def _ssim_terms(a, b, window, max_val):
    """Mean SSIM and mean contrast-structure over the valid positions, (B, C) each."""
    channels = a.shape[-1]
    kernel = tf.constant(np.tile(window[:, :, None, None], (1, 1, channels, 1)), a.dtype)
    blur = lambda x: tf.nn.depthwise_conv2d(x, kernel, (1, 1, 1, 1), "VALID")
    c1 = (SSIM_K1 * max_val) ** 2
    c2 = (SSIM_K2 * max_val) ** 2
    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a * mu_a
    var_b = blur(b * b) - mu_b * mu_b
    cov = blur(a * b) - mu_a * mu_b
    luminance = (2.0 * mu_a * mu_b + c1) / (mu_a * mu_a + mu_b * mu_b + c1)
    contrast_structure = (2.0 * cov + c2) / (var_a + var_b + c2)
    return (
        tf.reduce_mean(luminance * contrast_structure, axis=(1, 2)),
        tf.reduce_mean(contrast_structure, axis=(1, 2)),
    )


def ms_ssim(
    a: tf.Tensor,
    b: tf.Tensor,
    filter_size: int = 7,
    filter_sigma: float = 1.0,
    max_val: float = 1.0,
) -> tf.Tensor:
    """Multi-scale SSIM (Wang, Simoncelli & Bovik 2003) that works on small faces.

    ``tf.image.ssim_multiscale`` with its defaults (5 scales, 11-pixel
    window) fails below 161 pixels, and its gradient is NaN wherever a
    scale's contrast-structure term is ≤ 0 (it raises ``relu(x)`` to a
    power < 1). Here: as many scales as the image holds
    (:func:`ms_ssim_scales`), Wang et al.'s scale weights renormalised
    (:func:`ms_ssim_power_factors`), and every per-scale term floored at
    1e-6 before the power so the gradient stays finite. Otherwise the same
    definition: Gaussian window, valid positions only, K1 = 0.01,
    K2 = 0.03, 2×2 mean downsampling between scales, per-channel products
    averaged over channels.

    Args:
        a, b: (B, H, W, C) images in [0, max_val].
        filter_size: Gaussian window size (pixels).
        filter_sigma: Gaussian window width (pixels).
        max_val: the images' dynamic range.

    Returns:
        (B,) MS-SSIM in [0, 1]; 1 for identical images.
    """
    size = min(int(a.shape[1]), int(a.shape[2]))
    factors = ms_ssim_power_factors(ms_ssim_scales(size, filter_size))
    window = _gaussian_window(filter_size, filter_sigma)
    a = tf.convert_to_tensor(a, tf.float32)
    b = tf.convert_to_tensor(b, tf.float32)
    product = 1.0
    for scale, power in enumerate(factors):
        ssim, contrast_structure = _ssim_terms(a, b, window, max_val)
        term = ssim if scale == len(factors) - 1 else contrast_structure
        product = product * tf.pow(tf.maximum(term, MS_SSIM_FLOOR), power)
        a = tf.nn.avg_pool2d(a, 2, 2, "VALID")
        b = tf.nn.avg_pool2d(b, 2, 2, "VALID")
    return tf.reduce_mean(product, axis=-1)


def ms_ssim_loss(target, reconstruction, mask, filter_size: int = 7, filter_sigma: float = 1.0) -> tf.Tensor:
    """``Σ_batch (1 − MS-SSIM)`` of the masked images (background is 0 in both)."""
    similarity = ms_ssim(
        tf.clip_by_value(mask * target, 0.0, 1.0),
        tf.clip_by_value(mask * reconstruction, 0.0, 1.0),
        filter_size=filter_size,
        filter_sigma=filter_sigma,
    )
    return tf.reduce_sum(1.0 - similarity)


def camera_prior(b: tf.Tensor) -> tf.Tensor:
    """``Σ b²`` over the batch; b (B, 2) are the camera PCA weights."""
    return tf.reduce_sum(tf.square(b))


def scale_invariant_shading(
    target: tf.Tensor, shading: tf.Tensor, mask: tf.Tensor, valid: tf.Tensor | None = None
) -> tf.Tensor:
    """Reference shading loss, blind to the overall scale of the shading.

    Per image ``k = Σ(mask·S_gt·S) / Σ(mask·S²)`` (the least-squares scale),
    then ``Σ (mask·(S_gt − k·S))²``. A face with an empty mask, or whose
    target is not valid (a photo without normals), contributes 0 and no
    NaN.

    Args:
        target: (B, H, W, 1) pseudo ground-truth shading.
        shading: (B, H, W, 1) predicted diffuse shading, > 0.
        mask: (B, H, W, 1) face mask.
        valid: (B,) 1 where ``target`` is a target, 0 where it is not.

    Returns:
        scalar, summed over the batch.
    """
    numerator = _per_image_sum(mask * target * shading)
    denominator = _per_image_sum(mask * tf.square(shading))
    k = tf.math.divide_no_nan(numerator, denominator)
    residual = mask * (target - k[:, None, None, None] * shading)
    per_image = _per_image_sum(tf.square(residual))
    if valid is not None:
        per_image = per_image * tf.cast(valid, per_image.dtype)
    return tf.reduce_sum(per_image)


def specular_sparsity(specular: tf.Tensor) -> tf.Tensor:
    """L1 of the (non-negative) specular term ``specmask·light``, (B, H, W, 3)."""
    return tf.reduce_sum(specular)


def specular_target_l1(specmask: tf.Tensor, target: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    """Distance to a specular pseudo ground truth, in linear sRGB.

    The network's specular contribution in linear sRGB is achromatic,
    ``SPECULAR_TO_LINEAR_SRGB·specmask`` (see the constant), so it is
    compared with a one-channel target in linear sRGB: per image the mean
    of ``|prediction − target|`` over the mask, summed over the batch.

    Args:
        specmask: (B, H, W, 1) predicted specular shading.
        target: (B, H, W, 1) specular amount in linear sRGB.
        mask: (B, H, W, 1) face mask.
    """
    error = mask * tf.abs(SPECULAR_TO_LINEAR_SRGB * specmask - target)
    return tf.reduce_sum(tf.math.divide_no_nan(_per_image_sum(error), _per_image_sum(mask)))


class BioFaceLoss:
    """The weighted sum of the terms above, returned term by term.

    Args:
        appearance, ms_ssim, camera_prior, shading, sparsity,
            specular_target, gt_melanin, gt_haemoglobin, gt_shading,
            gt_specular, gt_camera, gt_light, gt_cct: each term's weight; a
            term with weight 0 is not computed (and not logged).
        gt_pattern: weight of the correlation part of the melanin and
            haemoglobin ground-truth terms (:func:`supervision.map_error`).
        appearance_space: ``"linear"`` (the reference) or ``"display"``.
        ms_ssim_filter_size, ms_ssim_filter_sigma: the MS-SSIM window.

    Call arguments:
        targets: dict with ``srgb`` (B, H, W, 3) the photo in [0, 1],
            ``mask`` (B, H, W, 1); for the shading term ``shading``
            (B, H, W, 1) and optionally ``shading_valid`` (B,); for the
            specular target ``specular_target`` (B, H, W, 1); for the
            ground-truth terms the ``gt_*`` tensors and ``gt_valid`` (B,).
        outputs: the task model's outputs (``linear_srgb``, ``srgb``, ``b``,
            ``shading``, ``specmask``, ``specular``).

    Returns:
        dict term name → weighted scalar (float32); their sum is the loss.
    """

    def __init__(
        self,
        appearance: float = 1e-3,
        ms_ssim: float = 0.0,
        camera_prior: float = 1e-4,
        shading: float = 1e-5,
        sparsity: float = 1e-5,
        specular_target: float = 0.0,
        appearance_space: str = "linear",
        ms_ssim_filter_size: int = 7,
        ms_ssim_filter_sigma: float = 1.0,
        gt_melanin: float = 0.0,
        gt_haemoglobin: float = 0.0,
        gt_shading: float = 0.0,
        gt_specular: float = 0.0,
        gt_camera: float = 0.0,
        gt_light: float = 0.0,
        gt_cct: float = 0.0,
        gt_pattern: float = 1.0,
    ):
        if appearance_space not in APPEARANCE_SPACES:
            raise BioFaceError(f"appearance space must be one of {APPEARANCE_SPACES}, got {appearance_space!r}")
        self.weights = {
            "appearance": float(appearance),
            "ms_ssim": float(ms_ssim),
            "camera_prior": float(camera_prior),
            "shading": float(shading),
            "sparsity": float(sparsity),
            "specular_target": float(specular_target),
            "gt_melanin": float(gt_melanin),
            "gt_haemoglobin": float(gt_haemoglobin),
            "gt_shading": float(gt_shading),
            "gt_specular": float(gt_specular),
            "gt_camera": float(gt_camera),
            "gt_light": float(gt_light),
            "gt_cct": float(gt_cct),
        }
        negative = [name for name, w in self.weights.items() if w < 0]
        if negative:
            raise BioFaceError(f"loss weights must be ≥ 0; negative: {', '.join(negative)}")
        if gt_pattern < 0:
            raise BioFaceError(f"gt_pattern must be ≥ 0, got {gt_pattern}")
        self.gt_pattern = float(gt_pattern)
        self.appearance_space = appearance_space
        self.ms_ssim_filter_size = int(ms_ssim_filter_size)
        self.ms_ssim_filter_sigma = float(ms_ssim_filter_sigma)

    @property
    def active_terms(self) -> tuple[str, ...]:
        return tuple(name for name in TERMS if self.weights[name] > 0)

    def appearance_pair(self, targets, outputs) -> tuple[tf.Tensor, tf.Tensor]:
        """(target, reconstruction) in the chosen appearance space."""
        photo = tf.cast(targets["srgb"], tf.float32)
        if self.appearance_space == "linear":
            return tf.pow(tf.maximum(photo, 0.0), REFERENCE_GAMMA), outputs["linear_srgb"]
        return photo, outputs["srgb"]

    def _need(self, targets, key: str, term: str):
        if key not in targets:
            raise BioFaceError(
                f"the '{term}' loss needs a '{key}' target, which the data does not provide; "
                f"set its weight to 0 (e.g. --set loss.{term}=0)"
            )
        return tf.cast(targets[key], tf.float32)

    def __call__(self, targets, outputs) -> dict[str, tf.Tensor]:
        mask = self._need(targets, "mask", "appearance")
        terms = {}
        for name in self.active_terms:
            if name in supervision.GT_TERMS:
                self._need(targets, supervision.TARGET_OF[name], name)
                value = supervision.ground_truth_term(name, targets, outputs, self.gt_pattern)
            elif name == "appearance":
                value = appearance_l2(*self.appearance_pair(targets, outputs), mask)
            elif name == "ms_ssim":
                value = ms_ssim_loss(
                    *self.appearance_pair(targets, outputs),
                    mask,
                    filter_size=self.ms_ssim_filter_size,
                    filter_sigma=self.ms_ssim_filter_sigma,
                )
            elif name == "camera_prior":
                value = camera_prior(outputs["b"])
            elif name == "shading":
                valid = targets.get("shading_valid")
                value = scale_invariant_shading(
                    self._need(targets, "shading", name), outputs["shading"], mask, valid
                )
            elif name == "sparsity":
                value = specular_sparsity(outputs["specular"])
            else:
                value = specular_target_l1(outputs["specmask"], self._need(targets, "specular_target", name), mask)
            terms[name] = self.weights[name] * value
        return terms

    def get_config(self) -> dict:
        return {
            **self.weights,
            "appearance_space": self.appearance_space,
            "ms_ssim_filter_size": self.ms_ssim_filter_size,
            "ms_ssim_filter_sigma": self.ms_ssim_filter_sigma,
            "gt_pattern": self.gt_pattern,
        }
