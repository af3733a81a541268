"""468 face landmarks in a face crop, from MediaPipe's Face Mesh model shipped inside this package.

The model (``bioface_tf/face_landmark/face_landmark.tflite``, 1.2 MB, Apache
License 2.0; provenance in ``bioface_tf/face_landmark/README.md``) runs under
``ai_edge_litert``, a dependency of BioFace-TF and of its TensorFlow-free
runtime: nothing is downloaded.

:func:`face_landmarks` follows MediaPipe's own face pipeline, with OpenCV's
face detector (:mod:`bioface_tf.data.photos`) in place of MediaPipe's: the
crop is resized to the model's 192×192 input (pass 1), then the region of
interest is recomputed from those landmarks as MediaPipe does between video
frames — rotated so that the eyes' outer corners are level, centred on the
landmarks' box, :data:`ROI_SCALE` times its longer side — and the model is
run again on that (pass 2).

Example:

>>> points, presence = face_landmarks(crop)   # (468, 2) crop pixels, P(face)  # doctest: +SKIP
>>> oval = points[list(FACE_OVAL)]                                            # doctest: +SKIP
"""

from __future__ import annotations

import functools
import pathlib
import threading

import cv2
import numpy as np

from bioface_tf.errors import DataError

MODEL_PATH = pathlib.Path(__file__).resolve().parent / "face_landmark" / "face_landmark.tflite"
INPUT_SIDE = 192
"""The model's input side, pixels."""
N_LANDMARKS = 468
ROI_SCALE = 1.5
"""Pass 2's square is this many times the longer side of the landmarks' (eye-aligned) box (MediaPipe's value)."""
PRESENCE_THRESHOLD = 0.5
"""Below this face-presence probability the model saw no face (MediaPipe's value)."""

# Closed outlines through the Face Mesh landmarks (indices from MediaPipe's
# face_mesh_connections.py, Apache License 2.0). "Left"/"right" are the
# person's: LEFT_* lies on the image's right in a frontal photo.
FACE_OVAL = (10, 109, 67, 103, 54, 21, 162, 127, 234, 93, 132, 58, 172, 136, 150, 149, 176, 148, 152, 377,
             400, 378, 379, 365, 397, 288, 361, 323, 454, 356, 389, 251, 284, 332, 297, 338)
LEFT_EYE = (249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466, 263)
RIGHT_EYE = (7, 33, 246, 161, 160, 159, 158, 157, 173, 133, 155, 154, 153, 145, 144, 163)
LEFT_BROW = (276, 283, 282, 295, 285, 336, 296, 334, 293, 300)
RIGHT_BROW = (46, 53, 52, 65, 55, 107, 66, 105, 63, 70)
INNER_LIPS = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 415, 310, 311, 312, 13, 82, 81, 80, 191)
"""The mouth's opening (inside the lips): its interior and teeth when open, a sliver when closed."""
EYE_CORNERS = (33, 263)
"""The outer corners of the right and left eye; pass 2 levels the line between them."""

_LOCK = threading.Lock()


@functools.cache
def _interpreter():
    """The LiteRT interpreter of :data:`MODEL_PATH`, built once (calls are serialised by ``_LOCK``)."""
    from ai_edge_litert.interpreter import Interpreter

    if not MODEL_PATH.is_file():
        raise DataError(f"{MODEL_PATH}: the face landmark model is missing from the installed package")
    interpreter = Interpreter(model_path=str(MODEL_PATH), num_threads=1)
    interpreter.allocate_tensors()
    return interpreter


def run_model(image: np.ndarray) -> tuple[np.ndarray, float]:
    """The model on one `(192, 192, 3)` RGB image in [0, 1]: landmarks `(468, 2)` in its pixels, and P(face)."""
    interpreter = _interpreter()
    (source,) = interpreter.get_input_details()
    landmarks_out, presence_out = interpreter.get_output_details()
    with _LOCK:
        interpreter.set_tensor(source["index"], np.asarray(image, np.float32)[None])
        interpreter.invoke()
        landmarks = interpreter.get_tensor(landmarks_out["index"]).reshape(N_LANDMARKS, 3)[:, :2].copy()
        logit = float(interpreter.get_tensor(presence_out["index"]).ravel()[0])
    return landmarks, float(1.0 / (1.0 + np.exp(-logit)))


def roi_transform(points: np.ndarray) -> np.ndarray:
    """The `(2, 3)` affine map from crop pixels to the model's input for pass 2 (module docstring)."""
    left, right = points[EYE_CORNERS[0]], points[EYE_CORNERS[1]]
    angle = np.arctan2(right[1] - left[1], right[0] - left[0])
    cos, sin = np.cos(angle), np.sin(angle)
    to_level = np.array([[cos, sin], [-sin, cos]])  # rotates by -angle: the eyes level
    centre = points.mean(axis=0)
    level = (points - centre) @ to_level.T
    low, high = level.min(axis=0), level.max(axis=0)
    centre = centre + ((low + high) / 2.0) @ to_level  # the box's centre, back in crop pixels
    scale = INPUT_SIDE / (ROI_SCALE * float(np.max(high - low)))
    linear = to_level * scale
    offset = np.full(2, INPUT_SIDE / 2.0) - linear @ centre
    return np.hstack([linear, offset[:, None]])


def face_landmarks(rgb: np.ndarray) -> tuple[np.ndarray, float]:
    """The 468 Face Mesh landmarks of the face in a square crop, `(468, 2)` ``(x, y)`` crop pixels, and P(face).

    Args:
        rgb: `(S, S, 3)` sRGB in [0, 1], a face framed as
            :func:`bioface_tf.data.photos.crop_box` frames one (any side).

    Returns:
        The landmarks of pass 2 (module docstring) and its face-presence
        probability; below :data:`PRESENCE_THRESHOLD` the landmarks mean nothing.
    """
    rgb = np.clip(np.asarray(rgb, np.float32), 0.0, 1.0)
    side = rgb.shape[0]
    if rgb.ndim != 3 or rgb.shape[1] != side or rgb.shape[2] != 3:
        raise ValueError(f"a face crop must be (S, S, 3), got {rgb.shape}")
    interpolation = cv2.INTER_AREA if side > INPUT_SIDE else cv2.INTER_CUBIC
    points, presence = run_model(cv2.resize(rgb, (INPUT_SIDE, INPUT_SIDE), interpolation=interpolation))
    points = points * (side / INPUT_SIDE)
    transform = roi_transform(points)
    image = cv2.warpAffine(rgb, transform, (INPUT_SIDE, INPUT_SIDE), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REPLICATE)
    points, presence = run_model(np.clip(image, 0.0, 1.0))
    back = cv2.invertAffineTransform(transform)
    return points @ back[:, :2].T + back[:, 2], presence
