"""The ``--crop``, ``--all-faces`` and ``--mask`` options of the commands that take photos.

``bioface analyze`` and ``edit`` (and their ``bioface-lite`` twins) choose a
photo's faces with them (:func:`bioface_tf.data.photos.face_squares`) and
say on stderr when an image was taken whole because no face was detected in
it (:func:`announce_crop`).
"""

from __future__ import annotations

import sys


def add_photo_face_arguments(parser, action: str) -> None:
    """Add ``--crop``, ``--all-faces`` and ``--mask``; ``action`` is the verb in their help (``analyse``, ``edit``)."""
    from bioface_tf.data.photos import CROP_MODES, CROP_SMALL_SIDE, CROP_SQUARENESS
    from bioface_tf.masks import MASK_KINDS

    parser.add_argument(
        "--crop", choices=CROP_MODES, default="detect",
        help=f"how a photo's face is found: detect = OpenCV's face detector, and when it finds no face in an "
        f"image that is nearly square (longer side <= {CROP_SQUARENESS:g} x the shorter) or small (shorter "
        f"side <= {CROP_SMALL_SIDE} px), i.e. already a face crop, the whole image; none = always the whole "
        f"image (default: detect)",
    )
    parser.add_argument(
        "--all-faces", action="store_true",
        help=f"{action} every face the detector finds in a photo (default: the largest)",
    )
    parser.add_argument(
        "--mask", choices=MASK_KINDS, default="skin",
        help=f"which pixels of a photo's face to {action}: skin = the skin found by colour, OpenCV's eye detector "
        f"and GrabCut (not hair, eyes, mouth interior, glasses' frames or background); landmarks = the same "
        f"from face landmarks (MediaPipe's Face Mesh model, shipped in the package), colour and GrabCut, "
        f"better on faces without glasses, keeps glasses' frames; ellipse = an upright ellipse in the face "
        f"crop (default: skin)",
    )


def announce_crop(prog: str, source, crop: str | None) -> None:
    """Say on stderr that ``source`` was taken whole because no face was detected in it (else nothing).

    Written with ``tqdm.write`` so that it does not break a progress bar.
    """
    from tqdm import tqdm

    from bioface_tf.data.photos import CROP_WHOLE_UNDETECTED

    if crop == CROP_WHOLE_UNDETECTED:
        tqdm.write(f"{prog}: note: {source}: no face detected; the whole image is taken as the face crop", file=sys.stderr)
