"""The ``bioface`` console command.

Each subcommand lives in its own module under :mod:`bioface_tf.commands` and
exposes ``register(subparsers)``, which adds its parser and sets ``func``
(called with the parsed arguments, returning an exit status). Add a module's
name to :data:`COMMANDS` to make it available.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from bioface_tf import __version__
from bioface_tf.errors import BioFaceError

COMMANDS = (
    "spectra",
    "demo",
    "inspect",
    "synth",
    "separate",
    "specular_targets",
    "analyze",
    "edit",
    "train",
    "evaluate",
    "export",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bioface",
        description=(
            "BioFaceNet in TensorFlow/Keras: split a face photo into melanin, "
            "haemoglobin, shading and specular maps, camera and illuminant, "
            "and re-render it through a spectral physics decoder."
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"bioface_tf.commands.{name}").register(subparsers)
    return parser


def dispatch(parser: argparse.ArgumentParser, argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen subcommand's ``func``.

    Prints help (status 2) without a subcommand; a :class:`BioFaceError`
    is printed as ``PROG COMMAND: error: …`` with status 1, no traceback.
    """
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except BioFaceError as err:
        print(f"{parser.prog} {args.command}: error: {err}", file=sys.stderr)
        return 1


def main(argv: list[str] | None = None) -> int:
    return dispatch(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
