"""Face masks against hand labels and rendered ground truth: the old ellipse, the skin mask and the landmark mask.

Two kinds of truth, nothing downloaded:

1. **Hand-labelled photos** that ship inside installed wheels (the photos of
   ``benchmarks/eval_real_photos.py``): ``tests/data/skin_labels/<photo>.json``
   holds polygons of each face's skin in photo pixels (how they were made:
   the file's ``note``). Per photo the largest face is found and cropped as
   ``bioface analyze`` does (:mod:`bioface_tf.data.photos`), and the
   intersection over union (IoU) of each mask with the label is taken
   (a) in the model's crop (default 64×64; a label pixel counts when more
   than half of it is skin) and (b) at the photo's own resolution inside
   the crop's square.
2. **Rendered evaluation faces** (:mod:`bioface_tf.data.eval_faces`), whose
   mask is the skin by construction: the IoU of each mask with it, on the
   whole rendered image taken as the face crop.

    python benchmarks/eval_skin_masks.py --out benchmarks/results/skin_masks.md \\
        --figure docs/figures/skin_mask.png
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import pathlib
import shlex
import sys
import time

import cv2
import numpy as np

from bioface_tf.data.photos import crop_box, crop_square, detect_face, read_photo, square_masks
from bioface_tf.masks import WORK_SIZE, elliptical_mask, landmark_mask, resize_mask, skin_mask

LABELS = pathlib.Path(__file__).resolve().parents[1] / "tests" / "data" / "skin_labels"
GOAL_IOU = 0.85
HELD_OUT = ("grace_hopper",)
"""Labelled photos kept out of all tuning of :mod:`bioface_tf.masks` (the others are its tuning set)."""
FIGURE_SIDE = 256


def label_mask(layers: list[dict], height: int, width: int) -> np.ndarray:
    """A label's polygons painted in order (``value`` 1 adds skin, 0 removes it), `(height, width)` float32."""
    mask = np.zeros((height, width), np.uint8)
    for layer in layers:
        cv2.fillPoly(mask, [np.asarray(layer["points"], np.int32)], int(layer["value"]))
    return mask.astype(np.float32)


def square_of(mask: np.ndarray, square: tuple[int, int, int]) -> np.ndarray:
    """The square ``(left, top, side)`` of a `(H, W)` mask, zero beyond its edge, `(side, side)`."""
    left, top, side = square
    padded = cv2.copyMakeBorder(mask, side, side, side, side, cv2.BORDER_CONSTANT, value=0)
    return padded[top + side : top + 2 * side, left + side : left + 2 * side]


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two masks (pixels above 0.5), 0 when both are empty."""
    a, b = np.asarray(a) > 0.5, np.asarray(b) > 0.5
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 0.0


def read_label(path: pathlib.Path) -> tuple[dict, pathlib.Path | None]:
    """A label file and the photo it labels (None when its distribution is not installed)."""
    label = json.loads(path.read_text())
    try:
        dist = importlib.metadata.distribution(label["distribution"])
    except importlib.metadata.PackageNotFoundError:
        return label, None
    photo = pathlib.Path(dist.locate_file(label["file"]))
    return label, photo if photo.is_file() else None


def photo_ious(label: dict, photo: pathlib.Path, size: int) -> dict:
    """IoU of the ellipse, the skin and the landmark mask with ``label`` in the model's crop and at the photo's resolution."""
    rgb = read_photo(photo)
    box = detect_face(rgb)
    if box is None:
        raise RuntimeError(f"{photo}: no face found")
    square = crop_box(box)
    side = square[2]
    truth = square_of(label_mask(label["layers"], *rgb.shape[:2]), square)
    start = time.perf_counter()
    (work,) = square_masks(rgb, square, "skin", [WORK_SIZE])
    seconds = time.perf_counter() - start
    start = time.perf_counter()
    (landmarks,) = square_masks(rgb, square, "landmarks", [WORK_SIZE])
    landmark_seconds = time.perf_counter() - start
    truth_small = resize_mask(truth, size)
    return {
        "square": square,
        "sha256_matches": hashlib.sha256(photo.read_bytes()).hexdigest() == label["sha256"],
        "ellipse_crop": iou(elliptical_mask(size)[..., 0], truth_small),
        "skin_crop": iou(resize_mask(work, size), truth_small),
        "ellipse_photo": iou(elliptical_mask(side)[..., 0], truth),
        "skin_photo": iou(resize_mask(work, side), truth),
        "landmarks_crop": iou(resize_mask(landmarks, size), truth_small),
        "landmarks_photo": iou(resize_mask(landmarks, side), truth),
        "seconds": seconds,
        "landmark_seconds": landmark_seconds,
        "rgb": rgb,
        "work": work,
        "landmarks": landmarks,
        "truth": truth,
    }


def eval_face_ious(n: int, size: int, seed: int) -> dict[str, np.ndarray]:
    """Per-face IoU of the ellipse, the skin and the landmark mask with the rendered evaluation faces' masks."""
    from bioface_tf.data.eval_faces import render_eval_faces

    faces = render_eval_faces(n, size, seed=seed)
    ellipse = elliptical_mask(size)[..., 0]
    skin = [skin_mask(image) for image in faces["image"]]
    return {
        "ellipse": np.array([iou(ellipse, truth) for truth in faces["mask"]]),
        "skin": np.array([iou(m, truth) for m, truth in zip(skin, faces["mask"])]),
        "landmarks": np.array([iou(landmark_mask(image), truth) for image, truth in zip(faces["image"], faces["mask"])]),
    }


