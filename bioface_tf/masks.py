"""Face masks for photos: the skin of the face, or an upright ellipse.

The mask convention (the same for photos, rendered faces and, as far as
their masks allow, CelebA): **1 on the skin of the face** — forehead below
the hairline, cheeks, nose, lips, chin — and 0 on background, hair
(eyebrows included), eyes, the mouth's interior and teeth, glasses' frames,
ears and neck.

:func:`skin_mask` finds that region in a square face crop framed as
:func:`bioface_tf.data.photos.crop_box` frames a detected face (or a whole
image that is already a face crop) with NumPy and OpenCV only — nothing is
downloaded, and the TensorFlow-free runtime (``bioface-lite``) uses it too:

1. **Skin colour**, fitted to this face: a Gaussian in log-chromaticity
   (``log R/G``, ``log B/G`` of linear RGB, which shading does not change),
   fitted robustly (trimmed) to the central part of the face
   (:data:`SEED_SCALE` times the ellipse), where skin dominates. Pixels
   within :data:`COLOUR_THRESHOLD` (squared Mahalanobis distance) are
   skin-coloured, and so are lip-coloured pixels of the lower face (redder
   than the skin, same blue); pixels darker than :data:`DARK_FRACTION` of
   the face's median luminance (brows, pupils, nostrils, deep shadow) are
   not.
2. **Eyes**: OpenCV's bundled eye cascade (``haarcascade_eye.xml``) in the
   upper face; each eye found is cut out as an ellipse.
3. **The face region**: GrabCut (:func:`cv2.grabCut`), seeded with the
   skin-coloured pixels inside the elliptical prior (the ellipse of
   :func:`elliptical_mask`, outside of which nothing is skin), separates the
   face from hair and background of similar colour along image edges. The
   prior follows the face sideways (:func:`prior_centre`): a face turned
   away from the camera, or a crop cut at the photo's edge, sits off the
   crop's centre, and a fixed ellipse cut off its far cheek.
4. **Clean-up**: a small opening and closing, the largest connected region,
   and holes smaller than :data:`SMALL_HOLE` of the crop filled (eyes and
   the open mouth are larger and stay out). A hole around a detected eye —
   the shadowed socket that the colour test rejected, skin by the
   convention — is filled up to :data:`EYE_HOLE` of the crop and the eye
   cut out again (:func:`fill_eye_sockets`); an eye the cascade misses stays
   a hole.

:func:`landmark_mask` (``--mask landmarks``) finds the same region with
the help of 468 face landmarks from MediaPipe's Face Mesh model, shipped
inside this package (``bioface_tf/face_landmark/``, run by ``ai_edge_litert``;
:mod:`bioface_tf.landmarks`): the face oval bounds the face, the eyes, brows
and the mouth's opening are cut out by their outlines, and colour and GrabCut
trim the oval where hair or background reach into it. Where the model sees
no face it falls back to :func:`skin_mask`.

A face whose central colours are not skin colours at all (no redder than
green, or black: a greyscale photo saved as RGB, an object) gets an empty
mask; callers report that as an error naming the file.

Measured against hand-labelled photos and the rendered evaluation faces:
``benchmarks/results/skin_masks.md``.

Example:

>>> crop = crop_square(photo, square, WORK_SIZE)        # doctest: +SKIP
>>> mask = resize_mask(face_mask(crop, "skin"), 64)     # (64, 64) in {0, 1}  # doctest: +SKIP
"""

from __future__ import annotations

import functools
import pathlib

import cv2
import numpy as np

from bioface_tf.errors import DataError

