"""Faces from ordinary photos (JPEG/PNG of any size).

Each photo is searched for a face with OpenCV's bundled Viola–Jones detector
(``haarcascade_frontalface_default.xml`` from ``cv2.data.haarcascades``); the
largest face found (or, on request, every face) is cropped with a margin to a
square, resized to the model size, and given a face mask: the skin of the
face (:func:`bioface_tf.masks.skin_mask`; ``mask="ellipse"`` for the old
upright ellipse). A face whose mask comes out empty (nothing in its crop
looks like skin) is an error naming the file.

Images that are already face crops (a 64×64 aligned face, the form
CelebA-style data comes in) often hold no face the detector finds: the face
fills the frame. :func:`find_faces` takes such an image whole, as the face
crop, when the detector finds nothing and the image looks like a crop
(:func:`looks_like_face_crop`): it is nearly square (its longer side at most
:data:`CROP_SQUARENESS` times its shorter side) or small (its shorter side at
most :data:`CROP_SMALL_SIDE` pixels). Any other photo without a face is an
error naming the file. ``crop="none"`` takes every image whole. Each face
says how its crop was chosen (:data:`CROP_DETECTED`,
:data:`CROP_WHOLE_UNDETECTED`, :data:`CROP_WHOLE_ASKED`).

Training photos (:class:`PhotoFaces`) use detected faces only: photos without
a face are reported and skipped, never taken whole. Photos carry no normals or
lighting, so their ``shading_valid`` is 0 and the shading loss is off for them.

Example:

>>> faces = PhotoFaces(["my_photos/"], image_size=64)   # doctest: +SKIP
>>> for path, reason in faces.skipped:                  # doctest: +SKIP
...     print(path, reason)
>>> [(f.square, f.crop) for f in find_faces("group.jpg", 64, all_faces=True)]   # doctest: +SKIP
[((40, 60, 210), 'detected face'), ((400, 75, 190), 'detected face')]
"""

from __future__ import annotations

import pathlib
import dataclasses
from collections.abc import Iterable, Sequence

import cv2
import numpy as np
from tqdm import tqdm

from bioface_tf.data.celeba import expand_paths
from bioface_tf.errors import DataError
from bioface_tf.masks import (  # MASK_CENTRE, MASK_SEMI_AXES, elliptical_mask: also read from here
    MASK_CENTRE, MASK_SEMI_AXES, WORK_SIZE, elliptical_mask, face_mask, haar_cascade, resize_mask,
)

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png")
MIN_SIDE = 32
DETECTION_MAX_SIDE = 800
CROP_SCALE = 1.5
CROP_SHIFT_DOWN = 0.05
JPEG_START, JPEG_END = b"\xff\xd8", b"\xff\xd9"
JPEG_TAIL = 4096
FACE_CASCADE = "haarcascade_frontalface_default.xml"
DUPLICATE_OVERLAP = 0.3
"""Two detections whose boxes overlap by more than this (intersection over the smaller box) are one face."""

CROP_MODES = ("detect", "none")
"""How :func:`find_faces` chooses face crops: ``detect`` the detector (an image that looks like a face
crop is taken whole when it finds nothing), ``none`` every image whole."""
CROP_SQUARENESS = 1.25
"""An image whose longer side is at most this times its shorter side looks like a face crop."""
CROP_SMALL_SIDE = 128
"""An image whose shorter side is at most this many pixels looks like a face crop."""
CROP_DETECTED = "detected face"
CROP_WHOLE_UNDETECTED = "whole image (no face detected)"
CROP_WHOLE_ASKED = "whole image (crop=none)"


def is_photo(path: pathlib.Path) -> bool:
    return path.suffix.lower() in PHOTO_SUFFIXES


