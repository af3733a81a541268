"""Face analysis: a trained model turns face images into biophysical maps.

:func:`analyse` runs a :class:`~bioface_tf.model.BioFaceNet` on face crops
and re-renders its estimates through the physics decoder, giving per face
the melanin and haemoglobin maps, diffuse and specular shading, the diffuse
albedo, the reconstruction, and the estimated illuminant and camera.
:func:`illuminant_and_camera` describes the latter in physical terms (colour
temperature in kelvin, the illuminant mixture by name, and the nearest of
the 28 database cameras) — the fields of ``params.json``.

Example:

>>> model = load_model("demo_out/model.keras")                     # doctest: +SKIP
>>> shipped = load_model()                   # the shipped default    # doctest: +SKIP
>>> faces = analyse(model, images, masks)                           # doctest: +SKIP
>>> faces.params["fmel"].shape, illuminant_and_camera(faces.params, 0)["nearest_camera"]  # doctest: +SKIP
((4, 64, 64, 1), 'Canon 5D Mark II')
"""

from __future__ import annotations

import dataclasses
import functools
import pathlib

import numpy as np

from bioface_tf import pretrained, spectra
from bioface_tf.errors import BioFaceError

PARAMETERS = ("fmel", "fblood", "shading", "specmask", "b", "light_weights", "cct")
BATCH_SIZE = 32
FIGURE_ROWS = 8


@dataclasses.dataclass
class FaceAnalysis:
    """What the model makes of a batch of faces (NumPy, float32).

    Attributes:
        image: `(B, H, W, 3)` the input faces, sRGB in [0, 1].
        mask: `(B, H, W, 1)` face masks.
        params: the physics decoder's inputs: ``fmel``, ``fblood`` (scaled
            maps in [−1, 1]), ``shading``, ``specmask`` `(B, H, W, 1)`, ``b``
            `(B, 2)`, ``light_weights`` `(B, 14)`, ``cct`` `(B, 1)`.
        reconstruction: `(B, H, W, 3)` ``params`` rendered, sRGB in [0, 1].
        albedo: `(B, H, W, 3)` the diffuse albedo: ``params`` rendered with
            unit shading and no specular, sRGB in [0, 1].
    """

    image: np.ndarray
    mask: np.ndarray
    params: dict[str, np.ndarray]
    reconstruction: np.ndarray
    albedo: np.ndarray

    def __len__(self) -> int:
        return len(self.image)

    @property
    def size(self) -> int:
        """The faces' side, pixels."""
        return int(self.image.shape[1])

    def resized(self, size: int) -> "FaceAnalysis":
        """The same faces at `(size, size)`: images and maps area-averaged or bilinear, masks nearest."""
        if size == self.size:
            return self
        import cv2

        interpolation = cv2.INTER_AREA if size < self.size else cv2.INTER_LINEAR

        def each(batch, how=interpolation):
            out = [cv2.resize(np.ascontiguousarray(x), (size, size), interpolation=how) for x in batch]
            return np.stack([o if o.ndim == 3 else o[..., None] for o in out]).astype(np.float32)

        return FaceAnalysis(
            each(self.image),
            each(self.mask, cv2.INTER_NEAREST),
            {k: each(v) if v.ndim == 4 else v for k, v in self.params.items()},
            each(self.reconstruction),
            each(self.albedo),
        )

    def take(self, indices) -> "FaceAnalysis":
        """The faces at ``indices`` (a slice or a list), in that order."""
        return FaceAnalysis(
            self.image[indices], self.mask[indices], {k: v[indices] for k, v in self.params.items()},
            self.reconstruction[indices], self.albedo[indices],
        )

    def head(self, n: int) -> "FaceAnalysis":
        """The first ``n`` faces."""
        return self.take(slice(0, n))


def load_model(path: str | pathlib.Path | None = None):
    """A saved BioFaceNet (``.keras``), loaded for inference in safe mode.

    Args:
        path: the ``.keras`` file, a shipped model's name, or None for the
            shipped default (:func:`bioface_tf.pretrained.resolve_model`).

    Raises:
        BioFaceError: the file is missing or is not a saved BioFaceNet.
    """
    import keras

    from bioface_tf.model import BioFaceNet

    path = pretrained.resolve_model(path)
    if not path.is_file():
        raise BioFaceError(f"{path}: model file not found")
    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as err:  # Keras raises many kinds; all mean "not a model we can load"
        raise BioFaceError(f"{path}: not a loadable BioFaceNet model ({type(err).__name__}: {err})") from None
    if not isinstance(model, BioFaceNet):
        raise BioFaceError(f"{path}: holds a {type(model).__name__}, not a BioFaceNet")
    return model


