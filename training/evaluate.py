"""Evaluate a trained BioFaceNet: reconstruction quality and ground-truth agreement.

Reconstruction (any data): PSNR and SSIM between the photo and the
sRGB-encoded reconstruction, inside the face mask (PSNR from the mean
squared error over masked pixels; SSIM of the masked images), averaged over
faces. With ground truth (``bioface synth`` files): per face the Pearson
correlation inside the mask between each predicted map and its truth —
melanin, haemoglobin, diffuse shading (blind to the shading's scale, which
the model cannot know) and specular shading — averaged over faces; and the
mean absolute error of the camera parameters ``b`` and of the colour
temperature index ``cct``; and per face the error of the mean melanin and
haemoglobin inside the mask, ``|mean(predicted) − mean(true)|`` in map units
([−1, 1]), averaged over faces (``melanin_mean_err``,
``haemoglobin_mean_err``): the correlation says whether the pattern inside
a face is right, the mean error whether its skin type is.

This is the one definition of map agreement in the project: the demo
report, the README and every benchmark use these numbers. Pixels are never
pooled over faces (that would count differences of skin type between faces
as skill at the maps).
"""

from __future__ import annotations

import pathlib

import keras
import numpy as np
import tensorflow as tf
from tqdm import tqdm

from bioface_tf.data import CelebAFaces
from bioface_tf.data.pipeline import make_dataset
from bioface_tf.errors import BioFaceError
from bioface_tf.model import BioFaceNet

MAP_TRUTH = {
    "r_melanin": ("fmel", "gt_fmel"),
    "r_haemoglobin": ("fblood", "gt_fblood"),
    "r_shading": ("shading", "gt_shading"),
    "r_specular": ("specmask", "gt_specmask"),
}
VECTOR_TRUTH = {"b_mae": ("b", "gt_b"), "cct_mae": ("cct", "gt_cct")}
MEAN_TRUTH = {"melanin_mean_err": ("fmel", "gt_fmel"), "haemoglobin_mean_err": ("fblood", "gt_fblood")}