def read_photo(path: str | pathlib.Path) -> np.ndarray:
    """An RGB photo as float32 sRGB values in [0, 1], `(H, W, 3)`.

    Raises:
        DataError: the file is missing, unreadable or truncated, not RGB
            (greyscale), or far too small to hold a face (a side under 32
            pixels).
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    if _is_truncated_jpeg(path):
        raise DataError(f"{path}: truncated JPEG (the file ends before the image data does)")
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if raw is None:
        raise DataError(f"{path}: unreadable (not a JPEG/PNG image, or truncated)")
    channels = 1 if raw.ndim == 2 else raw.shape[2]
    if channels not in (3, 4):
        kind = "greyscale" if channels in (1, 2) else f"{channels}-channel"
        raise DataError(f"{path}: image is {kind}, not RGB")
    height, width = raw.shape[:2]
    if min(height, width) < MIN_SIDE:
        raise DataError(
            f"{path}: image is {width}x{height} pixels, far too small to hold a face "
            f"(need at least {MIN_SIDE} on each side)"
        )
    scale = 65535.0 if raw.dtype == np.uint16 else 255.0
    rgb = cv2.cvtColor(raw[..., :3], cv2.COLOR_BGR2RGB)
    return rgb.astype(np.float32) / scale


def _is_truncated_jpeg(path: pathlib.Path) -> bool:
    """A JPEG file without its end-of-image marker near the end.

    OpenCV decodes a truncated JPEG without an error (the missing rows come
    out grey), so the marker is checked here. Entropy-coded JPEG data never
    holds the bytes FF D9 (an FF there is followed by 00 or a restart
    marker), so the marker's absence from the file's tail means the file was
    cut short.
    """
    with open(path, "rb") as f:
        if f.read(2) != JPEG_START:
            return False
        f.seek(0, 2)
        f.seek(max(0, f.tell() - JPEG_TAIL))
        return JPEG_END not in f.read()


def detect_faces(rgb: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Every face in an image as ``(x, y, width, height)``, left to right.

    A detection that overlaps a larger one by more than
    :data:`DUPLICATE_OVERLAP` of its own area is the same face and dropped.

    Args:
        rgb: `(H, W, 3)` image in [0, 1].
    """
    grey = cv2.cvtColor((np.clip(rgb, 0, 1) * 255).astype(np.uint8), cv2.COLOR_RGB2GRAY)
    shrink = min(1.0, DETECTION_MAX_SIDE / max(grey.shape))
    if shrink < 1.0:
        grey = cv2.resize(grey, None, fx=shrink, fy=shrink, interpolation=cv2.INTER_AREA)
    found = haar_cascade(FACE_CASCADE).detectMultiScale(grey, scaleFactor=1.1, minNeighbors=5, minSize=(24, 24))
    boxes = [tuple(int(round(v / shrink)) for v in box) for box in found]
    kept: list[tuple[int, int, int, int]] = []
    for box in sorted(boxes, key=lambda b: b[2] * b[3], reverse=True):
        if all(_overlap(box, other) <= DUPLICATE_OVERLAP for other in kept):
            kept.append(box)
    return sorted(kept)


def _overlap(box, larger) -> float:
    """The fraction of ``box``'s area that lies inside ``larger``."""
    x, y, w, h = box
    lx, ly, lw, lh = larger
    width = max(0, min(x + w, lx + lw) - max(x, lx))
    height = max(0, min(y + h, ly + lh) - max(y, ly))
    return width * height / float(w * h)


def detect_face(rgb: np.ndarray) -> tuple[int, int, int, int] | None:
    """The largest face in an image as ``(x, y, width, height)``, or ``None``.

    Args:
        rgb: `(H, W, 3)` image in [0, 1].
    """
    boxes = detect_faces(rgb)
    return max(boxes, key=lambda box: box[2] * box[3]) if boxes else None


def looks_like_face_crop(height: int, width: int) -> bool:
    """Whether an image of this size may be a face crop, to be taken whole when no face is detected.

    True when it is nearly square (longer side at most :data:`CROP_SQUARENESS`
    times the shorter) or small (shorter side at most :data:`CROP_SMALL_SIDE`).
    """
    short, long = sorted((height, width))
    return long <= CROP_SQUARENESS * short or short <= CROP_SMALL_SIDE


def whole_image_square(height: int, width: int) -> tuple[int, int, int]:
    """The square ``(left, top, side)`` centred on an image that holds all of it (side = longer side)."""
    side = max(height, width)
    return (width - side) // 2, (height - side) // 2, side


