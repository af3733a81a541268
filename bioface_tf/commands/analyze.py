"""``bioface analyze``: biophysical maps, illuminant and camera of each face.

:func:`add_analyze_arguments` and :func:`analyze_inputs` are shared with the
on-device ``bioface-lite analyze`` (:mod:`mobile_export.cli`), which passes
its own analyser.
"""

from __future__ import annotations

import functools
import pathlib
import sys

from bioface_tf.commands.model_option import add_model_argument, model_file
from bioface_tf.commands.photo_options import add_photo_face_arguments, announce_crop
from bioface_tf.commands.refine_options import add_refine_arguments, explicit_refine, refiner_from_args
from bioface_tf.commands.video_options import add_video_arguments, analyze_clips, split_clips


DESCRIPTION = (
    "Run a trained model on face photos (any size; the largest face is found, or every face with "
    "--all-faces as DIR/<photo>_face<k>/, numbered left to right; an image that is already a face "
    "crop is taken whole when no face is detected, and params.json records the crop), folders of "
    "photos, or CelebA-layout HDF5 files. Writes DIR/<face>/ with the reconstruction, melanin "
    "and haemoglobin maps (viridis, map value and volume fraction), diffuse and specular "
    "shading, diffuse albedo, params.json (illuminant and camera) and maps.npz, plus "
    "DIR/figure.png with a row per face. Inputs that fail are reported and skipped; the exit "
    "status is then 1. Video clips (.mp4, .avi, .mov) give DIR/<clip>/frames.jsonl (per-frame light, "
    "camera and mean maps of the tracked face, smoothed in time), video.json and, with --maps-video, maps.mp4; "
    "audio is ignored."
)


def add_analyze_arguments(parser) -> None:
    """The input, output and figure flags of ``bioface analyze`` (all but the model)."""
    parser.add_argument("inputs", nargs="+", metavar="IMAGE", help="photos, folders, HDF5 files or video clips")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    parser.add_argument(
        "--limit", type=int, default=None, metavar="N", help="at most N faces from each HDF5 file (default: all)"
    )
    parser.add_argument(
        "--figure-rows", type=int, default=8, metavar="N", help="faces shown in figure.png (default: 8)",
    )
    add_photo_face_arguments(parser, "analyse")
    add_video_arguments(parser, analyse=True)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "analyze",
        help="split faces into melanin, haemoglobin, shading and specular maps, camera and illuminant",
        description=DESCRIPTION,
    )
    add_model_argument(parser)
    add_analyze_arguments(parser)
    add_refine_arguments(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    from bioface_tf.analysis import analyse, decoder_of, load_model
    from bioface_tf.video import keras_frame_model

    model = load_model(model_file(args, "bioface analyze"))
    model.mirror_average = args.mirror_average
    return analyze_inputs(
        args, model, functools.partial(analyse, model), frame_model=keras_frame_model(model),
        refiner=refiner_from_args(args, decoder_of(model)),
    )


def analyze_inputs(args, model, analyser, prog: str = "bioface analyze", frame_model=None, refiner=None) -> int:
    """Analyse ``args.inputs`` into ``args.out``: images with :func:`bioface_tf.analysis.analyse_files`,
    video clips with :func:`bioface_tf.commands.video_options.analyze_clips`.

    Args:
        args: parsed arguments (:func:`add_analyze_arguments`).
        model: the model, or anything with its ``image_size``.
        analyser: ``(faces, masks) → FaceAnalysis``.
        prog: the command's name in messages.
        frame_model: the :class:`bioface_tf.video.FrameModel` for clips.
        refiner: a :class:`bioface_tf.refinement.Refiner` for photos and
            HDF5 faces (:func:`refiner_from_args`), or None; clips are
            never fitted.

    Raises:
        BioFaceError: ``--refine`` given with video clips among the inputs.
    """
    from bioface_tf.errors import BioFaceError

    clips, images = split_clips(args.inputs)
    if clips and explicit_refine(args):
        raise BioFaceError(f"--refine is for photos and HDF5 faces, not video clips ({clips[0]})")
    status = analyze_clips(args, clips, frame_model, prog) if clips else 0
    if images:
        status = max(status, _analyze_images(args, images, model, analyser, prog, refiner))
    return status


def _analyze_images(args, inputs, model, analyser, prog: str, refiner=None) -> int:
    """Analyse photos, folders and HDF5 files (:func:`bioface_tf.analysis.analyse_files`); the exit status."""
    from tqdm import tqdm

    from bioface_tf.analysis import analyse_files
    from bioface_tf.errors import BioFaceError

    out = pathlib.Path(args.out)
    result = analyse_files(
        model,
        inputs,
        out,
        limit=args.limit,
        figure_rows=args.figure_rows,
        on_failure=lambda failure: tqdm.write(f"{prog}: skipped {failure.message}", file=sys.stderr),
        analyser=analyser,
        crop=args.crop,
        mask=args.mask,
        all_faces=args.all_faces,
        on_face=lambda face: announce_crop(prog, face.source, face.crop),
        refiner=refiner,
    )
    if not result.names:
        raise BioFaceError(f"no face analysed ({len(result.failures)} inputs failed; see the messages above)")
    count = len(result.names)
    print(f"analysed {count} face{'s' if count != 1 else ''} into {out}/<face>/ (figure: {result.figure})")
    if result.failures:
        print(f"{len(result.failures)} inputs failed:", file=sys.stderr)
        for failure in result.failures:
            print(f"  {failure.message}", file=sys.stderr)
        return 1
    return 0
