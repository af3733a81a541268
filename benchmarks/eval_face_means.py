"""How a model's per-face mean maps follow the truth: range compression and what the bias follows.

For each face of a file with ground truth, the means inside the mask of the
predicted and true melanin, haemoglobin and diffuse shading. Printed per
model and file, one Markdown row:

* ``*_slope`` — slope of the predicted face mean on the true one (least
  squares; 1 is a faithful range, below 1 a compressed one);
* ``*_mean_err`` — ``|predicted − true|`` face mean, averaged (as
  ``bioface evaluate``'s ``*_mean_err``); ``melanin_bias`` the signed
  average (predicted − true);
* ``corr(mel bias, true mel)``, ``corr(mel bias, log true shading)`` — what
  the melanin bias (predicted − true face mean) goes with: the skin's
  melanin itself, or how brightly the face is lit;
* ``shading ratio`` — median over faces of predicted / true mean diffuse
  shading, and ``corr(log ratio, true mel)``: whether a dark face's
  darkness is read as shading instead of pigment;
* ``skin/image luminance`` — median over faces of the skin's mean linear
  luminance over the whole crop's (the photometric input divides by the
  latter), and ``mel bias per log skin/image`` — the melanin bias's
  coefficient on its log, given the true melanin (least squares on both):
  negative when skin that is bright against its surroundings is read lighter.

    python benchmarks/eval_face_means.py --model M.keras --data FACES.h5 [--data …] [--out FILE.md]
"""

from __future__ import annotations

import argparse
import pathlib

import numpy as np

REC709_LUMA = (0.2126, 0.7152, 0.0722)
COLUMNS = (
    "faces",
    "melanin_slope",
    "melanin_mean_err",
    "melanin_bias",
    "haemoglobin_slope",
    "haemoglobin_mean_err",
    "corr(mel bias, true mel)",
    "corr(mel bias, log true shading)",
    "shading ratio",
    "corr(log ratio, true mel)",
    "skin/image luminance",
    "mel bias per log skin/image",
)


def face_means(model, path: str, batch_size: int = 25) -> dict[str, np.ndarray]:
    """Per-face means inside the mask, ``{"true_fmel", "fmel", …}`` of `(n,)` arrays."""
    from bioface_tf.data import CelebAFaces
    from bioface_tf.data.pipeline import make_dataset
    from bioface_tf.transfer_curve import linearise

    faces = CelebAFaces([path], image_size=model.image_size)
    data = make_dataset(faces, batch_size=batch_size, preprocessing=model.preprocessing, flip=False, shuffle=False,
                        ground_truth=True)
    pairs = {"fmel": "gt_fmel", "fblood": "gt_fblood", "shading": "gt_shading"}
    means = {key: [] for name in pairs for key in (name, "true_" + name)}
    means["skin_over_image"] = []
    for batch in data:
        out = model(batch["image"], training=False)
        mask = batch["mask"].numpy()[..., 0] > 0.5
        luminance = linearise(batch["srgb"].numpy()) @ np.array(REC709_LUMA)
        means["skin_over_image"] += [lum[m].mean() / max(lum.mean(), 1e-6) for lum, m in zip(luminance, mask)]
        for name, truth in pairs.items():
            predicted, true = out[name].numpy()[..., 0], batch[truth].numpy()[..., 0]
            means[name] += [p[m].mean() for p, m in zip(predicted, mask)]
            means["true_" + name] += [t[m].mean() for t, m in zip(true, mask)]
    return {k: np.asarray(v, np.float64) for k, v in means.items()}


def summarise(means: dict[str, np.ndarray]) -> dict[str, float]:
    """The :data:`COLUMNS` of one model on one file."""
    bias = means["fmel"] - means["true_fmel"]
    log_ratio = np.log(np.maximum(means["shading"], 1e-6) / np.maximum(means["true_shading"], 1e-6))
    context = np.log(np.maximum(means["skin_over_image"], 1e-6))
    design = np.stack([means["true_fmel"], context, np.ones_like(context)], axis=1)
    return {
        "faces": len(bias),
        "melanin_slope": np.polyfit(means["true_fmel"], means["fmel"], 1)[0],
        "melanin_mean_err": np.abs(bias).mean(),
        "melanin_bias": bias.mean(),
        "haemoglobin_slope": np.polyfit(means["true_fblood"], means["fblood"], 1)[0],
        "haemoglobin_mean_err": np.abs(means["fblood"] - means["true_fblood"]).mean(),
        "corr(mel bias, true mel)": np.corrcoef(bias, means["true_fmel"])[0, 1],
        "corr(mel bias, log true shading)": np.corrcoef(bias, np.log(np.maximum(means["true_shading"], 1e-6)))[0, 1],
        "shading ratio": float(np.exp(np.median(log_ratio))),
        "corr(log ratio, true mel)": np.corrcoef(log_ratio, means["true_fmel"])[0, 1],
        "skin/image luminance": float(np.exp(np.median(context))),
        "mel bias per log skin/image": np.linalg.lstsq(design, bias, rcond=None)[0][1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="a .keras BioFaceNet")
    parser.add_argument("--data", action="append", required=True, help="a face file with ground truth (repeatable)")
    parser.add_argument("--out", type=pathlib.Path, help="also write the table here")
    args = parser.parse_args()

    from training import environment

    environment.configure(onednn=True)
    from training.evaluate import load_trained

    model = load_trained(args.model)
    lines = ["| file | " + " | ".join(COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
    for path in args.data:
        row = summarise(face_means(model, path))
        cells = [f"{row[c]:d}" if c == "faces" else f"{row[c]:.3f}" for c in COLUMNS]
        lines.append(f"| `{path}` | " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    print(table)
    if args.out:
        data = "".join(f" --data {d}" for d in args.data)
        command = f"python benchmarks/eval_face_means.py --model {args.model}{data}"
        args.out.write_text(f"# Per-face means against the truth\n\nCommand: `{command} --out {args.out}`\n\n{table}\n")


if __name__ == "__main__":
    main()
