"""Export a trained BioFaceNet as an on-device bundle: encoder, renderer, metadata.

An editing app runs the *encoder* once per photo (face crop → scaled maps,
camera and light parameters) and the *renderer* on every slider move (maps +
parameters + edit offsets → image). :func:`export_bundle` writes

``encoder.tflite``   signature ``encode``: ``image`` → maps and parameters
``renderer.tflite``  signature ``render``: maps, parameters, offsets → ``srgb``
``metadata.json``    names, shapes, ranges, normalisation and the tables an
                     app needs to describe the result (illuminant names,
                     colour temperature, database cameras), readable without
                     our Python code (docs/EXPORT.md)

Quantization variants (``quantize``), per model:

=========  ======================  =====================================
variant    encoder                 renderer
=========  ======================  =====================================
float32    float32                 float32
float16    float16 weights         float16 constants (skin table)
dynamic    int8 weights            int8 constants, float arithmetic
int8       full integer (int8      int8 constants, float arithmetic: a
           activations, calibrated full-integer renderer is wrong (the
           on representative       spectral sums span orders of
           faces), float I/O and   magnitude; see docs/EXPORT.md)
           float input
           normalisation
=========  ======================  =====================================

Example:

>>> model = load_model("run/model.keras")                                  # doctest: +SKIP
>>> export_bundle(model, "bundle", "int8", calibration_images=faces)       # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import json
import pathlib

import numpy as np

from bioface_tf import spectra
from bioface_tf.data import photos
from bioface_tf.editing import FEATHER
from bioface_tf.errors import BioFaceError
from bioface_tf.palette import ILLUMINANT_CHOICES

ENCODER_FILE, RENDERER_FILE, METADATA_FILE = "encoder.tflite", "renderer.tflite", "metadata.json"
ENCODE_SIGNATURE, RENDER_SIGNATURE = "encode", "render"
BUNDLE_FORMAT = "bioface-tflite-bundle"
BUNDLE_VERSION = 1
RENDERER_QUANTIZATION = {"float32": "float32", "float16": "float16", "dynamic": "dynamic", "int8": "dynamic"}
"""The renderer's conversion in each bundle variant: never full integer."""
CALIBRATION_FACES = 100
ENCODER_FLOAT_LAYERS = ("network_input", "photometric", "exposure_gain", "mirror", "mirror_average")
"""Encoder layers kept float in the ``int8`` variant: the input normalisation
``255·x^2.2 − mean`` (a wide-range power curve; int8 rounding of its output
moved the maps by 0.33 map units, docs/EXPORT.md), and the mirror image of
that normalised input and the average of the two estimates (an int8 mirror
image rounds the same wide-range values: melanin map MAE 0.25 against
0.02 for the single-pass int8 encoder)."""
SYNTHETIC_CALIBRATION_SEED = 0

QUANTIZATION_NOTES = {
    "float32": "no quantization",
    "float16": "weights and constants stored as float16, computed in float32",
    "dynamic": "weights and large constants stored as int8 (dynamic range), computed in float32",
    "int8": "full integer: int8 weights and activations calibrated on representative faces, "
    "float32 input and output tensors; the input normalisation (255*x^2.2 - mean) is computed in float32",
}


@dataclasses.dataclass
class Bundle:
    """The files :func:`export_bundle` wrote."""

    encoder: pathlib.Path
    renderer: pathlib.Path
    metadata: pathlib.Path


def _map(name: str, description: str, value_range, size=None) -> dict:
    shape = [1, size, size, 1] if size else [1, -1, -1, 1]
    return {"name": name, "shape": shape, "dtype": "float32", "range": value_range, "description": description}


def _vector(name: str, width: int, description: str, value_range) -> dict:
    return {"name": name, "shape": [1, width], "dtype": "float32", "range": value_range, "description": description}


def _parameter_tensors(size=None) -> list[dict]:
    """The encoder's outputs, which are also the renderer's inputs."""
    return [
        _map("fmel", "melanin map, scaled: volume fraction 0.43*u^3 with u = 0.01 + 0.495*(fmel + 1)", [-1, 1], size),
        _map("fblood", "haemoglobin map, scaled: volume fraction 0.07*u^3, u as for fmel", [-1, 1], size),
        _map("shading", "diffuse shading (multiplies the diffuse skin colour)", [0, None], size),
        _map("specmask", "specular shading (multiplies the illuminant colour)", [0, None], size),
        _vector("light_weights", 14, "illuminant mixture weights, order in illuminants.names, summing to 1", [0, 1]),
        _vector("cct", 1, "daylight colour temperature index; kelvin = interp(cct, illuminants.cct_index, "
                "illuminants.cct_kelvin)", [1, 22]),
        _vector("b", 2, "camera spectral sensitivity PCA coefficients (see cameras)", [-3, 3]),
    ]


def _edit_tensors() -> list[dict]:
    return [
        _vector("melanin_offset", 1, "added to fmel before rendering, result clipped to [-1, 1]", [-2, 2]),
        _vector("haemoglobin_offset", 1, "added to fblood before rendering, result clipped to [-1, 1]", [-2, 2]),
        _vector("specular_scale", 1, "multiplies specmask (1 keeps highlights, 0 removes them)", [0, None]),
    ]


