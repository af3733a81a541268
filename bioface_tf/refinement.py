"""Per-photo physics fit: refine a network's maps by analysis by synthesis.

The network sees a face at its own size (64×64 for the shipped model) and
answers in one pass. :func:`refine` starts from that answer and fits the
maps to the photo through the differentiable
:class:`~bioface_tf.physics.PhysicsDecoder`, at the model's size or at a
larger working size (the face region at, say, 256 px), so that the maps —
and any edit re-rendered from them — have the photo's own detail instead of
an upsampled 64×64 answer. It minimises, per face,

* **appearance**: the mean squared difference, display sRGB, between the
  photo and the render inside the mask;
* **anchor**: the mean squared difference between the refined melanin and
  haemoglobin maps, averaged down to the model's size, and the network's
  maps — the network keeps deciding what a face's structure says (the
  per-face level and the broad pattern), the fit adds what the pixels say;
* **smoothness**: an edge-aware total variation of the melanin and
  haemoglobin maps (Charbonnier, each neighbour pair weighted by how little
  the photo changes there, ``1 / (1 + (Δ/τ)²)``), so the maps are smooth
  except at the photo's edges;
* **shading smoothness**: the squared gradient of the log diffuse shading
  (low-frequency shading);
* **specular anchor**: the mean squared difference between the specular
  shading, averaged down to the model's size, and the network's (without
  it the fit explains any brightness it cannot otherwise reproduce as
  specular light, and the specular map loses its pattern);
* **sparsity** and **specular smoothness** (off by default): the mean and
  the squared gradient of the specular shading.

Gradients are in units of the model's pixels at every working size, so one
set of weights means the same at 64 and at 512 px. The camera (``b``) and
the illuminant (``light_weights``, ``cct``) stay the network's: an sRGB
photo is white-balanced, so they show only through metamerism, and freeing
them lets a fit trade skin colour for camera colour (a lighter face's
melanin above a darker one's) while the reconstruction improves.

The weights (:class:`RefineSettings`) were chosen on held-out faces of the
training generator only (``benchmarks/eval_refinement.py --tune``); the
evaluation-only face family was scored after that choice.

Example:

>>> faces = analyse(model, crops, masks)                                # doctest: +SKIP
>>> refined = refine(faces, decoder_of(model))                          # doctest: +SKIP
>>> big = refine(faces, decoder_of(model), image=crops_256, mask=masks_256)  # doctest: +SKIP
>>> big.faces.params["fmel"].shape, big.seconds_per_face               # doctest: +SKIP
((4, 256, 256, 1), 3.1)
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from bioface_tf.analysis import PARAMETERS, FaceAnalysis, rendering
from bioface_tf.errors import BioFaceError

MAP_KEYS = ("fmel", "fblood")
SHADING_FLOOR = 1e-3
MAP_LIMIT = 1.0
CHARBONNIER_EPS = 1e-6
DEFAULT_STEPS = 60
DEFAULT_WORK_SIZE = 256


@dataclasses.dataclass(frozen=True)
class RefineSettings:
    """How :func:`refine` fits the maps.

    Attributes:
        steps: Adam steps.
        learning_rate: Adam's step size for the log shading and the
            specular shading.
        map_learning_rate: Adam's step size for the melanin and
            haemoglobin maps (in [−1, 1]). Adam moves every pixel at about
            this rate whatever its gradient, so where the photo hardly
            constrains a map (chromaticity barely changes with melanin
            in fair skin) a large rate turns noise into pattern.
        fit_specular: fit the specular shading too; False keeps the
            network's (resized).
        anchor: weight of the pull towards the network's melanin and
            haemoglobin at the model's size.
        smoothness: weight of the edge-aware total variation of the maps.
        edge_scale: τ, the photo change (display sRGB, per model pixel)
            at which a neighbour pair counts half.
        shading_smoothness: weight of the squared gradient of log shading.
        sparsity: weight of the mean specular shading.
        specular_smoothness: weight of the squared gradient of the
            specular shading.
        specular_anchor: weight of the pull of the specular shading,
            averaged down to the model's size, towards the network's.
    """

    steps: int = DEFAULT_STEPS
    learning_rate: float = 0.02
    map_learning_rate: float = 0.002
    fit_specular: bool = True
    anchor: float = 0.3
    smoothness: float = 0.01
    edge_scale: float = 0.05
    shading_smoothness: float = 0.0005
    sparsity: float = 0.0
    specular_smoothness: float = 0.0
    specular_anchor: float = 100.0

    def __post_init__(self):
        if self.steps < 0:
            raise ValueError(f"refinement steps must be >= 0, got {self.steps}")
        for name in ("learning_rate", "map_learning_rate", "anchor", "smoothness", "edge_scale", "shading_smoothness", "sparsity",
                     "specular_smoothness", "specular_anchor"):
            value = getattr(self, name)
            if not np.isfinite(value) or value < 0:
                raise ValueError(f"refinement {name} must be a finite number >= 0, got {value}")


@dataclasses.dataclass
class Refinement:
    """What :func:`refine` made.

    Attributes:
        faces: the refined :class:`~bioface_tf.analysis.FaceAnalysis` at
            the working size (its ``image`` and ``mask`` are those fitted).
        start: the network's answer at the working size (maps resized
            bilinearly), rendered — what the fit started from.
        loss: `(steps + 1,)` the objective before each step and after the last.
        seconds_per_face: wall-clock seconds of the fit per face.
    """

    faces: FaceAnalysis
    start: FaceAnalysis
    loss: np.ndarray
    seconds_per_face: float


def resize_maps(params: dict[str, np.ndarray], size: int) -> dict[str, np.ndarray]:
    """Decoder inputs with every map resized (bilinear) to `(B, size, size, 1)`; vectors kept."""
    import cv2

    out = {}
    for key, value in params.items():
        value = np.asarray(value, np.float32)
        if value.ndim == 4 and value.shape[1] != size:
            value = np.stack(
                [cv2.resize(v[..., 0], (size, size), interpolation=cv2.INTER_LINEAR)[..., None] for v in value]
            )
        out[key] = value
    return out


def _check(image: np.ndarray, mask: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    image = np.asarray(image, np.float32)
    mask = np.asarray(mask, np.float32)
    if mask.ndim == 3:
        mask = mask[..., None]
    if image.ndim != 4 or image.shape[-1] != 3 or image.shape[1] != image.shape[2]:
        raise BioFaceError(f"refinement needs square faces (B, S, S, 3), got {image.shape}")
    if mask.shape != image.shape[:3] + (1,):
        raise BioFaceError(f"refinement mask {mask.shape} does not match the faces {image.shape}")
    if len(image) != n:
        raise BioFaceError(f"refinement got {len(image)} faces for {n} analysed faces")
    if not np.all(np.isfinite(image)):
        raise BioFaceError("refinement faces hold NaN or infinite values")
    empty = [i for i in range(n) if not np.any(mask[i] > 0.5)]
    if empty:
        raise BioFaceError(f"refinement: the mask of face(s) {empty} is empty; nothing to fit")
    return image, mask


def _edge_weights(image, tau: float, scale: float):
    """Neighbour-pair weights `(B, S, S−1, 1)`, `(B, S−1, S, 1)`: ``1 / (1 + (Δ/τ)²)``, Δ per model pixel."""
    import tensorflow as tf

    dx = tf.norm(image[:, :, 1:] - image[:, :, :-1], axis=-1, keepdims=True) * scale
    dy = tf.norm(image[:, 1:] - image[:, :-1], axis=-1, keepdims=True) * scale
    return 1.0 / (1.0 + tf.square(dx / tau)), 1.0 / (1.0 + tf.square(dy / tau))


def _pair_masks(mask):
    return mask[:, :, 1:] * mask[:, :, :-1], mask[:, 1:] * mask[:, :-1]


def _masked_mean(values, mask):
    import tensorflow as tf

    return tf.reduce_sum(values * mask, axis=(1, 2, 3)) / tf.maximum(tf.reduce_sum(mask, axis=(1, 2, 3)), 1.0)


def refine(
    faces: FaceAnalysis,
    decoder=None,
    settings: RefineSettings | None = None,
    image: np.ndarray | None = None,
    mask: np.ndarray | None = None,
    progress: bool | None = None,
) -> Refinement:
    """Fit the physics decoder to each face, starting from a network's answer.

    Args:
        faces: the network's analysis at the model's size
            (:func:`bioface_tf.analysis.analyse`).
        decoder: the model's :class:`~bioface_tf.physics.PhysicsDecoder`
            (:func:`bioface_tf.analysis.decoder_of`); None for a new one.
        settings: the fit's weights and steps (None: the defaults).
        image: `(B, S, S, 3)` the same faces at the working size S, sRGB
            in [0, 1]; None: ``faces.image`` (the model's size).
        mask: `(B, S, S, 1)` their masks; None: ``faces.mask`` (only with
            ``image`` None).
        progress: show a progress bar over the steps (None: on a terminal).

    Returns:
        A :class:`Refinement`: maps `(B, S, S, 1)`, the network's camera
        and illuminant, the render, the objective per step and the time.

    Raises:
        BioFaceError: faces and masks disagree in shape or number, hold
            NaNs, or a mask is empty.
    """
    import keras
    import tensorflow as tf
    from tqdm import tqdm

    from bioface_tf.physics import PhysicsDecoder

    settings = settings or RefineSettings()
    decoder = decoder or PhysicsDecoder()
    if image is None:
        if mask is not None:
            raise BioFaceError("refinement: a mask was given without its image")
        image, mask = faces.image, faces.mask
    elif mask is None:
        raise BioFaceError("refinement: an image at the working size needs its mask at that size")
    image, mask = _check(image, mask, len(faces))
    model_size = faces.image.shape[1]
    size = image.shape[1]
    started = time.perf_counter()

    initial = resize_maps(faces.params, size)
    target = tf.constant(image)
    inside = tf.constant((mask > 0.5).astype(np.float32))
    scale = size / model_size
    edge_x, edge_y = _edge_weights(target, settings.edge_scale, scale)
    pair_x, pair_y = _pair_masks(inside)
    edge_x, edge_y = edge_x * pair_x, edge_y * pair_y
    network_maps = tf.constant(np.concatenate([faces.params[k] for k in MAP_KEYS], -1))
    network_specular = tf.constant(np.maximum(faces.params["specmask"], 0.0))
    model_mask = tf.constant((np.asarray(faces.mask) > 0.5).astype(np.float32))
    fixed = {k: tf.constant(initial[k]) for k in ("b", "light_weights", "cct")}

    maps = tf.Variable(np.concatenate([np.clip(initial[k], -MAP_LIMIT, MAP_LIMIT) for k in MAP_KEYS], -1))
    log_shading = tf.Variable(np.log(np.maximum(initial["shading"], SHADING_FLOOR)))
    specular = tf.Variable(np.maximum(initial["specmask"], 0.0))
    variables = (maps, log_shading, specular)
    groups = [
        (keras.optimizers.Adam(settings.map_learning_rate), (maps,)),
        (keras.optimizers.Adam(settings.learning_rate), (log_shading, specular) if settings.fit_specular else (log_shading,)),
    ]

    def params_of(maps_, log_shading_, specular_):
        return {
            "fmel": maps_[..., :1],
            "fblood": maps_[..., 1:],
            "shading": tf.exp(log_shading_),
            "specmask": specular_,
            **fixed,
        }

    def gradient(values, axis):
        """Neighbour differences along ``axis`` (2: x, 1: y), per model pixel."""
        difference = (values[:, :, 1:] - values[:, :, :-1]) if axis == 2 else (values[:, 1:] - values[:, :-1])
        return difference * scale

    def pooled(values):
        """Maps at the working size averaged down to the model's (antialiased, so it has a gradient)."""
        return tf.image.resize(values, (model_size, model_size), antialias=True) if size != model_size else values

    def objective(maps_, log_shading_, specular_):
        render = decoder(params_of(maps_, log_shading_, specular_))["srgb"]
        appearance = _masked_mean(tf.reduce_mean(tf.square(render - target), -1, keepdims=True), inside)
        anchor = _masked_mean(tf.reduce_mean(tf.square(pooled(maps_) - network_maps), -1, keepdims=True), model_mask)
        specular_anchor = _masked_mean(tf.square(pooled(specular_) - network_specular), model_mask)
        tv = 0.0
        shading_tv = 0.0
        specular_tv = 0.0
        for axis, weights, pairs in ((2, edge_x, pair_x), (1, edge_y, pair_y)):
            charbonnier = tf.sqrt(tf.square(gradient(maps_, axis)) + CHARBONNIER_EPS)
            tv += _masked_mean(tf.reduce_sum(charbonnier, -1, keepdims=True), weights)
            shading_tv += _masked_mean(tf.square(gradient(log_shading_, axis)), pairs)
            specular_tv += _masked_mean(tf.square(gradient(specular_, axis)), pairs)
        sparsity = _masked_mean(specular_, inside)
        per_face = (
            appearance
            + settings.anchor * anchor
            + settings.smoothness * tv
            + settings.shading_smoothness * shading_tv
            + settings.sparsity * sparsity
            + settings.specular_smoothness * specular_tv
            + settings.specular_anchor * specular_anchor
        )
        return tf.reduce_sum(per_face)

    @tf.function(reduce_retracing=True)
    def step():
        with tf.GradientTape() as tape:
            loss = objective(*variables)
        gradients = dict(zip((v.ref() for v in variables), tape.gradient(loss, variables)))
        for optimizer, fitted in groups:
            optimizer.apply_gradients([(gradients[v.ref()], v) for v in fitted])
        maps.assign(tf.clip_by_value(maps, -MAP_LIMIT, MAP_LIMIT))
        specular.assign(tf.maximum(specular, 0.0))
        return loss

    losses = []
    with tqdm(total=settings.steps, desc="refining", unit="step", disable=None if progress is None else not progress) as bar:
        for _ in range(settings.steps):
            losses.append(float(step()))
            bar.update(1)
    losses.append(float(objective(*variables)))
    refined = {k: np.asarray(v, np.float32) for k, v in params_of(*variables).items()}
    refined = {k: refined[k] for k in PARAMETERS}
    reconstruction, albedo = rendering(refined, decoder)
    elapsed = time.perf_counter() - started
    start_reconstruction, start_albedo = rendering(initial, decoder)
    return Refinement(
        FaceAnalysis(image, mask, refined, reconstruction, albedo),
        FaceAnalysis(image, mask, initial, start_reconstruction, start_albedo),
        np.asarray(losses, np.float64),
        elapsed / len(faces),
    )


@dataclasses.dataclass
class Refiner:
    """The fit as the commands use it: a decoder, settings and a working size.

    Attributes:
        decoder: the model's physics decoder.
        settings: the fit's weights and steps.
        work_size: side of a photo's face region for the fit, pixels (the
            crop's square cut from the photo at this size); None: the
            model's size. Faces without a photo (HDF5) are fitted at their
            own size.
        progress: a progress bar per fit (None: on a terminal).
    """

    decoder: object
    settings: RefineSettings = dataclasses.field(default_factory=RefineSettings)
    work_size: int | None = DEFAULT_WORK_SIZE
    progress: bool | None = None

    def __post_init__(self):
        if self.work_size is not None and self.work_size < 8:
            raise BioFaceError(f"refinement size must be at least 8 pixels, got {self.work_size}")

    def photo_crops(self, photo: np.ndarray, squares, mask_kind: str) -> tuple[np.ndarray, np.ndarray]:
        """`(B, S, S, 3)` crops of ``squares`` at the working size and their masks `(B, S, S, 1)`."""
        from bioface_tf.data.photos import crop_square, square_masks

        size = self.work_size
        crops = np.stack([crop_square(photo, square, size) for square in squares])
        masks = np.stack([square_masks(photo, square, mask_kind, [size])[0][..., None] for square in squares])
        return crops.astype(np.float32), masks.astype(np.float32)

    def __call__(self, faces: FaceAnalysis, image: np.ndarray | None = None, mask: np.ndarray | None = None) -> Refinement:
        """:func:`refine` with these settings (``image``/``mask`` at the working size, or None)."""
        return refine(faces, self.decoder, self.settings, image, mask, self.progress)

    def faces(self, analysed: FaceAnalysis, items) -> list[tuple[FaceAnalysis, int, dict]]:
        """Refine analysed faces, each at its working size.

        Args:
            analysed: the network's analysis of ``items`` at the model's size.
            items: the faces (:class:`bioface_tf.data.faces.Face`); one with
                its ``photo`` and ``square`` is fitted on the photo's face
                region at :attr:`work_size`, the others at their own size.

        Returns:
            Per face, in order: ``(analysis, index in it, record)``, the
            record for ``params.json`` (:meth:`record`).
        """
        from_photo = [i for i, f in enumerate(items) if f.photo is not None and self.work_size is not None]
        at_own_size = [i for i in range(len(items)) if i not in from_photo]
        out: dict[int, tuple[FaceAnalysis, int, dict]] = {}
        if from_photo:
            parts = [self.photo_crops(items[i].photo, [items[i].square], items[i].mask_kind) for i in from_photo]
            crops, masks = np.concatenate([c for c, _ in parts]), np.concatenate([m for _, m in parts])
            fit = self(analysed.take(from_photo), crops, masks)
            out.update({i: (fit.faces, k, self.record(fit, k)) for k, i in enumerate(from_photo)})
        if at_own_size:
            fit = self(analysed.take(at_own_size))
            out.update({i: (fit.faces, k, self.record(fit, k)) for k, i in enumerate(at_own_size)})
        return [out[i] for i in range(len(items))]

    def record(self, fit: Refinement, k: int) -> dict:
        """What ``params.json`` says of face ``k``'s fit: steps, size, seconds, PSNR before and after."""
        start, end = fit.start, fit.faces
        return {
            "steps": self.settings.steps,
            "size": end.size,
            "seconds": round(fit.seconds_per_face, 3),
            "psnr_before_db": round(masked_psnr(start.image[k], start.reconstruction[k], start.mask[k]), 2),
            "psnr_after_db": round(masked_psnr(end.image[k], end.reconstruction[k], end.mask[k]), 2),
        }


def masked_psnr(image: np.ndarray, reconstruction: np.ndarray, mask: np.ndarray) -> float:
    """PSNR (dB, peak 1) of `(H, W, 3)` images over the pixels where `(H, W, 1)` ``mask`` > 0.5."""
    inside = np.broadcast_to(np.asarray(mask) > 0.5, np.shape(image))
    mse = float(np.mean((np.asarray(image, np.float64) - reconstruction)[inside] ** 2)) if inside.any() else np.nan
    return float(10.0 * np.log10(1.0 / max(mse, 1e-12)))

