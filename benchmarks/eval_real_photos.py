"""Physical sanity of a model's maps on real face photos that ship inside installed wheels.

Nothing is downloaded: each photo is a file inside an installed Python
distribution, found with ``importlib.metadata`` (never through a fetcher
such as pooch), and its SHA-256 is written to the result. Per photo the
largest face is found and cropped as ``bioface analyze`` does
(:mod:`bioface_tf.data.photos`: OpenCV detector, square crop, and the face
mask ``--mask`` names, ``skin`` by default as in ``bioface analyze``, at the
model's size), then:

1. **Reconstruction**: PSNR inside the mask between the crop and the
   model's sRGB reconstruction (``training.evaluate.masked_psnr``).
2. **Exposure invariance**: the whole photo with its exposure halved in
   *linear* light (sRGB decode, ×0.5, sRGB encode) is cropped with the same
   square and analysed again. Reported for melanin and haemoglobin: the mean
   map value (``fmel``/``fblood`` in [−1, 1]) before and after and
   ``|Δmean| / (|mean| + 1e-6)`` in map units — ill-conditioned, because map
   value 0 is not "no melanin"; the **mean volume fraction** inside the mask
   before and after (``bioface_tf.spectra.map_to_volume_fraction``:
   ``0.43·u³`` / ``0.07·u³``, ``u = 0.01 + 0.99·(v + 1)/2``, always > 0) and
   its relative change ``|ΔVf| / Vf`` — **this is the "≤ 10 %" figure**; and
   Pearson r between the two maps inside the mask (goal ≥ 0.9). The ideal
   model puts the factor 0.5 in the diffuse shading, so the ratio of mean
   shading after/before is shown too (ideal 0.5).
3. **Same-person agreement**: views of the same photo — the crop itself,
   mirrored, the square scaled ×0.9 and ×1.1 about its centre, shifted by
   5 % of its side left/right/up/down, and the photo JPEG-compressed at
   quality 75 — and the spread of the mean melanin (and haemoglobin) volume
   fraction over them: range/mean (the same 10 % yardstick; our choice)
   and standard deviation/mean.
4. **Skin-tone order**: the mean melanin volume fraction of each photo,
   with a plain statement of what the available photos can and cannot show.

Photos (each used when its distribution is installed; pins below are the
versions checked):

* ``scikit-image==0.26.0`` — ``skimage/data/astronaut.png``
  (``skimage.data.astronaut()``; bundled in the wheel, not fetched).
* ``matplotlib==3.11.2`` — ``mpl-data/sample_data/grace_hopper.jpg``
  (``matplotlib.cbook.get_sample_data("grace_hopper.jpg")``).
* ``mahotas==1.4.19`` — ``mahotas/demos/data/luispedro.jpg``
  (``mahotas.demos.load("luispedro")``).

More photos: ``--photo PATH`` (repeatable; provenance "user-supplied").

    python benchmarks/eval_real_photos.py --model runs/m/model.keras \\
        --out benchmarks/results/real_photos.md
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import hashlib
import importlib.metadata
import pathlib
import shlex
import sys

import cv2
import numpy as np

from bioface_tf import spectra
from bioface_tf.data.photos import crop_box, crop_square, detect_face, read_photo, square_masks
from bioface_tf.errors import BioFaceError
from bioface_tf.specular import encode, linearise

EXPOSURE_FACTOR = 0.5
MASK_DESCRIPTIONS = {
    "skin": "`bioface_tf.masks.skin_mask`: skin colour, eye cascade and GrabCut; the default of `bioface analyze`",
    "landmarks": "`bioface_tf.masks.landmark_mask`: Face Mesh landmarks, colour and GrabCut",
    "ellipse": "the fixed ellipse of the crop, the default before the skin mask",
}
EPS = 1e-6
GOAL_RELATIVE_CHANGE = 0.10
GOAL_PEARSON = 0.9
FLAT_MAP_STD = 0.01  # a map whose std inside the mask is below this (map units) is near-constant
VIEW_SCALES = (0.9, 1.1)
VIEW_SHIFT = 0.05
JPEG_QUALITY = 75
MAPS = (("fmel", "melanin", spectra.MELANIN_MAX), ("fblood", "haemoglobin", spectra.HAEMOGLOBIN_MAX))


@dataclasses.dataclass(frozen=True)
class BundledPhoto:
    """A face photo shipped as a file inside an installed distribution."""

    name: str
    distribution: str
    file: str  # path inside the distribution's install location
    api: str
    subject: str
    licence: str


BUNDLED_PHOTOS = (
    BundledPhoto(
        "astronaut", "scikit-image", "skimage/data/astronaut.png", "skimage.data.astronaut()",
        "Eileen Collins, NASA astronaut (official NASA portrait, 512×512)",
        "public domain: NASA photograph; skimage's docstring: 'No known copyright restrictions, released "
        "into the public domain' (NASA Great Images database)",
    ),
    BundledPhoto(
        "grace_hopper", "matplotlib", "matplotlib/mpl-data/sample_data/grace_hopper.jpg",
        "matplotlib.cbook.get_sample_data('grace_hopper.jpg')",
        "Commodore Grace M. Hopper, USNR (official US Navy portrait, 20 Jan 1984; crop, 512×600)",
        "public domain: work of the US federal government (U.S. Naval History and Heritage Command photograph); "
        "matplotlib states no separate licence for its sample data",
    ),
    BundledPhoto(
        "luispedro", "mahotas", "mahotas/demos/data/luispedro.jpg", "mahotas.demos.load('luispedro')",
        "Luis Pedro Coelho, mahotas' author (outdoor snapshot, 300×377)",
        "shipped in the MIT-licensed mahotas wheel (a photo of its author); no separate licence for the image",
    ),
)

NOT_USED = (
    "`skimage.data.lfw_subset()` (bundled): 200 greyscale 25×25 crops (100 faces from Labeled Faces in the Wild, "
    "news photos without a stated licence) — greyscale and far too small for the model",
    "mahotas' `lena.jpg` (bundled): a scan of a copyrighted magazine photo — not permissively licensed",
    "skimage images fetched through pooch (e.g. `skimage.data.eagle`, `kidney`, `lily`) and scipy's "
    "`scipy.datasets.face()` (a raccoon): downloaded at run time, and not human faces",
    "imageio's standard images (`imageio:astronaut.png`, `imageio:chelsea.png`, …): downloaded at run time",
    "scikit-learn's `load_sample_images()` (bundled): china.jpg and flower.jpg, no faces; its "
    "`fetch_lfw_people` / `fetch_olivetti_faces` download",
    "insightface's repository ships `t1.jpg` (a group photo) and `Tom_Hanks_54745.png` in its package data with "
    "no stated licence or provenance — not used; OpenCV's wheel ships detector cascades but no photos, and "
    "face_recognition's package data is its models only",
)


# --------------------------------------------------------------------------
# Pure helpers (tested in tests/test_eval_real_photos.py)
# --------------------------------------------------------------------------


def scale_exposure(srgb: np.ndarray, factor: float = EXPOSURE_FACTOR) -> np.ndarray:
    """The photo with its exposure scaled in linear light: sRGB decode, × ``factor``, sRGB encode.

    Args:
        srgb: sRGB-encoded values in [0, 1], any shape.
        factor: exposure factor (0.5: one stop darker).

    Returns:
        float32 sRGB values in [0, 1], same shape.
    """
    return encode(factor * linearise(np.asarray(srgb, np.float32)))


def masked_mean(values: np.ndarray, mask: np.ndarray) -> float:
    """Mean of a `(H, W, 1)` or `(H, W)` map over pixels where ``mask`` > 0.5 (NaN if none)."""
    inside = np.asarray(mask).reshape(np.shape(values)) > 0.5
    picked = np.asarray(values, np.float64)[inside]
    return float(picked.mean()) if picked.size else float("nan")


def masked_std(values: np.ndarray, mask: np.ndarray) -> float:
    """Standard deviation of a map over pixels where ``mask`` > 0.5 (NaN if none)."""
    inside = np.asarray(mask).reshape(np.shape(values)) > 0.5
    picked = np.asarray(values, np.float64)[inside]
    return float(picked.std()) if picked.size else float("nan")


def mean_volume_fraction(values: np.ndarray, mask: np.ndarray, maximum: float) -> float:
    """Mean chromophore volume fraction inside the mask of a scaled map in [−1, 1].

    The map is converted per pixel (``spectra.map_to_volume_fraction``) and
    then averaged, as ``bioface analyze`` does for ``params.json``.
    """
    return masked_mean(spectra.map_to_volume_fraction(np.asarray(values, np.float64), maximum), mask)


def relative_change(before: float, after: float, eps: float = EPS) -> float:
    """``|after − before| / (|before| + eps)``."""
    return abs(after - before) / (abs(before) + eps)


def view_squares(square: tuple[int, int, int]) -> dict[str, tuple[int, int, int]]:
    """Crop squares ``(left, top, side)`` near a face's crop, for same-person views.

    The square scaled by each of :data:`VIEW_SCALES` about its centre, and
    shifted by :data:`VIEW_SHIFT` of its side left, right, up and down.
    """
    left, top, side = square
    cx, cy = left + side / 2.0, top + side / 2.0
    out = {}
    for scale in VIEW_SCALES:
        s = int(round(side * scale))
        out[f"crop ×{scale:g}"] = (int(round(cx - s / 2.0)), int(round(cy - s / 2.0)), s)
    step = int(round(VIEW_SHIFT * side))
    for name, (dx, dy) in {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}.items():
        out[f"shift {name} {VIEW_SHIFT:.0%}"] = (left + dx * step, top + dy * step, side)
    return out


def jpeg_roundtrip(srgb: np.ndarray, quality: int = JPEG_QUALITY) -> np.ndarray:
    """An `(H, W, 3)` sRGB image in [0, 1] after JPEG encoding at ``quality`` and decoding."""
    rgb8 = np.round(np.clip(srgb, 0.0, 1.0) * 255.0).astype(np.uint8)
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(rgb8, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise BioFaceError("JPEG encoding failed")
    return cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0


def same_person_views(photo: np.ndarray, square: tuple[int, int, int], size: int) -> dict[str, np.ndarray]:
    """Crops `(size, size, 3)` of one face: the crop, mirrored, rescaled, shifted, JPEG."""
    crop = crop_square(photo, square, size)
    views = {"crop": crop, "mirrored": np.ascontiguousarray(crop[:, ::-1])}
    for name, other in view_squares(square).items():
        views[name] = crop_square(photo, other, size)
    views[f"JPEG q{JPEG_QUALITY}"] = crop_square(jpeg_roundtrip(photo), square, size)
    return views


def view_masks(photo: np.ndarray, square: tuple[int, int, int], size: int, kind: str) -> np.ndarray:
    """Face masks `(N, size, size, 1)` aligned with :func:`same_person_views`' views, then the darker crop.

    Each rescaled or shifted view gets the mask of its own square
    (:func:`bioface_tf.data.photos.square_masks`, as ``bioface analyze
    --mask KIND`` computes it); the mirrored view the crop's mask mirrored;
    the JPEG view and the darker crop the crop's own, so that only the
    compression or the exposure differs.
    """
    crop = square_masks(photo, square, kind, [size])[0]
    masks = [crop, np.ascontiguousarray(crop[:, ::-1])]
    masks += [square_masks(photo, other, kind, [size])[0] for other in view_squares(square).values()]
    masks += [crop, crop]
    return np.stack(masks)[..., None].astype(np.float32)


def spread(values) -> dict[str, float]:
    """``mean``, ``range_rel`` ((max − min)/mean) and ``std_rel`` (std/mean) of positive values."""
    v = np.asarray(values, np.float64)
    mean = float(v.mean())
    return {"mean": mean, "range_rel": float((v.max() - v.min()) / mean), "std_rel": float(v.std() / mean)}


# --------------------------------------------------------------------------
# Photos
# --------------------------------------------------------------------------


@dataclasses.dataclass
class Photo:
    name: str
    path: pathlib.Path
    provenance: str
    licence: str
    sha256: str


def bundled_photos() -> tuple[list[Photo], list[str]]:
    """The bundled photos whose distributions are installed, and notes on those missing."""
    found, missing = [], []
    for spec in BUNDLED_PHOTOS:
        try:
            dist = importlib.metadata.distribution(spec.distribution)
        except importlib.metadata.PackageNotFoundError:
            missing.append(f"{spec.name}: `{spec.distribution}` is not installed (pip install {spec.distribution})")
            continue
        path = pathlib.Path(dist.locate_file(spec.file))
        if not path.is_file():
            missing.append(f"{spec.name}: {spec.distribution} {dist.version} has no {spec.file}")
            continue
        provenance = f"{spec.subject}; `{spec.distribution}=={dist.version}`, `{spec.file}` (`{spec.api}`)"
        found.append(Photo(spec.name, path, provenance, spec.licence, _sha256(path)))
    return found, missing


def user_photos(paths) -> list[Photo]:
    return [Photo(pathlib.Path(p).stem, pathlib.Path(p), f"user-supplied: `{p}`", "as supplied", _sha256(p)) for p in paths]


def _sha256(path) -> str:
    return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


# --------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------


def evaluate_photo(model, photo: np.ndarray, refiner=None, mask_kind: str = "skin") -> dict | None:
    """All checks on one photo (sRGB `(H, W, 3)`); None when no face is found.

    With ``refiner`` (a :class:`bioface_tf.refinement.Refiner`) every view is
    fitted after the network at the refiner's working size, and every check
    reads the fitted maps at that size. ``mask_kind``: the face mask every
    figure is taken inside (:data:`bioface_tf.masks.MASK_KINDS`; ``skin`` is
    ``bioface analyze``'s default).
    """
    from bioface_tf.analysis import analyse
    from training.evaluate import masked_pearson, masked_psnr

    box = detect_face(photo)
    if box is None:
        return None
    size = model.image_size
    square = crop_box(box)
    views = same_person_views(photo, square, size)
    darker = crop_square(scale_exposure(photo), square, size)
    names = list(views)
    crops = np.stack([views[n] for n in names] + [darker])
    masks = view_masks(photo, square, size, mask_kind)
    faces = analyse(model, crops, masks)
    if refiner is not None and refiner.work_size:
        size = refiner.work_size
        views = same_person_views(photo, square, size)
        crops = np.stack([views[n] for n in names] + [crop_square(scale_exposure(photo), square, size)])
        masks = view_masks(photo, square, size, mask_kind)
        faces = refiner(faces, crops, masks).faces
    elif refiner is not None:
        faces = refiner(faces).faces
    p = faces.params
    first, last = 0, len(crops) - 1  # the crop itself, and the darker crop
    mask = masks[first]

    result = {
        "square": square,
        "psnr": float(masked_psnr(crops[[first]], faces.reconstruction[[first]], masks[[first]])[0]),
        "psnr_darker": float(masked_psnr(crops[[last]], faces.reconstruction[[last]], masks[[last]])[0]),
        "shading_ratio": masked_mean(p["shading"][last], mask) / masked_mean(p["shading"][first], mask),
        "views": {},
    }
    for key, name, maximum in MAPS:
        before, after = masked_mean(p[key][first], mask), masked_mean(p[key][last], mask)
        vf_before = mean_volume_fraction(p[key][first], mask, maximum)
        vf_after = mean_volume_fraction(p[key][last], mask, maximum)
        result[name] = {
            "map_before": before,
            "map_std": masked_std(p[key][first], mask),
            "map_after": after,
            "map_rel_change": relative_change(before, after),
            "vf_before": vf_before,
            "vf_after": vf_after,
            "vf_rel_change": relative_change(vf_before, vf_after, eps=0.0),
            "r": float(masked_pearson(p[key][[first]], p[key][[last]], masks[[first]])[0]),
        }
        vfs = [mean_volume_fraction(p[key][i], masks[i], maximum) for i in range(len(names))]
        result[name]["views"] = dict(zip(names, vfs))
        result[name]["spread"] = spread(vfs)
    return result


# --------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------


def _ok(passed: bool) -> str:
    return "yes" if passed else "**no**"


def report(
    command: str, model_path, model, photos: list[Photo], missing: list[str], results: dict, mask_kind: str = "skin"
) -> str:
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    versions = ", ".join(
        f"{d} {importlib.metadata.version(d)}"
        for d in ("tensorflow", "keras", "opencv-python-headless", "scikit-image", "matplotlib", "mahotas")
        if _installed(d)
    )
    ok = {n: r for n, r in results.items() if r is not None}
    lines = [
        "# Real face photos: physical sanity of the maps",
        "",
        f"Command: `{command}`",
        "",
        f"Model: `{model_path}` ({model.image_size}×{model.image_size}, preprocessing "
        f"`{getattr(model, 'preprocessing', 'reference')}`). Date: {now}. Versions: {versions}.",
        "",
        "Faces are found and cropped as `bioface analyze` does (OpenCV detector, square crop 1.5× the box); "
        f"every number is inside the face mask `--mask {mask_kind}` computes ({MASK_DESCRIPTIONS[mask_kind]}; "
        "each rescaled or shifted view has its own square's mask, the mirrored view the crop's mirrored, the "
        "JPEG view and the darker crop the crop's own). Volume fractions (Vf) come from the scaled maps "
        "by `spectra.map_to_volume_fraction` (melanin `0.43·u³`, haemoglobin `0.07·u³`, "
        "`u = 0.01 + 0.99·(v+1)/2`), per pixel, then averaged.",
        "",
        "## Photos",
        "",
        "All are files inside installed wheels; nothing is downloaded.",
        "",
        "| photo | face found | provenance | licence | SHA-256 |",
        "|---|---|---|---|---|",
    ]
    for photo in photos:
        found = "yes" if results.get(photo.name) is not None else "**no face found**"
        lines.append(f"| {photo.name} | {found} | {photo.provenance} | {photo.licence} | `{photo.sha256[:16]}…` |")
    if missing:
        lines += ["", "Not available here: " + "; ".join(missing) + "."]
    lines += ["", "Looked at and not used:", ""] + [f"- {item}" for item in NOT_USED]

    lines += [
        "",
        "## 1–2. Reconstruction and exposure invariance",
        "",
        f"Exposure ×{EXPOSURE_FACTOR:g} in linear light (sRGB decode, ×{EXPOSURE_FACTOR:g}, sRGB encode) of the "
        "whole photo, cropped with the same square. **The \"≤ 10 %\" figure is `|ΔVf|/Vf`, the relative change "
        "of the mean volume fraction** (the physical quantity; Vf > 0 always). `|Δv|/(|v|+ε)` is the same in map "
        "units (ε = 1e-6): map value 0 is mid-range, not zero melanin, so it explodes near 0 and is shown "
        "only because it was asked for. r: Pearson r of the two maps inside the mask (goal ≥ 0.9). "
        "Shading ratio: mean diffuse shading after/before (a model that puts the exposure in the shading gives 0.5).",
        "",
        "| photo | PSNR dB | PSNR dB (darker) | shading ratio |",
        "|---|---:|---:|---:|",
    ]
    for name, r in ok.items():
        lines.append(f"| {name} | {r['psnr']:.2f} | {r['psnr_darker']:.2f} | {r['shading_ratio']:.3f} |")
    for _, label, _ in MAPS:
        lines += [
            "",
            f"**{label.capitalize()}**",
            "",
            "| photo | mean map v | std v | v (darker) | \\|Δv\\|/(\\|v\\|+ε) | mean Vf | Vf (darker) "
            "| **\\|ΔVf\\|/Vf** | ≤ 10 % | r | ≥ 0.9 |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---|",
        ]
        for name, r in ok.items():
            m = r[label]
            lines.append(
                f"| {name} | {m['map_before']:+.4f} | {m['map_std']:.4f} | {m['map_after']:+.4f} | {m['map_rel_change']:.1%} "
                f"| {m['vf_before']:.5f} | {m['vf_after']:.5f} | **{m['vf_rel_change']:.1%}** "
                f"| {_ok(m['vf_rel_change'] <= GOAL_RELATIVE_CHANGE)} | {_fmt_r(m['r'])} "
                f"| {_ok(bool(m['r'] >= GOAL_PEARSON))} |"
            )

    flat = [f"{name} ({label})" for name, r in ok.items() for _, label, _ in MAPS if r[label]["map_std"] < FLAT_MAP_STD]
    if flat:
        lines += [
            "",
            f"**Near-constant maps** (std inside the mask < {FLAT_MAP_STD:g} map units): {', '.join(flat)}. "
            "A map that hardly varies passes the mean-based checks (exposure, same-person) trivially and its r is "
            "dominated by noise; read those rows as \"the model ignores the photo\", not as invariance.",
        ]
    lines += [
        "",
        "## 3. Same-person agreement",
        "",
        f"Views of each photo: the crop, mirrored, the square ×{VIEW_SCALES[0]:g} and ×{VIEW_SCALES[1]:g} about "
        f"its centre, shifted {VIEW_SHIFT:.0%} of its side left/right/up/down, and the photo JPEG-compressed at "
        f"quality {JPEG_QUALITY}. Spread of the mean volume fraction over the views: range/mean "
        "(≤ 10 % is our yardstick, the exposure check's) and std/mean.",
        "",
        "| photo | views | melanin mean Vf | range/mean | std/mean | ≤ 10 % | haemoglobin mean Vf | range/mean "
        "| std/mean | ≤ 10 % |",
        "|---|---:|---:|---:|---:|---|---:|---:|---:|---|",
    ]
    for name, r in ok.items():
        mel, hb = r["melanin"]["spread"], r["haemoglobin"]["spread"]
        lines.append(
            f"| {name} | {len(r['melanin']['views'])} | {mel['mean']:.5f} | {mel['range_rel']:.1%} | "
            f"{mel['std_rel']:.1%} | {_ok(mel['range_rel'] <= GOAL_RELATIVE_CHANGE)} | {hb['mean']:.5f} | "
            f"{hb['range_rel']:.1%} | {hb['std_rel']:.1%} | {_ok(hb['range_rel'] <= GOAL_RELATIVE_CHANGE)} |"
        )
    if ok:
        views = list(next(iter(ok.values()))["melanin"]["views"])
        lines += [
            "",
            "Mean melanin Vf per view:",
            "",
            "| view | " + " | ".join(ok) + " |",
            "|---|" + "---:|" * len(ok),
        ]
        for view in views:
            lines.append(f"| {view} | " + " | ".join(f"{r['melanin']['views'][view]:.5f}" for r in ok.values()) + " |")

    lines += ["", "## 4. Skin-tone order", ""]
    if ok:
        order = sorted(ok, key=lambda n: ok[n]["melanin"]["vf_before"])
        lines += [
            "| photo | mean melanin Vf |",
            "|---|---:|",
            *[f"| {n} | {ok[n]['melanin']['vf_before']:.5f} |" for n in order],
            "",
        ]
    bundled = [p for p in photos if not p.provenance.startswith("user-supplied")]
    lines.append(
        f"Only {len(ok)} real photo(s) were analysed ({len(bundled)} bundled in installed wheels). The bundled "
        "subjects all have light skin, and no wheel we could find ships a permissively licensed photo of visibly "
        "darker skin, so **the skin-tone-order check is not covered**: the order above mixes people, cameras and "
        "lighting and says nothing about whether mean melanin rises with darker skin. Re-rendering a photo with "
        "more melanin through the model itself would be circular and is not done. Add licensed photos with "
        "`--photo` to cover it."
    )
    return "\n".join(lines) + "\n"


def _fmt_r(r: float) -> str:
    return "–" if not np.isfinite(r) else f"{r:.3f}"


def _installed(dist: str) -> bool:
    try:
        importlib.metadata.version(dist)
        return True
    except importlib.metadata.PackageNotFoundError:
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a trained BioFaceNet .keras file")
    parser.add_argument("--out", default="benchmarks/results/real_photos.md", help="markdown result file")
    parser.add_argument("--photo", action="append", default=[], help="another face photo (repeatable)")
    parser.add_argument("--refine", type=int, default=None, metavar="STEPS",
                        help="fit each view after the network (bioface_tf.refinement), STEPS steps")
    parser.add_argument("--refine-size", type=int, default=256, metavar="N", help="working size of --refine")
    parser.add_argument("--mask", choices=tuple(MASK_DESCRIPTIONS), default="skin",
                        help="the face mask, as 'bioface analyze --mask' (default: skin, its default)")
    args = parser.parse_args(argv)

    from bioface_tf.analysis import load_model

    command = "python benchmarks/eval_real_photos.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    photos, missing = bundled_photos()
    photos += user_photos(args.photo)
    if not photos:
        print("no photos available: " + "; ".join(missing), file=sys.stderr)
        return 1
    try:
        model = load_model(args.model)
    except BioFaceError as err:
        print(err, file=sys.stderr)
        return 1
    refiner = None
    if args.refine is not None:
        from bioface_tf.analysis import decoder_of
        from bioface_tf.refinement import Refiner, RefineSettings

        refiner = Refiner(decoder_of(model), RefineSettings(steps=args.refine), args.refine_size, progress=False)
    results = {}
    for photo in photos:
        results[photo.name] = evaluate_photo(model, read_photo(photo.path), refiner, args.mask)
        if results[photo.name] is None:
            print(f"{photo.path}: no face found", file=sys.stderr)
    text = report(command, args.model, model, photos, missing, results, args.mask)
    print(text)
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
