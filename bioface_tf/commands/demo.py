"""``bioface demo``: the main job on built-in data (see :mod:`bioface_tf.demo`)."""

from __future__ import annotations

from bioface_tf.demo import DEFAULT_FACES, DEFAULT_MINUTES, DEFAULT_STEPS, FULL_RUN, FULL_RUN_NOTE


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="render faces, train the mobile model briefly, analyse, edit, report (writes demo_out/)",
        description=(
            "Render faces with known ground truth, train the mobile BioFaceNet on the CPU for a few "
            "minutes, then write the figure grid, per-face maps and params.json, the melanin and "
            "haemoglobin edit figures, the TFLite renderer and an HTML report linking all of it. "
            "Under 15 minutes on a 2-core CPU with the defaults."
        ),
    )
    parser.add_argument("--out", default="demo_out", help="output folder (default: demo_out)")
    parser.add_argument(
        "--faces", type=int, default=DEFAULT_FACES, help=f"rendered training faces (default: {DEFAULT_FACES})"
    )
    parser.add_argument(
        "--steps", type=int, default=DEFAULT_STEPS, help=f"most training steps (default: {DEFAULT_STEPS})"
    )
    parser.add_argument(
        "--minutes", type=float, default=DEFAULT_MINUTES,
        help=f"most training minutes, whichever of --steps and --minutes ends first (default: {DEFAULT_MINUTES:g})",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--no-export", dest="export", action="store_false", help="skip the TFLite export")
    parser.set_defaults(func=run)


def run(args) -> int:
    from bioface_tf.errors import BioFaceError
    from training import environment

    if args.faces < 1 or args.steps < 1 or args.minutes <= 0:
        raise BioFaceError("--faces and --steps must be at least 1 and --minutes above 0")
    environment.configure(onednn=True)
    from bioface_tf.demo import run_demo

    result = run_demo(args.out, args.faces, args.steps, args.minutes, args.seed, export=args.export)
    width = max(len(name) for name in result.files)
    print(f"\nbioface demo finished in {result.seconds / 60:.1f} min "
          f"({result.training.steps} training steps in {result.training.seconds / 60:.1f} min). Written:")
    for name, path in result.files.items():
        print(f"  {name:<{width}}  {path}")
    print(f"\nOpen {result.files['report']} in a browser.\n\n{FULL_RUN_NOTE}\n\n{FULL_RUN}")
    return 0
