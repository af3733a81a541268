"""The ``--refine`` and ``--refine-size`` options of ``bioface analyze`` and ``edit``.

They turn on the per-photo physics fit (:mod:`bioface_tf.refinement`) after
the network. ``bioface-lite`` has no such flags: its renderer is a TFLite
interpreter, which runs forward only and gives no gradients to fit with.
"""

from __future__ import annotations


def add_refine_arguments(parser) -> None:
    """Add ``--refine [STEPS]`` and ``--refine-size N``."""
    from bioface_tf.refinement import DEFAULT_STEPS, DEFAULT_WORK_SIZE

    parser.add_argument(
        "--refine", type=int, nargs="?", const=DEFAULT_STEPS, default=None, metavar="STEPS",
        help=f"fit the physics decoder to each face after the network (analysis by synthesis under smoothness "
        f"and sparsity priors, camera and light kept), STEPS Adam steps (default when given: {DEFAULT_STEPS}); "
        f"a photo's face is fitted at --refine-size, so maps and edits have the photo's detail; "
        f"params.json records the time and the PSNR before and after (default: off)",
    )
    parser.add_argument(
        "--refine-size", type=int, default=DEFAULT_WORK_SIZE, metavar="N",
        help=f"side in pixels of a photo's face region for --refine (default: {DEFAULT_WORK_SIZE}; "
        f"HDF5 faces are fitted at their own size)",
    )


def refiner_from_args(args, decoder):
    """A :class:`bioface_tf.refinement.Refiner` for ``args.refine``, or None when it is off.

    Raises:
        BioFaceError: a negative step count or a working size under 8 pixels.
    """
    from bioface_tf.errors import BioFaceError
    from bioface_tf.refinement import Refiner, RefineSettings

    if args.refine is None:
        return None
    try:
        settings = RefineSettings(steps=args.refine)
    except ValueError as err:
        raise BioFaceError(f"--refine: {err}") from None
    return Refiner(decoder, settings, work_size=args.refine_size)
