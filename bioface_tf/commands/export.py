"""``bioface export``: a trained model as an on-device TFLite bundle."""

from __future__ import annotations

from bioface_tf.commands.model_option import add_model_argument, model_file


def register(subparsers) -> None:
    from mobile_export.tflite import QUANTIZATIONS

    parser = subparsers.add_parser(
        "export",
        help="export a trained model as TFLite encoder + renderer + metadata.json for phones",
        description=(
            "Write DIR/encoder.tflite (face crop -> maps, camera and light; run once per photo), "
            "DIR/renderer.tflite (maps + parameters + edit offsets -> image; run on every slider move) "
            "and DIR/metadata.json (names, shapes, ranges, normalisation). Builtin TFLite ops only. "
            "int8 quantizes the encoder to full integer, calibrated on --calibration faces; the "
            "renderer then stores its tables as int8 but computes in float (see docs/EXPORT.md). "
            "Run the bundle with 'bioface-lite'."
        ),
    )
    add_model_argument(parser)
    parser.add_argument("--quantize", choices=QUANTIZATIONS, default="float32", help="(default: float32)")
    parser.add_argument("--out", required=True, metavar="DIR", help="the bundle folder")
    parser.add_argument(
        "--calibration", nargs="+", metavar="DATA", default=None,
        help="int8: HDF5 files or photos/folders to calibrate on (default: synthetic faces)",
    )
    parser.add_argument(
        "--calibration-faces", type=int, default=100, metavar="N", help="int8: faces drawn for calibration (default: 100)"
    )
    parser.add_argument(
        "--encoder-quantize", choices=QUANTIZATIONS, default=None,
        help="quantize the encoder differently (e.g. float32 with --quantize dynamic; default: as --quantize)",
    )
    parser.add_argument(
        "--skin-rank", type=int, default=None, metavar="K",
        help="store the skin reflectance table as a rank-K spectral basis (default: the exact table)",
    )
    parser.set_defaults(func=run)


def run(args) -> int:
    from bioface_tf.analysis import load_model
    from bioface_tf.errors import BioFaceError
    from mobile_export.export import calibration_from_files, export_bundle

    if args.skin_rank is not None and not 1 <= args.skin_rank <= 33:
        raise BioFaceError(f"--skin-rank must be in 1..33, got {args.skin_rank}")
    if args.calibration_faces < 1:
        raise BioFaceError(f"--calibration-faces must be >= 1, got {args.calibration_faces}")
    model = load_model(model_file(args, "bioface export"))
    images, note = None, None
    if (args.encoder_quantize or args.quantize) == "int8" and args.calibration:
        images = calibration_from_files(args.calibration, model.image_size)
        note = f"{args.calibration_faces} faces drawn from {', '.join(args.calibration)}"
    bundle = export_bundle(
        model, args.out, args.quantize, images, args.skin_rank, calibration_note=note,
        calibration_faces=args.calibration_faces, encoder_quantize=args.encoder_quantize,
        mirror_average=args.mirror_average,
    )
    for path in (bundle.encoder, bundle.renderer, bundle.metadata):
        print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")
    return 0
