"""``bioface synth``: render faces with ground truth through the physics decoder."""

from __future__ import annotations

import pathlib

from bioface_tf.errors import BioFaceError


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "synth",
        help="render faces with known melanin, haemoglobin, shading, specular, camera and light",
        description=(
            "Render faces through the physics decoder and write them to one HDF5 file in "
            "the CelebA layout (zx_7 image data, lrgb SH lighting) plus gt_* ground truth; "
            "'bioface inspect' and the training data reader load it as they load CelebA."
        ),
    )
    parser.add_argument("--n", type=int, required=True, help="number of faces")
    parser.add_argument("--size", type=int, default=64, help="image side in pixels (default: 64)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--out", required=True, metavar="F.h5", help="output HDF5 file")
    parser.add_argument(
        "--figure", metavar="PNG", help="also write a contact sheet of the first 16 faces"
    )
    parser.add_argument(
        "--family", choices=FAMILIES, default="training",
        help="training: the generator models learn from (default); validation_faces: the family "
        "training recipes are chosen by (docs/VALIDATION_FACES.md); eval_faces: the independent, "
        "evaluation-only family (docs/EVAL_FACES.md; bioface train refuses it)",
    )
    parser.add_argument(
        "--variety", default="standard", metavar="NAME",
        help="training family only: the pigment distribution, standard (default), wide, wide_metered "
        "(the shipped model's last stage), wide_metered_blood, wide_toned, wide_metered_uniform, "
        "wide_metered_cameras or wide_metered_context (train.rendered_variety)",
    )
    parser.set_defaults(func=run)


FAMILIES = ("training", "validation_faces", "eval_faces")


def run(args) -> int:
    import cv2
    import h5py

    from bioface_tf.data.synth import contact_sheet, write_synthetic

    if args.variety != "standard" and args.family != "training":
        raise BioFaceError(f"--variety is for the training family, not {args.family}")
    if args.family == "eval_faces":
        from bioface_tf.data.eval_faces import write_eval_faces

        path = write_eval_faces(args.out, n=args.n, size=args.size, seed=args.seed)
    elif args.family == "validation_faces":
        from bioface_tf.data.validation_faces import write_validation_faces

        path = write_validation_faces(args.out, n=args.n, size=args.size, seed=args.seed)
    else:
        path = write_synthetic(args.out, n=args.n, size=args.size, seed=args.seed, variety=args.variety)
    print(f"wrote {args.n} faces ({args.size}x{args.size}) with ground truth to {path}")
    if args.figure:
        with h5py.File(path, "r") as f:
            images = f["zx_7"][:16, :3].transpose(0, 2, 3, 1)
        figure = pathlib.Path(args.figure)
        figure.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(
            str(figure),
            cv2.cvtColor(contact_sheet(images), cv2.COLOR_RGB2BGR),
            [cv2.IMWRITE_PNG_COMPRESSION, 9],
        )
        print(f"wrote {figure}")
    return 0
