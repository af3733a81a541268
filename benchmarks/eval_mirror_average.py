"""Mirror averaging at inference: a model's agreement with and without it, per face file.

For each file, ``bioface evaluate``'s keys (Pearson r per face inside the
mask, then averaged; per-face mean errors; PSNR) of the model run once per
face (``mirror_average`` off) and of the average of the face's and its
mirror image's estimates (on, :mod:`bioface_tf.model.mirror`). Prints a
Markdown table per file.

    python benchmarks/eval_mirror_average.py --model M.keras --data FACES.h5 [--data …] [--out FILE.md]
"""

from __future__ import annotations

import argparse
import pathlib

KEYS = (
    "r_melanin",
    "r_haemoglobin",
    "r_shading",
    "r_specular",
    "melanin_mean_err",
    "haemoglobin_mean_err",
    "b_mae",
    "cct_mae",
    "psnr",
    "ssim",
)


def compare(model_path: str, data: str) -> dict[str, dict[str, float]]:
    """``{"off": metrics, "on": metrics}`` of one model on one face file."""
    from training.evaluate import evaluate, load_trained

    model = load_trained(model_path)
    results = {}
    for setting in ("off", "on"):
        model.mirror_average = setting == "on"
        results[setting] = evaluate(model, [data], progress=False)
    return results


def table(path: str, results: dict[str, dict[str, float]]) -> str:
    lines = [
        f"## `{path}` ({results['on']['n_faces']} faces)",
        "",
        "| mirror average | " + " | ".join(KEYS) + " |",
        "|---|" + "---:|" * len(KEYS),
    ]
    for setting, metrics in results.items():
        lines.append(f"| {setting} | " + " | ".join(f"{metrics[k]:.4f}" for k in KEYS) + " |")
    change = " | ".join(f"{results['on'][k] - results['off'][k]:+.4f}" for k in KEYS)
    lines.append(f"| on − off | {change} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a .keras BioFaceNet")
    parser.add_argument("--data", action="append", required=True, help="an HDF5 face file with ground truth")
    parser.add_argument("--out", type=pathlib.Path, default=None, help="also write the tables to this file")
    args = parser.parse_args(argv)
    sections = [table(path, compare(args.model, path)) for path in args.data]
    text = "\n".join(sections)
    print(text)
    if args.out is not None:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
