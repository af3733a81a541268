"""Accuracy of the specular separation on synthetic dichromatic faces.

Interim evidence until faces rendered through the physics decoder (with their
``gt_specmask``) are evaluated: faces from :mod:`bioface_tf.dichromatic_scene`
(skin-coloured diffuse with a non-zero dark channel, smooth shading, a sparse
specular lobe) with known specular maps. Reports MAE and Pearson r inside the
mask for the plain dark channel and the refined estimate, under white light
and under coloured lights with the illuminant given, estimated, or assumed
white; writes a figure (input, true specular, dark channel, refined).

    python benchmarks/eval_specular_synthetic.py [--faces 256] \
        [--out benchmarks/results/specular_synthetic.md]
"""

from __future__ import annotations

import argparse
import pathlib

import cv2
import numpy as np

from bioface_tf import specular
from bioface_tf.dichromatic_scene import render_face

SIZE = 64
XYZ_TO_SRGB = np.array([[3.2406, -1.5372, -0.4986], [-0.9689, 1.8758, 0.0415], [0.0557, -0.2040, 1.0570]])
# CIE chromaticities of standard illuminants.
LIGHTS_XY = {"A (2856 K)": (0.44757, 0.40745), "F2": (0.37208, 0.37529), "D50": (0.3457, 0.3585), "D75": (0.29902, 0.31485)}


def _rgb(xy):
    x, y = xy
    rgb = XYZ_TO_SRGB @ np.array([x / y, 1.0, (1.0 - x - y) / y])
    return rgb / rgb.mean()


def scores(estimates, truths, masks):
    """Mean over faces of the MAE and Pearson r inside each mask, `(N, H, W)` arrays.

    Faces whose truth or estimate is constant inside the mask have no r and
    are left out of its mean.
    """
    mae, r = [], []
    for estimate, truth, mask in zip(estimates, truths, masks):
        e, t = estimate[mask], truth[mask]
        mae.append(np.abs(e - t).mean())
        if e.std() > 0 and t.std() > 0:
            r.append(np.corrcoef(e, t)[0, 1])
    return float(np.mean(mae)), float(np.mean(r))


def _scores(estimates, scenes):
    return scores(estimates, [s.specular for s in scenes], [s.mask for s in scenes])


def _angle(a, b):
    return float(np.degrees(np.arccos(np.clip(a @ b / np.linalg.norm(a) / np.linalg.norm(b), -1, 1))))


def _solve(scenes, illuminant, params=specular.RefinementParams()):
    images = np.stack([s.image_srgb for s in scenes])
    masks = np.stack([s.mask for s in scenes])
    return specular.separate_batch(images, masks, illuminant, params=params)


def specular_figure(images, truths, darks, refineds, path, zoom=3):
    """Rows of input, true specular, dark channel, refined; maps scaled by the true peak, sRGB-encoded."""
    tiles = []
    for image, truth, dark, refined in zip(images, truths, darks, refineds):
        peak = max(float(truth.max()), 1e-6)
        grey = [np.repeat(specular.encode(np.clip(m / peak, 0, 1))[..., None], 3, -1) for m in (truth, dark, refined)]
        tiles.append(np.concatenate([image, *grey], axis=1))
    grid = np.concatenate(tiles, axis=0)
    grid = cv2.resize(grid, None, fx=zoom, fy=zoom, interpolation=cv2.INTER_NEAREST)
    cv2.imwrite(str(path), cv2.cvtColor(np.round(grid * 255).astype(np.uint8), cv2.COLOR_RGB2BGR))


def _figure(scenes, result, path, rows=6):
    chosen = scenes[:rows]
    specular_figure(
        [s.image_srgb for s in chosen], [s.specular for s in chosen],
        result.specular_dark[:rows], result.specular[:rows], path,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=int, default=256)
    parser.add_argument("--out", type=pathlib.Path)
    args = parser.parse_args()

    scenes = [render_face(SIZE, seed=seed) for seed in range(args.faces)]
    result = _solve(scenes, None)
    dark, refined = _scores(result.specular_dark, scenes), _scores(result.specular, scenes)
    piecewise = _scores(_solve(scenes, None, specular.RefinementParams(chromaticity="piecewise")).specular, scenes)
    lines = [
        f"## White light, {args.faces} faces {SIZE}×{SIZE}",
        "",
        "| estimate | MAE (inside mask) | Pearson r (inside mask) |",
        "|---|---:|---:|",
        f"| plain dark channel | {dark[0]:.4f} | {dark[1]:.3f} |",
        f"| refined (MAP, default: smooth chromaticity) | {refined[0]:.4f} | {refined[1]:.3f} |",
        f"| refined, piecewise-constant chromaticity (`chromaticity=\"piecewise\"`) "
        f"| {piecewise[0]:.4f} | {piecewise[1]:.3f} |",
        "",
        f"Mean true specular inside the mask: {np.mean([s.specular[s.mask].mean() for s in scenes]):.4f}.",
        "",
        f"## Coloured lights, {args.faces // 4} faces each: refined MAE / angular error of the illuminant",
        "",
        "| light | given | estimated | assumed white | dark channel (given) | estimated: found |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, xy in LIGHTS_XY.items():
        colour = _rgb(xy)
        tinted = [render_face(SIZE, seed=seed, illuminant=colour) for seed in range(args.faces // 4)]
        given, estimated, white = (_solve(tinted, light) for light in (colour, "estimate", None))
        cells = []
        for run in (given, estimated, white):
            error = np.mean([_angle(g, colour) for g in run.illuminant])
            cells.append(f"{_scores(run.specular, tinted)[0]:.4f} / {error:.1f}°")
        found = float(np.mean(estimated.illuminant_estimated))
        lines.append(
            f"| {name} | {' | '.join(cells)} | {_scores(given.specular_dark, tinted)[0]:.4f} | {found:.0%} |"
        )
    report = "\n".join(lines)
    print(report)
    if args.out:
        figure = args.out.with_suffix(".png")
        _figure(scenes, result, figure)
        command = f"python benchmarks/eval_specular_synthetic.py --faces {args.faces} --out {args.out}"
        args.out.write_text(
            "# Specular separation on synthetic dichromatic faces\n\n"
            f"Command: `{command}`. Figure: `{figure.name}` (columns: input, true specular, "
            "dark channel, refined; maps scaled by the true peak, sRGB-encoded).\n\n"
            f"{report}\n"
        )


if __name__ == "__main__":
    main()
