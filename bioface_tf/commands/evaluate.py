"""``bioface evaluate``: reconstruction quality and ground-truth agreement of a model."""

from __future__ import annotations

import json

from bioface_tf.commands.model_option import add_model_argument, model_file


KEYS = ("psnr", "ssim", "r_melanin", "r_haemoglobin", "r_shading", "r_specular", "b_mae", "cct_mae")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="PSNR/SSIM of the reconstruction; per-map agreement on files with ground truth",
        description=(
            "Run a trained .keras model over face files. Reports reconstruction PSNR and "
            "SSIM inside the face mask; on files with ground truth ('bioface synth'), the "
            "Pearson r inside the mask of each map (averaged over faces) and the mean "
            "absolute error of the camera parameters b and colour temperature index cct."
        ),
    )
    add_model_argument(parser)
    parser.add_argument("--data", nargs="+", required=True, metavar="FILE", help="HDF5 face files or glob patterns")
    parser.add_argument("--batch-size", type=int, default=25, help="faces per batch (default: 25)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.set_defaults(func=run)


def run(args) -> int:
    from training import environment

    environment.configure(onednn=True)
    from training.evaluate import evaluate, load_trained

    model = load_trained(model_file(args, "bioface evaluate"))
    model.mirror_average = args.mirror_average
    results = evaluate(model, args.data, batch_size=args.batch_size, progress=not args.json)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"{results['n_faces']} faces")
    for key in KEYS:
        if key in results:
            print(f"  {key:<14} {results[key]:.4f}")
    return 0
