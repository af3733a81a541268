"""Figure: a photo's maps from the network alone and after the per-photo fit, and a +0.4 melanin edit.

The photo is scikit-image's bundled ``astronaut()`` (public domain, NASA;
nothing downloaded). Its largest face is cropped as ``bioface analyze``
does, with the skin mask; the shipped model answers at its size (64 px),
then :func:`bioface_tf.refinement.refine` fits that answer at the working
size. Top: the maps, first row the network's (resized bilinearly to the
working size, as an upsampled edit would use them), second row the fit.
Bottom: the melanin +0.4 edit re-rendered from each.

    python benchmarks/figure_refinement.py --out docs/figures/refinement_astronaut.png
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

DELTA = 0.4


def main(argv: list[str] | None = None) -> int:
    from skimage import data

    from bioface_tf import figures
    from bioface_tf.analysis import analyse, decoder_of, load_model
    from bioface_tf.data.photos import crop_square, face_squares, square_masks
    from bioface_tf.editing import Edit, edit_faces
    from bioface_tf.refinement import DEFAULT_WORK_SIZE, Refiner

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="a .keras model (default: the shipped one)")
    parser.add_argument("--size", type=int, default=DEFAULT_WORK_SIZE, help="working size of the fit")
    parser.add_argument("--out", default="docs/figures/refinement_astronaut.png")
    args = parser.parse_args(argv)

    model = load_model(args.model)
    photo = data.astronaut().astype(np.float32) / 255.0
    (square, _), *_ = face_squares(photo)
    small_mask, big_mask = square_masks(photo, square, "skin", [model.image_size, args.size])
    faces = analyse(model, crop_square(photo, square, model.image_size)[None], small_mask[None, ..., None])
    refiner = Refiner(decoder_of(model), work_size=args.size, progress=False)
    fit = refiner(faces, crop_square(photo, square, args.size)[None], big_mask[None, ..., None])
    record = refiner.record(fit, 0)
    both = fit.start.take([0, 0])
    for key in both.params:
        both.params[key] = np.concatenate([fit.start.params[key], fit.faces.params[key]])
    both.reconstruction = np.concatenate([fit.start.reconstruction, fit.faces.reconstruction])
    names = [f"network ({model.image_size} px, resized)", f"fitted ({args.size} px)"]
    tile = 192
    maps = figures.analysis_grid(
        both, names, f"astronaut: PSNR in mask {record['psnr_before_db']:.1f} -> {record['psnr_after_db']:.1f} dB, "
        f"{record['seconds']:.1f} s fit", tile,
    )
    edited = edit_faces(both, Edit(melanin=DELTA), refiner.decoder)
    edits = figures.edit_figure(both, edited, "fmel", DELTA, names, tile)
    width = max(maps.shape[1], edits.shape[1])
    pad = [np.pad(f, ((0, 0), (0, width - f.shape[1]), (0, 0)), constant_values=figures.BACKGROUND) for f in (maps, edits)]
    path = figures.write_png(args.out, np.concatenate(pad, axis=0))
    print(f"wrote {path}: {record}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