def decoder_of(model):
    """The model's physics decoder (its ``physics`` layer), or a new one."""
    from bioface_tf.physics import PhysicsDecoder

    try:
        return model.get_layer("physics")
    except ValueError:
        return PhysicsDecoder()


def render(params: dict, decoder=None) -> np.ndarray:
    """Render decoder inputs to display sRGB, `(B, H, W, 3)` in [0, 1].

    Args:
        params: the decoder inputs (:data:`PARAMETERS`), arrays or tensors.
        decoder: a :class:`~bioface_tf.physics.PhysicsDecoder` (the model's,
            :func:`decoder_of`) or anything callable like one
            (``params → {"srgb": …}``); None for a new decoder.
    """
    if decoder is None:
        from bioface_tf.physics import PhysicsDecoder

        decoder = PhysicsDecoder()
    return np.asarray(decoder(params)["srgb"])


def rendering(params: dict[str, np.ndarray], decoder) -> tuple[np.ndarray, np.ndarray]:
    """``(reconstruction, albedo)`` `(B, H, W, 3)` sRGB of decoder inputs.

    The albedo is the same render with unit shading and no specular.
    """
    unlit = dict(params, shading=np.ones_like(params["shading"]), specmask=np.zeros_like(params["specmask"]))
    return render(params, decoder), render(unlit, decoder)


def analyse(
    model,
    image: np.ndarray,
    mask: np.ndarray,
    preprocessing: str | None = None,
    batch_size: int = BATCH_SIZE,
) -> FaceAnalysis:
    """Run the model on faces and render what it estimates.

    Args:
        model: a BioFaceNet (see :func:`load_model`).
        image: `(B, S, S, 3)` face crops, sRGB in [0, 1], S the model's size.
        mask: `(B, S, S, 1)` face masks.
        preprocessing: how the model's input was prepared in training,
            ``"reference"`` or ``"display"``
            (:func:`bioface_tf.data.pipeline.preprocess`); None: what the
            model records (its ``preprocessing``), else ``"reference"``.
        batch_size: faces per model call.

    Returns:
        A :class:`FaceAnalysis`; its ``reconstruction`` is exactly what
        :func:`render` gives for unedited ``params``
        with the model's decoder.
    """
    image = np.asarray(image, np.float32)
    params = estimate(model, image, preprocessing, batch_size)
    reconstruction, albedo = rendering(params, decoder_of(model))
    return FaceAnalysis(image, np.asarray(mask, np.float32), params, reconstruction, albedo)


def estimate(
    model, image: np.ndarray, preprocessing: str | None = None, batch_size: int = BATCH_SIZE
) -> dict[str, np.ndarray]:
    """The model's decoder inputs for face crops, without rendering them.

    Args:
        model, preprocessing, batch_size: as for :func:`analyse`.
        image: `(B, S, S, 3)` face crops, sRGB in [0, 1], S the model's size.

    Returns:
        :data:`PARAMETERS` as float32 arrays: maps `(B, S, S, 1)`, ``b``
        `(B, 2)`, ``light_weights`` `(B, 14)`, ``cct`` `(B, 1)`.
    """
    import tensorflow as tf

    from bioface_tf.data.pipeline import preprocess

    image = np.asarray(image, np.float32)
    size = model.image_size
    if image.ndim != 4 or image.shape[1:] != (size, size, 3):
        raise BioFaceError(f"faces must be (B, {size}, {size}, 3) for this model, got {image.shape}")
    if preprocessing is None:
        preprocessing = getattr(model, "preprocessing", "reference")
    parts = {k: [] for k in PARAMETERS}
    for start in range(0, len(image), batch_size):
        batch = preprocess(tf.constant(image[start : start + batch_size]), preprocessing)
        out = model(batch, training=False)
        for k in PARAMETERS:
            parts[k].append(np.asarray(out[k], np.float32))
    return {k: np.concatenate(v) for k, v in parts.items()}


