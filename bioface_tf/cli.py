"""The ``bioface`` console command.

Each subcommand lives in its own module under :mod:`bioface_tf.commands` and
exposes ``register(subparsers)``, which adds its parser and sets ``func``
(called with the parsed arguments, returning an exit status). Add a module's
name to :data:`COMMANDS` to make it available.

Every command is quiet by default: TensorFlow's C++ start-up lines are hidden
(:mod:`bioface_tf.native_logs`) unless ``--verbose`` is given, before or after
the command's name.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from bioface_tf import __version__, native_logs
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
    add_verbose_arguments(parser, subparsers)
    return parser


def add_verbose_arguments(parser: argparse.ArgumentParser, subparsers) -> None:
    """``--verbose`` on ``parser`` and on each of its subcommands (after all are registered)."""
    help_text = "show the C++ log lines TensorFlow and LiteRT write to stderr (hidden by default)"
    parser.add_argument("--verbose", action="store_true", help=help_text)
    for subparser in subparsers.choices.values():
        subparser.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS, help=help_text)


def dispatch(parser: argparse.ArgumentParser, argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen subcommand's ``func``.

    Prints help (status 2) without a subcommand; a :class:`BioFaceError`
    is printed as ``PROG COMMAND: error: …`` with status 1, no traceback.
    Without ``--verbose`` the C++ log lines of TensorFlow and LiteRT are
    hidden (:func:`bioface_tf.native_logs.quiet`).
    """
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    if not getattr(args, "verbose", False):
        native_logs.quiet()
    try:
        return int(args.func(args) or 0)
    except BioFaceError as err:
        print(f"{parser.prog} {args.command}: error: {err}", file=sys.stderr)
        return 1


def main(argv: list[str] | None = None) -> int:
    return dispatch(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
