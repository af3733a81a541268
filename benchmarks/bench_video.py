"""Video at 640×480: frames per second of ``bioface`` and ``bioface-lite``, and flicker with and without smoothing.

Two clips are made from scikit-image's astronaut photo (a real face; the
upper part, 400×300 px, scaled to 640×480), at 25 fps, written with
OpenCV's ``mp4v`` codec as a camera would deliver them:

* **moving** — the photo shifted 2 px per frame to the right and swaying
  ±6 px vertically, plus sensor noise (Gaussian, σ = 2 levels);
* **still** — the same photo in every frame, plus fresh sensor noise
  (σ = 2 levels) in each.

**Speed** (moving clip, shipped model ``bioface_mobile``):
:func:`bioface_tf.video.edit_video` (melanin +0.4) and
:func:`~bioface_tf.video.analyse_video` end to end — decode, detect and
track, crop, encode, render, composite, paste, encode the output — for the
Keras model (:func:`~bioface_tf.video.keras_frame_model`, ``tf.function``)
and the LiteRT bundle (1 thread), after a warm-up on the first frames; with
the time spent in face detection, the encoder and the renderer.

**Flicker** (still clip, both backends): the mean absolute difference between
consecutive frames, inside the face (the elliptical face mask of the first
frame's crop, in the frame, whatever mask the edit uses), of the input, the edited output (before it is
written, so the output codec adds nothing), and the edit itself (output −
input); and, inside the crop's elliptical mask, of the scaled melanin and haemoglobin
maps (map units). Settings: no smoothing at all; the face box smoothed only;
box and maps smoothed with several time constants.

    python benchmarks/bench_video.py --frames 60 --out benchmarks/results/video_cpu.md [--repeats 3]
        [--model M.keras --models BUNDLE]
"""

from __future__ import annotations

import argparse
import os
import pathlib
import platform
import shlex
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2
import numpy as np

from bioface_tf.data import photos
from bioface_tf.editing import Edit
from bioface_tf.video import (
    BOX_TIME_CONSTANT,
    MAP_TIME_CONSTANT,
    MASK_REFRESH_SECONDS,
    FrameModel,
    VideoFaces,
    VideoWriter,
    analyse_video,
    edit_frame,
    edit_video,
    read_frames,
)

WIDTH, HEIGHT, FPS = 640, 480, 25.0
NOISE = 2.0
EDIT = Edit(melanin=0.4)
WARM_UP = 5
SETTINGS = (
    ("no smoothing", 0.0, 0.0),
    ("box only", BOX_TIME_CONSTANT, 0.0),
    ("box + maps, τ = 0.1 s", BOX_TIME_CONSTANT, 0.1),
    (f"box + maps, τ = {MAP_TIME_CONSTANT:g} s (default)", BOX_TIME_CONSTANT, MAP_TIME_CONSTANT),
    ("box + maps, τ = 0.5 s", BOX_TIME_CONSTANT, 0.5),
)


def astronaut_frame() -> np.ndarray:
    """`(480, 640, 3)` uint8 RGB: the upper part of scikit-image's astronaut, scaled to 640×480."""
    from skimage import data

    return cv2.resize(data.astronaut()[0:300, 60:460], (WIDTH, HEIGHT), interpolation=cv2.INTER_CUBIC)


def make_clip(path: pathlib.Path, frames: int, moving: bool, seed: int = 0) -> pathlib.Path:
    """Write the moving or still clip (module docstring) as mp4v."""
    base = astronaut_frame().astype(np.float32)
    rng = np.random.default_rng(seed)
    with VideoWriter(path, WIDTH, HEIGHT, FPS) as writer:
        for t in range(frames):
            image = base
            if moving:
                shift = np.float32([[1, 0, 2.0 * t - frames], [0, 1, 6.0 * np.sin(t / 5.0)]])
                image = cv2.warpAffine(base, shift, (WIDTH, HEIGHT), borderMode=cv2.BORDER_REFLECT)
            writer.write(np.clip(image + rng.normal(0.0, NOISE, image.shape), 0, 255).astype(np.uint8))
    return path


