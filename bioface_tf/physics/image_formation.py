"""Image formation in raw camera space (PHYSICS.md §5, §7)."""

from __future__ import annotations

import keras
import tensorflow as tf

from bioface_tf.physics._base import PhysicsLayer

SHADING_MAX = 1e6


@keras.saving.register_keras_serializable(package="bioface")
class ImageFormation(PhysicsLayer):
    """Dichromatic image formation: diffuse skin plus light-coloured specular.

    ``light_c = Σλ S_c(λ)·e(λ)``, ``albedo_c = Σλ R(λ)·e(λ)·S_c(λ)`` and
    ``raw = albedo · shading + specmask · light``: the specular term keeps
    the illuminant's colour as the camera sees it (3 channels).

    Shading and specular maps are clipped to [0, 1e6] so that no finite input
    can overflow float32 downstream.

    Call arguments:
        inputs: dict with
            ``skin_reflectance`` (B, H, W, 33) diffuse reflectance R(λ);
            ``illuminant_spd`` (B, 33) e(λ);
            ``camera_sensitivity`` (B, 3, 33) S_c(λ);
            ``shading`` (B, H, W, 1) diffuse shading, > 0;
            ``specmask`` (B, H, W, 1) specular shading, ≥ 0.

    Returns:
        dict of raw camera-space quantities: ``light_colour`` (B, 3),
        ``albedo`` (B, H, W, 3), ``diffuse`` (B, H, W, 3) = albedo·shading,
        ``specular`` (B, H, W, 3) = specmask·light, ``raw`` (B, H, W, 3).
    """

    def call(self, inputs):
        spd = inputs["illuminant_spd"]
        sensitivity = inputs["camera_sensitivity"]
        lit_sensitivity = sensitivity * spd[:, None, :]
        light_colour = tf.reduce_sum(lit_sensitivity, axis=-1)
        albedo = tf.einsum("bhwl,bcl->bhwc", inputs["skin_reflectance"], lit_sensitivity)
        shading = tf.clip_by_value(inputs["shading"], 0.0, SHADING_MAX)
        specmask = tf.clip_by_value(inputs["specmask"], 0.0, SHADING_MAX)
        diffuse = albedo * shading
        specular = specmask * light_colour[:, None, None, :]
        return {
            "light_colour": light_colour,
            "albedo": albedo,
            "diffuse": diffuse,
            "specular": specular,
            "raw": diffuse + specular,
        }

    def compute_output_shape(self, input_shape):
        image = tuple(input_shape["shading"][:-1]) + (3,)
        return {
            "light_colour": (input_shape["illuminant_spd"][0], 3),
            "albedo": image,
            "diffuse": image,
            "specular": image,
            "raw": image,
        }
