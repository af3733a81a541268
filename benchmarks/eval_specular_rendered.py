"""Accuracy of the specular targets on faces rendered through the physics decoder.

Renders faces with ``bioface synth`` (known ``gt_specmask``), makes their
targets with ``bioface specular-targets`` (defaults: white illuminant, exact
sRGB curve) and compares the sidecar's ``specular_dark`` and ``specular``
with the true specular contribution inside the face mask: MAE and Pearson r
per face, averaged over faces.

The truth, in the target's units (linear sRGB intensity after white balance,
channel mean): the decoder's specular term is ``specmask·light`` in raw
space, ``specmask·(1, 1, 1)`` after white balance, and
``SPECULAR_TO_LINEAR_SRGB·specmask`` (≈ 0.342·specmask, grey) in linear sRGB
(``docs/SPECULAR_METHOD.md`` §1). The renderer blends the face over the
background by the head's pixel coverage, so the truth is
``SPECULAR_TO_LINEAR_SRGB · gt_specmask · coverage``; the coverage comes
from regenerating each face's scene (face i depends only on (seed, i)), and
the script checks that the regenerated ``specmask`` equals ``gt_specmask``
and that the decoder's own specular contribution (render with and without
``specmask``) equals ``SPECULAR_TO_LINEAR_SRGB·specmask``.

Diagnostics on the first faces: the same faces rendered without sensor
noise; the best *constant* diffuse chromaticity per face taken from the
truth (an oracle for the piecewise-constant prior); the correlation of the
truth with the image's grey level. ``--sweep`` adds the refinement's
parameters on 64 faces of another seed (a tuning set, never the evaluation
faces).

    python benchmarks/eval_specular_rendered.py [--faces 256] [--seed 2019] [--sweep] \
        [--work /tmp/bioface_specular_rendered] [--out benchmarks/results/specular_rendered.md]
"""

from __future__ import annotations

import argparse
import pathlib

import h5py
import numpy as np

from bioface_tf import specular
from bioface_tf.cli import main as bioface
from bioface_tf.data import synth
from bioface_tf.losses import SPECULAR_TO_LINEAR_SRGB
from bioface_tf.specular_targets import sidecar_path
from eval_specular_synthetic import scores, specular_figure

SIZE = 64
DIAGNOSTIC_FACES = 64
FIGURE_ROWS = 6


def _make_data(work: pathlib.Path, n: int, seed: int) -> tuple[pathlib.Path, pathlib.Path]:
    faces = work / f"rendered_{seed}_{n}.h5"
    if not faces.exists():
        assert bioface(["synth", "--n", str(n), "--size", str(SIZE), "--seed", str(seed), "--out", str(faces)]) == 0
    sidecar = sidecar_path(faces)
    # Always rewritten: a sidecar left by an earlier version of the method would be stale.
    assert bioface(["specular-targets", str(faces), "--workers", "2", "--chunk", "64", "--overwrite"]) == 0
    return faces, sidecar


def _decoder_specular_gap(faces: pathlib.Path, count: int) -> float:
    """Max |decoder specular contribution − SPECULAR_TO_LINEAR_SRGB·specmask| over channels and pixels."""
    import tensorflow as tf

    from bioface_tf.physics import PhysicsDecoder

    with h5py.File(faces, "r") as f:
        maps = {name: f[f"gt_{name}"][:count] for name in ("fmel", "fblood", "specmask", "b", "light_weights", "cct")}
        shading = f["gt_shading"][:count]
    inputs = {k: maps[k][..., None] for k in ("fmel", "fblood", "specmask")}
    inputs.update(shading=np.maximum(shading, synth.SHADING_FLOOR)[..., None], b=maps["b"],
                  light_weights=maps["light_weights"], cct=maps["cct"])
    decoder = PhysicsDecoder()
    lit = decoder({k: tf.constant(v, tf.float32) for k, v in inputs.items()})["linear_srgb"].numpy()
    inputs["specmask"] = np.zeros_like(inputs["specmask"])
    unlit = decoder({k: tf.constant(v, tf.float32) for k, v in inputs.items()})["linear_srgb"].numpy()
    return float(np.abs((lit - unlit) - SPECULAR_TO_LINEAR_SRGB * maps["specmask"][..., None]).max())