class Timed:
    """A :class:`FrameModel`'s encoder and renderer with their time summed."""

    def __init__(self, model: FrameModel):
        self.model, self.encode_s, self.render_s = model, 0.0, 0.0

    def frame_model(self) -> FrameModel:
        def encode(image):
            start = time.perf_counter()
            out = self.model.encode(image)
            self.encode_s += time.perf_counter() - start
            return out

        def render(params):
            start = time.perf_counter()
            out = self.model.render(params)
            self.render_s += time.perf_counter() - start
            return out

        return FrameModel(self.model.image_size, encode, render)


def fingerprint(model: str | None) -> str:
    """The first 12 hex digits of the SHA-256 of the ``.keras`` file used (which model was measured)."""
    import hashlib

    from bioface_tf import pretrained

    return hashlib.sha256(pretrained.resolve_model(model).read_bytes()).hexdigest()[:12]


def backends(model: str | None, bundle: str | None) -> dict[str, FrameModel]:
    """The model as Keras (``bioface``) and its LiteRT bundle (``bioface-lite``); None: the shipped ones."""
    from bioface_tf import pretrained
    from bioface_tf.analysis import load_model
    from bioface_tf.video import keras_frame_model
    from mobile_export.runtime import LiteBioFace

    lite = LiteBioFace(pretrained.resolve_lite_bundle(bundle), num_threads=1)
    return {
        "bioface (Keras, tf.function)": keras_frame_model(load_model(model)),
        "bioface-lite (LiteRT, 1 thread)": FrameModel(lite.image_size, lite.encode, lite.render),
    }


def warm_up(model: FrameModel, clip: pathlib.Path) -> None:
    """Trace/allocate everything on a few frames, so that the timing that follows is steady."""
    _, frames = read_frames(clip)
    faces = VideoFaces(model, FPS)
    for _, frame in zip(range(WARM_UP), frames):
        edit_frame(frame, faces.step(frame), EDIT, model.render)


class DetectionTimer:
    """Sums the time spent in :func:`bioface_tf.data.photos.detect_faces` while it is installed (a context)."""

    def __init__(self):
        self.seconds = 0.0
        self._original = photos.detect_faces

    def _timed(self, rgb):
        start = time.perf_counter()
        try:
            return self._original(rgb)
        finally:
            self.seconds += time.perf_counter() - start

    def __enter__(self) -> "DetectionTimer":
        photos.detect_faces = self._timed
        return self

    def __exit__(self, *exc) -> None:
        photos.detect_faces = self._original


def whole_frame_detection_ms(clip: pathlib.Path, frames: int = 5) -> float:
    """Median milliseconds of one whole-frame detection (a track's first frame), over the first frames."""
    _, images = read_frames(clip)
    times = []
    for _, frame in zip(range(frames), images):
        start = time.perf_counter()
        photos.detect_faces(frame)
        times.append(1000 * (time.perf_counter() - start))
    return float(np.median(times))


def timed_run(job: str, model: FrameModel, clip: pathlib.Path, folder: pathlib.Path) -> dict[str, float]:
    """One end-to-end run of ``edit`` or ``analyse``: frames, total seconds, seconds per stage."""
    timed = Timed(model)
    with DetectionTimer() as detection:
        start = time.perf_counter()
        if job == "edit":
            run = edit_video(clip, folder / "edited.mp4", EDIT, timed.frame_model(), progress=False)
        else:
            run = analyse_video(clip, folder / "analysis", timed.frame_model(), progress=False)
        seconds = time.perf_counter() - start
    return {"frames": run.frames, "seconds": seconds, "detect": detection.seconds, "encode": timed.encode_s,
            "render": timed.render_s}


