"""The ``--refine``, ``--refine-size`` and ``--no-refine`` options of ``bioface analyze`` and ``edit``.

They choose the per-photo physics fit (:mod:`bioface_tf.refinement`) after
the network:

- by default, photos and HDF5 faces are fitted at the model's size
  (:data:`bioface_tf.refinement.DEFAULT_STEPS` steps): the reconstruction
  gains 4–9 dB inside the skin mask and the maps keep their agreement with
  the truth (``benchmarks/results/refinement.md``) for a few seconds per
  command; video clips are not fitted;
- ``--refine [STEPS]`` fits a photo's face region at ``--refine-size``
  (256 px by default), so maps and edits have the photo's own detail;
- ``--no-refine``: the network's answer alone.

``bioface-lite`` has no such flags: its renderer is a TFLite interpreter,
which runs forward only and gives no gradients to fit with.
"""

from __future__ import annotations


def add_refine_arguments(parser) -> None:
    """Add ``--refine [STEPS]``, ``--refine-size N`` and ``--no-refine``."""
    from bioface_tf.refinement import DEFAULT_STEPS, DEFAULT_WORK_SIZE

    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--refine", type=int, nargs="?", const=DEFAULT_STEPS, default=None, metavar="STEPS",
        help=f"fit the physics decoder to each face at the photo's resolution: a photo's face region at "
        f"--refine-size, so maps and edits have the photo's detail; STEPS Adam steps (default when given: "
        f"{DEFAULT_STEPS}). Without it photos and HDF5 faces are fitted at the model's size ({DEFAULT_STEPS} steps: "
        f"analysis by synthesis under smoothness and sparsity priors, camera and light kept); params.json "
        f"records the time and the PSNR before and after",
    )
    group.add_argument(
        "--no-refine", action="store_true",
        help="no fit: the network's maps as they are (faster; video clips are never fitted)",
    )
    parser.add_argument(
        "--refine-size", type=int, default=DEFAULT_WORK_SIZE, metavar="N",
        help=f"side in pixels of a photo's face region for --refine (default: {DEFAULT_WORK_SIZE}; "
        f"HDF5 faces are fitted at their own size)",
    )


def refiner_from_args(args, decoder):
    """The :class:`bioface_tf.refinement.Refiner` the options ask for, or None (``--no-refine``).

    Without ``--refine`` or ``--no-refine``: the default fit, at the model's size.

    Raises:
        BioFaceError: a negative step count or a working size under 8 pixels.
    """
    from bioface_tf.errors import BioFaceError
    from bioface_tf.refinement import Refiner, RefineSettings

    if args.no_refine:
        return None
    if args.refine is None:
        return Refiner(decoder, RefineSettings(), work_size=None)
    try:
        settings = RefineSettings(steps=args.refine)
    except ValueError as err:
        raise BioFaceError(f"--refine: {err}") from None
    return Refiner(decoder, settings, work_size=args.refine_size)


def explicit_refine(args) -> bool:
    """Whether the command line asked for a fit (``--refine``), which video clips refuse."""
    return getattr(args, "refine", None) is not None
