"""Map agreement with ground truth: trained models and the per-pixel inversion, per face family.

One table per face family (held-out faces of the training generator, and the
evaluation-only family that no training or tuning touches). Rows: each
``--model NAME=PATH``, then the per-pixel inversion baseline
(:mod:`bioface_tf.inversion`) given the TRUE camera and light, and given the
camera and light estimated by ``--estimate-from NAME``. Columns: every key
of ``bioface evaluate`` (Pearson r per face inside the mask, then averaged;
mean errors per face; PSNR inside the mask). A last table gives the time to
quality from each run's ``log.csv`` (``--log NAME=DIR/log.csv``): wall-clock
minutes on this machine until the per-epoch held-out agreement
(``val_r_*``, training family) first reaches 0.9. ``--one-pass NAME``: score
that model with one network pass per face instead of its mirror average
(``bioface evaluate --no-mirror-average``).

    python benchmarks/bench_agreement.py \\
        --model synthetic=runs/synthetic/model.keras --log synthetic=runs/synthetic/log.csv \\
        --family training=heldout_synth.h5 --family evaluation=eval_faces.h5 \\
        --estimate-from synthetic --out benchmarks/results/agreement_rendered.md
"""

from __future__ import annotations

import argparse
import csv
import datetime
import os
import platform
import sys

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from training.evaluate import evaluate, load_trained  # noqa: E402

KEYS = (
    "r_melanin", "r_haemoglobin", "r_shading", "r_specular",
    "melanin_mean_err", "haemoglobin_mean_err", "b_mae", "cct_mae", "psnr", "ssim",
)
QUALITY = 0.9
TRACKED = ("r_melanin", "r_haemoglobin", "r_shading", "r_specular")


def named(pairs: list[str], what: str) -> dict[str, str]:
    """``["a=x", "b=y"]`` → ``{"a": "x", "b": "y"}``."""
    out = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"{what} {pair!r}: expected NAME=PATH")
        out[name] = value
    return out


def inversion_scores(path: str, estimate: str | None) -> dict[str, float]:
    """The inversion baseline's averages on one file (true camera/light, or a model's)."""
    from eval_inversion import ModelEstimate
    from eval_inversion import evaluate as evaluate_inversion

    model = ModelEstimate(estimate) if estimate else None
    scores, _, _ = evaluate_inversion(path, model, blur_sigma=0.8, limit=None, batch_size=32)
    return {key: float(np.nanmean(value)) for key, value in scores.items()}


def time_to_quality(log_path: str) -> dict[str, str]:
    """Minutes until each tracked ``val_r_*`` first reaches :data:`QUALITY`, from a run's log."""
    with open(log_path) as f:
        rows = list(csv.DictReader(f))
    cells = {}
    for key in TRACKED:
        column = f"val_{key}"
        reached = [r for r in rows if column in r and r[column] and float(r[column]) >= QUALITY]
        if reached:
            cells[key] = f"{float(reached[0]['elapsed_s']) / 60:.1f} min"
        elif rows and column in rows[0]:
            best = max(float(r[column]) for r in rows if r[column])
            cells[key] = f"not reached (best {best:.2f} after {float(rows[-1]['elapsed_s']) / 60:.0f} min)"
        else:
            cells[key] = "—"
    return cells


def markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def cell(value) -> str:
    return "—" if value is None or (isinstance(value, float) and np.isnan(value)) else f"{value:.3f}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", default=[], metavar="NAME=PATH")
    parser.add_argument("--family", action="append", default=[], metavar="NAME=FILE", required=True)
    parser.add_argument("--log", action="append", default=[], metavar="NAME=LOG.csv")
    parser.add_argument("--estimate-from", metavar="NAME", help="model whose camera/light feed the inversion row")
    parser.add_argument("--no-inversion", action="store_true")
    parser.add_argument("--one-pass", action="append", default=[], metavar="NAME",
                        help="score this --model without mirror averaging")
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    models, families, logs = named(args.model, "--model"), named(args.family, "--family"), named(args.log, "--log")

    sections = [
        "# Map agreement on rendered faces",
        "",
        f"Command: `python benchmarks/bench_agreement.py {' '.join(argv if argv is not None else sys.argv[1:])}`",
        "",
        f"{datetime.date.today()}, {platform.processor() or platform.machine()}, {os.cpu_count()} cores. "
        "r: Pearson r per face inside the mask, averaged over faces (`bioface evaluate`'s definition); "
        "mean errors: |mean in mask − true mean| per face, map units ([−1, 1]).",
    ]
    for family, path in families.items():
        rows = []
        for name, model in models.items():
            if name in args.one_pass:
                model = load_trained(model)
                model.mirror_average = False
            scores = evaluate(model, [path], progress=False)
            rows.append([name, str(scores["n_faces"])] + [cell(scores.get(k)) for k in KEYS])
        if not args.no_inversion:
            truth = inversion_scores(path, None)
            rows.append(["inversion, true camera and light", "—"] + [cell(truth.get(k)) for k in KEYS])
            if args.estimate_from:
                estimated = inversion_scores(path, models[args.estimate_from])
                label = f"inversion, camera and light of {args.estimate_from}"
                rows.append([label, "—"] + [cell(estimated.get(k)) for k in KEYS])
        sections += ["", f"## {family}: `{path}`", "", markdown(["model", "faces", *KEYS], rows)]
    if logs:
        rows = [[name, *time_to_quality(path).values()] for name, path in logs.items()]
        sections += [
            "", "## Time to quality (training family, held-out faces, per epoch)", "",
            markdown(["run", *(f"{k} ≥ {QUALITY}" for k in TRACKED)], rows),
        ]
    text = "\n".join(sections) + "\n"
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