def crop_box(box: tuple[int, int, int, int]) -> tuple[int, int, int]:
    """The square crop around a detected face, ``(left, top, side)`` in pixels.

    The crop is ``CROP_SCALE`` times the detector's box (which spans brows to
    mouth), moved down a little to take in the chin. It may reach past the
    photo's edge.
    """
    x, y, w, h = box
    side = int(round(CROP_SCALE * max(w, h)))
    cx = x + w / 2.0
    cy = y + h / 2.0 + CROP_SHIFT_DOWN * h
    return int(round(cx - side / 2.0)), int(round(cy - side / 2.0)), side


def crop_face(rgb: np.ndarray, box: tuple[int, int, int, int], size: int) -> np.ndarray:
    """A square crop around a detected face, resized to `(size, size, 3)`.

    The crop is :func:`crop_box`; beyond the photo's edge the border pixels
    are repeated.
    """
    return crop_square(rgb, crop_box(box), size)


def crop_square(rgb: np.ndarray, square: tuple[int, int, int], size: int) -> np.ndarray:
    """The square ``(left, top, side)`` of an image, resized to `(size, size, 3)`."""
    left, top, side = square
    height, width = rgb.shape[:2]
    pad = max(0, -left, -top, left + side - width, top + side - height)
    if pad:
        rgb = cv2.copyMakeBorder(rgb, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    crop = rgb[top + pad : top + pad + side, left + pad : left + pad + side]
    interpolation = cv2.INTER_AREA if side > size else cv2.INTER_CUBIC
    return np.clip(cv2.resize(crop, (size, size), interpolation=interpolation), 0.0, 1.0)


def paste_change(
    photo: np.ndarray, square: tuple[int, int, int], before: np.ndarray, after: np.ndarray, mask: np.ndarray | None = None
) -> np.ndarray:
    """Carry a change made to a face crop back into the full-resolution photo.

    The change ``after − before`` (at crop resolution) is resized to the
    crop's square, multiplied by ``mask`` when given, and added to the photo
    there, so the photo keeps its own full-resolution detail; where the
    change (or the mask) is zero the photo is unchanged.

    Args:
        photo: `(H, W, 3)` the photo in [0, 1].
        square: ``(left, top, side)``, the crop's square in the photo
            (:func:`crop_box`).
        before, after: `(size, size, 3)` the crop before and after the change.
        mask: `(side, side)` the face mask at the photo's resolution
            (:func:`square_masks`), or None.

    Returns:
        `(H, W, 3)` float32 in [0, 1], a new array.
    """
    left, top, side = square
    height, width = photo.shape[:2]
    change = np.asarray(after, np.float32) - np.asarray(before, np.float32)
    change = cv2.resize(change, (side, side), interpolation=cv2.INTER_LINEAR)
    if mask is not None:
        change = change * np.asarray(mask, np.float32).reshape(side, side, 1)
    out = np.array(photo, np.float32)
    x0, y0 = max(left, 0), max(top, 0)
    x1, y1 = min(left + side, width), min(top + side, height)
    if x1 > x0 and y1 > y0:
        region = out[y0:y1, x0:x1] + change[y0 - top : y1 - top, x0 - left : x1 - left]
        out[y0:y1, x0:x1] = np.clip(region, 0.0, 1.0)
    return out


def square_masks(rgb: np.ndarray, square: tuple[int, int, int], kind: str, sides: Sequence[int]) -> list[np.ndarray]:
    """The face mask of the square ``(left, top, side)`` of a photo at each of ``sides``, `(s, s)` float32 each.

    ``kind`` is one of :data:`bioface_tf.masks.MASK_KINDS`. The skin is
    found once, in the square cropped at :data:`bioface_tf.masks.WORK_SIZE`
    (:func:`bioface_tf.masks.skin_mask`), and resized to each side
    (:func:`bioface_tf.masks.resize_mask`); the ellipse is drawn at each side.
    Pass the model's size for the crop's mask and ``square[2]`` for the
    mask at the photo's resolution.
    """
    if kind == "ellipse":
        return [elliptical_mask(side)[..., 0] for side in sides]
    work = face_mask(crop_square(rgb, square, WORK_SIZE), kind)
    return [resize_mask(work, side) for side in sides]


def checked_mask(path, square: tuple[int, int, int], mask: np.ndarray) -> np.ndarray:
    """``mask`` unchanged, or a :class:`DataError` naming ``path`` when it is empty."""
    if not np.any(mask > 0.5):
        raise DataError(
            f"{path}: no skin found in the face at {tuple(int(v) for v in square)} (left, top, side): the skin "
            f"mask is empty (nothing there has skin colours, e.g. a greyscale image saved as RGB); "
            f"--mask ellipse uses an elliptical mask instead"
        )
    return mask


@dataclasses.dataclass
class FacePhoto:
    """A photo, where its face is, and the face at the model size.

    Attributes:
        path: the photo file.
        photo: `(H, W, 3)` the whole photo, sRGB in [0, 1].
        square: ``(left, top, side)`` of the face crop in the photo
            (:func:`crop_box`, or :func:`whole_image_square`); it may reach
            past the photo's edge.
        face: `(size, size, 3)` the crop, resized.
        crop: how the crop was chosen: :data:`CROP_DETECTED`,
            :data:`CROP_WHOLE_UNDETECTED` or :data:`CROP_WHOLE_ASKED`.
        mask: `(size, size, 1)` the face mask, float32 in {0, 1}.
    """

    path: pathlib.Path
    photo: np.ndarray
    square: tuple[int, int, int]
    face: np.ndarray
    crop: str = CROP_DETECTED
    mask: np.ndarray | None = None


def find_face(path: str | pathlib.Path, size: int, mask: str = "skin") -> FacePhoto:
    """Read a photo and crop its largest detected face to `(size, size, 3)`; never the whole image.

    Args:
        mask: the face mask, one of :data:`bioface_tf.masks.MASK_KINDS`.

    Raises:
        DataError: as :func:`read_photo`, when no face is found, or when
            its skin mask is empty.
    """
    rgb = read_photo(path)
    box = detect_face(rgb)
    if box is None:
        raise DataError(f"{path}: no face found")
    square = crop_box(box)
    (face_mask_,) = square_masks(rgb, square, mask, [size])
    checked_mask(path, square, face_mask_)
    return FacePhoto(pathlib.Path(path), rgb, square, crop_square(rgb, square, size), mask=face_mask_[..., None])


def face_squares(rgb: np.ndarray, crop: str = "detect", all_faces: bool = False) -> list[tuple[tuple[int, int, int], str]]:
    """Where the faces of an image are: ``[(square, how), …]``, empty when none.

    Args:
        rgb: `(H, W, 3)` image in [0, 1].
        crop: one of :data:`CROP_MODES`. ``detect``: the detected faces
            (:func:`crop_box`); when there are none and the image looks like
            a face crop (:func:`looks_like_face_crop`), the whole image
            (:func:`whole_image_square`). ``none``: the whole image.
        all_faces: every detected face, left to right; otherwise the largest.

    Returns:
        Each face's ``(left, top, side)`` square and how it was chosen
        (:data:`CROP_DETECTED`, :data:`CROP_WHOLE_UNDETECTED`,
        :data:`CROP_WHOLE_ASKED`).
    """
    if crop not in CROP_MODES:
        raise ValueError(f"crop must be one of {CROP_MODES}, got {crop!r}")
    height, width = rgb.shape[:2]
    if crop == "none":
        return [(whole_image_square(height, width), CROP_WHOLE_ASKED)]
    boxes = detect_faces(rgb)
    if boxes:
        chosen = boxes if all_faces else [max(boxes, key=lambda box: box[2] * box[3])]
        return [(crop_box(box), CROP_DETECTED) for box in chosen]
    if looks_like_face_crop(height, width):
        return [(whole_image_square(height, width), CROP_WHOLE_UNDETECTED)]
    return []


def find_faces(
    path: str | pathlib.Path, size: int, crop: str = "detect", all_faces: bool = False, mask: str = "skin"
) -> list[FacePhoto]:
    """Read a photo and crop its faces to `(size, size, 3)` (:func:`face_squares`), each with its mask.

    Args:
        path: the photo.
        size: the model's input side, pixels.
        crop, all_faces: as for :func:`face_squares`.
        mask: the face mask, one of :data:`bioface_tf.masks.MASK_KINDS`.

    Returns:
        One :class:`FacePhoto` per face (sharing the photo array), at least one.

    Raises:
        DataError: as :func:`read_photo`, when no face is found in a photo
            that does not look like a face crop, or when a face's skin mask
            is empty.
    """
    rgb = read_photo(path)
    found = face_squares(rgb, crop, all_faces)
    if not found:
        height, width = rgb.shape[:2]
        raise DataError(
            f"{path}: no face found (a {width}x{height} image is taken whole as a face crop only when it is "
            f"nearly square or at most {CROP_SMALL_SIDE} pixels on its shorter side; --crop none takes any image whole)"
        )
    path = pathlib.Path(path)
    return [
        FacePhoto(
            path, rgb, square, crop_square(rgb, square, size), how,
            checked_mask(path, square, square_masks(rgb, square, mask, [size])[0])[..., None],
        )
        for square, how in found
    ]


def load_face_photo(path: str | pathlib.Path, size: int) -> np.ndarray:
    """The face in one photo, cropped and resized, `(size, size, 3)` in [0, 1].

    Raises:
        DataError: as :func:`read_photo`, or when no face is found.
    """
    return find_face(path, size).face


def photo_paths(inputs: Iterable[str | pathlib.Path]) -> list[pathlib.Path]:
    """Photo files from files, folders (their JPEG/PNG files, sorted) and globs."""
    paths = []
    for path in expand_paths(inputs):
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and is_photo(p))
            if not found:
                raise DataError(f"{path}: folder holds no JPEG or PNG photos")
            paths += found
        else:
            paths.append(path)
    return paths


