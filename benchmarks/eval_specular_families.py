"""Specular estimates against the true specular contribution, per face family.

Scores every method on four families (``benchmarks/specular_families.py``):
the dichromatic scenes, the ``bioface synth`` training family and the
validation family ``bioface_tf.data.validation_faces`` (all three used for
design and tuning, on their tuning seeds 1000, 7 and 5151), and the evaluation-only
family ``eval_faces`` (final report only: its numbers were never used to
choose a method or a parameter). Per face, inside the mask: MAE and Pearson
r of the estimate against the truth; averaged over faces, each family
separately. Faces are rendered once and cached under ``--cache``.

Methods (all under white light, exact sRGB curve):

* ``plain`` — the dark channel ``min_c J_c``;
* ``refined (smooth)`` — ``bioface_tf.specular``, ``chromaticity="smooth"``;
* ``refined (piecewise)`` — ``chromaticity="piecewise"``;
* ``refined (skin)`` — ``chromaticity="skin"``: the smooth model's diffuse
  chromaticity smoothed, a per-pixel shading × colour + grey split, kept in
  the skin table's gamut over typical cameras and daylights (no true camera
  or light);
* ``Kim et al. 2013`` and ``Yang et al. 2010`` —
  :mod:`bioface_tf.specular_separation`;
* ``refined + normal-space lobes`` — the smooth model's map (no median)
  projected onto lobes of the surface normal
  (:mod:`bioface_tf.specular_lobes`), using each family's normals;
* ``refined + light lobe and convexity`` — ``geometry="light"``: half the
  smooth model's map, half the dark channel weighted by the Blinn–Phong
  lobe of the light fitted from the shading and by the convexity of the
  normals (scaled to the smooth map's total), using each family's normals;
* ``trained network`` — the shipped model (``bioface_tf/pretrained``, or
  ``--model``): its ``specmask`` map as its decoder renders it, the
  specular contribution ``SPECULAR_TO_LINEAR_SRGB·specmask`` in linear sRGB
  after white balance (the targets' units, :func:`network_specular`). The
  shipped model was trained with the ``gt_specular`` term on other faces
  of the training family (stream seeds 0 and 1), so on that family it is a
  supervised, in-distribution estimate; the other two families it has never
  seen. ``--no-network`` leaves it out (no TensorFlow needed);
* ``all zeros`` — the MAE of predicting no specular at all.

The network's row uses the same faces, masks, truth and scores as the rows
above (per face inside the mask: MAE and Pearson r, averaged over faces;
the definition of ``bioface evaluate``, except that faces with a constant
map are left out of the mean r instead of being NaN). Its faces/s is the
model's inference alone (loaded and warmed up beforehand), in float32 on
the same CPU.

    python benchmarks/eval_specular_families.py [--faces 96] [--tuning] \
        [--cache /tmp/bioface_spec] [--model PATH | --no-network] \
        [--out benchmarks/results/specular_families.md]

``--tuning`` scores the tuning seeds instead of the report seeds (the
evaluation family has none: it is never scored for tuning).
"""

from __future__ import annotations

import argparse
import pathlib
import time

import numpy as np

import specular_families
from bioface_tf import specular
from bioface_tf import specular_separation as separation
from eval_specular_synthetic import scores

# (family, report seed, tuning seed or None)
FAMILIES = (("dichromatic", 0, 1000), ("training", 2019, 7), ("validation", 6161, 5151), ("eval_faces", 0, None))
ROLE = {
    "dichromatic": "a tuning family",
    "training": "a tuning family",
    "validation": "a tuning family",
    "eval_faces": "evaluation only",
}


NETWORK_ROW = "trained network (shipped model)"


def network_specular(model, images: np.ndarray) -> np.ndarray:
    """The model's specular contribution in linear sRGB, `(N, H, W)` float32.

    The decoder adds ``specmask·light`` in raw space; white balance makes it
    ``specmask·(1, 1, 1)`` and raw → XYZ → linear sRGB a grey of channel
    mean ``SPECULAR_TO_LINEAR_SRGB·specmask`` for every camera — the units
    of the targets and of the families' truth (``specular_families``), and
    the comparison the training term ``specular_target`` makes.
    """
    from bioface_tf.analysis import estimate
    from bioface_tf.losses import SPECULAR_TO_LINEAR_SRGB

    specmask = estimate(model, np.asarray(images, np.float32))["specmask"][..., 0]
    return (SPECULAR_TO_LINEAR_SRGB * specmask).astype(np.float32)


def network_method(model_path=None):
    """The row's function: the model loaded (and run on one full batch) before any timing."""
    from bioface_tf.analysis import BATCH_SIZE, load_model

    model = load_model(model_path)
    network_specular(model, np.zeros((BATCH_SIZE, model.image_size, model.image_size, 3), np.float32))
    return lambda images, masks, extras: network_specular(model, images)


