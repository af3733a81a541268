"""Surface normals as face files store them: reading their encoding and decoding them.

Files store unit normals either signed (vectors in [−1, 1]) or ``unit01``
(``(n + 1) / 2``); :func:`detect_normal_encoding` tells which from their
length inside the face masks, :func:`decode_normals` returns signed vectors.
"""

from __future__ import annotations

import numpy as np

from bioface_tf.errors import DataError

SIGNED, UNIT01 = "signed", "unit01"
UNIT_LENGTH_TOLERANCE = 0.2


def detect_normal_encoding(normals: np.ndarray, mask: np.ndarray, path) -> str:
    """``"signed"`` or ``"unit01"``: whichever decoding gives unit vectors.

    Args:
        normals: raw normal channels as stored, `(n, H, W, 3)`.
        mask: `(n, H, W)`; only pixels with mask > 0.5 are used.
        path: the file, for the error message.

    Raises:
        DataError: when neither reading gives vectors close to unit length.
    """
    inside = normals[mask > 0.5]
    inside = inside[np.all(np.isfinite(inside), axis=-1)]
    if inside.size == 0:
        raise DataError(f"{path}: no finite normals inside the face masks to read their encoding from")
    signed_error = np.median(np.abs(np.linalg.norm(inside, axis=-1) - 1.0))
    unit01_error = np.median(np.abs(np.linalg.norm(2.0 * inside - 1.0, axis=-1) - 1.0))
    if min(signed_error, unit01_error) > UNIT_LENGTH_TOLERANCE:
        raise DataError(
            f"{path}: normals are not unit vectors in either encoding (median | |n|-1 | = "
            f"{signed_error:.3f} as [-1,1] vectors, {unit01_error:.3f} as [0,1]-encoded)"
        )
    return SIGNED if signed_error <= unit01_error else UNIT01


def decode_normals(raw: np.ndarray, encoding: str) -> np.ndarray:
    """Normals in the signed encoding, `(..., 3)`."""
    return raw if encoding == SIGNED else 2.0 * raw - 1.0
