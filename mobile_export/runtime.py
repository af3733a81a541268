"""The on-device runtime: analyse and edit faces with the LiteRT interpreter only.

:class:`LiteBioFace` loads a bundle written by
:func:`mobile_export.export.export_bundle` and needs only ``ai-edge-litert``,
NumPy and OpenCV — TensorFlow and Keras are never imported. It plugs into the
project's TensorFlow-free analysis and editing code in the two places where
that code would run the Keras model:

* :meth:`LiteBioFace.analyse` — the encoder, then the renderer for the
  reconstruction and albedo — gives the same
  :class:`~bioface_tf.analysis.FaceAnalysis` as
  :func:`bioface_tf.analysis.analyse`;
* the object is callable like a physics decoder (``params → {"srgb": …}``),
  so :func:`bioface_tf.analysis.render`, :func:`~bioface_tf.editing.edit_faces`
  and :func:`~bioface_tf.editing.edit_photo` render through the TFLite renderer.

Example:

>>> lite = LiteBioFace("bundle")                                     # doctest: +SKIP
>>> faces = lite.analyse(crops, masks)                               # doctest: +SKIP
>>> slider = lite.render(faces.params, Edit(melanin=0.3))            # doctest: +SKIP
"""

from __future__ import annotations

import json
import pathlib

import numpy as np

from bioface_tf import native_logs
from bioface_tf.analysis import PARAMETERS, FaceAnalysis, rendering
from bioface_tf.editing import Edit, edit_parameters
from bioface_tf.errors import BioFaceError
from mobile_export.export import (
    BUNDLE_FORMAT,
    BUNDLE_VERSION,
    ENCODE_SIGNATURE,
    METADATA_FILE,
    RENDER_SIGNATURE,
)

MAPS = ("fmel", "fblood", "shading", "specmask")
NO_EDIT = {"melanin_offset": 0.0, "haemoglobin_offset": 0.0, "specular_scale": 1.0}


def _signature_runner(path: pathlib.Path, signature: str, num_threads: int):
    """The model's signature, its tensors allocated (LiteRT's start-up log line filtered, :mod:`bioface_tf.native_logs`)."""
    from ai_edge_litert.interpreter import Interpreter

    if not path.is_file():
        raise BioFaceError(f"{path}: model file not found")
    try:
        with native_logs.filtered():
            interpreter = Interpreter(model_path=str(path), num_threads=num_threads)
            interpreter.allocate_tensors()
        return interpreter.get_signature_runner(signature)
    except (ValueError, RuntimeError) as err:
        raise BioFaceError(f"{path}: not a usable TFLite model with signature '{signature}' ({err})") from None


def read_metadata(folder: str | pathlib.Path) -> dict:
    """A bundle's ``metadata.json``, checked for its format and version.

    Raises:
        BioFaceError: missing, unreadable or not a bundle of this version.
    """
    path = pathlib.Path(folder) / METADATA_FILE
    if not path.is_file():
        raise BioFaceError(f"{path}: not found; export a bundle with 'bioface export'")
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise BioFaceError(f"{path}: not readable JSON ({err})") from None
    if not isinstance(record, dict) or record.get("format") != BUNDLE_FORMAT:
        raise BioFaceError(f"{path}: not a BioFace TFLite bundle (format is not '{BUNDLE_FORMAT}')")
    if record.get("version") != BUNDLE_VERSION:
        raise BioFaceError(f"{path}: bundle version {record.get('version')}, this runtime reads {BUNDLE_VERSION}")
    return record