MASK_KINDS = ("skin", "landmarks", "ellipse")
"""What :func:`face_mask` makes: ``skin`` (:func:`skin_mask`), ``landmarks`` (:func:`landmark_mask`) or
``ellipse`` (:func:`elliptical_mask`)."""
MASK_CENTRE = (0.5, 0.53)
"""Centre of the elliptical face mask as fractions of the crop's width and height."""
MASK_SEMI_AXES = (0.33, 0.43)
"""Semi-axes of the elliptical face mask as fractions of the crop's side."""
WORK_SIZE = 128
"""Side, pixels, at which :func:`skin_mask` works; its result is resized to the input's side."""
SEED_SCALE = 0.6
"""The skin colour is fitted inside the ellipse shrunk by this factor."""
TRIM_QUANTILE = 0.8
"""Each refit of the skin colour keeps this fraction of the seed pixels nearest to the last fit."""
TRIM_ROUNDS = 4
COLOUR_THRESHOLD = 20.0
"""Squared Mahalanobis distance in log-chromaticity under which a pixel is skin-coloured."""
DARK_FRACTION = 0.15
"""Pixels darker than this fraction of the face's median linear luminance are not skin."""
LIP_BLUE_SPREAD = 2.0
"""Lip-coloured: redder than the skin and ``log B/G`` within this many standard deviations of the skin's."""
LIP_TOP = 0.6
"""Lip-coloured pixels count as skin only below this fraction of the crop's height."""
LIP_BRIGHTNESS = 1.2
"""… and only when no brighter than this times the face's median luminance (teeth are brighter)."""
EYE_BAND = (0.15, 0.6)
"""Rows of the crop (fractions of its height) searched for eyes."""
EYE_SEARCH_SIZE = 256
"""Side, pixels, at which eyes are searched for."""
EYE_CUT = (0.3, 0.17)
"""Semi-axes of the ellipse cut out per eye, as fractions of the detected eye box."""
PRIOR_SHIFT_ROUNDS = 3
"""Times the prior is moved to the mean column of the skin-coloured pixels inside it (:func:`prior_centre`)."""
PRIOR_SHIFT_LIMIT = 0.15
"""… by at most this fraction of the crop's width from :data:`MASK_CENTRE`."""
GRABCUT_ROUNDS = 4
GRABCUT_SEED = 0
EYE_CASCADE = "haarcascade_eye.xml"
SMALL_HOLE = 0.002
"""Holes in the mask smaller than this fraction of the crop are filled (noise, not eyes or mouth)."""
EYE_HOLE = 0.02
"""A hole that holds a detected eye is filled up to this fraction of the crop before the eye is cut out again."""
MIN_REDNESS = 0.1
"""A face's central colour must have ``log R/G`` above this (skin is redder than green) to be skin."""
MIN_LUMINANCE = 1e-3
"""… and a median linear luminance above this (not black)."""
EPS = 1e-3
LANDMARK_CORE_SCALE = 0.9
""":func:`landmark_mask`: the face oval shrunk by this factor about its centre, less eyes, brows and mouth, is skin."""
LANDMARK_PRIOR_SCALE = 1.25
"""… and nothing outside the face oval grown by this factor is."""


def ellipse(size: int, scale: float = 1.0, centre_x: float = MASK_CENTRE[0]) -> np.ndarray:
    """The elliptical face prior scaled by ``scale`` about its centre, `(size, size)` bool.

    ``centre_x`` (a fraction of the width) moves it sideways.
    """
    coords = (np.arange(size, dtype=np.float32) + 0.5) / size
    u = (coords[None, :] - centre_x) / (MASK_SEMI_AXES[0] * scale)
    v = (coords[:, None] - MASK_CENTRE[1]) / (MASK_SEMI_AXES[1] * scale)
    return u * u + v * v <= 1.0


def elliptical_mask(size: int) -> np.ndarray:
    """A face mask, 1 inside an upright ellipse, `(size, size, 1)` float32."""
    return ellipse(size).astype(np.float32)[..., None]


def linear_rgb(rgb: np.ndarray) -> np.ndarray:
    """sRGB in [0, 1] `(H, W, 3)` decoded to linear RGB, float64."""
    x = np.clip(np.asarray(rgb, np.float64), 0.0, 1.0)
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def log_chromaticity(linear: np.ndarray) -> np.ndarray:
    """``(log R/G, log B/G)`` of linear RGB `(H, W, 3)`, `(H, W, 2)`; unchanged by shading."""
    linear = linear + EPS
    return np.stack([np.log(linear[..., 0] / linear[..., 1]), np.log(linear[..., 2] / linear[..., 1])], axis=-1)


def luminance(linear: np.ndarray) -> np.ndarray:
    """Rec. 709 luminance of linear RGB `(H, W, 3)`, `(H, W)`."""
    return linear @ np.array([0.2126, 0.7152, 0.0722])


