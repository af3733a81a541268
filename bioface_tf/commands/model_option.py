"""The ``--model`` option of the commands that run a trained model.

``bioface analyze``, ``edit``, ``evaluate`` and ``export`` take ``--model``
as a ``.keras`` file or a shipped model's name; without it they use the
shipped default (:mod:`bioface_tf.pretrained`) and say so on stderr; with
``--no-mirror-average`` the network runs once per face instead of on the
face and its mirror image (:mod:`bioface_tf.model.mirror`).
"""

from __future__ import annotations

import pathlib
import sys

from bioface_tf import pretrained


def add_model_argument(parser) -> None:
    """Add ``--model`` (optional: the shipped default when omitted) and ``--no-mirror-average``."""
    parser.add_argument(
        "--model", default=None, metavar="M.keras",
        help=f"a trained BioFaceNet (.keras file) or a shipped model's name "
        f"(default: the shipped {pretrained.DEFAULT_MODEL})",
    )
    parser.add_argument(
        "--no-mirror-average", dest="mirror_average", action="store_false",
        help="run the network once per face, not on the face and its mirror image averaged (the default): "
        "half the network's time, slightly less accurate maps",
    )


def model_file(args, prog: str) -> pathlib.Path:
    """The ``.keras`` file ``args.model`` means; names the shipped model on stderr when it is used.

    Raises:
        BioFaceError: the shipped model is not installed (the message names the file).
    """
    path = pretrained.resolve_model(args.model)
    if args.model is None:
        announce_shipped(prog, path)
    return path


def announce_shipped(prog: str, path: pathlib.Path) -> None:
    """Say on stderr (stdout may be JSON) that the shipped default at ``path`` is used."""
    print(f"{prog}: using the shipped model {pretrained.DEFAULT_MODEL} ({path})", file=sys.stderr)