def cct_kelvin(cct) -> np.ndarray:
    """Daylight colour temperature in kelvin of the decoder's ``cct`` in [1, 22].

    The decoder interpolates linearly between the tabulated CIE daylights
    at 4000, 5000, …, 25000 K, so ``cct`` maps linearly to kelvin.
    """
    index = np.arange(1, len(spectra.D_SERIES_KELVIN) + 1)
    return np.interp(np.asarray(cct, np.float64), index, spectra.D_SERIES_KELVIN)


def nearest_camera(b) -> tuple[str, float]:
    """The database camera whose PCA parameters lie nearest ``b`` `(2,)`.

    Returns:
        ``(name, distance)``, the Euclidean distance in ``b`` space.
    """
    scores = spectra.camera_pca().scores
    distances = np.linalg.norm(scores - np.asarray(b, np.float64)[None], axis=1)
    k = int(np.argmin(distances))
    return spectra.camera_database().names[k], float(distances[k])


def volume_fractions(params: dict[str, np.ndarray], mask: np.ndarray, i: int) -> dict[str, float]:
    """Mean melanin and haemoglobin volume fractions inside face ``i``'s mask."""
    inside = np.asarray(mask[i, ..., 0]) > 0.5
    out = {}
    for key, name, maximum in (
        ("fmel", "melanin", spectra.MELANIN_MAX),
        ("fblood", "haemoglobin", spectra.HAEMOGLOBIN_MAX),
    ):
        values = params[key][i, ..., 0][inside]
        out[f"mean_{name}_volume_fraction"] = (
            float(np.mean(spectra.map_to_volume_fraction(values.astype(np.float64), maximum))) if values.size else None
        )
    return out


def illuminant_and_camera(params: dict[str, np.ndarray], i: int) -> dict:
    """The illuminant and camera estimated for face ``i``, for ``params.json``.

    Returns:
        dict with ``cct_kelvin`` (the daylight component's colour
        temperature), ``light_weights`` (``{"A": …, "D": …, "F1": …,
        "F12": …}``, summing to 1), ``camera_b`` ``[b1, b2]``,
        ``nearest_camera`` (a name from the 28-camera database) and
        ``nearest_camera_distance`` (in ``b`` units).
    """
    b = [float(v) for v in params["b"][i]]
    camera, distance = nearest_camera(b)
    return {
        "cct_kelvin": float(cct_kelvin(params["cct"][i, 0])),
        "light_weights": {
            name: float(w) for name, w in zip(spectra.ILLUMINANT_NAMES, params["light_weights"][i])
        },
        "camera_b": b,
        "nearest_camera": camera,
        "nearest_camera_distance": distance,
    }


def save_face(out_dir: str | pathlib.Path, faces: FaceAnalysis, i: int, extra: dict | None = None) -> pathlib.Path:
    """Write face ``i``'s results to ``out_dir`` (created).

    Files: ``input.png``, ``reconstruction.png``, ``melanin.png`` and
    ``haemoglobin.png`` (viridis with a colour bar in map values and volume
    fractions), ``diffuse_shading.png``, ``specular_shading.png``,
    ``diffuse_albedo.png``, ``params.json`` (:func:`illuminant_and_camera`,
    mean volume fractions, and ``extra``) and ``maps.npz`` (the decoder
    inputs as float32 arrays).

    Returns:
        ``out_dir`` as a path.
    """
    import json

    from bioface_tf import figures

    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, image in figures.face_panels(faces, i, tile=max(2 * figures.TILE, faces.size)).items():
        figures.write_png(out_dir / f"{name}.png", image)
    record = {**illuminant_and_camera(faces.params, i), **volume_fractions(faces.params, faces.mask, i), **(extra or {})}
    (out_dir / "params.json").write_text(json.dumps(record, indent=2) + "\n")
    np.savez_compressed(out_dir / "maps.npz", mask=faces.mask[i], **{k: v[i] for k, v in faces.params.items()})
    return out_dir


@dataclasses.dataclass
class AnalysisRun:
    """What :func:`analyse_files` wrote and what it could not read.

    Attributes:
        names: the faces analysed; each has a folder ``out_dir/<name>/``.
        failures: inputs that gave no face (:class:`bioface_tf.data.faces.Failure`).
        figure: the figure grid's path, or None when no face was analysed.
    """

    names: list[str]
    failures: list
    figure: pathlib.Path | None


