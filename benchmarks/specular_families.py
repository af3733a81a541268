"""Face families with a known specular map, for the specular-separation benchmarks.

Four families, each cached once as ``.npz`` (rendering the evaluation family
runs at a few faces per second):

* ``dichromatic`` — :mod:`bioface_tf.dichromatic_scene` (built directly in
  the dichromatic model; tuning).
* ``training`` — the ``bioface synth`` generator
  (:func:`bioface_tf.data.stream.render_batch`, with its sensor; tuning).
* ``validation`` — :mod:`bioface_tf.data.validation_faces`, the family made
  for choosing recipes (mesh geometry, measured cameras, non-CIE lights, its
  own sensor; tuning).
* ``eval_faces`` — :mod:`bioface_tf.data.eval_faces`, the evaluation-only
  family (a renderer that shares nothing with ``synth`` but the physics):
  **final reports only**, never for choosing parameters or designs.

The truth is the specular contribution in the targets' units (linear sRGB
after white balance, mean over channels; ``docs/SPECULAR_METHOD.md`` §1):
the renderers add ``specmask·light`` in raw space, which white balance makes
``specmask·(1, 1, 1)`` and the raw→XYZ→sRGB matrices (rows summing to
``XYZ_ROW_SUMS``, for every camera) make ``SPECULAR_TO_LINEAR_SRGB·specmask``,
grey. Then:

* ``training``: the sensor multiplies the linear image by ``exposure ·
  white_balance_error`` (not folded into ``gt_specmask``), so the truth is
  ``0.3422·gt_specmask·exposure·mean(white_balance_error)``; both are
  regenerated from the face's parameters (face ``i`` depends only on
  ``(seed, i)``). The mask is binary (no partial pixels).
* ``validation``: as ``eval_faces`` below, the gain (exposure ×
  vignetting) is folded into ``gt_specmask``, the mean over a pixel's skin
  samples, so the truth is ``0.3422·gt_specmask·skin_fraction``.
* ``eval_faces``: the exposure is folded into ``gt_specmask``, which is the
  mean over a pixel's skin samples, so the truth is
  ``0.3422·gt_specmask·skin_fraction`` (the share of the pixel that is
  skin), as the former rendered evaluation did with the head's coverage.

Left out of the truth in both: the optical blur, sensor noise and JPEG
(they act on the image, the truth is the noise-free contribution).

Each family also stores what a camera- and light-aware method may use:
``skin_colours`` `(N, 256, 256, 3)` float16, the face's skin table rendered
at shading 1 without specular in linear sRGB under its true camera and light
(PHYSICS.md §5–§8), and the camera-frame ``normals``.
"""

from __future__ import annotations

import pathlib

import numpy as np

SIZE = 64
SPECULAR_TO_LINEAR_SRGB = 0.3422  # bioface_tf.losses; not imported here (it imports TensorFlow)


def load(family: str, n: int, seed: int, cache: pathlib.Path) -> dict[str, np.ndarray]:
    """``images`` (N, H, W, 3) sRGB, ``masks`` (N, H, W) bool, ``truths`` (N, H, W), and more.

    Rendered on first use and cached as ``cache/{family}_{seed}_{n}.npz``.
    """
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"{family}_{seed}_{n}.npz"
    if not path.exists():
        makers = {
            "dichromatic": _dichromatic,
            "training": _training,
            "validation": _validation,
            "eval_faces": _eval_faces,
        }
        if family not in makers:
            raise ValueError(f"unknown family {family!r}; expected one of {sorted(makers)}")
        np.savez(path, **makers[family](n, seed))
    with np.load(path) as data:
        out = {k: data[k] for k in data.files}
    out["masks"] = out["masks"].astype(bool)
    return out


def _dichromatic(n: int, seed: int) -> dict[str, np.ndarray]:
    from bioface_tf.dichromatic_scene import render_face

    scenes = [render_face(SIZE, seed=seed + i) for i in range(n)]
    return {
        "images": np.stack([s.image_srgb for s in scenes]),
        "masks": np.stack([s.mask for s in scenes]),
        "truths": np.stack([s.specular for s in scenes]),
        "normals": np.stack([s.normals for s in scenes]),
    }


def _training(n: int, seed: int) -> dict[str, np.ndarray]:
    from bioface_tf.data import stream
    from bioface_tf.inversion import table_colours

    batch = stream.render_batch(seed, n, SIZE)
    blocks = [stream.sample_parameters(np.random.default_rng([seed, k]), stream.BLOCK) for k in range(-(-n // stream.BLOCK))]
    exposure = np.concatenate([b["exposure"].reshape(-1) for b in blocks])[:n]
    balance = np.concatenate([b["white_balance_error"].mean(axis=1) for b in blocks])[:n]
    gain = (exposure * balance)[:, None, None]
    colours = [table_colours(b, w, c[0]) for b, w, c in zip(batch["gt_b"], batch["gt_light_weights"], batch["gt_cct"])]
    return {
        "images": batch["srgb"],
        "masks": batch["mask"][..., 0] > 0.5,
        "truths": (SPECULAR_TO_LINEAR_SRGB * batch["gt_specmask"][..., 0] * gain).astype(np.float32),
        "normals": batch["normals"],
        "skin_colours": np.stack(colours).astype(np.float16),
    }


def _validation(n: int, seed: int) -> dict[str, np.ndarray]:
    from bioface_tf.data import validation_faces

    faces = validation_faces.render_validation_faces(n, SIZE, seed)
    return {
        "images": faces["image"],
        "masks": faces["mask"] > 0.5,
        "truths": (SPECULAR_TO_LINEAR_SRGB * faces["gt_specmask"] * np.clip(faces["skin_fraction"], 0, 1)).astype(
            np.float32
        ),
        "normals": faces["normals"],
    }


def _eval_faces(n: int, seed: int) -> dict[str, np.ndarray]:
    from bioface_tf.data import eval_faces

    faces = eval_faces.render_eval_faces(n, SIZE, seed)
    camera, spd = faces["camera_sensitivity"].astype(np.float64), faces["illuminant_spd"].astype(np.float64)
    tables = eval_faces.skin_albedo_tables(camera, spd)
    light = eval_faces.light_colour(camera, spd)
    colours = eval_faces.raw_to_linear_srgb(tables, light, eval_faces.raw_to_xyz_for_camera(camera))
    return {
        "images": faces["image"],
        "masks": faces["mask"] > 0.5,
        "truths": (SPECULAR_TO_LINEAR_SRGB * faces["gt_specmask"] * np.clip(faces["skin_fraction"], 0, 1)).astype(
            np.float32
        ),
        "normals": faces["normals"],
        "skin_colours": colours.reshape(n, 256, 256, 3).astype(np.float16),
    }