class LiteBioFace:
    """A BioFaceNet bundle on the LiteRT interpreter.

    Args:
        folder: the bundle (``encoder.tflite``, ``renderer.tflite``,
            ``metadata.json``).
        num_threads: CPU threads per interpreter.

    Attributes:
        metadata: the bundle's ``metadata.json``.
        image_size: the encoder's face size S.
    """

    def __init__(self, folder: str | pathlib.Path, num_threads: int = 1):
        folder = pathlib.Path(folder)
        self.metadata = read_metadata(folder)
        self.image_size = int(self.metadata["image_size"])
        encoder, renderer = self.metadata["encoder"], self.metadata["renderer"]
        self._encode = _signature_runner(folder / encoder["file"], ENCODE_SIGNATURE, num_threads)
        self._render = _signature_runner(folder / renderer["file"], RENDER_SIGNATURE, num_threads)

    def encode(self, image: np.ndarray) -> dict[str, np.ndarray]:
        """Face crops `(B, S, S, 3)` sRGB in [0, 1] → the decoder inputs.

        Returns:
            ``fmel``, ``fblood``, ``shading``, ``specmask`` `(B, S, S, 1)`,
            ``light_weights`` `(B, 14)`, ``cct`` `(B, 1)`, ``b`` `(B, 2)`.
        """
        image = np.asarray(image, np.float32)
        size = self.image_size
        if image.ndim != 4 or image.shape[1:] != (size, size, 3):
            raise BioFaceError(f"faces must be (B, {size}, {size}, 3) for this bundle, got {image.shape}")
        outputs = [self._encode(image=face[None]) for face in image]
        return {k: np.concatenate([o[k] for o in outputs]).astype(np.float32) for k in PARAMETERS}

    def render(self, params: dict[str, np.ndarray], edit: Edit = Edit()) -> np.ndarray:
        """Render decoder inputs with an edit, as an app does on a slider move.

        Melanin, haemoglobin and specular edits go to the renderer as its
        offset inputs; an illuminant edit replaces ``light_weights`` and
        ``cct`` (:func:`bioface_tf.editing.edit_parameters`).

        Returns:
            `(B, H, W, 3)` display sRGB in [0, 1].
        """
        if edit.illuminant is not None:
            params = edit_parameters(params, Edit(illuminant=edit.illuminant))
        offsets = {
            "melanin_offset": edit.melanin,
            "haemoglobin_offset": edit.haemoglobin,
            "specular_scale": edit.specular,
        }
        return self._render_all(params, offsets)["srgb"]

    def __call__(self, params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The physics decoder's interface: decoder inputs → ``srgb``, ``linear_srgb``."""
        return self._render_all(params, NO_EDIT)

    def _render_all(self, params, offsets) -> dict[str, np.ndarray]:
        params = {k: np.asarray(params[k], np.float32) for k in PARAMETERS}
        edit = {k: np.full((1, 1), v, np.float32) for k, v in offsets.items()}
        outputs = [
            self._render(**{k: v[i : i + 1] for k, v in params.items()}, **edit) for i in range(len(params["fmel"]))
        ]
        return {k: np.concatenate([o[k] for o in outputs]) for k in ("srgb", "linear_srgb")}

    def analyse(self, image: np.ndarray, mask: np.ndarray) -> FaceAnalysis:
        """Like :func:`bioface_tf.analysis.analyse`, on the bundle.

        Args:
            image: `(B, S, S, 3)` face crops, sRGB in [0, 1].
            mask: `(B, S, S, 1)` face masks.
        """
        image = np.asarray(image, np.float32)
        params = self.encode(image)
        reconstruction, albedo = rendering(params, self)
        return FaceAnalysis(image, np.asarray(mask, np.float32), params, reconstruction, albedo)


def operators(path: str | pathlib.Path) -> dict[str, int]:
    """The operators a TFLite model file uses, with their versions.

    Read from the flatbuffer's operator codes: builtin operators by name
    (``{"ADD": 1, "CONV_2D": 5, …}``), custom ones (``Flex…`` for TensorFlow
    ops) by their custom code.
    """
    from ai_edge_litert import schema_py_generated as schema

    names = {code: name for name, code in vars(schema.BuiltinOperator).items() if name.isupper()}
    model = schema.Model.GetRootAs(pathlib.Path(path).read_bytes(), 0)
    found = {}
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        name = code.CustomCode().decode() if builtin == schema.BuiltinOperator.CUSTOM else names[builtin]
        found[name] = max(found.get(name, 0), code.Version())
    return dict(sorted(found.items()))