class PhotoFaces:
    """Faces cropped from photos, held in memory at the model size.

    Args:
        inputs: photo files, folders of photos, or glob patterns.
        image_size: side of the square crops.
        progress: show a progress bar while detecting faces.
        mask: each face's mask, one of :data:`bioface_tf.masks.MASK_KINDS`
            (default: its skin).

    Attributes:
        paths: the photos a face was taken from, in order.
        skipped: ``(path, reason)`` for each photo left out (no face found,
            unreadable, not RGB, too small, no skin found).

    Raises:
        DataError: when no photo gives a face (the message lists why).
    """

    has_ground_truth = False

    def __init__(
        self, inputs: Sequence[str | pathlib.Path], image_size: int = 64, progress: bool = True, mask: str = "skin"
    ):
        self.image_size = image_size
        self.paths: list[pathlib.Path] = []
        self.skipped: list[tuple[pathlib.Path, str]] = []
        crops, masks = [], []
        candidates = photo_paths(inputs)
        for path in tqdm(candidates, desc="detecting faces", unit="photo", disable=not progress or len(candidates) < 20):
            try:
                found = find_face(path, image_size, mask)
            except DataError as err:
                self.skipped.append((path, str(err).removeprefix(f"{path}: ")))
                continue
            crops.append(found.face)
            masks.append(found.mask)
            self.paths.append(path)
        if not crops:
            reasons = "; ".join(f"{p}: {why}" for p, why in self.skipped[:5])
            raise DataError(f"no face found in any of {len(candidates)} photos ({reasons})")
        self._images = np.round(np.stack(crops) * 255.0).astype(np.uint8)
        self._masks = np.stack(masks).astype(bool)

    def __len__(self) -> int:
        return len(self._images)

    def read(self, indices: Sequence[int], ground_truth: bool = False) -> dict[str, np.ndarray]:
        """Faces by index, with the keys of :meth:`CelebAFaces.read`.

        ``normals`` and ``shading`` are zeros and ``shading_valid`` is 0.
        """
        if ground_truth:
            raise DataError("photos have no ground truth (gt_* maps)")
        indices = np.asarray(indices, dtype=np.int64)
        n, size = len(indices), self.image_size
        return {
            "image": self._images[indices].astype(np.float32) / 255.0,
            "mask": self._masks[indices].astype(np.float32),
            "normals": np.zeros((n, size, size, 3), np.float32),
            "shading": np.zeros((n, size, size, 1), np.float32),
            "shading_valid": np.zeros(n, np.float32),
        }
