"""Video: analyse and edit the face in a clip, tracked from frame to frame and smoothed in time.

A clip (``.mp4``, ``.avi``, ``.mov``; whatever OpenCV's FFmpeg backend
decodes) is read a frame at a time. Per frame:

1. **Tracking** (:class:`FaceTracker`): OpenCV's face detector
   (:func:`bioface_tf.data.photos.detect_faces`) finds the largest face of
   the whole frame; in the frames that follow it runs again on every frame,
   but only near the tracked box (:data:`SEARCH_SCALE` times its side,
   scaled so that the face is about :data:`SEARCH_FACE` pixels — a few
   milliseconds instead of a whole-frame search). The detection nearest the
   box continues the track, and the box (centre and side) is smoothed by an
   exponential moving average with time constant :data:`BOX_TIME_CONSTANT`.
   When no detection lies near the box, the box is held for up to
   :data:`HOLD_SECONDS`; after that the face is lost and the largest face
   of the whole frame starts a new track. (OpenCV's model-free tracker,
   ``TrackerMIL``, is in this build too, but it follows a patch, not a face,
   and drifts; the other trackers need downloaded networks.)
2. **Analysis**: the face's square is cropped to the model's size and the
   model (:class:`FrameModel`: a Keras BioFaceNet,
   :func:`keras_frame_model`, or the LiteRT bundle) estimates the decoder
   inputs.
3. **Smoothing in time** (:class:`ParameterSmoother`): the decoder inputs —
   the scaled maps ``fmel``, ``fblood``, ``shading``, ``specmask`` and the
   light and camera (``b``, ``light_weights``, ``cct``) — are an
   exponential moving average with time constant ``map_time_constant``
   seconds (default :data:`MAP_TIME_CONSTANT`; 0 turns it off): with the
   frame rate ``fps``, each frame's weight is ``α = 1 − exp(−1 / (fps·τ))``.
   The running maps are first moved into the new frame's crop (the crop
   follows the face), so a moving face is averaged with itself, not with
   the background. A new track starts a new average.
4. **Face mask** (:class:`MaskTracker`): ``skin`` (the photos' default,
   :func:`bioface_tf.masks.skin_mask`, a few hundred ms at 128 px) is
   computed when a track starts and again every :data:`MASK_REFRESH_SECONDS`,
   and moved with the crop in between (:func:`realign`); ``ellipse`` is the
   fixed elliptical mask. A crop where nothing looks like skin gets the
   ellipse.
5. **Editing**: the smoothed parameters are edited and rendered, composited
   into the crop with the residual (:func:`bioface_tf.editing.composite`)
   and the change pasted back into the full-resolution frame
   (:func:`bioface_tf.data.photos.paste_change`) — as
   :func:`bioface_tf.editing.edit_photo` does for a photo. Frames without a
   face are written unchanged.

The output clip has the input's size, frame rate and frame count; it is
written by OpenCV, which writes pictures only: **audio is not copied**.
``.mp4``/``.mov`` outputs use the ``mp4v`` (MPEG-4 part 2) codec, ``.avi``
Motion JPEG.

This module imports no TensorFlow (only :func:`keras_frame_model` does, when
called), so ``bioface-lite`` uses it with its TFLite bundle.

Example:

>>> frame_model = keras_frame_model(load_model())                             # doctest: +SKIP
>>> run = edit_video("clip.mp4", "edited.mp4", Edit(melanin=0.4), frame_model)  # doctest: +SKIP
>>> run.frames, run.frames_with_face, run.fps                                  # doctest: +SKIP
(120, 118, 25.0)
"""

from __future__ import annotations

import dataclasses
import json
import math
import pathlib
from collections.abc import Callable, Iterator

import cv2
import numpy as np

