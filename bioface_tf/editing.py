"""Edit skin in biophysical space and re-render (PHYSICS.md §11).

An edit acts on the scaled maps that the network (or any other source)
produced — the :class:`~bioface_tf.physics.PhysicsDecoder` inputs — and
re-renders with everything else held fixed:

* ``melanin +Δ``: ``fmel ← clip(fmel + Δ, −1, 1)``;
* ``haemoglobin +Δ``: ``fblood ← clip(fblood + Δ, −1, 1)``;
* ``specular ×s``: ``specmask ← s·specmask``;
* ``illuminant NAME``: light weights and cct replaced by a named CIE
  illuminant (``D65``, ``A``, ``F1``..``F12``).

:func:`composite` turns a re-render into a photo edit: inside the face mask
it adds the residual the model could not explain (``input − reconstruction``,
default on) so the edit changes skin, not identity; outside the mask the
photo is kept unchanged. Compositing happens in display sRGB, so with no edit
the output equals the input exactly.

:func:`edit_faces` does all of it for a model's analysis of face crops
(:class:`bioface_tf.analysis.FaceAnalysis`), blending through a feathered
mask (:func:`feather_mask`) so the edit fades out at the mask's edge.

Editing builds on analysis, never the other way round: the renderer
(:func:`bioface_tf.analysis.render`, also importable from here),
:func:`~bioface_tf.analysis.analyse` and
:func:`~bioface_tf.analysis.decoder_of` come from :mod:`bioface_tf.analysis`.

Example:

>>> edited = edit_parameters(params, Edit(melanin=0.4))
>>> image_out = composite(image, render(params), render(edited), mask)

or, from face crops and a trained model:

>>> faces = analyse(model, crops, masks)                   # doctest: +SKIP
>>> out = edit_faces(faces, Edit(haemoglobin=0.3), decoder_of(model))  # doctest: +SKIP

or on a whole photo of any size (:func:`edit_photo`: the face is found,
edited at the model's size, and the change pasted back at full resolution;
pass ``squares`` to edit several faces, or faces you located yourself):

>>> edited_photo = edit_photo(model, photo, Edit(melanin=0.4))  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from bioface_tf.analysis import analyse, decoder_of, render
from bioface_tf.errors import BioFaceError
from bioface_tf.palette import illuminant_parameters

MAP_RANGE = (-1.0, 1.0)
FEATHER = 0.03
"""Default feathering of the face mask: Gaussian width as a fraction of the image side."""


@dataclasses.dataclass(frozen=True)
class Edit:
    """A biophysical edit.

    Attributes:
        melanin: offset added to ``fmel`` (scaled map units, [-1, 1] range).
        haemoglobin: offset added to ``fblood``.
        specular: factor multiplying ``specmask`` (1 keeps it, 0 removes
            highlights).
        illuminant: re-light under this named illuminant, or keep the
            estimated one (None).
    """

    melanin: float = 0.0
    haemoglobin: float = 0.0
    specular: float = 1.0
    illuminant: str | None = None

    def __post_init__(self):
        for name in ("melanin", "haemoglobin", "specular"):
            if not np.isfinite(getattr(self, name)):
                raise ValueError(f"edit {name} must be finite, got {getattr(self, name)}")
        if self.specular < 0:
            raise ValueError(f"specular scale must be >= 0, got {self.specular}")
        if self.illuminant is not None:
            illuminant_parameters(self.illuminant)

    @property
    def is_identity(self) -> bool:
        return self == Edit()


def edit_parameters(params: dict, edit: Edit) -> dict:
    """Apply an edit to decoder inputs.

    Args:
        params: PhysicsDecoder inputs — ``fmel``, ``fblood``, ``shading``,
            ``specmask`` (B, H, W, 1), ``b`` (B, 2), ``light_weights``
            (B, 14), ``cct`` (B, 1) — as arrays or tensors.
        edit: the edit.

    Returns:
        A new dict of float32 NumPy arrays (the input is not modified).
    """
    edited = {k: np.array(v, dtype=np.float32) for k, v in params.items()}
    edited["fmel"] = np.clip(edited["fmel"] + edit.melanin, *MAP_RANGE).astype(np.float32)
    edited["fblood"] = np.clip(edited["fblood"] + edit.haemoglobin, *MAP_RANGE).astype(np.float32)
    edited["specmask"] = (edited["specmask"] * edit.specular).astype(np.float32)
    if edit.illuminant is not None:
        weights, cct = illuminant_parameters(edit.illuminant)
        batch = edited["light_weights"].shape[0]
        edited["light_weights"] = np.tile(weights, (batch, 1))
        edited["cct"] = np.full((batch, 1), cct, np.float32)
    return edited


def composite(
    image: np.ndarray,
    reconstruction: np.ndarray,
    edited: np.ndarray,
    mask: np.ndarray,
    residual: bool = True,
) -> np.ndarray:
    """Paste an edited re-render into the photo.

    Args:
        image: (..., H, W, 3) the input photo, display sRGB in [0, 1].
        reconstruction: (..., H, W, 3) the unedited re-render.
        edited: (..., H, W, 3) the edited re-render.
        mask: (..., H, W) or (..., H, W, 1) face mask in [0, 1] (soft masks
            blend).
        residual: add ``image − reconstruction`` to the edit inside the
            mask, keeping detail the model cannot explain.

    Returns:
        (..., H, W, 3) edited photo in [0, 1]; equal to ``image`` where the
        mask is 0, and everywhere when ``edited == reconstruction`` and
        ``residual`` is on.
    """
    image = np.asarray(image, np.float32)
    mask = np.asarray(mask, np.float32)
    if mask.ndim == image.ndim - 1:
        mask = mask[..., None]
    face = np.asarray(edited, np.float32)
    if residual:
        face = face + (image - np.asarray(reconstruction, np.float32))
    return np.clip(mask * face + (1.0 - mask) * image, 0.0, 1.0)


def feather_mask(mask: np.ndarray, width: float = FEATHER) -> np.ndarray:
    """A soft version of a face mask that is 0 wherever the mask is 0.

    Each mask is blurred with a Gaussian of standard deviation ``width``
    times its side, then mapped ``clip(2·blurred − 1, 0, 1)``: 0 at and
    outside the mask's edge, rising to 1 inside it.

    Args:
        mask: (B, H, W, 1) or (B, H, W) masks in [0, 1].
        width: the Gaussian's width as a fraction of the image side; 0
            returns the mask unchanged.

    Returns:
        float32, the shape of ``mask``.
    """
    mask = np.asarray(mask, np.float32)
    if width <= 0:
        return mask
    import cv2

    sigma = width * max(mask.shape[1], mask.shape[2])
    blurred = np.stack([cv2.GaussianBlur(np.ascontiguousarray(m.squeeze()), (0, 0), sigma) for m in mask])
    soft = np.clip(2.0 * blurred - 1.0, 0.0, 1.0).reshape(mask.shape)
    return np.minimum(soft, mask)


def edit_faces(faces, edit: Edit, decoder=None, residual: bool = True, feather: float = FEATHER) -> np.ndarray:
    """Edit analysed faces and paste the re-render into the crops.

    Args:
        faces: a :class:`bioface_tf.analysis.FaceAnalysis` (``image``,
            ``mask``, ``params``, ``reconstruction``).
        edit: the edit.
        decoder: the decoder that rendered ``faces.reconstruction`` (the
            model's, :func:`bioface_tf.analysis.decoder_of`); None for a new
            :class:`~bioface_tf.physics.PhysicsDecoder`.
        residual: keep detail the model cannot explain (see :func:`composite`).
        feather: mask feathering (see :func:`feather_mask`).

    Returns:
        (B, H, W, 3) the edited faces, sRGB in [0, 1]; outside the mask
        equal to ``faces.image``.
    """
    edited = render(edit_parameters(faces.params, edit), decoder)
    return composite(faces.image, faces.reconstruction, edited, feather_mask(faces.mask, feather), residual)


def edit_photo(
    model,
    photo: np.ndarray,
    edit: Edit,
    squares=None,
    residual: bool = True,
    feather: float = FEATHER,
    analyser=None,
    decoder=None,
    mask: str = "skin",
    refiner=None,
) -> np.ndarray:
    """Edit the faces in a photo of any size and keep its full resolution.

    Each face's square (by default the largest face's,
    :func:`bioface_tf.data.photos.face_squares`: a photo that is already a
    face crop is taken whole when no face is detected) is cropped to the
    model's size with its face mask (:func:`bioface_tf.data.photos.square_masks`:
    the skin, or an ellipse); the crops are analysed and edited together
    (:func:`edit_faces`), and each crop's change is resized, limited to the
    mask at the photo's resolution, and added to the photo
    (:func:`bioface_tf.data.photos.paste_change`), so hair, eyes and
    background keep their pixels.

    Args:
        model: a trained BioFaceNet, or anything with an ``image_size``
            when ``analyser`` and ``decoder`` are given.
        photo: `(H, W, 3)` sRGB in [0, 1].
        edit: the edit.
        squares: the faces' crops, a sequence of ``(left, top, side)`` in
            photo pixels, or None to find the largest face.
        residual, feather: as for :func:`edit_faces`.
        analyser: ``(crops, masks) → FaceAnalysis`` instead of
            :func:`bioface_tf.analysis.analyse` with ``model``, and
        decoder: the renderer that goes with it (the on-device runtime,
            :class:`mobile_export.runtime.LiteBioFace`, passes both).
        mask: the face mask, one of :data:`bioface_tf.masks.MASK_KINDS`.
        refiner: a :class:`bioface_tf.refinement.Refiner`: the network's
            answer is fitted to each face region at the refiner's working
            size and the edit is re-rendered there (not upsampled from the
            model's size); None: no fit.

    Returns:
        `(H, W, 3)` float32 in [0, 1]; outside the faces' masks equal to ``photo``.

    Raises:
        BioFaceError: no face found in the photo, ``squares`` is empty, or
            a face's skin mask is empty.
    """
    from bioface_tf.data import photos

    photo = np.asarray(photo, np.float32)
    if squares is None:
        squares = [square for square, _ in photos.face_squares(photo)]
    if not len(squares):
        raise BioFaceError("no face found in the photo")
    size = model.image_size
    work = refiner.work_size if refiner is not None and refiner.work_size else size
    crops = np.stack([photos.crop_square(photo, square, size) for square in squares])
    masks_at = [photos.square_masks(photo, square, mask, [size, square[2], work]) for square in squares]
    for k, (square, (small, _, _)) in enumerate(zip(squares, masks_at)):
        if not small.any():
            raise BioFaceError(f"face {k} at {tuple(square)} (left, top, side): no skin found, the skin mask is empty")
    masks = np.stack([small[..., None] for small, _, _ in masks_at])
    if analyser is None:
        analyser, decoder = functools.partial(analyse, model), decoder_of(model)
    faces = analyser(crops, masks)
    if refiner is not None:
        crops = np.stack([photos.crop_square(photo, square, work) for square in squares])
        faces = refiner(faces, crops, np.stack([at_work[..., None] for _, _, at_work in masks_at])).faces
    edited = edit_faces(faces, edit, decoder, residual, feather)
    for square, crop, face, (_, full, _) in zip(squares, crops, edited, masks_at):
        photo = photos.paste_change(photo, square, crop, face, full)
    return photo
