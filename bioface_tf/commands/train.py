"""``bioface train``: train BioFaceNet on face files with a preset."""

from __future__ import annotations


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train BioFaceNet (presets paper, report, improved, synthetic, hybrid); resumes an interrupted run",
        description=(
            "Train BioFaceNet with model.fit on HDF5 face files (CelebA zx_7 layout or "
            "'bioface synth' output), on faces rendered on the fly (preset synthetic), or on both "
            "mixed in every batch (preset hybrid). OUT gets model.keras, log.csv, figures/ and "
            "tensorboard/; rerunning the same command resumes an interrupted run."
        ),
    )
    parser.add_argument(
        "--data", nargs="+", default=[], metavar="FILE",
        help="HDF5 face files or glob patterns (not needed when every face is rendered: preset synthetic)",
    )
    parser.add_argument(
        "--preset", default="report",
        help="paper, report, improved, synthetic, hybrid or a preset JSON file (default: report)",
    )
    parser.add_argument(
        "--init-from", metavar="MODEL", help="start from a trained .keras model's weights (train.init_from)"
    )
    parser.add_argument("--model", choices=("full", "mobile"), help="network variant (overrides model.variant)")
    parser.add_argument("--epochs", type=int, help="overrides train.epochs")
    parser.add_argument("--steps", type=int, help="steps per epoch (overrides train.steps_per_epoch)")
    parser.add_argument("--batch-size", type=int, help="overrides train.batch_size")
    parser.add_argument("--xla", action="store_true", help="compile the training step with XLA (train.jit_compile=true)")
    parser.add_argument(
        "--set", action="append", default=[], metavar="SECTION.FIELD=VALUE",
        help="override any preset field, e.g. --set loss.sparsity=1e-8 (repeatable)",
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="output directory")
    parser.add_argument("--no-tensorboard", action="store_true", help="do not write TensorBoard logs")
    parser.set_defaults(func=run)


def overrides_from(args) -> list[str]:
    """The command's dedicated flags as preset overrides, then the --set ones."""
    overrides = []
    if args.model:
        overrides.append(f"model.variant={args.model}")
    if args.epochs is not None:
        overrides.append(f"train.epochs={args.epochs}")
    if args.steps is not None:
        overrides.append(f"train.steps_per_epoch={args.steps}")
    if args.batch_size is not None:
        overrides.append(f"train.batch_size={args.batch_size}")
    if args.xla:
        overrides.append("train.jit_compile=true")
    if args.init_from:
        overrides.append(f"train.init_from={args.init_from}")
    return overrides + list(args.set)


def run(args) -> int:
    from training import environment
    from training.presets import load_preset

    preset = load_preset(args.preset, overrides_from(args))
    environment.configure(onednn=preset.train.onednn)
    from training.train import train

    train(preset, args.data, args.out, tensorboard=not args.no_tensorboard)
    print(f"wrote {args.out}/model.keras, log.csv and figures/")
    return 0