from bioface_tf.analysis import PARAMETERS, illuminant_and_camera, volume_fractions
from bioface_tf.data import photos
from bioface_tf.editing import FEATHER, Edit, composite, edit_parameters, feather_mask
from bioface_tf.errors import BioFaceError, DataError
from bioface_tf.masks import MASK_KINDS, WORK_SIZE, elliptical_mask, face_mask, resize_mask

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov")
CODECS = {".mp4": "mp4v", ".mov": "mp4v", ".avi": "MJPG"}
"""The FourCC OpenCV writes for each output suffix (both are in every opencv-python-headless build)."""

MAP_TIME_CONSTANT = 0.2
"""Default time constant (seconds) of the moving average of the decoder inputs."""
BOX_TIME_CONSTANT = 0.1
"""Time constant (seconds) of the moving average of the tracked face box."""
HOLD_SECONDS = 0.5
"""How long a face box is held when the detector misses the face, before the track is lost."""
MATCH_DISTANCE = 0.5
"""A detection continues the track when its centre lies within this fraction of the box side of the box's centre."""
SEARCH_SCALE = 1.6
"""The tracked face is searched for in a square this many times the box's side, around the box."""
SEARCH_FACE = 72
"""The search square is resized so that a face of the box's size spans about this many pixels for the detector."""
MASK_REFRESH_SECONDS = 1.0
"""How often the skin mask of a tracked face is computed afresh; in between it moves with the crop."""
MAP_KEYS = ("fmel", "fblood", "shading", "specmask")

TRACK_DETECTED = "detected"
TRACK_HELD = "held (face not detected in this frame)"
TRACK_NONE = "no face"
AUDIO_NOTE = "audio not copied: OpenCV writes pictures only"


@dataclasses.dataclass(frozen=True)
class FrameModel:
    """What runs on each frame's face crop.

    Attributes:
        image_size: the model's face side S.
        encode: `(B, S, S, 3)` sRGB crops → decoder inputs
            (:data:`bioface_tf.analysis.PARAMETERS`, maps `(B, S, S, 1)`).
        render: decoder inputs → `(B, S, S, 3)` display sRGB in [0, 1].
    """

    image_size: int
    encode: Callable[[np.ndarray], dict]
    render: Callable[[dict], np.ndarray]


def keras_frame_model(model) -> FrameModel:
    """A Keras BioFaceNet and its decoder as a :class:`FrameModel`, each compiled with ``tf.function``.

    Compiled, one 64×64 face is about 4× (encoder) and 8× (renderer) faster
    than the eager calls of :func:`bioface_tf.analysis.analyse`.
    """
    import tensorflow as tf

    from bioface_tf.analysis import decoder_of
    from bioface_tf.data.pipeline import preprocess

    decoder = decoder_of(model)
    preprocessing = getattr(model, "preprocessing", "reference")

    @tf.function(reduce_retracing=True)
    def encode_graph(image):
        out = model(preprocess(image, preprocessing), training=False)
        return {k: out[k] for k in PARAMETERS}

    @tf.function(reduce_retracing=True)
    def render_graph(params):
        return decoder(params)["srgb"]

    def encode(image: np.ndarray) -> dict:
        out = encode_graph(tf.constant(np.asarray(image, np.float32)))
        return {k: np.asarray(v, np.float32) for k, v in out.items()}

    def render(params: dict) -> np.ndarray:
        return np.asarray(render_graph({k: tf.constant(np.asarray(params[k], np.float32)) for k in PARAMETERS}))

    return FrameModel(model.image_size, encode, render)


def is_video(path: str | pathlib.Path) -> bool:
    """Whether the file name ends in one of :data:`VIDEO_SUFFIXES`."""
    return pathlib.Path(path).suffix.lower() in VIDEO_SUFFIXES


@dataclasses.dataclass(frozen=True)
class VideoInfo:
    """A clip's picture format.

    Attributes:
        width, height: frame size in pixels.
        fps: frames per second.
        frame_count: the container's frame count (may be approximate; the
            frames read are what counts).
    """

    width: int
    height: int
    fps: float
    frame_count: int


