"""Map agreement by skin type: faces grouped by their true mean melanin.

A face family's faces are split into ``--groups`` equal groups (quartiles
by default) by the true mean melanin inside the mask, from the lightest
skin to the darkest, and ``bioface evaluate``'s per-face scores
(:func:`training.evaluate.face_scores`: Pearson r per face inside the mask,
mean errors per face, PSNR) are averaged within each group. Beside the
model, the per-pixel inversion given the TRUE camera and light
(``benchmarks/eval_inversion.py``, blur 0.8 px) on the same faces: what
the colour of each pixel tells about melanin and haemoglobin when nothing
about the camera and light has to be guessed. The spread of the true maps
inside each face (``true std``) shows whether a group simply has less
pattern to follow.

    python benchmarks/eval_skin_tone.py [--model M.keras] \\
        --family NAME=FACES.h5 [--family NAME=FACES.h5 ...] [--groups 4] [--out RESULT.md]

Without ``--model``, the shipped default model, scored as every command
runs it (mirror averaging on).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

MODEL_KEYS = (
    "r_melanin", "r_haemoglobin", "r_shading", "r_specular", "melanin_mean_err", "haemoglobin_mean_err", "psnr",
)
INVERSION_KEYS = ("r_melanin", "r_haemoglobin")


def skin_tone_groups(true_melanin_mean: np.ndarray, groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Each face's group by its true mean melanin, lightest skin first.

    Args:
        true_melanin_mean: (N,) mean melanin map value inside each face's mask.
        groups: how many groups of (as near as possible) equal size.

    Returns:
        ``(labels, edges)``: (N,) group index in ``0 … groups − 1`` (0: the
        least melanin), and (groups + 1,) edges: each group's least melanin, then the
        greatest of the last.
    """
    values = np.asarray(true_melanin_mean, np.float64)
    if groups < 1 or len(values) < groups:
        raise ValueError(f"cannot split {len(values)} faces into {groups} groups")
    order = np.argsort(values, kind="stable")
    labels = np.empty(len(values), int)
    labels[order] = np.arange(len(values)) * groups // len(values)
    edges = np.array([values[labels == g].min() for g in range(groups)] + [values.max()])
    return labels, edges


def group_means(scores: dict[str, np.ndarray], labels: np.ndarray, groups: int) -> dict[str, np.ndarray]:
    """Per group the mean of each per-face score, faces with a NaN score left out: ``(groups,)`` arrays."""
    return {
        key: np.array([np.nanmean(values[labels == g]) if np.isfinite(values[labels == g]).any() else np.nan
                       for g in range(groups)])
        for key, values in scores.items()
    }


def true_spread(path: str, key: str) -> np.ndarray:
    """Per face the standard deviation of a true map (``gt_fmel`` …) inside the mask, (N,)."""
    from bioface_tf.data import CelebAFaces

    faces = CelebAFaces([path], image_size=None)
    spreads = []
    for start in range(0, len(faces), 64):
        batch = faces.read(range(start, min(start + 64, len(faces))), ground_truth=True)
        for values, mask in zip(batch[key], batch["mask"]):
            spreads.append(values[mask > 0.5].std() if (mask > 0.5).any() else np.nan)
    return np.asarray(spreads)


def _cell(key: str, value: float) -> str:
    """A table cell: PSNR to 0.01 dB, r and mean errors to 0.001."""
    return f"{value:.2f}" if key == "psnr" else f"{value:.3f}"


def family_table(model, path: str, groups: int) -> list[str]:
    """Markdown lines of one family's table."""
    from eval_inversion import evaluate as evaluate_inversion

    from training.evaluate import face_scores

    scores = face_scores(model, [path], progress=False)
    if "true_melanin_mean" not in scores:
        raise SystemExit(f"{path}: holds no ground truth (gt_fmel …) to group its faces by; make one with bioface synth")
    inversion, _, _ = evaluate_inversion(path, None, blur_sigma=0.8, limit=None, batch_size=32)
    if len(inversion["r_melanin"]) != len(scores["psnr"]):
        raise RuntimeError(f"{path}: the inversion scored {len(inversion['r_melanin'])} faces, the model {len(scores['psnr'])}")
    labels, edges = skin_tone_groups(scores.pop("true_melanin_mean"), groups)
    model_means = group_means({k: scores[k] for k in MODEL_KEYS}, labels, groups)
    inversion_means = group_means({k: inversion[k] for k in INVERSION_KEYS}, labels, groups)
    spread = group_means({k: true_spread(path, f"gt_{k}") for k in ("fmel", "fblood")}, labels, groups)
    header = (
        ["skin group", "true mean melanin", "faces"]
        + [f"model {k}" for k in MODEL_KEYS]
        + [f"inversion {k}" for k in INVERSION_KEYS]
        + ["true std melanin", "true std haemoglobin"]
    )
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for g in range(groups):
        name = "lightest" if g == 0 else "darkest" if g == groups - 1 else f"{g + 1}"
        cells = [name, f"{edges[g]:+.2f} … {edges[g + 1]:+.2f}", str(int((labels == g).sum()))]
        cells += [_cell(k, model_means[k][g]) for k in MODEL_KEYS]
        cells += [_cell(k, inversion_means[k][g]) for k in INVERSION_KEYS]
        cells += [f"{spread[k][g]:.3f}" for k in ("fmel", "fblood")]
        lines.append("| " + " | ".join(cells) + " |")
    everyone = [_cell(k, np.nanmean(scores[k])) for k in MODEL_KEYS]
    everyone += [_cell(k, np.nanmean(inversion[k])) for k in INVERSION_KEYS]
    lines.append("| all | | " + str(len(labels)) + " | " + " | ".join(everyone) + " | | |")
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="a .keras BioFaceNet (default: the shipped model)")
    parser.add_argument("--family", action="append", required=True, metavar="NAME=FACES.h5")
    parser.add_argument("--groups", type=int, default=4)
    parser.add_argument("--out", help="also write the report here")
    args = parser.parse_args(argv)

    from bioface_tf import native_logs

    native_logs.quiet()
    from bioface_tf.analysis import load_model

    model = load_model(args.model)
    command = "python benchmarks/eval_skin_tone.py " + " ".join(sys.argv[1:] if argv is None else argv)
    lines = [
        "# Map agreement by skin type",
        "",
        f"Command: `{command}`",
        "",
        f"{datetime.date.today()}, {platform.machine()}. Model: `{args.model or 'the shipped default model'}`"
        f" (mirror averaging {'on' if getattr(model, 'mirror_average', False) else 'off'}). Faces grouped by their"
        f" true mean melanin inside the mask into {args.groups} equal groups per family; each cell is the mean over"
        " the group's faces of `bioface evaluate`'s per-face score (r: Pearson r inside the mask; mean errors in"
        " map units). Inversion: each pixel's skin-table entry from its colour given the TRUE camera and light"
        " (blur 0.8 px). True std: spread of the true map inside each face, averaged over the group.",
        "",
    ]
    for pair in args.family:
        name, _, path = pair.partition("=")
        print(f"{name}: {path}", file=sys.stderr)
        lines += [f"## {name}: `{path}`", ""] + family_table(model, path, args.groups) + [""]
    report = "\n".join(lines)
    print(report)
    if args.out:
        with open(args.out, "w") as f:
            f.write(report + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
