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

Example:

>>> edited = edit_parameters(params, Edit(melanin=0.4))
>>> image_out = composite(image, render(params), render(edited), mask)
"""

from __future__ import annotations

import dataclasses

import numpy as np

from bioface_tf.palette import illuminant_parameters

MAP_RANGE = (-1.0, 1.0)


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


def render(params: dict, decoder=None) -> np.ndarray:
    """Render decoder inputs to display sRGB, (B, H, W, 3) in [0, 1]."""
    if decoder is None:
        from bioface_tf.physics import PhysicsDecoder

        decoder = PhysicsDecoder()
    return np.asarray(decoder(params)["srgb"])


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