def _open(path: pathlib.Path) -> tuple[cv2.VideoCapture, VideoInfo]:
    """An opened capture and its format; a clip OpenCV cannot decode raises :class:`DataError`."""
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise DataError(f"{path}: unreadable video (OpenCV cannot decode it: not an mp4/avi/mov clip, or damaged)")
    info = VideoInfo(
        int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
        int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
        float(capture.get(cv2.CAP_PROP_FPS)),
        max(0, int(capture.get(cv2.CAP_PROP_FRAME_COUNT))),
    )
    if not (math.isfinite(info.fps) and info.fps > 0):
        capture.release()
        raise DataError(f"{path}: video has no frame rate (the container reports {info.fps})")
    return capture, info


def read_info(path: str | pathlib.Path) -> VideoInfo:
    """A clip's :class:`VideoInfo`.

    Raises:
        DataError: the file is missing or OpenCV cannot decode it.
    """
    capture, info = _open(pathlib.Path(path))
    capture.release()
    return info


def read_frames(path: str | pathlib.Path) -> tuple[VideoInfo, Iterator[np.ndarray]]:
    """A clip's format and its frames, `(H, W, 3)` float32 sRGB in [0, 1], read one at a time.

    Raises:
        DataError: the file is missing, OpenCV cannot decode it, or it holds
            no frame (raised here, before any frame is yielded).
    """
    path = pathlib.Path(path)
    capture, info = _open(path)
    ok, first = capture.read()
    if not ok or first is None:
        capture.release()
        raise DataError(f"{path}: unreadable video (no frame could be decoded)")

    def frames() -> Iterator[np.ndarray]:
        frame = first
        try:
            while frame is not None:
                yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0
                ok, frame = capture.read()
                frame = frame if ok else None
        finally:
            capture.release()

    return info, frames()