def methods() -> dict:
    """Name → function of ``(images (N, H, W, 3) sRGB, masks (N, H, W), extras dict)`` → `(N, H, W)`."""

    def refined(model):
        params = specular.RefinementParams(chromaticity=model)
        return lambda images, masks, extras: specular.separate_batch(images, masks, params=params).specular

    def lobes(images, masks, extras):
        params = specular.RefinementParams(geometry="lobes")
        return specular.separate_batch(images, masks, params=params, normals=extras["normals"]).specular

    def light(images, masks, extras):
        params = specular.RefinementParams(geometry="light")
        return specular.separate_batch(images, masks, params=params, normals=extras["normals"]).specular

    def balanced(fn):
        return lambda images, masks, extras: fn(specular.linearise(images), masks)

    return {
        "plain dark channel": lambda images, masks, extras: specular.dark_channel(specular.linearise(images)) * masks,
        "refined, smooth chromaticity (default for photos and files without normals)": refined("smooth"),
        "refined, piecewise chromaticity": refined("piecewise"),
        "refined, skin chromaticity (`chromaticity=\"skin\"`)": refined("skin"),
        "Kim et al. 2013 (our reading)": balanced(separation.kim2013),
        "Yang et al. 2010": balanced(separation.yang2010),
        "refined + normal-space lobes (`geometry=\"lobes\"`)": lobes,
        "refined + light lobe and convexity (`geometry=\"light\"`, default for face files with normals)": light,
    }


def evaluate(faces: int, cache: pathlib.Path, tuning: bool, network=None) -> str:
    """The Markdown report: one table per family.

    ``network``: the trained network's row function (:func:`network_method`),
    or None to leave the row out.
    """
    rows = methods()
    if network is not None:
        rows[NETWORK_ROW] = network
    lines = []
    for family, report_seed, tuning_seed in FAMILIES:
        seed = tuning_seed if tuning else report_seed
        if seed is None:
            continue
        data = specular_families.load(family, faces, seed, cache)
        images, masks, truths = data["images"], data["masks"], data["truths"]
        extras = {k: v for k, v in data.items() if k not in ("images", "masks", "truths")}
        lines += [
            f"## {family} ({ROLE[family]}), {len(images)} faces 64×64, seed {seed}",
            "",
            "| estimate | MAE (inside mask) | Pearson r (inside mask) | faces/s (this run) |",
            "|---|---:|---:|---:|",
        ]
        for name, method in rows.items():
            start = time.perf_counter()
            estimate = method(images, masks, extras)
            rate = len(images) / (time.perf_counter() - start)
            mae, r = scores(estimate, truths, masks)
            lines.append(f"| {name} | {mae:.4f} | {r:.3f} | {rate:,.0f} |")
        zeros = scores(np.zeros_like(truths), truths, masks)[0]
        mean_truth = np.mean([t[m].mean() for t, m in zip(truths, masks)])
        lines += [f"| all zeros | {zeros:.4f} | – | – |", "", f"Mean true specular inside the mask: {mean_truth:.4f}.", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=int, default=96)
    parser.add_argument("--tuning", action="store_true", help="score the tuning seeds (no evaluation family)")
    parser.add_argument("--cache", type=pathlib.Path, default=pathlib.Path("/tmp/bioface_spec"))
    parser.add_argument("--model", help="a .keras model for the network row (default: the shipped model)")
    parser.add_argument("--no-network", action="store_true", help="leave out the trained network's row")
    parser.add_argument("--out", type=pathlib.Path)
    args = parser.parse_args()
    network = None if args.no_network else network_method(args.model)
    report = evaluate(args.faces, args.cache, args.tuning, network)
    print(report)
    if args.out:
        options = (" --tuning" if args.tuning else "") + (f" --model {args.model}" if args.model else "")
        options += " --no-network" if args.no_network else ""
        command = f"python benchmarks/eval_specular_families.py --faces {args.faces}{options} --out {args.out}"
        args.out.write_text(
            "# Specular estimates per face family\n\n"
            f"Command: `{command}` (run from the repository root with `benchmarks` on the path as the "
            "script's folder). Design and parameters were chosen on the dichromatic, training and validation "
            "families only (tuning seeds 1000, 7 and 5151; the validation family is reported on seed 6161); the evaluation-only family `eval_faces` was scored for this "
            "report and never used to choose anything. The trained network is "
            f"{'`' + args.model + '`' if args.model else 'the shipped model (`bioface_tf/pretrained`)'}, "
            "trained with ground truth on other faces of the training family; its specular is "
            "`SPECULAR_TO_LINEAR_SRGB·specmask` (linear sRGB, the targets' units) and its faces/s is "
            "inference alone.\n\n"
            f"{report}\n"
        )


if __name__ == "__main__":
    main()
