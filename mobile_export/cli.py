"""The ``bioface-lite`` console command: analyse and edit faces on a LiteRT bundle.

The on-device twin of ``bioface analyze`` and ``bioface edit``: the same
arguments and outputs, with ``--models DIR`` (a bundle from
``bioface export``) in place of ``--model M.keras``, and nothing but
``ai-edge-litert``, NumPy and OpenCV underneath (no TensorFlow). Without
``--models`` the shipped model's bundle is used
(:func:`bioface_tf.pretrained.lite_bundle_path`). LiteRT's C++ start-up line
is hidden unless ``--verbose`` is given (:mod:`bioface_tf.native_logs`).
"""

from __future__ import annotations

import argparse
import sys

from bioface_tf import __version__, pretrained
from bioface_tf.cli import add_verbose_arguments, dispatch
from bioface_tf.commands import analyze, edit
from bioface_tf.commands.model_option import announce_shipped
from bioface_tf.errors import BioFaceError


def _add_bundle_arguments(parser) -> None:
    parser.add_argument(
        "--models", default=None, metavar="DIR",
        help=f"a bundle written by 'bioface export', or a shipped model's name "
        f"(default: the shipped {pretrained.DEFAULT_MODEL}'s bundle)",
    )
    parser.add_argument("--threads", type=int, default=1, metavar="N", help="interpreter threads (default: 1)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bioface-lite",
        description="BioFaceNet on the LiteRT interpreter: analyse and edit faces without TensorFlow.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    analyse_parser = subparsers.add_parser(
        "analyze", help="maps, illuminant and camera of each face (as 'bioface analyze')", description=analyze.DESCRIPTION
    )
    _add_bundle_arguments(analyse_parser)
    analyze.add_analyze_arguments(analyse_parser)
    analyse_parser.set_defaults(func=run_analyze)
    edit_parser = subparsers.add_parser(
        "edit", help="edit skin biophysically and re-render (as 'bioface edit')", description=edit.DESCRIPTION
    )
    _add_bundle_arguments(edit_parser)
    edit.add_edit_arguments(edit_parser)
    edit_parser.set_defaults(func=run_edit)
    add_verbose_arguments(parser, subparsers)
    return parser


def _bundle(args):
    from mobile_export.runtime import LiteBioFace

    if args.threads < 1:
        raise BioFaceError(f"--threads must be >= 1, got {args.threads}")
    folder = pretrained.resolve_lite_bundle(args.models)
    if args.models is None:
        announce_shipped(f"bioface-lite {args.command}", folder)
    return LiteBioFace(folder, num_threads=args.threads)


def _frame_model(lite):
    """The bundle as a :class:`bioface_tf.video.FrameModel` for video clips."""
    from bioface_tf.video import FrameModel

    return FrameModel(lite.image_size, lite.encode, lite.render)


def run_analyze(args) -> int:
    lite = _bundle(args)
    return analyze.analyze_inputs(args, lite, lite.analyse, prog="bioface-lite analyze", frame_model=_frame_model(lite))


def run_edit(args) -> int:
    lite = _bundle(args)
    return edit.edit_image(args, lite, lite.analyse, lite, prog="bioface-lite edit", frame_model=_frame_model(lite))


def main(argv: list[str] | None = None) -> int:
    return dispatch(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
