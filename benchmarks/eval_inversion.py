"""Per-pixel skin-table inversion as a baseline on faces with ground truth.

For each face of a ``bioface synth`` file (``gt_fmel``, ``gt_fblood``,
``gt_shading``, ``gt_b``, ``gt_light_weights``, ``gt_cct``),
:func:`bioface_tf.inversion.invert_faces` reads melanin, haemoglobin and
shading off the photo pixel by pixel, given the camera and light: the TRUE
ones by default, or with ``--estimated-from MODEL.keras`` a trained model's
estimate of them (its ``b``, ``light_weights``, ``cct``). Printed as a
markdown table row, averaged over faces:

* ``r_melanin``, ``r_haemoglobin``, ``r_shading`` — Pearson r inside the
  mask per face (:func:`training.evaluate.masked_pearson`, the project's
  definition; blind to the shading's scale);
* ``melanin_mean_err``, ``haemoglobin_mean_err`` — ``|mean in mask −
  true mean in mask|`` per face, in map units ([-1, 1]);
* with a model, also ``b_mae`` and ``cct_mae`` of its estimate, and a second
  row with the same scores for the model's own maps.

    python benchmarks/eval_inversion.py FACES.h5 [--estimated-from MODEL.keras] \\
        [--blur-sigma 0.8] [--limit N] [--batch 32]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from bioface_tf.data import CelebAFaces
from bioface_tf.inversion import invert_faces
from training.evaluate import masked_mean_error, masked_pearson

COLUMNS = (
    "maps",
    "camera/light",
    "blur (px)",
    "faces",
    "r_melanin",
    "r_haemoglobin",
    "r_shading",
    "melanin_mean_err",
    "haemoglobin_mean_err",
    "b_mae",
    "cct_mae",
    "s/face",
)


def map_scores(maps: dict[str, np.ndarray], batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per face agreement of ``fmel``, ``fblood``, ``shading`` (N, H, W, 1) with the truth."""
    mask = batch["mask"]
    return {
        "r_melanin": masked_pearson(maps["fmel"], batch["gt_fmel"], mask),
        "r_haemoglobin": masked_pearson(maps["fblood"], batch["gt_fblood"], mask),
        "r_shading": masked_pearson(maps["shading"], batch["gt_shading"], mask),
        "melanin_mean_err": masked_mean_error(maps["fmel"], batch["gt_fmel"], mask),
        "haemoglobin_mean_err": masked_mean_error(maps["fblood"], batch["gt_fblood"], mask),
    }


class ModelEstimate:
    """A trained model's camera, light and maps for a batch of faces."""

    def __init__(self, path: str):
        from training.evaluate import load_trained

        self.model = load_trained(path)
        self.image_size = self.model.input_shape[1]

    def __call__(self, srgb: np.ndarray) -> dict[str, np.ndarray]:
        """Model outputs (``b``, ``light_weights``, ``cct``, maps) for (N, H, W, 3) sRGB."""
        import tensorflow as tf

        from bioface_tf.data.pipeline import preprocess

        image = preprocess(tf.constant(srgb, tf.float32), self.model.preprocessing)
        out = self.model(image, training=False)
        names = ("b", "light_weights", "cct", "fmel", "fblood", "shading")
        return {name: out[name].numpy() for name in names}


def evaluate(path: str, model: ModelEstimate | None, blur_sigma: float, limit: int | None, batch_size: int):
    """Scores per face of the inversion (and of the model's maps, with a model).

    Returns:
        ``(inversion, model_maps, seconds)``: dicts of (N,) arrays (model_maps
        empty without a model) and the inversion's seconds per face.
    """
    faces = CelebAFaces([path], image_size=None if model is None else model.image_size)
    n = len(faces) if limit is None else min(limit, len(faces))
    inversion, own, seconds = {}, {}, 0.0
    for start in range(0, n, batch_size):
        batch = faces.read(range(start, min(start + batch_size, n)), ground_truth=True)
        if model is None:
            camera = {name: batch[f"gt_{name}"] for name in ("b", "light_weights", "cct")}
        else:
            camera = model(batch["image"])
            _collect(own, map_scores(camera, batch))
            _collect(own, _camera_errors(camera, batch))
        tic = time.perf_counter()
        maps = invert_faces(
            batch["image"], batch["mask"], camera["b"], camera["light_weights"], camera["cct"], blur_sigma
        )
        seconds += time.perf_counter() - tic
        _collect(inversion, map_scores(maps, batch))
        if model is not None:
            _collect(inversion, _camera_errors(camera, batch))
    return _joined(inversion), _joined(own), seconds / max(n, 1)


def _camera_errors(camera, batch):
    return {
        "b_mae": np.abs(camera["b"] - batch["gt_b"]).mean(axis=-1),
        "cct_mae": np.abs(camera["cct"] - batch["gt_cct"]).mean(axis=-1),
    }


def _collect(store, scores):
    for key, value in scores.items():
        store.setdefault(key, []).append(value)


def _joined(store):
    return {key: np.concatenate(values) for key, values in store.items()}


def table_row(cells: dict[str, object]) -> str:
    """One markdown row in :data:`COLUMNS` order (— where a cell is missing)."""
    return "| " + " | ".join(_format(cells.get(name)) for name in COLUMNS) + " |"


def _format(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, np.ndarray):
        return f"{np.nanmean(value):.3f}"
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("faces", help="HDF5 file with ground truth (bioface synth layout)")
    parser.add_argument("--estimated-from", metavar="MODEL.keras", help="use this model's camera and light")
    parser.add_argument("--blur-sigma", type=float, default=0.8, help="Gaussian blur in px before inversion")
    parser.add_argument("--limit", type=int, help="first N faces only")
    parser.add_argument("--batch", type=int, default=32, help="faces read at a time")
    args = parser.parse_args(argv)

    model = ModelEstimate(args.estimated_from) if args.estimated_from else None
    inversion, own, seconds = evaluate(args.faces, model, args.blur_sigma, args.limit, args.batch)
    source = "true" if model is None else f"estimated ({args.estimated_from})"
    common = {"camera/light": source, "faces": len(inversion["r_melanin"])}
    print("| " + " | ".join(COLUMNS) + " |")
    print("|" + "---|" * len(COLUMNS))
    print(table_row({**common, **inversion, "maps": "inversion", "blur (px)": args.blur_sigma, "s/face": seconds}))
    if own:
        print(table_row({**common, **own, "maps": "model's own"}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