def masked_mean(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per face mean of a map inside the mask; NaN for an empty mask.

    Args:
        values, mask: (N, H, W, 1).

    Returns:
        (N,) means.
    """
    inside = (mask > 0.5).astype(np.float64)
    count = inside.sum(axis=(1, 2, 3))
    total = (values.astype(np.float64) * inside).sum(axis=(1, 2, 3))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / count, np.nan)


def masked_mean_error(prediction: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per face ``|mean(prediction) − mean(truth)|`` inside the mask; NaN for an empty mask.

    Args:
        prediction, truth, mask: (N, H, W, 1).

    Returns:
        (N,) absolute errors of the means.
    """
    return np.abs(masked_mean(prediction.astype(np.float64) - truth, mask))


def masked_pearson(prediction: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per face Pearson r inside the mask; NaN where either map is constant there.

    Args:
        prediction, truth, mask: (N, H, W, 1).

    Returns:
        (N,) correlations.
    """
    inside = mask > 0.5
    values = []
    for p, t, m in zip(prediction, truth, inside):
        p, t = p[m].astype(np.float64), t[m].astype(np.float64)
        p, t = p - p.mean() if p.size else p, t - t.mean() if t.size else t
        denominator = np.sqrt((p * p).sum() * (t * t).sum())
        values.append((p * t).sum() / denominator if denominator > 0 else np.nan)
    return np.asarray(values)


def masked_psnr(photo, reconstruction, mask) -> np.ndarray:
    """Per face PSNR (dB, peak 1) over the masked pixels of (N, H, W, 3) images."""
    weight = np.broadcast_to(mask, photo.shape)
    mse = (weight * (photo - reconstruction) ** 2).sum(axis=(1, 2, 3)) / np.maximum(weight.sum(axis=(1, 2, 3)), 1)
    return 10.0 * np.log10(1.0 / np.maximum(mse, 1e-12))


def load_trained(model_path) -> BioFaceNet:
    """A ``.keras`` BioFaceNet, loaded in safe mode (no lambdas, no pickles)."""
    path = pathlib.Path(model_path)
    if not path.is_file():
        raise BioFaceError(f"{path}: model file not found")
    try:
        model = keras.saving.load_model(path, safe_mode=True, compile=False)
    except (ValueError, TypeError, OSError) as err:
        raise BioFaceError(f"{path}: not a loadable BioFaceNet .keras file ({err})") from None
    if not isinstance(model, BioFaceNet):
        raise BioFaceError(f"{path}: holds a {type(model).__name__}, not a BioFaceNet")
    return model


def face_scores(model, data: list[str], batch_size: int = 25, progress: bool = True) -> dict[str, np.ndarray]:
    """Per-face metrics of a trained model on face files, in file order.

    ``model`` is a ``.keras`` file or an already loaded
    :class:`BioFaceNet` (scored as it is set, e.g. its ``mirror_average``).

    Returns:
        dict of (N,) arrays: ``psnr``, ``ssim``, and with ground truth
        ``r_melanin``, ``r_haemoglobin``, ``r_shading``, ``r_specular``,
        ``b_mae``, ``cct_mae``, ``melanin_mean_err``, ``haemoglobin_mean_err``
        and ``true_melanin_mean`` (the true mean melanin inside the mask, map
        units: the face's skin type, for grouping faces by it).
    """
    if not isinstance(model, BioFaceNet):
        model = load_trained(model)
    size = model.input_shape[1]
    faces = CelebAFaces(data, image_size=size)
    truth = faces.has_ground_truth
    dataset = make_dataset(
        faces,
        batch_size=batch_size,
        preprocessing=model.preprocessing,
        flip=False,
        shuffle=False,
        ground_truth=truth,
    )
    collected: dict[str, list[np.ndarray]] = {}
    bar = tqdm(total=len(faces), unit="face", desc="evaluating", disable=not progress)
    for batch in dataset:
        out = model(batch["image"], training=False)
        photo, recon, mask = batch["srgb"].numpy(), out["srgb"].numpy(), batch["mask"].numpy()
        scores = {
            "psnr": masked_psnr(photo, recon, mask),
            "ssim": tf.image.ssim(tf.constant(photo * mask), out["srgb"] * mask, 1.0).numpy(),
        }
        if truth:
            for key, (name, gt) in MAP_TRUTH.items():
                scores[key] = masked_pearson(out[name].numpy(), batch[gt].numpy(), mask)
            for key, (name, gt) in VECTOR_TRUTH.items():
                scores[key] = np.abs(out[name].numpy() - batch[gt].numpy()).mean(axis=-1)
            for key, (name, gt) in MEAN_TRUTH.items():
                scores[key] = masked_mean_error(out[name].numpy(), batch[gt].numpy(), mask)
            scores["true_melanin_mean"] = masked_mean(batch["gt_fmel"].numpy(), mask)
        for key, value in scores.items():
            collected.setdefault(key, []).append(value)
        bar.update(len(photo))
    bar.close()
    return {key: np.concatenate(values) for key, values in collected.items()}


def evaluate(model, data: list[str], batch_size: int = 25, progress: bool = True) -> dict[str, float]:
    """Metrics of a trained model on face files: :func:`face_scores` averaged over faces.

    ``model`` is a ``.keras`` file or an already loaded
    :class:`BioFaceNet` (scored as it is set, e.g. its ``mirror_average``).

    Returns:
        dict with ``psnr``, ``ssim``, ``n_faces``, and with ground truth
        ``r_melanin``, ``r_haemoglobin``, ``r_shading``, ``r_specular``,
        ``b_mae``, ``cct_mae``, ``melanin_mean_err``, ``haemoglobin_mean_err``.
    """
    scores = face_scores(model, data, batch_size=batch_size, progress=progress)
    scores.pop("true_melanin_mean", None)
    n_faces = len(scores["psnr"])
    results = {key: float(np.nanmean(values)) for key, values in scores.items()}
    results["n_faces"] = n_faces
    return results
