"""``bioface inspect``: what a training set holds, and whether it can be used."""

from __future__ import annotations

import json
import sys


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "inspect",
        help="summarise training data (CelebA-layout HDF5 files or face photos) and check it",
        description=(
            "Read every face once and report the number of faces, image size, normal "
            "encoding, mask coverage, shading range, NaN/Inf count and whether ground "
            "truth is present. Exits with status 1, after the summary, if the data "
            "could not be trained on (NaN/Inf values, empty masks, images outside [0, 1])."
        ),
    )
    parser.add_argument(
        "data", nargs="+", metavar="DATA",
        help="zx_7 image files (.hdf5/.h5, globs accepted) or photos / folders of photos",
    )
    parser.add_argument(
        "--lighting", nargs="+", metavar="FILE",
        help="lighting files, one per image file (default: found from each image file's name)",
    )
    parser.add_argument("--size", type=int, default=None, help="required image size (default: any)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.set_defaults(func=run)


def run(args) -> int:
    from bioface_tf.data import inspect as data_inspect

    faces = data_inspect.open_faces(args.data, lighting=args.lighting, image_size=args.size)
    summaries = data_inspect.summarise(faces)
    info = data_inspect.combine(summaries)
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        _print_text(info)
    data_inspect.check(summaries)
    return 0


def _number(value, spec=".4f") -> str:
    return "n/a" if value is None else format(value, spec)


def _print_text(info: dict) -> None:
    encoding = info["normal_encoding"]
    if isinstance(encoding, list):
        encoding = "mixed: " + ", ".join(encoding)
    print(f"faces:             {info['n_faces']}")
    print(f"image size:        {info['image_size']}x{info['image_size']}")
    print(f"normal encoding:   {encoding or 'n/a (no normals)'}")
    print(f"mask coverage:     {info['mask_coverage_mean']:.3f} (mean fraction of the image)")
    print(
        f"shading in masks:  min {_number(info['shading_min'])}, "
        f"mean {_number(info['shading_mean'])}, max {_number(info['shading_max'])}"
    )
    print(f"NaN/Inf values:    {info['nonfinite']}")
    print(f"ground truth:      {'yes' if info['has_ground_truth'] else 'no'}")
    for source in info["sources"]:
        print(f"  {source['source']}: {source['n_faces']} faces")
        for skipped in source["skipped"]:
            print(f"  skipped {skipped}", file=sys.stderr)
