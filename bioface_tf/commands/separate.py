"""``bioface separate``: diffuse and specular images of one photo."""

from __future__ import annotations

import pathlib


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "separate",
        help="split a photo into diffuse and specular images (Kim et al. 2013)",
        description=(
            "Writes IMAGE_diffuse.png and IMAGE_specular.png (refined) and IMAGE_specular_dark.png "
            "(plain dark channel), sRGB-encoded. In linear intensity, diffuse + specular = the image."
        ),
    )
    parser.add_argument("image", metavar="IMAGE", help="a photo (JPEG, PNG, ...)")
    parser.add_argument("--out", metavar="DIR", help="output folder (default: beside IMAGE)")
    parser.add_argument("--mask", metavar="MASK", help="image whose nonzero pixels are the face (default: all)")
    parser.add_argument(
        "--illuminant",
        default="white",
        metavar="white|estimate|R,G,B",
        help="light colour: white-balanced image (default), estimate it, or linear RGB",
    )
    parser.add_argument("--curve", choices=("srgb", "gamma2.2"), default="srgb", help="linearisation curve")
    parser.add_argument(
        "--max-size", type=int, default=1024, help="shrink larger photos to this size first (pixels; 0: never)"
    )
    parser.set_defaults(func=run)


def run(args) -> int:
    import cv2
    import numpy as np

    from bioface_tf import specular
    from bioface_tf.errors import BioFaceError, DataError
    from bioface_tf.specular_targets import read_photo

    path = pathlib.Path(args.image)
    image = read_photo(path, args.max_size)
    mask = None
    if args.mask:
        raw = cv2.imread(args.mask, cv2.IMREAD_GRAYSCALE)
        if raw is None:
            raise DataError(f"{args.mask}: not a readable image")
        mask = cv2.resize(raw, image.shape[1::-1], interpolation=cv2.INTER_NEAREST) > 0
        if not mask.any():
            raise DataError(f"{args.mask}: the mask is empty")
    illuminant = _illuminant(args.illuminant)
    try:
        result = specular.separate(image, mask, illuminant, curve=args.curve)
    except ValueError as err:
        raise BioFaceError(str(err)) from err
    out = pathlib.Path(args.out) if args.out else path.parent
    out.mkdir(parents=True, exist_ok=True)
    outputs = {
        "diffuse": result.diffuse,
        "specular": result.specular_image(),
        "specular_dark": result.specular_dark[..., None] * result.illuminant,
    }
    for name, linear in outputs.items():
        target = out / f"{path.stem}_{name}.png"
        encoded = np.round(specular.encode(linear, args.curve) * 255).astype(np.uint8)
        if not cv2.imwrite(str(target), cv2.cvtColor(encoded, cv2.COLOR_RGB2BGR)):
            raise DataError(f"{target}: cannot write")
        print(target)
    light = ", ".join(f"{c:.3f}" for c in result.illuminant)
    source = "estimated" if result.illuminant_estimated else "assumed"
    print(f"illuminant ({source}): {light}")
    return 0


def _illuminant(text: str):
    from bioface_tf.errors import BioFaceError

    if text == "white":
        return None
    if text == "estimate":
        return "estimate"
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) != 3 or min(values) <= 0:
        raise BioFaceError(f"--illuminant {text!r}: expected white, estimate, or three positive numbers R,G,B")
    return values