def metadata(
    model,
    quantize: str,
    skin_spectral_rank: int | None,
    calibration: str | None,
    encoder_quantize: str | None = None,
    mirror_average: bool = True,
) -> dict:
    """The ``metadata.json`` record of a bundle (see docs/EXPORT.md)."""
    encoder_quantize = encoder_quantize or quantize
    from mobile_export.encoder import normalisation

    size = model.image_size
    pca = spectra.camera_pca()
    renderer_quantize = RENDERER_QUANTIZATION[quantize]
    return {
        "format": BUNDLE_FORMAT,
        "version": BUNDLE_VERSION,
        "quantize": quantize,
        "image_size": size,
        "model": {
            "name": model.name,
            "preprocessing": getattr(model, "preprocessing", "reference"),
            "raw2xyz": model.raw2xyz,
            "d_series": model.d_series,
        },
        "encoder": {
            "file": ENCODER_FILE,
            "signature": ENCODE_SIGNATURE,
            "quantization": encoder_quantize,
            "quantization_note": QUANTIZATION_NOTES[encoder_quantize],
            "calibration": calibration,
            "mirror_average": mirror_average,
            "inputs": [
                {
                    "name": "image",
                    "shape": [1, size, size, 3],
                    "dtype": "float32",
                    "range": [0, 1],
                    "description": "face crop, RGB channel order, sRGB-encoded (display) values / 255",
                }
            ],
            "normalisation": normalisation(getattr(model, "preprocessing", "reference")),
            "outputs": _parameter_tensors(size),
        },
        "renderer": {
            "file": RENDERER_FILE,
            "signature": RENDER_SIGNATURE,
            "quantization": renderer_quantize,
            "quantization_note": QUANTIZATION_NOTES[renderer_quantize],
            "skin_spectral_rank": skin_spectral_rank,
            "inputs": _parameter_tensors() + _edit_tensors(),
            "outputs": [
                {"name": "srgb", "shape": [1, -1, -1, 3], "dtype": "float32", "range": [0, 1],
                 "description": "rendered face, sRGB-encoded for display"},
                {"name": "linear_srgb", "shape": [1, -1, -1, 3], "dtype": "float32", "range": [0, None],
                 "description": "rendered face, linear sRGB"},
            ],
            "note": "height and width are free: resize the map inputs to the encoder's output size",
        },
        "illuminants": {
            "names": list(spectra.ILLUMINANT_NAMES),
            "cct_index": [float(i) for i in range(1, len(spectra.D_SERIES_KELVIN) + 1)],
            "cct_kelvin": [float(k) for k in spectra.D_SERIES_KELVIN],
            "relight_presets": {
                name: {"light_weights": _one_hot(base), "cct": cct} for name, (base, cct) in ILLUMINANT_CHOICES.items()
            },
        },
        "cameras": [
            {"name": name, "b": [float(v) for v in score]}
            for name, score in zip(spectra.camera_database().names, pca.scores)
        ],
        "face_crop": {
            "square": "side = crop_scale * max(w, h) of the detector's (x, y, w, h) box; centre = (x + w/2, "
            "y + h/2 + shift_down * h); resized to image_size (area filter when shrinking, cubic when enlarging); "
            "border pixels repeated past the photo's edge",
            "crop_scale": photos.CROP_SCALE,
            "shift_down": photos.CROP_SHIFT_DOWN,
            "mask": "1 inside the ellipse ((x - cx)/ax)^2 + ((y - cy)/ay)^2 <= 1 in crop coordinates [0, 1], "
            "x right, y down, pixel centres at (i + 0.5)/image_size",
            "mask_centre": list(photos.MASK_CENTRE),
            "mask_semi_axes": list(photos.MASK_SEMI_AXES),
        },
        "editing": {
            "residual": "edited face = clip(image + feathered_mask * (edited render - reconstruction), 0, 1), "
            "where reconstruction is the render with offsets 0, 0, 1",
            "feather": "feathered_mask = min(mask, clip(2 * gaussian_blur(mask, sigma) - 1, 0, 1)), "
            "sigma = feather * image_size",
            "feather_width": FEATHER,
            "paste_back": "resize (edited face - face crop) to the crop's square in the photo and add it there",
        },
    }


def _one_hot(name: str) -> list[float]:
    return [1.0 if n == name else 0.0 for n in spectra.ILLUMINANT_NAMES]


def synthetic_calibration_faces(size: int, n: int = CALIBRATION_FACES) -> np.ndarray:
    """``n`` faces `(n, size, size, 3)` rendered by ``bioface synth`` (seed 0)."""
    import tempfile

    from bioface_tf.data import CelebAFaces
    from bioface_tf.data.synth import write_synthetic

    with tempfile.TemporaryDirectory() as folder:
        path = write_synthetic(pathlib.Path(folder) / "calibration.h5", n, size, SYNTHETIC_CALIBRATION_SEED, False)
        with CelebAFaces([path], image_size=None) as faces:
            return faces.read(np.arange(n))["image"]