class VideoWriter:
    """Writes `(H, W, 3)` float sRGB frames in [0, 1] to a clip (codec by suffix, :data:`CODECS`).

    Raises:
        BioFaceError: the suffix is not a video's, or OpenCV cannot open a
            writer for the file.
    """

    def __init__(self, path: str | pathlib.Path, width: int, height: int, fps: float):
        self.path = pathlib.Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in CODECS:
            raise BioFaceError(
                f"{self.path}: a video is written as {', '.join(VIDEO_SUFFIXES)}; the suffix '{suffix}' is not one"
            )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*CODECS[suffix]), fps, (width, height))
        if not self._writer.isOpened():
            raise BioFaceError(f"{self.path}: OpenCV cannot write this video (codec {CODECS[suffix]})")
        if suffix == ".avi":
            self._writer.set(cv2.VIDEOWRITER_PROP_QUALITY, 100)
        self.size = (width, height)
        self.frames = 0

    def write(self, rgb: np.ndarray) -> None:
        """Append one frame, `(H, W, 3)` float in [0, 1] or uint8, the writer's size."""
        if (rgb.shape[1], rgb.shape[0]) != self.size:
            raise ValueError(f"frame is {rgb.shape[1]}x{rgb.shape[0]}, the video {self.size[0]}x{self.size[1]}")
        image = rgb if rgb.dtype == np.uint8 else np.round(np.clip(rgb, 0.0, 1.0) * 255.0).astype(np.uint8)
        self._writer.write(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        self.frames += 1

    def close(self) -> None:
        self._writer.release()

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def smoothing_weight(fps: float, time_constant: float) -> float:
    """The weight ``α = 1 − exp(−1 / (fps·τ))`` of each new frame in a moving average (1: no smoothing)."""
    if time_constant < 0:
        raise ValueError(f"time constant must be >= 0 seconds, got {time_constant}")
    if time_constant == 0:
        return 1.0
    return float(1.0 - math.exp(-1.0 / (fps * time_constant)))


@dataclasses.dataclass(frozen=True)
class Track:
    """Where the tracked face is in one frame.

    Attributes:
        square: ``(left, top, side)`` in frame pixels, or None (no face).
        how: :data:`TRACK_DETECTED`, :data:`TRACK_HELD`, :data:`TRACK_NONE`
            or a photo crop mode (:data:`bioface_tf.data.photos.CROP_WHOLE_ASKED`).
        new: this frame starts a track (a moving average starts afresh).
    """

    square: tuple[int, int, int] | None
    how: str
    new: bool = False


class FaceTracker:
    """Follows the largest face of a clip from frame to frame (module docstring, step 1).

    Args:
        fps: the clip's frame rate.
        crop: ``detect`` (track detections) or ``none`` (every frame whole,
            :func:`bioface_tf.data.photos.whole_image_square`).
        box_time_constant: seconds; 0 keeps each frame's detection as it is.
        hold_seconds: how long a missed face's box is held.
    """

    def __init__(self, fps: float, crop: str = "detect", box_time_constant: float = BOX_TIME_CONSTANT,
                 hold_seconds: float = HOLD_SECONDS):
        if crop not in photos.CROP_MODES:
            raise ValueError(f"crop must be one of {photos.CROP_MODES}, got {crop!r}")
        self.crop = crop
        self.alpha = smoothing_weight(fps, box_time_constant)
        self.hold_frames = int(round(hold_seconds * fps))
        self.box: np.ndarray | None = None
        self.missed = 0

    def update(self, frame: np.ndarray) -> Track:
        """The face's :class:`Track` in the next frame, `(H, W, 3)` in [0, 1]."""
        height, width = frame.shape[:2]
        if self.crop == "none":
            square = photos.whole_image_square(height, width)
            new = self.box is None
            self.box = _centre_side(square)
            return Track(square, photos.CROP_WHOLE_ASKED, new)
        if self.box is not None:
            centres = [_centre_side(photos.crop_box(box)) for box in detect_near(frame, self.box)]
            match = _nearest(self.box, centres)
            if match is not None:
                self.box = self.box + self.alpha * (match - self.box)
                self.missed = 0
                return Track(_square(self.box), TRACK_DETECTED)
            self.missed += 1
            if self.missed <= self.hold_frames:
                return Track(_square(self.box), TRACK_HELD)
            self.box = None
        centres = [_centre_side(photos.crop_box(box)) for box in photos.detect_faces(frame)]
        if not centres:
            return Track(None, TRACK_NONE)
        self.box = max(centres, key=lambda c: c[2])
        self.missed = 0
        return Track(_square(self.box), TRACK_DETECTED, new=True)


def detect_near(frame: np.ndarray, box: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Faces detected near a tracked box, ``(x, y, width, height)`` in frame pixels.

    The detector (:func:`bioface_tf.data.photos.detect_faces`) runs on the
    square of :data:`SEARCH_SCALE` times the box's side around its centre,
    resized so that a face of the box's size spans about
    :data:`SEARCH_FACE` pixels.

    Args:
        frame: `(H, W, 3)` sRGB in [0, 1].
        box: ``[centre x, centre y, side]`` of the tracked crop square.
    """
    side = max(1, int(round(SEARCH_SCALE * box[2])))
    square = (int(round(box[0] - side / 2.0)), int(round(box[1] - side / 2.0)), side)
    face_side = box[2] / photos.CROP_SCALE
    pixels = max(32, int(round(side * SEARCH_FACE / face_side)))
    scale = side / pixels
    found = photos.detect_faces(photos.crop_square(frame, square, pixels))
    return [
        (int(round(square[0] + x * scale)), int(round(square[1] + y * scale)), int(round(w * scale)),
         int(round(h * scale)))
        for x, y, w, h in found
    ]


def _centre_side(square: tuple[int, int, int]) -> np.ndarray:
    """``(left, top, side)`` → ``[centre x, centre y, side]`` float64."""
    left, top, side = square
    return np.array([left + side / 2.0, top + side / 2.0, side], np.float64)


def _square(box: np.ndarray) -> tuple[int, int, int]:
    """``[centre x, centre y, side]`` → ``(left, top, side)`` in whole pixels."""
    side = max(1, int(round(box[2])))
    return int(round(box[0] - side / 2.0)), int(round(box[1] - side / 2.0)), side


def _nearest(box: np.ndarray, centres: list[np.ndarray]) -> np.ndarray | None:
    """The candidate whose centre is nearest ``box``'s, if within :data:`MATCH_DISTANCE` of its side."""
    if not centres:
        return None
    distances = [float(np.hypot(*(c[:2] - box[:2]))) for c in centres]
    k = int(np.argmin(distances))
    return centres[k] if distances[k] <= MATCH_DISTANCE * box[2] else None


def realign(maps: np.ndarray, old: tuple[int, int, int], new: tuple[int, int, int]) -> np.ndarray:
    """Maps of the crop ``old`` resampled into the crop ``new`` (squares in frame pixels).

    Args:
        maps: `(S, S, C)` float32, the crop ``old`` at S×S.
        old, new: ``(left, top, side)``.

    Returns:
        `(S, S, C)`: what ``maps`` show at each pixel of the crop ``new``
        (bilinear; edge values repeated where ``new`` reaches past ``old``).
    """
    if old == new:
        return maps
    size = maps.shape[0]
    scale = new[2] / old[2]
    shift_x = (new[0] - old[0]) * size / old[2] + 0.5 * scale - 0.5
    shift_y = (new[1] - old[1]) * size / old[2] + 0.5 * scale - 0.5
    matrix = np.array([[scale, 0.0, shift_x], [0.0, scale, shift_y]], np.float64)
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    out = cv2.warpAffine(maps, matrix, (size, size), flags=flags, borderMode=cv2.BORDER_REPLICATE)
    return out.reshape(maps.shape)


class ParameterSmoother:
    """The exponential moving average of one face's decoder inputs over frames (module docstring, step 3).

    Args:
        fps: the clip's frame rate.
        time_constant: seconds; 0 passes every frame's parameters through.
    """

    def __init__(self, fps: float, time_constant: float = MAP_TIME_CONSTANT):
        self.alpha = smoothing_weight(fps, time_constant)
        self.state: dict[str, np.ndarray] | None = None
        self.square: tuple[int, int, int] | None = None

    def reset(self) -> None:
        """Forget the average (the face was lost)."""
        self.state, self.square = None, None

    def update(self, params: dict[str, np.ndarray], square: tuple[int, int, int]) -> dict[str, np.ndarray]:
        """Blend one frame's decoder inputs (batch of 1) into the average and return it.

        Args:
            params: maps `(1, S, S, 1)`, ``b`` `(1, 2)`, ``light_weights``
                `(1, 14)`, ``cct`` `(1, 1)`.
            square: the crop they were estimated on, ``(left, top, side)``.
        """
        params = {k: np.asarray(params[k], np.float32) for k in PARAMETERS}
        if self.state is None or self.alpha >= 1.0:
            self.state = params
        else:
            previous = {
                k: realign(v[0], self.square, square)[None] if k in MAP_KEYS else v for k, v in self.state.items()
            }
            self.state = {k: previous[k] + self.alpha * (params[k] - previous[k]) for k in PARAMETERS}
        self.square = square
        return self.state


class MaskTracker:
    """The face mask of a tracked face, frame after frame (module docstring, step 4).

    Args:
        kind: one of :data:`bioface_tf.masks.MASK_KINDS`.
        fps: the clip's frame rate.
        size: the model's face side S.
        refresh_seconds: how often a skin mask is computed afresh.
    """

    def __init__(self, kind: str, fps: float, size: int, refresh_seconds: float = MASK_REFRESH_SECONDS):
        if kind not in MASK_KINDS:
            raise ValueError(f"mask must be one of {MASK_KINDS}, got {kind!r}")
        self.kind, self.size = kind, size
        self.refresh_frames = max(1, int(round(refresh_seconds * fps)))
        self.ellipse = elliptical_mask(size)
        self.mask, self.square, self.age = None, None, 0

    def update(self, frame: np.ndarray, square: tuple[int, int, int], new: bool) -> np.ndarray:
        """The mask of the face in ``square`` of ``frame``, `(S, S, 1)` float32 in {0, 1}.

        Args:
            frame: `(H, W, 3)` sRGB in [0, 1].
            square: the crop, ``(left, top, side)``.
            new: the track starts here (the mask is computed afresh).
        """
        if self.kind == "ellipse":
            return self.ellipse
        if new or self.mask is None or self.age >= self.refresh_frames:
            skin = face_mask(photos.crop_square(frame, square, WORK_SIZE), self.kind)
            self.mask = resize_mask(skin, self.size)[..., None] if skin.any() else self.ellipse
            self.age = 0
        else:
            self.mask = (realign(self.mask, self.square, square) > 0.5).astype(np.float32)
        self.square = square
        self.age += 1
        return self.mask


@dataclasses.dataclass
class FrameFace:
    """The tracked face of one frame, analysed.

    Attributes:
        track: where the face is (:class:`Track`).
        crop: `(S, S, 3)` the face crop, sRGB in [0, 1] (None without a face).
        params: the smoothed decoder inputs, batch of 1 (None without a face).
        reconstruction: `(S, S, 3)` ``params`` rendered (None without a face).
        mask: `(S, S, 1)` the face mask in the crop (None without a face).
    """

    track: Track
    crop: np.ndarray | None = None
    params: dict[str, np.ndarray] | None = None
    reconstruction: np.ndarray | None = None
    mask: np.ndarray | None = None


class VideoFaces:
    """Tracks, analyses and smooths the face of a clip, frame after frame.

    Args:
        frame_model: the model (:class:`FrameModel`).
        fps: the clip's frame rate.
        crop: ``detect`` or ``none`` (:class:`FaceTracker`).
        map_time_constant: seconds (:class:`ParameterSmoother`).
        box_time_constant: seconds (:class:`FaceTracker`).
        mask: the face mask, ``skin`` or ``ellipse`` (:class:`MaskTracker`).
    """

    def __init__(self, frame_model: FrameModel, fps: float, crop: str = "detect",
                 map_time_constant: float = MAP_TIME_CONSTANT, box_time_constant: float = BOX_TIME_CONSTANT,
                 mask: str = "skin"):
        self.model = frame_model
        self.tracker = FaceTracker(fps, crop, box_time_constant)
        self.smoother = ParameterSmoother(fps, map_time_constant)
        self.masks = MaskTracker(mask, fps, frame_model.image_size)

    def step(self, frame: np.ndarray) -> FrameFace:
        """Analyse the next frame, `(H, W, 3)` sRGB in [0, 1]."""
        track = self.tracker.update(frame)
        if track.square is None:
            self.smoother.reset()
            return FrameFace(track)
        if track.new:
            self.smoother.reset()
        crop = photos.crop_square(frame, track.square, self.model.image_size)
        params = self.smoother.update(self.model.encode(crop[None]), track.square)
        mask = self.masks.update(frame, track.square, track.new)
        return FrameFace(track, crop, params, self.model.render(params)[0], mask)


def edit_frame(frame: np.ndarray, face: FrameFace, edit: Edit, render, residual: bool = True,
               feather: float = FEATHER) -> np.ndarray:
    """One frame with its analysed face edited, `(H, W, 3)` float32 in [0, 1].

    Args:
        frame: `(H, W, 3)` sRGB in [0, 1].
        face: the frame's :class:`FrameFace`; without a face the frame is
            returned unchanged.
        edit: the edit.
        render: decoder inputs → `(1, S, S, 3)` sRGB (:attr:`FrameModel.render`).
        residual, feather: as for :func:`bioface_tf.editing.edit_faces`;
            the edit is blended through ``face.mask``.
    """
    if face.params is None:
        return np.asarray(frame, np.float32)
    edited = render(edit_parameters(face.params, edit))[0]
    soft = feather_mask(face.mask[None], feather)[0]
    face_out = composite(face.crop, face.reconstruction, edited, soft, residual)
    return photos.paste_change(frame, face.track.square, face.crop, face_out)


@dataclasses.dataclass
class VideoRun:
    """What a video command read and wrote.

    Attributes:
        source: the input clip.
        outputs: the files written.
        width, height, fps: the clip's format (the output's too).
        frames: frames read (and written).
        frames_with_face: frames in which a face was tracked.
    """

    source: pathlib.Path
    outputs: list[pathlib.Path]
    width: int
    height: int
    fps: float
    frames: int = 0
    frames_with_face: int = 0


def _progress(info: VideoInfo, desc: str, progress: bool | None):
    from tqdm import tqdm

    return tqdm(total=info.frame_count or None, desc=desc, unit="frame",
                disable=None if progress is None else not progress)


def edit_video(
    path: str | pathlib.Path,
    out: str | pathlib.Path,
    edit: Edit,
    frame_model: FrameModel,
    crop: str = "detect",
    map_time_constant: float = MAP_TIME_CONSTANT,
    residual: bool = True,
    progress: bool | None = None,
    mask: str = "skin",
) -> VideoRun:
    """Edit the face in every frame of a clip and write the result (module docstring).

    Args:
        path: the clip (:data:`VIDEO_SUFFIXES`).
        out: the output clip, ``.mp4``, ``.mov`` or ``.avi``
            (:data:`CODECS`); same size, frame rate and frame count, no audio.
        edit: the edit.
        frame_model: the model (:func:`keras_frame_model`, or the LiteRT bundle's).
        crop: ``detect`` (track the face) or ``none`` (whole frames).
        map_time_constant: seconds of smoothing of the decoder inputs (0: none).
        mask: the face mask, ``skin`` or ``ellipse`` (:class:`MaskTracker`).
        residual: keep the detail the model cannot explain.
        progress: show a progress bar (None: when on a terminal).

    Raises:
        DataError: the clip is missing or unreadable.
        BioFaceError: the output cannot be written.
    """
    info, frames = read_frames(path)
    run = VideoRun(pathlib.Path(path), [pathlib.Path(out)], info.width, info.height, info.fps)
    faces = VideoFaces(frame_model, info.fps, crop, map_time_constant, mask=mask)
    writer = VideoWriter(out, info.width, info.height, info.fps)
    with writer, _progress(info, "editing frames", progress) as bar:
        for frame in frames:
            face = faces.step(frame)
            writer.write(edit_frame(frame, face, edit, frame_model.render, residual))
            run.frames += 1
            run.frames_with_face += face.params is not None
            bar.update()
    return run


def frame_record(index: int, fps: float, face: FrameFace) -> dict:
    """One line of ``frames.jsonl``: the frame's time, track, and (smoothed) light, camera and mean maps.

    Args:
        index: the frame's number from 0.
        fps: the clip's frame rate.
        face: the frame's :class:`FrameFace` (the means are taken inside its mask).
    """
    record = {"frame": index, "time_s": round(index / fps, 6), "face": face.params is not None,
              "tracking": face.track.how}
    if face.params is None:
        return record
    mask = face.mask
    record["crop_square"] = [int(v) for v in face.track.square]
    record.update(illuminant_and_camera(face.params, 0))
    record.update(volume_fractions(face.params, mask[None], 0))
    record["mean_fmel"] = float(np.mean(face.params["fmel"][0][mask > 0.5]))
    record["mean_fblood"] = float(np.mean(face.params["fblood"][0][mask > 0.5]))
    return record


def maps_frame(face: FrameFace, frame: np.ndarray, size: int, title: str) -> np.ndarray:
    """One frame of ``maps.mp4``: the analysis figure row of the frame's face, uint8 RGB, even sides.

    Columns as :func:`bioface_tf.figures.figure_grid` (input crop,
    reconstruction, melanin, haemoglobin, diffuse and specular shading)
    under ``title``; without a face the whole frame is shown as the input
    and the rest is grey. The size does not depend on the frame.
    """
    from bioface_tf import figures

    if face.params is None:
        crop = photos.crop_square(frame, photos.whole_image_square(*frame.shape[:2]), size)
        zeros = np.zeros((1, size, size, 1), np.float32)
        grid = figures.figure_grid(crop[None], np.zeros_like(crop)[None], zeros, zeros, zeros, zeros, zeros,
                                   title=title)
    else:
        p = face.params
        grid = figures.figure_grid(face.crop[None], face.reconstruction[None], p["fmel"], p["fblood"], p["shading"],
                                   p["specmask"], face.mask[None], title=title)
    pad = ((0, grid.shape[0] % 2), (0, grid.shape[1] % 2), (0, 0))
    return np.pad(grid, pad, constant_values=figures.BACKGROUND)


def analyse_video(
    path: str | pathlib.Path,
    out_dir: str | pathlib.Path,
    frame_model: FrameModel,
    crop: str = "detect",
    map_time_constant: float = MAP_TIME_CONSTANT,
    maps_video: bool = False,
    progress: bool | None = None,
    mask: str = "skin",
) -> VideoRun:
    """Analyse the face in every frame of a clip; write ``out_dir`` (created).

    Files:

    * ``frames.jsonl`` — a JSON object per frame (:func:`frame_record`):
      ``frame``, ``time_s``, ``face``, ``tracking``, and with a face
      ``crop_square``, ``cct_kelvin``, ``light_weights``, ``camera_b``,
      ``nearest_camera``, the mean melanin and haemoglobin volume fractions
      and the mean scaled maps ``mean_fmel``, ``mean_fblood`` inside the
      mask — all of the smoothed parameters;
    * ``video.json`` — the clip's size, frame rate, frame count, frames with
      a face and the smoothing used;
    * ``maps.mp4`` when ``maps_video`` — the figure row of each frame
      (:func:`maps_frame`), at the clip's frame rate.

    Args: as for :func:`edit_video`.

    Raises:
        DataError: the clip is missing or unreadable.
    """
    out_dir = pathlib.Path(out_dir)
    info, frames = read_frames(path)
    out_dir.mkdir(parents=True, exist_ok=True)
    run = VideoRun(pathlib.Path(path), [out_dir / "frames.jsonl", out_dir / "video.json"], info.width, info.height,
                   info.fps)
    faces = VideoFaces(frame_model, info.fps, crop, map_time_constant, mask=mask)
    writer = None
    with open(out_dir / "frames.jsonl", "w") as lines, _progress(info, "analysing frames", progress) as bar:
        try:
            for index, frame in enumerate(frames):
                face = faces.step(frame)
                lines.write(json.dumps(frame_record(index, info.fps, face)) + "\n")
                if maps_video:
                    panel = maps_frame(face, frame, frame_model.image_size, f"frame {index}, {index / info.fps:.2f} s")
                    if writer is None:
                        writer = VideoWriter(out_dir / "maps.mp4", panel.shape[1], panel.shape[0], info.fps)
                        run.outputs.append(writer.path)
                    writer.write(panel)
                run.frames += 1
                run.frames_with_face += face.params is not None
                bar.update()
        finally:
            if writer is not None:
                writer.close()
    summary = {
        "source": str(run.source), "width": info.width, "height": info.height, "fps": info.fps,
        "frames": run.frames, "frames_with_face": run.frames_with_face, "crop": crop, "mask": mask,
        "map_time_constant_s": map_time_constant, "box_time_constant_s": BOX_TIME_CONSTANT, "audio": AUDIO_NOTE,
    }
    (out_dir / "video.json").write_text(json.dumps(summary, indent=2) + "\n")
    return run
