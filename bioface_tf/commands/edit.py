"""``bioface edit``: change melanin, haemoglobin, highlights or light in a face photo.

:func:`add_edit_arguments` and :func:`edit_image` are shared with the
on-device ``bioface-lite edit`` (:mod:`mobile_export.cli`), which passes its
own analyser and renderer.
"""

from __future__ import annotations

import functools
import pathlib

from bioface_tf.commands.model_option import add_model_argument, model_file
from bioface_tf.commands.photo_options import add_photo_face_arguments, announce_crop
from bioface_tf.commands.refine_options import add_refine_arguments, explicit_refine, refiner_from_args
from bioface_tf.commands.video_options import add_video_arguments, edit_clip


DESCRIPTION = (
    "Edit the face in a photo (any size; the largest face is found, or every face with "
    "--all-faces, and the result is pasted back at full resolution; an image that is already a "
    "face crop is taken whole when no face is detected) or one face of a CelebA-layout HDF5 "
    "file. Offsets act on the "
    "scaled maps in [-1, 1] (clipped there); everything else is held fixed. Outside the "
    "face mask the photo is unchanged. A video clip (.mp4, .avi, .mov) is edited frame by frame, its face "
    "tracked and the maps smoothed in time (--smooth), into OUT.mp4/.mov/.avi of the same size, frame rate "
    "and frame count; audio is not copied."
)


def add_edit_arguments(parser) -> None:
    """The image, output and edit flags of ``bioface edit`` (all but the model)."""
    from bioface_tf.palette import ILLUMINANT_CHOICES

    parser.add_argument("image", metavar="IMAGE", help="a photo, a video clip, or an HDF5 file with --face")
    parser.add_argument("--out", required=True, metavar="OUT.png", help="the edited image (a clip: OUT.mp4)")
    parser.add_argument("--melanin", type=float, default=0.0, metavar="D", help="add D to the melanin map")
    parser.add_argument("--haemoglobin", type=float, default=0.0, metavar="D", help="add D to the haemoglobin map")
    parser.add_argument("--specular", type=float, default=1.0, metavar="S", help="scale highlights by S (0 removes)")
    parser.add_argument(
        "--illuminant", choices=list(ILLUMINANT_CHOICES), default=None, help="re-light under a CIE illuminant"
    )
    parser.add_argument(
        "--no-residual", dest="residual", action="store_false",
        help="show the pure re-render inside the mask (default: keep the detail the model cannot explain)",
    )
    parser.add_argument("--face", type=int, default=0, metavar="K", help="face index in an HDF5 file (default: 0)")
    add_photo_face_arguments(parser, "edit")
    add_video_arguments(parser)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "edit",
        help="edit skin biophysically (melanin, haemoglobin, specular, illuminant) and re-render",
        description=DESCRIPTION,
    )
    add_model_argument(parser)
    add_edit_arguments(parser)
    add_refine_arguments(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    from bioface_tf.analysis import analyse, decoder_of, load_model
    from bioface_tf.video import keras_frame_model

    model = load_model(model_file(args, "bioface edit"))
    model.mirror_average = args.mirror_average
    return edit_image(
        args, model, functools.partial(analyse, model), decoder_of(model), frame_model=keras_frame_model(model),
        refiner=refiner_from_args(args, decoder_of(model)),
    )


def edit_image(args, model, analyser, decoder, prog: str = "bioface edit", frame_model=None, refiner=None) -> int:
    """Edit ``args.image`` as the flags of :func:`add_edit_arguments` say and write ``args.out``.

    Args:
        args: parsed arguments.
        model: the model, or anything with its ``image_size``.
        analyser: ``(faces, masks) → FaceAnalysis``.
        decoder: renders decoder inputs (``params → {"srgb": …}``).
        prog: the command's name in messages.
        frame_model: the :class:`bioface_tf.video.FrameModel` for a video clip
            (:func:`bioface_tf.commands.video_options.edit_clip`).
        refiner: a :class:`bioface_tf.refinement.Refiner`
            (:func:`refiner_from_args`): the face is fitted before the edit,
            and a photo's edit is re-rendered at the refiner's working size;
            None: no fit. A clip is never fitted.
    """
    from bioface_tf.data.faces import Failure, is_hdf5, iter_faces
    from bioface_tf.data.photos import find_faces
    from bioface_tf.editing import Edit, edit_faces, edit_photo
    from bioface_tf.errors import BioFaceError
    from bioface_tf.figures import write_png
    from bioface_tf.video import is_video

    try:
        edit = Edit(args.melanin, args.haemoglobin, args.specular, args.illuminant)
    except ValueError as err:
        raise BioFaceError(str(err)) from None
    path = pathlib.Path(args.image)
    if is_video(path):
        if explicit_refine(args):
            raise BioFaceError(f"--refine is for photos and HDF5 faces, not video clips ({path})")
        return edit_clip(args, edit, frame_model, prog)
    image_size = model.image_size
    if is_hdf5(path):
        if args.all_faces:
            raise BioFaceError(f"{path}: --all-faces is for photos; choose an HDF5 file's face with --face K")
        if args.face < 0:
            raise BioFaceError(f"--face must be >= 0, got {args.face}")
        items = list(iter_faces([path], image_size, limit=args.face + 1))
        failed = [item for item in items if isinstance(item, Failure)]
        if failed:
            raise BioFaceError(failed[0].message)
        if len(items) <= args.face:
            raise BioFaceError(f"{path}: holds {len(items)} faces, no face {args.face}")
        face = items[args.face]
        faces = analyser(face.image[None], face.mask[None])
        if refiner is not None:
            faces = refiner(faces).faces
        result = edit_faces(faces, edit, decoder, residual=args.residual)[0]
        count = 1
    else:
        found = find_faces(path, image_size, crop=args.crop, all_faces=args.all_faces, mask=args.mask)
        announce_crop(prog, path, found[0].crop)
        squares = [face.square for face in found]
        result = edit_photo(
            model, found[0].photo, edit, squares=squares, residual=args.residual, analyser=analyser, decoder=decoder,
            mask=args.mask, refiner=refiner,
        )
        count = len(found)
    out = write_png(args.out, result)
    faces_edited = f" ({count} faces)" if count > 1 else ""
    refined = f", refined {refiner.settings.steps} steps at {refiner.work_size or image_size} px" if refiner else ""
    print(f"wrote {out} ({result.shape[1]}x{result.shape[0]}){faces_edited}: {edit}{refined}")
    return 0