def speed(name: str, model: FrameModel, clip: pathlib.Path, folder: pathlib.Path, repeats: int) -> list[str]:
    """Table rows: fps of edit and analyse end to end (the fastest of ``repeats`` runs), ms per frame per stage."""
    warm_up(model, clip)
    rows = []
    for job in ("edit", "analyse"):
        best = min((timed_run(job, model, clip, folder) for _ in range(repeats)), key=lambda r: r["seconds"])
        n, seconds = best["frames"], best["seconds"]
        rest = seconds - best["detect"] - best["encode"] - best["render"]
        rows.append(
            f"| {name} | {job} | {n} | {n / seconds:.1f} | {1000 * seconds / n:.1f} | "
            f"{1000 * best['detect'] / n:.1f} | {1000 * best['encode'] / n:.1f} | {1000 * best['render'] / n:.1f} | "
            f"{1000 * rest / n:.1f} |"
        )
    return rows


def frame_mask(square: tuple[int, int, int], size: int) -> np.ndarray:
    """`(H, W)` bool: the crop's elliptical face mask in frame pixels."""
    left, top, side = square
    ellipse = cv2.resize(photos.elliptical_mask(size)[..., 0], (side, side), interpolation=cv2.INTER_NEAREST)
    mask = np.zeros((HEIGHT, WIDTH), bool)
    x0, y0, x1, y1 = max(left, 0), max(top, 0), min(left + side, WIDTH), min(top + side, HEIGHT)
    mask[y0:y1, x0:x1] = ellipse[y0 - top : y1 - top, x0 - left : x1 - left] > 0.5
    return mask


def flicker(model: FrameModel, clip: pathlib.Path, box_tau: float, map_tau: float) -> dict[str, float]:
    """Frame-to-frame mean absolute differences on the still clip (module docstring)."""
    _, frames = read_frames(clip)
    faces = VideoFaces(model, FPS, map_time_constant=map_tau, box_time_constant=box_tau)
    inputs, outputs, fmel, fblood, centres = [], [], [], [], []
    region = None
    for frame in frames:
        face = faces.step(frame)
        if face.params is None:
            raise SystemExit("the detector lost the astronaut's face in the still clip")
        if region is None:
            region = frame_mask(face.track.square, model.image_size)
        inputs.append(frame[region] * 255.0)
        outputs.append(edit_frame(frame, face, EDIT, model.render)[region] * 255.0)
        fmel.append(face.params["fmel"][0, ..., 0])
        fblood.append(face.params["fblood"][0, ..., 0])
        left, top, side = face.track.square
        centres.append((left + side / 2, top + side / 2, side))
    inside = photos.elliptical_mask(model.image_size)[..., 0] > 0.5

    def change(seq, where=None):
        return float(np.mean([np.abs(b - a)[where].mean() if where is not None else np.abs(b - a).mean()
                              for a, b in zip(seq, seq[1:])]))

    edits = [o - i for i, o in zip(inputs, outputs)]
    return {
        "input": change(inputs), "output": change(outputs), "edit": change(edits),
        "edit_size": float(np.mean([np.abs(e).mean() for e in edits])),
        "fmel": change(fmel, inside), "fblood": change(fblood, inside),
        "box": float(np.mean(np.std(np.array(centres), axis=0))),
    }


def flicker_table(models: dict[str, FrameModel], still: pathlib.Path) -> tuple[list[str], list[str]]:
    """Table rows of :func:`flicker` for every backend and setting, and a sentence per backend."""
    rows, reading = [], []
    for name, model in models.items():
        results = {}
        for label, box_tau, map_tau in SETTINGS:
            f = results[(box_tau, map_tau)] = flicker(model, still, box_tau, map_tau)
            rows.append(
                f"| {name} | {label} | {f['edit_size']:.1f} | {f['input']:.2f} | {f['output']:.2f} | "
                f"{f['edit']:.2f} | {f['fmel']:.4f} | {f['fblood']:.4f} | {f['box']:.2f} |"
            )
        raw, default = results[(0.0, 0.0)], results[(BOX_TIME_CONSTANT, MAP_TIME_CONSTANT)]
        reading.append(
            f"- {name}: the default smoothing lowers the edit's frame-to-frame change "
            f"{raw['edit'] / default['edit']:.1f}× ({raw['edit']:.2f} → {default['edit']:.2f} levels, "
            f"{100 * default['edit'] / default['edit_size']:.1f} % of the edit's own size), the melanin map's "
            f"{raw['fmel'] / default['fmel']:.1f}×; the output still changes "
            f"{default['output'] / default['input']:.1f}× as much as the input does from frame to frame."
        )
    return rows, reading