def fit_skin_colour(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A Gaussian ``(mean (2,), covariance (2, 2))`` fitted to the skin among `(N, 2)` chromaticities.

    Trimmed: each of :data:`TRIM_ROUNDS` refits keeps the :data:`TRIM_QUANTILE`
    of the samples nearest (Mahalanobis) to the last fit, so eyes, brows and
    stray hair in the sample do not pull it.
    """
    keep = np.ones(len(samples), bool)
    for _ in range(TRIM_ROUNDS):
        mean = samples[keep].mean(axis=0)
        covariance = np.cov(samples[keep].T) + 1e-4 * np.eye(2)
        distance = mahalanobis(samples, mean, covariance)
        keep = distance <= np.quantile(distance, TRIM_QUANTILE)
    return mean, covariance


def mahalanobis(x: np.ndarray, mean: np.ndarray, covariance: np.ndarray) -> np.ndarray:
    """Squared Mahalanobis distance of `(..., 2)` points from a Gaussian, `(...)`."""
    d = x - mean
    return np.einsum("...i,ij,...j->...", d, np.linalg.inv(covariance), d)


@functools.cache
def haar_cascade(filename: str) -> cv2.CascadeClassifier:
    """One of OpenCV's bundled Haar cascades (``cv2.data.haarcascades``), loaded once.

    Raises:
        DataError: the file is missing or not a cascade, naming it.
    """
    path = pathlib.Path(cv2.data.haarcascades) / filename
    detector = cv2.CascadeClassifier(str(path))
    if detector.empty():
        raise DataError(f"{path}: OpenCV's cascade could not be loaded")
    return detector


def eye_regions(rgb: np.ndarray) -> np.ndarray:
    """Where the eyes are in a face crop, `(H, W)` bool (H = W): an ellipse per eye found.

    OpenCV's eye cascade searches rows :data:`EYE_BAND` of the crop, resized
    to :data:`EYE_SEARCH_SIZE`; nothing is marked where it finds nothing.
    """
    side = rgb.shape[0]
    n = EYE_SEARCH_SIZE
    grey = cv2.cvtColor(_to_uint8(cv2.resize(np.asarray(rgb, np.float32), (n, n))), cv2.COLOR_RGB2GRAY)
    top, bottom = int(EYE_BAND[0] * n), int(EYE_BAND[1] * n)
    found = haar_cascade(EYE_CASCADE).detectMultiScale(
        cv2.equalizeHist(grey[top:bottom]), scaleFactor=1.1, minNeighbors=5, minSize=(n // 14, n // 14),
        maxSize=(n // 3, n // 3),
    )
    marks = np.zeros((side, side), np.uint8)
    scale = side / n
    for x, y, w, h in found:
        centre = (int(round((x + w / 2) * scale)), int(round((top + y + h / 2) * scale)))
        axes = (max(1, int(round(EYE_CUT[0] * w * scale))), max(1, int(round(EYE_CUT[1] * h * scale))))
        cv2.ellipse(marks, centre, axes, 0, 0, 360, 1, -1)
    return marks.astype(bool)


def skin_coloured(rgb: np.ndarray) -> np.ndarray:
    """Pixels of a face crop that have this face's skin colour, `(H, W)` bool (H = W).

    Step 1 of the module's method: the trimmed Gaussian of
    :func:`fit_skin_colour` from the centre of the face, lip-coloured pixels
    of the lower face, no dark pixels. All False when the centre is not
    skin-coloured at all (:data:`MIN_REDNESS`, :data:`MIN_LUMINANCE`).
    """
    side = rgb.shape[0]
    linear = linear_rgb(rgb)
    chroma = log_chromaticity(linear)
    bright = luminance(linear)
    seed = ellipse(side, SEED_SCALE)
    mean, covariance = fit_skin_colour(chroma[seed])
    typical = float(np.median(bright[seed]))
    if mean[0] <= MIN_REDNESS or typical <= MIN_LUMINANCE:
        return np.zeros((side, side), bool)
    offset = chroma - mean
    rows = (np.arange(side) + 0.5)[:, None] / side
    lips = (
        (offset[..., 0] > 0)
        & (np.abs(offset[..., 1]) < LIP_BLUE_SPREAD * np.sqrt(covariance[1, 1]))
        & (rows > LIP_TOP)
        & (bright < LIP_BRIGHTNESS * typical)
    )
    return ((mahalanobis(chroma, mean, covariance) < COLOUR_THRESHOLD) | lips) & (bright > DARK_FRACTION * typical)


def prior_centre(seeds: np.ndarray) -> float:
    """Where the elliptical prior's centre goes across a face crop, a fraction of its width.

    Starting at :data:`MASK_CENTRE`, the ellipse is moved :data:`PRIOR_SHIFT_ROUNDS`
    times to the mean column of the skin-coloured pixels inside it, never
    more than :data:`PRIOR_SHIFT_LIMIT` from the crop's centre; a face
    turned sideways, or cut by the photo's edge, is off-centre in its crop.

    Args:
        seeds: `(H, W)` bool, the skin-coloured pixels (:func:`skin_coloured`).
    """
    side = seeds.shape[0]
    centre = MASK_CENTRE[0]
    for _ in range(PRIOR_SHIFT_ROUNDS):
        columns = np.nonzero(seeds & ellipse(side, centre_x=centre))[1]
        if not len(columns):
            break
        shift = np.clip((columns.mean() + 0.5) / side - MASK_CENTRE[0], -PRIOR_SHIFT_LIMIT, PRIOR_SHIFT_LIMIT)
        centre = MASK_CENTRE[0] + float(shift)
    return centre


def face_region(rgb: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """GrabCut's face within the elliptical prior, seeded with skin-coloured pixels, `(H, W)` bool.

    The prior is the ellipse moved sideways by :func:`prior_centre`. GrabCut
    starts its colour models with OpenCV's k-means, which draws from
    OpenCV's global random generator; it is reseeded first, so one photo
    always gets one mask.

    Args:
        rgb: `(H, W, 3)` face crop in [0, 1], H = W.
        seeds: `(H, W)` bool, the skin-coloured pixels (:func:`skin_coloured`).
    """
    side = rgb.shape[0]
    prior = ellipse(side, centre_x=prior_centre(seeds))
    labels = np.full((side, side), cv2.GC_BGD, np.uint8)
    labels[prior] = cv2.GC_PR_BGD
    labels[prior & seeds] = cv2.GC_PR_FGD
    labels[seeds & ellipse(side, SEED_SCALE)] = cv2.GC_FGD
    if not (labels == cv2.GC_FGD).any() or not (labels == cv2.GC_BGD).any():
        return prior & seeds
    return grabcut(rgb, labels)


def grabcut(rgb: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """GrabCut's foreground from initial ``labels`` (``cv2.GC_*``, changed in place), `(H, W)` bool.

    GrabCut starts its colour models with OpenCV's k-means, which draws from
    OpenCV's global random generator; it is reseeded first, so one image
    always gets one result.
    """
    background, foreground = np.zeros((1, 65)), np.zeros((1, 65))
    cv2.setRNGSeed(GRABCUT_SEED)
    cv2.grabCut(_to_uint8(rgb), labels, None, background, foreground, GRABCUT_ROUNDS, cv2.GC_INIT_WITH_MASK)
    return (labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)


def clean(mask: np.ndarray) -> np.ndarray:
    """Opened and closed, its largest connected region, small holes filled; `(H, W)` bool in and out."""
    side = mask.shape[0]
    radius = max(1, side // 64)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    m = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_OPEN, kernel)
    m = cv2.morphologyEx(m, cv2.MORPH_CLOSE, kernel)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=4)
    if count <= 1:
        return np.zeros_like(mask, bool)
    m = labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    count, holes, stats, _ = cv2.connectedComponentsWithStats((~m).astype(np.uint8), connectivity=4)
    small = np.flatnonzero(stats[:, cv2.CC_STAT_AREA] < SMALL_HOLE * side * side)
    return m | np.isin(holes, small[small > 0])


def fill_eye_sockets(mask: np.ndarray, eyes: np.ndarray) -> np.ndarray:
    """``mask`` with each hole that touches ``eyes`` filled when under :data:`EYE_HOLE` of it, less ``eyes``.

    The colour test leaves out the shadowed socket around an eye, a hole
    larger than the eye; only the eye (:func:`eye_regions`) is not skin.
    `(H, W)` bool in and out.
    """
    side = mask.shape[0]
    count, holes, stats, _ = cv2.connectedComponentsWithStats((~mask).astype(np.uint8), connectivity=4)
    sockets = np.unique(holes[eyes & ~mask])
    sockets = sockets[(sockets > 0) & (stats[sockets, cv2.CC_STAT_AREA] < EYE_HOLE * side * side)]
    return (mask | np.isin(holes, sockets)) & ~eyes



def _work_crop(rgb) -> tuple[int, np.ndarray]:
    """``(side, crop)``: a square face crop's side and the crop resized to :data:`WORK_SIZE`, in [0, 1].

    Raises:
        ValueError: ``rgb`` is not `(S, S, 3)`.
    """
    rgb = np.asarray(rgb, np.float32)
    side = rgb.shape[0]
    if rgb.ndim != 3 or rgb.shape[1] != side or rgb.shape[2] != 3:
        raise ValueError(f"a face crop must be (S, S, 3), got {rgb.shape}")
    work = cv2.resize(rgb, (WORK_SIZE, WORK_SIZE), interpolation=cv2.INTER_AREA if side > WORK_SIZE else cv2.INTER_CUBIC)
    return side, np.clip(work, 0.0, 1.0)

def skin_mask(rgb: np.ndarray) -> np.ndarray:
    """The skin of the face in a square face crop, `(H, W)` float32 in {0, 1} (H = W).

    Args:
        rgb: `(H, W, 3)` sRGB in [0, 1], framed as
            :func:`bioface_tf.data.photos.crop_box` frames a face; any side
            (worked on at :data:`WORK_SIZE`, resized back).

    Returns:
        The mask (the module's convention); all zeros when nothing in the
        crop looks like skin.
    """
    side, work = _work_crop(rgb)
    skin = skin_coloured(work)
    if skin.any():
        eyes = eye_regions(work)
        skin = fill_eye_sockets(clean(face_region(work, skin) & skin & ~eyes), eyes)
    return resize_mask(skin.astype(np.float32), side)


def polygon(points: np.ndarray, side: int) -> np.ndarray:
    """The filled polygon through `(N, 2)` ``(x, y)`` pixel points in a `(side, side)` bool image."""
    image = np.zeros((side, side), np.uint8)
    cv2.fillPoly(image, [np.round(np.asarray(points) * 16).astype(np.int32)], 1, shift=4)
    return image.astype(bool)


def landmark_regions(points: np.ndarray, side: int) -> dict[str, np.ndarray]:
    """The regions :func:`landmark_mask` draws from Face Mesh landmarks `(468, 2)` (pixels), `(side, side)` bool each.

    ``oval``: inside the face oval; ``features``: the eyes' openings, the
    brows and the mouth's opening (not skin); ``core``: the oval shrunk by
    :data:`LANDMARK_CORE_SCALE` less the features (surely skin); ``prior``:
    the oval grown by :data:`LANDMARK_PRIOR_SCALE` (nothing beyond is skin).
    """
    from bioface_tf import landmarks as lm

    oval = points[list(lm.FACE_OVAL)]
    centre = oval.mean(axis=0)
    features = np.zeros((side, side), bool)
    for outline in (lm.LEFT_EYE, lm.RIGHT_EYE, lm.LEFT_BROW, lm.RIGHT_BROW, lm.INNER_LIPS):
        features |= polygon(points[list(outline)], side)
    return {
        "oval": polygon(oval, side),
        "features": features,
        "core": polygon(centre + LANDMARK_CORE_SCALE * (oval - centre), side) & ~features,
        "prior": polygon(centre + LANDMARK_PRIOR_SCALE * (oval - centre), side),
    }


def landmark_mask(rgb: np.ndarray) -> np.ndarray:
    """The skin of the face in a square face crop from face landmarks, colour and GrabCut, `(H, W)` float32.

    The face's landmarks (:func:`bioface_tf.landmarks.face_landmarks`,
    MediaPipe's Face Mesh model shipped in this package) give its oval, eyes,
    brows and mouth (:func:`landmark_regions`). The skin colour is fitted as in
    :func:`skin_coloured`, but to the ``core`` (the oval shrunk, less those
    features) instead of the ellipse's centre; GrabCut, seeded surely with
    the skin-coloured core and possibly with the skin-coloured pixels inside
    the grown oval (``prior``), finds where the face meets hair and
    background. The mask is the core and GrabCut's skin-coloured face, less
    the features, cleaned as in :func:`clean` (features smaller than its holes are cut out again).
    Shadowed skin inside the core
    stays in; teeth stay out when the mouth is open.

    Where the model sees no face (its presence probability under
    :data:`bioface_tf.landmarks.PRESENCE_THRESHOLD`) this is :func:`skin_mask`.
    A face whose core is not skin-coloured at all (:data:`MIN_REDNESS`,
    :data:`MIN_LUMINANCE`) gets an empty mask.

    Args:
        rgb: `(H, W, 3)` sRGB in [0, 1], H = W, framed as
            :func:`bioface_tf.data.photos.crop_box` frames a face; worked on at
            :data:`WORK_SIZE` (landmarks included) and resized back.
    """
    from bioface_tf.landmarks import PRESENCE_THRESHOLD, face_landmarks

    side, work = _work_crop(rgb)
    points, presence = face_landmarks(work)
    if presence < PRESENCE_THRESHOLD:
        return skin_mask(rgb)
    regions = landmark_regions(points, WORK_SIZE)
    core = regions["core"]
    if not core.any():
        return skin_mask(rgb)
    linear = linear_rgb(work)
    chroma = log_chromaticity(linear)
    bright = luminance(linear)
    mean, covariance = fit_skin_colour(chroma[core])
    typical = float(np.median(bright[core]))
    if mean[0] <= MIN_REDNESS or typical <= MIN_LUMINANCE:
        return np.zeros((side, side), np.float32)
    seeds = (mahalanobis(chroma, mean, covariance) < COLOUR_THRESHOLD) & (bright > DARK_FRACTION * typical)
    labels = np.full((WORK_SIZE, WORK_SIZE), cv2.GC_BGD, np.uint8)
    labels[regions["prior"]] = cv2.GC_PR_BGD
    labels[regions["prior"] & seeds] = cv2.GC_PR_FGD
    labels[core & seeds] = cv2.GC_FGD
    has_background = ((labels == cv2.GC_BGD) | (labels == cv2.GC_PR_BGD)).any()
    region = grabcut(work, labels) if (labels == cv2.GC_FGD).any() and has_background else regions["prior"]
    skin = clean(((region & seeds) | core) & ~regions["features"]) & ~regions["features"]  # clean fills small holes
    return resize_mask(skin.astype(np.float32), side)


def face_mask(rgb: np.ndarray, kind: str = "skin") -> np.ndarray:
    """The face mask of a square face crop, `(H, W)` float32 in {0, 1}: ``kind`` one of :data:`MASK_KINDS`."""
    if kind not in MASK_KINDS:
        raise ValueError(f"mask must be one of {MASK_KINDS}, got {kind!r}")
    if kind == "ellipse":
        return elliptical_mask(np.asarray(rgb).shape[0])[..., 0]
    if kind == "landmarks":
        return landmark_mask(rgb)
    return skin_mask(rgb)


def resize_mask(mask: np.ndarray, side: int) -> np.ndarray:
    """A `(S, S)` mask resized to `(side, side)` float32 in {0, 1}.

    A pixel is in the result when more than half of it is in the mask
    (area averaging when shrinking, bilinear when enlarging).
    """
    mask = np.asarray(mask, np.float32)
    if mask.shape[0] == side:
        return (mask > 0.5).astype(np.float32)
    interpolation = cv2.INTER_AREA if mask.shape[0] > side else cv2.INTER_LINEAR
    return (cv2.resize(mask, (side, side), interpolation=interpolation) > 0.5).astype(np.float32)


def _to_uint8(rgb: np.ndarray) -> np.ndarray:
    return np.round(np.clip(rgb, 0.0, 1.0) * 255.0).astype(np.uint8)