def _noise_free_images(scenes: list[synth.Scene]) -> np.ndarray:
    from bioface_tf.physics import PhysicsDecoder

    decoder = PhysicsDecoder()
    for scene in scenes:
        scene.noise = (0.0, 0.0)
    batches = [synth.render(scenes[i : i + 32], decoder, np.random.default_rng(0))["image"] for i in range(0, len(scenes), 32)]
    return np.concatenate(batches)


def _oracle_constant_chromaticity(images, truths, masks) -> np.ndarray:
    """``clip(g − κ·a, 0, dark)`` with κ the per-face median of the true ``(g − s)/a``."""
    linear = specular.linearise(images)
    grey = linear.mean(axis=-1)
    chroma = np.sqrt(((linear - grey[..., None]) ** 2).sum(axis=-1))
    dark = linear.min(axis=-1)
    kappa_true = (grey - truths) / np.maximum(chroma, 1e-6)
    kappa = np.array([np.median(k[m]) for k, m in zip(kappa_true, masks)])[:, None, None]
    return np.clip(grey - kappa * chroma, 0.0, dark) * masks


def _sweep(work: pathlib.Path, seed: int) -> list[str]:
    faces, _ = _make_data(work, DIAGNOSTIC_FACES, seed)
    with h5py.File(faces, "r") as f:
        block = f["zx_7"][:, :7]
        truths = SPECULAR_TO_LINEAR_SRGB * f["gt_specmask"][:]
    images, masks = np.moveaxis(block[:, :3], 1, -1), block[:, 6] > 0.5
    lines = [
        f"## Parameters of the smooth-chromaticity refinement, {DIAGNOSTIC_FACES} faces of seed {seed} (tuning set)",
        "",
        "Defaults: quantile 0.3, order 3, chroma_blur 1.5, median 3.",
        "",
        "| change from the defaults | MAE | Pearson r |",
        "|---|---:|---:|",
    ]
    variants = [("none (defaults)", {}), ("quantile 0.2", {"quantile": 0.2}), ("quantile 0.4", {"quantile": 0.4}),
                ("quantile 0.5", {"quantile": 0.5}), ("order 2", {"order": 2}), ("order 1", {"order": 1}),
                ("chroma_blur 0 (no bilateral filter)", {"chroma_blur": 0.0}), ("median 0 (none)", {"median": 0}),
                ("median 5", {"median": 5}),
                ("piecewise model (TV, former default)", {"chromaticity": "piecewise"})]
    for name, change in variants:
        params = specular.RefinementParams(**change)
        mae, r = scores(specular.separate_batch(images, masks, params=params).specular, truths, masks)
        lines.append(f"| {name} | {mae:.4f} | {r:.3f} |")
    return lines