def calibration_dataset(images, n: int = CALIBRATION_FACES, seed: int = 0):
    """A ``tf.data`` sample of single faces for int8 calibration.

    Args:
        images: `(N, S, S, 3)` sRGB faces in [0, 1], or a ``tf.data.Dataset``
            of such faces, batched or not.
        n: faces in the sample (drawn at random without replacement).
        seed: the draw's seed.

    Returns:
        A dataset of `(1, S, S, 3)` float32 faces.
    """
    import tensorflow as tf

    if isinstance(images, tf.data.Dataset):
        dataset = images.unbatch() if images.element_spec.shape.rank == 4 else images
    else:
        dataset = tf.data.Dataset.from_tensor_slices(np.asarray(images, np.float32))
    return dataset.shuffle(4 * n, seed=seed).take(n).map(lambda x: tf.cast(x, tf.float32)[None])


def calibration_from_files(inputs, image_size: int):
    """Faces for calibration from HDF5 files or photos, through the training pipeline.

    Args:
        inputs: CelebA-layout HDF5 files, or photos and folders
            (:func:`bioface_tf.data.inspect.open_faces`).
        image_size: the model's face size.

    Returns:
        A ``tf.data.Dataset`` of `(1, S, S, 3)` sRGB faces in [0, 1], unflipped.
    """
    from bioface_tf.data.inspect import open_faces
    from bioface_tf.data.pipeline import make_dataset

    faces = open_faces(inputs, image_size=image_size, progress=False)
    dataset = make_dataset(faces, batch_size=1, flip=False, shuffle=False, validate=False, specular_target=False)
    return dataset.map(lambda batch: batch["srgb"])


def export_bundle(
    model,
    out_dir: str | pathlib.Path,
    quantize: str = "float32",
    calibration_images=None,
    skin_spectral_rank: int | None = None,
    calibration_note: str | None = None,
    calibration_faces: int = CALIBRATION_FACES,
    encoder_quantize: str | None = None,
    mirror_average: bool | None = None,
) -> Bundle:
    """Write ``encoder.tflite``, ``renderer.tflite`` and ``metadata.json``.

    Args:
        model: a trained :class:`~bioface_tf.model.BioFaceNet`.
        out_dir: the bundle folder (created).
        quantize: ``float32``, ``float16``, ``dynamic`` or ``int8``.
        calibration_images: for ``int8``, representative faces (see
            :func:`calibration_dataset`); None renders
            :data:`CALIBRATION_FACES` synthetic faces.
        skin_spectral_rank: None for the exact skin reflectance table in the
            renderer, K for a rank-K spectral basis (smaller; see
            docs/EXPORT.md for the accuracy of each K).
        calibration_note: what the calibration faces were, for the metadata.
        calibration_faces: faces drawn from ``calibration_images``.
        encoder_quantize: quantize the encoder differently from the bundle
            variant (e.g. ``"float32"`` with ``quantize="dynamic"``: exact
            maps, small renderer); None: as ``quantize``.
        mirror_average: the encoder averages the crop's and its mirror
            image's estimates (two network passes in one call); None: as
            ``model.mirror_average``.

    Returns:
        The paths written.

    Raises:
        BioFaceError: unknown ``quantize``.
    """
    from mobile_export.encoder import build_encoder
    from mobile_export.renderer import build_renderer
    from mobile_export.tflite import QUANTIZATIONS, convert

    encoder_quantize = encoder_quantize or quantize
    if mirror_average is None:
        mirror_average = bool(getattr(model, "mirror_average", False))
    for name in (quantize, encoder_quantize):
        if name not in QUANTIZATIONS:
            raise BioFaceError(f"quantize must be one of {', '.join(QUANTIZATIONS)}, got {name!r}")
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    representative = None
    calibration = None
    if encoder_quantize == "int8":
        if calibration_images is None:
            calibration_images = synthetic_calibration_faces(model.image_size, calibration_faces)
            calibration_note = calibration_note or f"{calibration_faces} synthetic faces (bioface synth, seed 0)"
        sample = calibration_dataset(calibration_images, calibration_faces)

        def representative():
            for face in sample:
                yield {"image": face}

        calibration = calibration_note or f"{calibration_faces} representative faces"
    encoder = convert(
        build_encoder(model, mirror_average), ENCODE_SIGNATURE, encoder_quantize, representative_data=representative,
        float_layers=ENCODER_FLOAT_LAYERS,
    )
    renderer = convert(
        build_renderer(skin_spectral_rank, model.raw2xyz, model.d_series), RENDER_SIGNATURE, RENDERER_QUANTIZATION[quantize]
    )
    bundle = Bundle(out_dir / ENCODER_FILE, out_dir / RENDERER_FILE, out_dir / METADATA_FILE)
    bundle.encoder.write_bytes(encoder)
    bundle.renderer.write_bytes(renderer)
    record = metadata(model, quantize, skin_spectral_rank, calibration, encoder_quantize, mirror_average)
    bundle.metadata.write_text(json.dumps(record, indent=2) + "\n")
    return bundle
