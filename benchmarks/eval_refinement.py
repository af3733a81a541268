"""What the per-photo physics fit (:mod:`bioface_tf.refinement`) does to the maps.

For rendered faces with ground truth (``bioface synth`` / ``write_stream_faces.py``
files), the network answers at its own size; the fit then runs at the
model's size, or at the file's size when the file is larger (the network
sees the faces area-resized to its size, the fit and the scores use the
file's resolution — the "full-resolution maps" case). Scores are
``bioface evaluate``'s: Pearson r per face inside the mask, then averaged;
mean errors per face; PSNR inside the mask. Rows: the network alone
(maps resized bilinearly to the scoring size) and each fit setting.

``--tune`` tries a small grid of settings; run it on held-out faces of the
TRAINING generator only. The evaluation-only family is scored with the
chosen defaults and never tuned on.

    python benchmarks/eval_refinement.py --family training=/tmp/heldout_stream_300.h5 \\
        --family evaluation=/tmp/eval_faces_300.h5 --out benchmarks/results/refinement.md
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import sys
import time

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from training.evaluate import masked_mean_error, masked_pearson, masked_psnr  # noqa: E402

MAPS = {"r_melanin": ("fmel", "gt_fmel"), "r_haemoglobin": ("fblood", "gt_fblood"),
        "r_shading": ("shading", "gt_shading"), "r_specular": ("specmask", "gt_specmask")}
MEANS = {"melanin_mean_err": ("fmel", "gt_fmel"), "haemoglobin_mean_err": ("fblood", "gt_fblood")}
KEYS = tuple(MAPS) + tuple(MEANS) + ("psnr", "s_per_face")
BATCH = 16

TUNING_GRID = {
    "specular_anchor": (0.0, 1.0, 10.0, 100.0),
    "specular_smoothness": (0.0, 0.1, 1.0),
    "map_learning_rate": (0.002, 0.005),
}


def read_faces(path: str, n: int | None) -> dict[str, np.ndarray]:
    from bioface_tf.data.celeba import CelebAFaces

    with CelebAFaces([path], image_size=None) as faces:
        count = len(faces) if n is None else min(n, len(faces))
        data = faces.read(np.arange(count), ground_truth=True)
    return {"srgb": data["image"], **{k: v for k, v in data.items() if k == "mask" or k.startswith("gt_")}}


def scores(params: dict, reconstruction: np.ndarray, data: dict) -> dict[str, np.ndarray]:
    mask = data["mask"]
    out = {key: masked_pearson(params[name], data[gt], mask) for key, (name, gt) in MAPS.items()}
    out.update({key: masked_mean_error(params[name], data[gt], mask) for key, (name, gt) in MEANS.items()})
    out["psnr"] = masked_psnr(data["srgb"], reconstruction, mask)
    return out


def run_family(model, data: dict, settings_by_name: dict, progress: bool) -> dict[str, dict[str, float]]:
    """Per row, the scores averaged over faces."""
    import cv2

    from bioface_tf.analysis import analyse, decoder_of
    from bioface_tf.refinement import refine

    size = model.image_size
    full = data["srgb"].shape[1]
    decoder = decoder_of(model)

    def small(images):
        if full == size:
            return images
        return np.stack([cv2.resize(im, (size, size), interpolation=cv2.INTER_AREA) for im in images])

    rows: dict[str, dict[str, list]] = {}
    for start in range(0, len(data["srgb"]), BATCH):
        batch = {k: v[start : start + BATCH] for k, v in data.items()}
        masks = np.stack([cv2.resize(m[..., 0], (size, size), interpolation=cv2.INTER_NEAREST)[..., None]
                          for m in batch["mask"]]) if full != size else batch["mask"]
        faces = analyse(model, small(batch["srgb"]), masks)
        for name, settings in settings_by_name.items():
            fit = refine(faces, decoder, settings, image=batch["srgb"], mask=batch["mask"], progress=False)
            chosen = fit.start if settings.steps == 0 else fit.faces
            row = scores(chosen.params, chosen.reconstruction, batch)
            row["s_per_face"] = np.full(len(batch["srgb"]), fit.seconds_per_face if settings.steps else 0.0)
            for key, values in row.items():
                rows.setdefault(name, {}).setdefault(key, []).append(values)
        if progress:
            print(f"  {start + len(batch['srgb'])} faces", file=sys.stderr, flush=True)
    return {name: {k: float(np.nanmean(np.concatenate(v))) for k, v in row.items()} for name, row in rows.items()}


def table(results: dict[str, dict[str, float]]) -> list[str]:
    lines = ["| fit | " + " | ".join(KEYS) + " |", "|---|" + "---|" * len(KEYS)]
    for name, row in results.items():
        lines.append(f"| {name} | " + " | ".join(f"{row[k]:.3f}" for k in KEYS) + " |")
    return lines


def main(argv: list[str] | None = None) -> int:
    from bioface_tf.analysis import load_model
    from bioface_tf.refinement import RefineSettings

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="a .keras model (default: the shipped one)")
    parser.add_argument("--family", action="append", required=True, metavar="NAME=FILE.h5")
    parser.add_argument("--n", type=int, default=None, help="at most N faces per family")
    parser.add_argument("--tune", action="store_true", help="try the tuning grid (training family only!)")
    parser.add_argument("--out", default=None, help="also write the markdown here")
    args = parser.parse_args(argv)

    model = load_model(args.model)
    defaults = RefineSettings()
    settings = {"network alone": dataclasses.replace(defaults, steps=0), "refined (defaults)": defaults}
    if args.tune:
        for field, values in TUNING_GRID.items():
            for value in values:
                if value != getattr(defaults, field):
                    settings[f"{field}={value}"] = dataclasses.replace(defaults, **{field: value})
    command = "python benchmarks/eval_refinement.py " + " ".join(argv if argv is not None else sys.argv[1:])
    lines = [
        "# Per-photo physics fit on rendered faces", "",
        f"Command: `{command}`", "",
        f"{time.strftime('%Y-%m-%d')}, {platform.machine()}, {os.cpu_count()} cores; defaults: "
        f"`{defaults}`. r: Pearson r per face inside the mask, averaged (`bioface evaluate`'s definition); "
        "s_per_face: wall-clock seconds of the fit per face.", "",
    ]
    for pair in args.family:
        name, _, path = pair.partition("=")
        data = read_faces(path, args.n)
        size = data["srgb"].shape[1]
        print(f"{name}: {len(data['srgb'])} faces at {size}x{size}", file=sys.stderr)
        results = run_family(model, data, settings, progress=True)
        lines += [f"## {name}: `{path}`, {len(data['srgb'])} faces, scored at {size}×{size}", ""]
        lines += table(results) + [""]
        print("\n".join(lines[-len(results) - 3:]), flush=True)
    text = "\n".join(lines)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