def figure(rows: list[tuple[str, dict]]) -> np.ndarray:
    """Per photo: the crop, the old ellipse, the skin mask, the landmark mask and the hand label (outside darkened)."""
    n = FIGURE_SIDE
    tiles = []
    for name, r in rows:
        crop = crop_square(r["rgb"], r["square"], n)
        panels = [crop]
        for title, mask in (
            ("ellipse (old)", elliptical_mask(n)[..., 0]),
            ("skin", resize_mask(r["work"], n)),
            ("landmarks", resize_mask(r["landmarks"], n)),
            ("hand label", resize_mask(r["truth"], n)),
        ):
            shown = crop * (0.25 + 0.75 * mask[..., None])
            outline = np.zeros((n, n), np.uint8)
            contours, _ = cv2.findContours((mask > 0.5).astype(np.uint8), cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
            cv2.drawContours(outline, contours, -1, 1, 1)
            shown[outline > 0] = (1.0, 0.85, 0.0)
            panels.append(shown)
        row = np.concatenate(panels, axis=1)
        titles = [name, "ellipse (old)", "skin", "landmarks", "hand label"]
        for k, text in enumerate(titles):
            cv2.putText(row, text, (k * n + 6, n - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (1.0, 1.0, 1.0), 1, cv2.LINE_AA)
        tiles.append(row)
    return np.clip(np.concatenate(tiles, axis=0), 0.0, 1.0)


def report(rows: list[tuple[str, dict]], missing: list[str], faces: dict, args) -> str:
    lines = [
        "# Face masks: the old ellipse, the skin mask and the landmark mask",
        "",
        f"`{shlex.join(['python', *sys.argv])}`",
        "",
        f"Goal: IoU ≥ {GOAL_IOU} with the truth. Skin mask (`--mask skin`, the default): "
        "`bioface_tf.masks.skin_mask` (colour + eye cascade + GrabCut); landmark mask (`--mask landmarks`): "
        "`bioface_tf.masks.landmark_mask` (MediaPipe's Face Mesh landmarks, shipped in the package, + colour + "
        "GrabCut); ellipse: `bioface_tf.masks.elliptical_mask` (the mask used before).",
        "",
        "## Hand-labelled photos",
        "",
        f"IoU with the hand label (`tests/data/skin_labels/`), in the model's {args.size}×{args.size} crop and at the "
        "photo's resolution inside the crop's square.",
        "",
        f"Split: the photos in `HELD_OUT` ({', '.join(HELD_OUT)}) were kept out of all tuning of the skin and "
        "the landmark mask; the others are the set their thresholds and steps were chosen on.",
        "",
        f"| photo | split | crop square (left, top, side) | ellipse, {args.size}² | skin, {args.size}² | "
        f"landmarks, {args.size}² | ellipse, photo res | skin, photo res | landmarks, photo res | skin mask s | "
        "landmark mask s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in rows:
        flag = "" if r["sha256_matches"] else " (photo differs from the labelled one!)"
        split = "held out" if name in HELD_OUT else "tuning"
        lines.append(
            f"| {name}{flag} | {split} | {tuple(int(v) for v in r['square'])} | {r['ellipse_crop']:.3f} "
            f"| {r['skin_crop']:.3f} | {r['landmarks_crop']:.3f} | {r['ellipse_photo']:.3f} | {r['skin_photo']:.3f} "
            f"| {r['landmarks_photo']:.3f} | {r['seconds']:.2f} | {r['landmark_seconds']:.2f} |"
        )
    lines += [f"- not measured: {m}" for m in missing]
    lines += [
        "",
        "## Rendered evaluation faces",
        "",
        f"{len(faces['skin'])} faces of `bioface_tf.data.eval_faces` (seed {args.seed}, {args.size}×{args.size}), "
        "each taken whole as the face crop; truth: their skin mask (no hair, eyes, mouth interior, neck).",
        "",
        "| mask | mean IoU | median | 10th percentile | min | faces ≥ goal |",
        "|---|---|---|---|---|---|",
    ]
    for kind in ("ellipse", "skin", "landmarks"):
        v = faces[kind]
        lines.append(
            f"| {kind} | {v.mean():.3f} | {np.median(v):.3f} | {np.percentile(v, 10):.3f} | {v.min():.3f} | "
            f"{int((v >= GOAL_IOU).sum())}/{len(v)} |"
        )
    lines += [
        "",
        "## Method and what it misses",
        "",
        "Chosen by these numbers among: the ellipse; skin colour alone (a trimmed Gaussian fitted to the centre of "
        "the face, with and without luminance); GrabCut alone; and their combination with OpenCV's eye cascade "
        "(the default). Second round, chosen on the tuning photos and the rendered faces only: the elliptical "
        "prior follows the skin sideways (`prior_centre`), and a hole around a detected eye (its shadowed socket) "
        "is filled up to 2 % of the crop before the eye is cut out again (`fill_eye_sockets`). Before it (commit "
        f"28e3774), {args.size}² IoU: astronaut 0.789, luispedro 0.764 (tuning), grace_hopper 0.763 (held out); "
        "rendered faces mean 0.811 (28/48 ≥ goal). A first version filled every hole up to 2 % (luispedro "
        "0.861, rendered 0.819) but also filled eyes the cascade missed, against the convention (a test's cartoon "
        "face kept its eye whites), and took grace_hopper's held-out IoU to 0.753 (the rims inside her glasses); "
        "it was replaced for the convention's sake, so the held-out photo has now been looked at twice. Tried and "
        "dropped on the tuning set: a larger prior (takes in neck, ears and hair), brows as dark blobs above the "
        "detected eyes (+0.005 on one photo, misses light brows), the mouth's interior from lip colour or from "
        "OpenCV's smile cascade (which finds the chin), black-hat darkness, tighter colour or darkness "
        "thresholds (all lower). No landmark model installs offline here (mediapipe, dlib and face-alignment are "
        "not in the local package index), so none is used.",
        "",
        "**Landmark mask** (`--mask landmarks`, issue 11; the default stays `skin`). MediaPipe's Face Mesh "
        "landmark model ships inside the mediapipe wheels 0.10.14–0.10.21 "
        "(`mediapipe/modules/face_landmark/face_landmark.tflite`), but those pin `protobuf<5` and cannot be "
        "installed next to `tensorflow==2.21.0` (`protobuf>=6.31.1`); mediapipe 0.10.30 and later (1.x) ship no "
        "model files (their Tasks API downloads a `.task` file). So the 1.2 MB model (Apache-2.0) is vendored in "
        "`bioface_tf/face_landmark/` and run with `ai-edge-litert`; nothing is downloaded. "
        "`bioface_tf.landmarks` runs it twice (the crop, then the eye-levelled region of interest from the first "
        "landmarks, as MediaPipe tracks); `landmark_mask` cuts out the eyes' and the mouth's openings and the "
        "brows by their outlines, takes the face oval shrunk to 0.9 as skin, and lets colour + GrabCut (prior: "
        "the oval grown 1.25×) decide the border with hair and background; where the model sees no face "
        "(P < 0.5: 7 of the 48 rendered faces) it is the skin mask. Chosen on the tuning photos and rendered "
        "faces: core scale 0.8/0.9/1.0 (0.9), prior scale 1.15/1.25/1.35, colour threshold 20/30, hole filling, "
        "the core gated by colour (lower on both: shadowed skin lost), eye and brow margins (lower). The first "
        "version re-filled features smaller than `clean`'s holes (brows, a closed mouth: against the convention; "
        "rendered faces 0.829, 31/48, which keep brows in half the faces; grace_hopper 0.730); cutting them again "
        "after the clean-up gives the numbers above. grace_hopper was scored once per version and not tuned on: "
        "her glasses' frames lie inside the oval's core, which is taken as skin whatever its colour, so they stay "
        "in the mask, and her hidden brows are cut where the label has frame or skin. The rendered faces' "
        "mannequin geometry suits the landmark model less than photos (oval and eyes often misplaced).",
        "",
        "Seen in the figure (`--figure`) and in per-class error counts: colour cannot tell the neck from the chin, "
        "nor amber glasses' frames or blond/grey hair at the temples from skin (grace_hopper, unchanged); teeth "
        "in a warm photo (astronaut: about 230 of 5800 label pixels in the 128² work crop) and light brows "
        "(about 140) stay in the mask; the shadowed side of a face (luispedro's left eye socket, open to the "
        "background) is missed; the hand labels' own boundaries are uncertain by 2–3 photo pixels, which alone "
        "costs a few points of IoU on a small face, and astronaut's label reaches about 8 pixels into the fringe "
        "above the forehead (left as labelled).",
        "",
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=pathlib.Path, help="write the markdown table here (default: print it)")
    parser.add_argument("--figure", type=pathlib.Path, help="write the old/new mask figure here (PNG)")
    parser.add_argument("--size", type=int, default=64, help="the model's crop side (default: 64)")
    parser.add_argument("--faces", type=int, default=48, help="rendered evaluation faces (default: 48)")
    parser.add_argument("--seed", type=int, default=0, help="their seed (default: 0)")
    args = parser.parse_args(argv)

    rows, missing = [], []
    for path in sorted(LABELS.glob("*.json")):
        label, photo = read_label(path)
        if photo is None:
            missing.append(f"{label['photo']}: `{label['distribution']}` is not installed")
            continue
        rows.append((label["photo"], photo_ious(label, photo, args.size)))
    faces = eval_face_ious(args.faces, args.size, args.seed)
    text = report(rows, missing, faces, args)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    print(text)
    if args.figure and rows:
        from bioface_tf.figures import write_png

        write_png(args.figure, figure(rows))
        print(f"figure: {args.figure}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