def report(args, speed_rows: list[str], flicker_rows: list[str], reading: list[str], whole_ms: float) -> str:
    """The Markdown results file."""
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    return "\n".join([
        "# Video at 640×480: speed and flicker (CPU)",
        "",
        f"`python {shlex.join(['benchmarks/bench_video.py', *sys.argv[1:]])}`",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, load average {load} (1/5/15 min) at the end "
        "of the run (this benchmark's own threads count too); on a shared CPU the times are upper bounds. "
        f"Python {platform.python_version()}, OpenCV {cv2.__version__}. "
        f"Model: {args.model or 'the shipped `bioface_mobile`'} (Keras; `model.keras` SHA-256 "
        f"{fingerprint(args.model)}…) and {args.models or 'its shipped LiteRT bundle'}. "
        f"Clips: {args.frames} frames of 640×480 at {FPS:g} fps, mp4v (module docstring of "
        "`benchmarks/bench_video.py`).",
        "",
        "## Frames per second (moving clip, melanin +0.4)",
        "",
        f"End to end, the fastest of {args.repeats} runs (the CPU is shared): decode, detect and track, crop, "
        "encode, render (edit: the smoothed and the edited parameters; analyse: the smoothed ones), composite "
        "and paste, write the clip (edit) or `frames.jsonl` (analyse). Stage columns are milliseconds per "
        "frame; *other* is the rest (decoding, cropping, compositing, pasting, writing, tracking bookkeeping). "
        "*detect* is the detector near the tracked box (the first frame searches the whole frame: "
        f"{whole_ms:.0f} ms, median of 5 frames). Face mask: `skin` (the default), computed afresh every "
        f"{MASK_REFRESH_SECONDS:g} s and moved with the crop in between; it is part of *other*.",
        "",
        "| command | job | frames | fps | ms/frame | detect ms | encoder ms | renderer ms | other ms |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
        *speed_rows,
        "",
        "## Frame-to-frame change on a still face (melanin +0.4)",
        "",
        "Mean absolute difference between consecutive frames. *input*, *output*, *edit* (= output − input): "
        "8-bit levels inside the face; *fmel*, *fblood*: map units ([−1, 1]) inside the crop's mask; *box*: "
        "standard deviation of the tracked box (centre x, centre y, side; mean of the three) in pixels; "
        "*edit size*: the mean absolute edit (output − input) inside the face, 8-bit levels. "
        f"The box time constant is {BOX_TIME_CONSTANT:g} s when smoothed.",
        "",
        "| command | smoothing | edit size | input | output | edit | fmel | fblood | box px |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
        *flicker_rows,
        "",
        *reading,
        "",
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=60, help="frames per clip (default: 60)")
    parser.add_argument("--out", default=None, help="write the Markdown table here as well")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per job; the fastest is shown (default: 3)")
    parser.add_argument("--model", default=None, help="a .keras model (default: the shipped one)")
    parser.add_argument("--models", default=None, help="its LiteRT bundle (default: the shipped one's)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = pathlib.Path(tmp)
        moving = make_clip(folder / "moving.mp4", args.frames, moving=True)
        still = make_clip(folder / "still.mp4", args.frames, moving=False, seed=1)
        whole_ms = whole_frame_detection_ms(moving)
        models = backends(args.model, args.models)
        speed_rows = [row for name, model in models.items() for row in speed(name, model, moving, folder, args.repeats)]
        flicker_rows, reading = flicker_table(models, still)
    text = report(args, speed_rows, flicker_rows, reading, whole_ms)
    print(text)
    if args.out:
        pathlib.Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