def _row(name, estimates, truths, masks):
    mae, r = scores(estimates, truths, masks)
    return f"| {name} | {mae:.4f} | {r:.3f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=int, default=256)
    parser.add_argument("--seed", type=int, default=2019)
    parser.add_argument("--work", type=pathlib.Path, default=pathlib.Path("/tmp/bioface_specular_rendered"))
    parser.add_argument("--sweep", action="store_true", help="also sweep the refinement's parameters")
    parser.add_argument("--sweep-seed", type=int, default=7)
    parser.add_argument("--out", type=pathlib.Path)
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)

    faces, sidecar = _make_data(args.work, args.faces, args.seed)
    with h5py.File(faces, "r") as f:
        block = f["zx_7"][:, :7]
        specmask = f["gt_specmask"][:]
    with h5py.File(sidecar, "r") as f:
        refined, dark = f["specular"][:], f["specular_dark"][:]
    images = np.moveaxis(block[:, :3], 1, -1)
    masks = block[:, 6] > 0.5
    scenes = [synth.random_scene(SIZE, np.random.default_rng([args.seed, i])) for i in range(args.faces)]
    regenerated = np.stack([s.specmask for s in scenes])
    assert np.array_equal(regenerated, specmask), "regenerated scenes differ from the file"
    coverage = np.stack([s.head for s in scenes])
    truths = SPECULAR_TO_LINEAR_SRGB * specmask * coverage
    dark = dark * masks
    piecewise = specular.separate_batch(images, masks, params=specular.RefinementParams(chromaticity="piecewise")).specular
    gap = _decoder_specular_gap(faces, 32)

    inside = [t[m] for t, m in zip(truths, masks)]
    grey = specular.linearise(images).mean(axis=-1)
    k = DIAGNOSTIC_FACES
    clean = _noise_free_images(scenes[:k])
    clean_result = specular.separate_batch(clean, masks[:k])
    oracle = _oracle_constant_chromaticity(clean, truths[:k], masks[:k])
    lines = [
        f"## {args.faces} rendered faces {SIZE}×{SIZE} (seed {args.seed})",
        "",
        "| estimate | MAE (inside mask) | Pearson r (inside mask) |",
        "|---|---:|---:|",
        _row("plain dark channel", dark, truths, masks),
        _row("refined (MAP, default: smooth chromaticity)", refined, truths, masks),
        _row("refined, piecewise-constant chromaticity (former default)", piecewise, truths, masks),
        f"| all zeros | {scores(np.zeros_like(truths), truths, masks)[0]:.4f} | – |",
        "",
        f"Mean true specular inside the mask: {np.mean([t.mean() for t in inside]):.4f} "
        f"(mean grey level {np.mean([g[m].mean() for g, m in zip(grey, masks)]):.4f}); "
        f"faces with a true specular peak above 0.01: {np.mean([t.max() > 0.01 for t in inside]):.0%}. "
        f"Check of the units: the decoder's specular contribution differs from "
        f"{SPECULAR_TO_LINEAR_SRGB:.4f}·specmask by at most {gap:.1e} (32 faces).",
        "",
        f"## Diagnostics, first {k} faces",
        "",
        "| estimate | MAE (inside mask) | Pearson r (inside mask) |",
        "|---|---:|---:|",
        _row("dark channel, as rendered (with sensor noise)", dark[:k], truths[:k], masks[:k]),
        _row("refined, as rendered", refined[:k], truths[:k], masks[:k]),
        _row("dark channel, same faces without sensor noise", clean_result.specular_dark * masks[:k], truths[:k], masks[:k]),
        _row("refined, without sensor noise", clean_result.specular, truths[:k], masks[:k]),
        _row("oracle: best constant diffuse chromaticity, without noise", oracle, truths[:k], masks[:k]),
        f"| grey level of the image (not an estimate: lobe and bright shading co-locate) | – | "
        f"{scores(grey[:k], truths[:k], masks[:k])[1]:.3f} |",
    ]
    if args.sweep:
        lines += [""] + _sweep(args.work, args.sweep_seed)
    report = "\n".join(lines)
    print(report)
    if args.out:
        figure = args.out.with_suffix(".png")
        rows = slice(0, FIGURE_ROWS)
        specular_figure(images[rows], truths[rows], dark[rows], refined[rows], figure)
        sweep = f" --sweep --sweep-seed {args.sweep_seed}" if args.sweep else ""
        command = (
            f"python benchmarks/eval_specular_rendered.py --faces {args.faces} --seed {args.seed}{sweep} "
            f"--out {args.out}"
        )
        args.out.write_text(
            "# Specular targets on faces rendered through the physics decoder\n\n"
            f"Command: `{command}` (runs `bioface synth` and `bioface specular-targets` with their defaults). "
            f"Figure: `{figure.name}` (columns: input, true specular, dark channel, refined; maps scaled by "
            "the true peak, sRGB-encoded).\n\n"
            f"{report}\n"
        )


if __name__ == "__main__":
    main()
