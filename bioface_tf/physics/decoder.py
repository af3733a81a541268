"""The BioFaceNet physics decoder: biophysical maps → image."""

from __future__ import annotations

import keras

from bioface_tf import spectra
from bioface_tf.physics._base import PhysicsLayer
from bioface_tf.physics.camera import CameraSensitivity
from bioface_tf.physics.colour import RawToLinearSRGB, RawToXYZMatrix, SRGBEncoding
from bioface_tf.physics.illumination import IlluminantSpectrum
from bioface_tf.physics.image_formation import ImageFormation
from bioface_tf.physics.skin import SkinReflectance
from bioface_tf.physics.white_balance import WhiteBalance

DECODER_INPUTS = ("fmel", "fblood", "shading", "specmask", "b", "light_weights", "cct")


@keras.saving.register_keras_serializable(package="bioface")
class PhysicsDecoder(PhysicsLayer):
    """Render a face from biophysical maps, camera and illuminant.

    Implements the hand-crafted decoder of Alotaibi & Smith, "BioFaceNet:
    Deep Biophysical Face Image Interpretation" (BMVC 2019), stage by stage:
    illuminant spectrum e(λ) (:class:`IlluminantSpectrum`), camera
    sensitivity S(λ) (:class:`CameraSensitivity`), skin reflectance R(λ)
    (:class:`SkinReflectance`), raw image formation (:class:`ImageFormation`),
    white balance (:class:`WhiteBalance`), raw → XYZ → linear sRGB
    (:class:`RawToXYZMatrix`, :class:`RawToLinearSRGB`) and the sRGB
    transfer curve (:class:`SRGBEncoding`). Non-trainable, float32,
    differentiable with respect to every input, any H × W.

    Args:
        raw2xyz: ``"exact"`` (default; T(b) in closed form) or ``"table"``
            (the reference's 128 × 128 table).
        d_series: ``"table"`` (default; the contract) or ``"continuous"``.
        return_reflectance: also return the (B, H, W, 33) reflectance spectra.
        skin_spectral_rank: None (default, the exact table) or K for a
            rank-K spectral basis of the skin table (smaller exported models;
            see :class:`SkinReflectance`).

    Call arguments:
        inputs: dict with
            ``fmel``, ``fblood`` (B, H, W, 1) in [-1, 1];
            ``shading`` (B, H, W, 1) > 0; ``specmask`` (B, H, W, 1) ≥ 0;
            ``b`` (B, 2) in [-3, 3];
            ``light_weights`` (B, 14), order [A, D, F1..F12], summing to 1;
            ``cct`` (B, 1) in [1, 22].

    Returns:
        dict with
            ``linear_srgb`` (B, H, W, 3) ≥ 0, after the final ReLU;
            ``srgb`` (B, H, W, 3) gamma-encoded for display, in [0, 1];
            ``light_colour`` (B, 3) raw camera space;
            ``T_raw2xyz`` (B, 3, 3), XYZ = T @ white-balanced raw;
            ``albedo``, ``diffuse``, ``specular``, ``raw`` (B, H, W, 3) raw
            camera space; ``illuminant_spd`` (B, 33);
            ``camera_sensitivity`` (B, 3, 33); and ``skin_reflectance``
            (B, H, W, 33) when asked for.

    Example:

    >>> import numpy as np
    >>> maps = {k: np.zeros((1, 8, 8, 1), "float32") for k in ("fmel", "fblood", "specmask")}
    >>> out = PhysicsDecoder()({**maps, "shading": np.ones((1, 8, 8, 1), "float32"),
    ...     "b": np.zeros((1, 2), "float32"), "cct": np.full((1, 1), 3.0, "float32"),
    ...     "light_weights": np.eye(14, dtype="float32")[1:2]})
    >>> out["srgb"].shape
    TensorShape([1, 8, 8, 3])
    """

    def __init__(
        self,
        raw2xyz: str = "exact",
        d_series: str = "table",
        return_reflectance: bool = False,
        skin_spectral_rank: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.raw2xyz = raw2xyz
        self.d_series = d_series
        self.return_reflectance = return_reflectance
        self.skin_spectral_rank = skin_spectral_rank
        self.illuminant = IlluminantSpectrum(d_series=d_series, name="illuminant_spd")
        self.camera = CameraSensitivity(name="camera_sensitivity")
        self.skin = SkinReflectance(spectral_rank=skin_spectral_rank, name="skin_reflectance")
        self.formation = ImageFormation(name="image_formation")
        self.white_balance = WhiteBalance(name="white_balance")
        self.raw_to_xyz = RawToXYZMatrix(mode=raw2xyz, name="raw_to_xyz")
        self.to_linear_srgb = RawToLinearSRGB(name="raw_to_linear_srgb")
        self.encoding = SRGBEncoding(name="srgb_encoding")

    def build(self, input_shape=None):
        for layer in (
            self.illuminant,
            self.camera,
            self.skin,
            self.formation,
            self.white_balance,
            self.raw_to_xyz,
            self.to_linear_srgb,
            self.encoding,
        ):
            layer.build(None)
        self.built = True

    def call(self, inputs):
        missing = [k for k in DECODER_INPUTS if k not in inputs]
        if missing:
            raise ValueError(f"PhysicsDecoder inputs lack {missing}; expected {DECODER_INPUTS}")
        illuminant_spd = self.illuminant({"light_weights": inputs["light_weights"], "cct": inputs["cct"]})
        sensitivity = self.camera(inputs["b"])
        reflectance = self.skin({"fmel": inputs["fmel"], "fblood": inputs["fblood"]})
        formed = self.formation(
            {
                "skin_reflectance": reflectance,
                "illuminant_spd": illuminant_spd,
                "camera_sensitivity": sensitivity,
                "shading": inputs["shading"],
                "specmask": inputs["specmask"],
            }
        )
        white_balanced = self.white_balance({"raw": formed["raw"], "light_colour": formed["light_colour"]})
        t_raw2xyz = self.raw_to_xyz(inputs["b"])
        linear = self.to_linear_srgb({"white_balanced": white_balanced, "T_raw2xyz": t_raw2xyz})
        outputs = {
            **formed,
            "white_balanced": white_balanced,
            "T_raw2xyz": t_raw2xyz,
            "linear_srgb": linear,
            "srgb": self.encoding(linear),
            "illuminant_spd": illuminant_spd,
            "camera_sensitivity": sensitivity,
        }
        if self.return_reflectance:
            outputs["skin_reflectance"] = reflectance
        return outputs

    def compute_output_shape(self, input_shape):
        image = tuple(input_shape["fmel"][:-1]) + (3,)
        batch = input_shape["b"][0]
        shapes = {
            name: image
            for name in ("albedo", "diffuse", "specular", "raw", "white_balanced", "linear_srgb", "srgb")
        }
        shapes.update(
            light_colour=(batch, 3),
            T_raw2xyz=(batch, 3, 3),
            illuminant_spd=(batch, spectra.N_WAVELENGTHS),
            camera_sensitivity=(batch, 3, spectra.N_WAVELENGTHS),
        )
        if self.return_reflectance:
            shapes["skin_reflectance"] = tuple(input_shape["fmel"][:-1]) + (spectra.N_WAVELENGTHS,)
        return shapes

    def get_config(self):
        return {
            **super().get_config(),
            "raw2xyz": self.raw2xyz,
            "d_series": self.d_series,
            "return_reflectance": self.return_reflectance,
            "skin_spectral_rank": self.skin_spectral_rank,
        }