def analyse_files(
    model,
    inputs,
    out_dir: str | pathlib.Path,
    limit: int | None = None,
    figure_rows: int = FIGURE_ROWS,
    progress: bool | None = None,
    on_failure=None,
    analyser=None,
    crop: str = "detect",
    all_faces: bool = False,
    on_face=None,
    mask: str = "skin",
    refiner=None,
) -> AnalysisRun:
    """Analyse every face in photos, folders and HDF5 files; write the results.

    Each face gets ``out_dir/<name>/`` (:func:`save_face`; a photo's face
    records its ``crop`` and ``crop_square`` in ``params.json``); the first
    ``figure_rows`` faces make ``out_dir/figure.png``
    (:func:`bioface_tf.figures.analysis_grid`). Inputs that fail are
    collected and the rest go on.

    Args:
        model: a trained BioFaceNet, or anything with an ``image_size``
            when ``analyser`` is given.
        inputs: photos, folders, HDF5 files or glob patterns.
        out_dir: the output folder (created).
        limit: at most this many faces from each HDF5 file.
        figure_rows: faces in the figure.
        progress: show a progress bar (None: when on a terminal).
        on_failure: called with each failure as it happens (e.g. to print it).
        analyser: ``(images, masks) → FaceAnalysis`` instead of
            :func:`analyse` with ``model`` (the on-device runtime,
            :class:`mobile_export.runtime.LiteBioFace`, passes its own).
        crop, all_faces: how photos are cropped and whether every face of
            a photo is analysed (:func:`bioface_tf.data.faces.iter_faces`).
        on_face: called with each face (:class:`bioface_tf.data.faces.Face`)
            before it is analysed (e.g. to say it was taken whole).
        mask: a photo's face mask, one of :data:`bioface_tf.masks.MASK_KINDS`
            (HDF5 faces keep their own).
        refiner: a :class:`bioface_tf.refinement.Refiner` to fit each face
            after the network (a photo's face at the refiner's working
            size, so its maps have the photo's detail; ``params.json``
            records the fit as ``refinement``), or None.
    """
    from tqdm import tqdm

    from bioface_tf import figures
    from bioface_tf.data.faces import Failure, iter_faces

    out_dir = pathlib.Path(out_dir)
    run = AnalysisRun([], [], None)
    shown: list[tuple[str, FaceAnalysis]] = []

    if analyser is None:
        analyser = functools.partial(analyse, model)

    def flush(batch):
        faces = analyser(np.stack([f.image for f in batch]), np.stack([f.mask for f in batch]))
        if refiner is None:
            results = [(faces, i, {}) for i in range(len(batch))]
        else:
            results = [(fit, k, {"refinement": record}) for fit, k, record in refiner.faces(faces, batch)]
        for face, (analysis, k, extra) in zip(batch, results):
            save_face(out_dir / face.name, analysis, k, {**face.record(), **extra})
            run.names.append(face.name)
            if sum(len(f) for _, f in shown) < figure_rows:
                shown.append(([face.name], analysis.take([k]).resized(model.image_size)))

    batch = []
    with tqdm(desc="analysing faces", unit="face", disable=None if progress is None else not progress) as bar:
        faces = iter_faces(
            inputs, model.image_size, limit=limit, crop=crop, all_faces=all_faces, mask=mask,
            keep_photo=refiner is not None,
        )
        for item in faces:
            if isinstance(item, Failure):
                run.failures.append(item)
                if on_failure:
                    on_failure(item)
                continue
            if on_face:
                on_face(item)
            batch.append(item)
            if len(batch) == BATCH_SIZE:
                flush(batch)
                bar.update(len(batch))
                batch = []
        if batch:
            flush(batch)
            bar.update(len(batch))
    if shown:
        names = [n for group, _ in shown for n in group]
        faces = _concatenate([f for _, f in shown])
        run.figure = figures.write_png(out_dir / "figure.png", figures.analysis_grid(faces, names))
    return run


def _concatenate(parts: list[FaceAnalysis]) -> FaceAnalysis:
    return FaceAnalysis(
        np.concatenate([p.image for p in parts]),
        np.concatenate([p.mask for p in parts]),
        {k: np.concatenate([p.params[k] for p in parts]) for k in PARAMETERS},
        np.concatenate([p.reconstruction for p in parts]),
        np.concatenate([p.albedo for p in parts]),
    )
