"""Video clips in ``bioface analyze`` and ``edit`` (and their ``bioface-lite`` twins).

:func:`add_video_arguments` adds the video flags; :func:`analyze_clips` and
:func:`edit_clip` hand clips to :mod:`bioface_tf.video` and print what was
written. Both commands say that audio is not copied.
"""

from __future__ import annotations

import pathlib
import re
import sys

from bioface_tf.errors import BioFaceError


def add_video_arguments(parser, analyse: bool = False) -> None:
    """Add ``--smooth`` (and, for ``analyze``, ``--maps-video``)."""
    from bioface_tf.video import MAP_TIME_CONSTANT

    parser.add_argument(
        "--smooth", type=float, default=MAP_TIME_CONSTANT, metavar="SECONDS",
        help=f"videos: time constant of the moving average of the maps, light and camera over frames, so that "
        f"an edit does not flicker; 0 turns it off (default: {MAP_TIME_CONSTANT:g})",
    )
    if analyse:
        parser.add_argument(
            "--maps-video", action="store_true",
            help="videos: also write DIR/<clip>/maps.mp4, the figure row (crop, reconstruction, maps) of every frame",
        )


def split_clips(inputs) -> tuple[list[str], list[str]]:
    """``(clips, others)``: the inputs that name videos (:func:`bioface_tf.video.is_video`) and the rest."""
    from bioface_tf.video import is_video

    clips = [str(i) for i in inputs if is_video(i)]
    return clips, [str(i) for i in inputs if not is_video(i)]


def _check(args, path) -> None:
    if args.smooth < 0:
        raise BioFaceError(f"--smooth must be >= 0 seconds, got {args.smooth}")
    if args.all_faces:
        raise BioFaceError(f"{path}: --all-faces is for photos; a video follows its largest face")


def _format(run) -> str:
    return f"{run.width}x{run.height}, {run.fps:g} fps, {run.frames} frames, a face in {run.frames_with_face}"


def _note_faceless(prog: str, run) -> None:
    if run.frames_with_face == 0:
        print(f"{prog}: note: {run.source}: no face found in any of its {run.frames} frames", file=sys.stderr)


def edit_clip(args, edit, frame_model, prog: str) -> int:
    """Edit the clip ``args.image`` into ``args.out`` (:func:`bioface_tf.video.edit_video`)."""
    from bioface_tf.video import AUDIO_NOTE, edit_video

    _check(args, args.image)
    run = edit_video(args.image, args.out, edit, frame_model, crop=args.crop, map_time_constant=args.smooth,
                     residual=args.residual, mask=args.mask)
    _note_faceless(prog, run)
    print(f"wrote {args.out} ({_format(run)}; {AUDIO_NOTE}): {edit}")
    return 0


def _folder_name(path: pathlib.Path, taken: set[str]) -> str:
    """A file-system-safe folder name from the clip's stem, unique among ``taken`` (which it joins)."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", path.stem).strip("._") or "clip"
    name, k = stem, 1
    while name in taken:
        k += 1
        name = f"{stem}_{k}"
    taken.add(name)
    return name


def analyze_clips(args, clips: list[str], frame_model, prog: str) -> int:
    """Analyse each clip into ``args.out/<clip stem>/`` (:func:`bioface_tf.video.analyse_video`).

    A clip that cannot be read is reported on stderr and skipped.

    Returns:
        The exit status: 1 when a clip failed, else 0.
    """
    from tqdm import tqdm

    from bioface_tf.data.celeba import expand_paths
    from bioface_tf.video import AUDIO_NOTE, analyse_video

    failed = 0
    taken: set[str] = set()
    for path in expand_paths(clips):
        _check(args, path)
        out_dir = pathlib.Path(args.out) / _folder_name(path, taken)
        try:
            run = analyse_video(path, out_dir, frame_model, crop=args.crop, map_time_constant=args.smooth,
                                maps_video=args.maps_video, mask=args.mask)
        except BioFaceError as err:
            tqdm.write(f"{prog}: skipped {err}", file=sys.stderr)
            failed += 1
            continue
        _note_faceless(prog, run)
        files = ", ".join(p.name for p in run.outputs)
        print(f"analysed {path} ({_format(run)}) into {out_dir}/ ({files}; {AUDIO_NOTE})")
    return 1 if failed else 0
