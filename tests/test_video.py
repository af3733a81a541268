"""Video clips: ``bioface analyze/edit CLIP`` and ``bioface-lite`` the same, a tracked face, maps smoothed in time."""

import json
import subprocess
import sys
import textwrap

import cv2
import numpy as np
import pytest

from bioface_tf.cli import main as bioface
from bioface_tf.data.photos import crop_square
from bioface_tf.editing import Edit
from bioface_tf.video import (
    FaceTracker,
    ParameterSmoother,
    TRACK_DETECTED,
    TRACK_HELD,
    VideoFaces,
    edit_frame,
    keras_frame_model,
    read_frames,
    realign,
)
from data_builders import NO_TENSORFLOW, draw_face

SIZE = 32
WIDTH, HEIGHT, FPS, FRAMES = 320, 240, 12, 10
START_X, STEP_X, CENTRE_Y, SCALE = 140, 3, 120, 0.8
"""The moving clip: a cartoon face whose centre moves STEP_X pixels right per frame."""


def face_frame(t: int, still: bool = False, noise: float = 0.0, seed: int = 0) -> np.ndarray:
    """Frame ``t`` of a test clip, BGR uint8 `(HEIGHT, WIDTH, 3)`; a still face with optional sensor noise."""
    x = START_X if still else START_X + STEP_X * t
    frame = draw_face(HEIGHT, WIDTH, (x, CENTRE_Y), SCALE)
    if noise:
        jitter = np.random.default_rng(seed + t).normal(0.0, noise, frame.shape)
        frame = np.clip(frame + jitter, 0, 255).astype(np.uint8)
    return frame


def write_clip(path, frames, fps=FPS, fourcc="MJPG"):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (WIDTH, HEIGHT))
    assert writer.isOpened(), f"this OpenCV cannot write {fourcc}"
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


def read_clip(path) -> tuple[np.ndarray, float]:
    """All frames `(T, H, W, 3)` int and the frame rate, read with OpenCV directly."""
    capture = cv2.VideoCapture(str(path))
    fps = capture.get(cv2.CAP_PROP_FPS)
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame.astype(int))
    capture.release()
    return np.stack(frames), fps


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A tiny saved model, its float32 bundle, a moving-face clip (.avi, MJPG) and a still noisy one (.mp4)."""
    import keras

    from bioface_tf.model import build_bioface

    folder = tmp_path_factory.mktemp("video")
    model = folder / "tiny.keras"
    keras.utils.set_random_seed(0)  # as in test_photo_inputs: an unseeded one may put fmel at +1, clipping the edit
    build_bioface(SIZE, "mobile", width_multiplier=0.25).save(model)
    moving = write_clip(folder / "moving.avi", [face_frame(t) for t in range(FRAMES)])
    still = write_clip(folder / "still.mp4", [face_frame(t, still=True, noise=4.0) for t in range(FRAMES)],
                       fourcc="mp4v")
    return {"folder": folder, "model": model, "moving": moving, "still": still}


@pytest.fixture(scope="module")
def bundle(files):
    pytest.importorskip("ai_edge_litert.interpreter")
    assert bioface(["export", "--model", str(files["model"]), "--quantize", "float32",
                    "--out", str(files["folder"] / "bundle")]) == 0
    return files["folder"] / "bundle"


def _face_and_background_change(clip, edited) -> tuple[np.ndarray, np.ndarray]:
    """Per frame, the mean absolute change (8-bit levels) in the middle of the face and in the four corners."""
    before, _ = read_clip(clip)
    after, _ = read_clip(edited)
    face, background = [], []
    for t, (b, a) in enumerate(zip(before, after)):
        change = np.abs(a - b).mean(axis=-1)
        x = START_X + STEP_X * t
        face.append(change[CENTRE_Y - 10 : CENTRE_Y + 30, x - 25 : x + 25].mean())
        background.append(np.mean([change[:20, :20], change[:20, -20:], change[-20:, :20], change[-20:, -20:]]))
    return np.array(face), np.array(background)


def test_edit_clip_keeps_size_rate_and_frame_count_and_changes_only_the_face(files, tmp_path, capsys):
    out = tmp_path / "out.mp4"
    status = bioface(["edit", str(files["moving"]), "--model", str(files["model"]), "--melanin", "0.4",
                      "--out", str(out)])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert "audio not copied" in captured.out
    before, fps_in = read_clip(files["moving"])
    after, fps_out = read_clip(out)
    assert after.shape == before.shape == (FRAMES, HEIGHT, WIDTH, 3)
    assert fps_out == fps_in == FPS
    face, background = _face_and_background_change(files["moving"], out)
    assert face.min() > 4.0, f"every frame's face changed: {face.round(1)}"
    assert background.max() < 2.5, f"the background kept (up to codec noise): {background.round(2)}"
    print("face change", face.round(1), "background", background.round(2))


def test_analyze_clip_writes_a_record_per_frame_that_follows_the_face(files, tmp_path):
    out = tmp_path / "maps"
    assert bioface(["analyze", str(files["moving"]), "--model", str(files["model"]), "--maps-video",
                    "--out", str(out)]) == 0
    lines = (out / "moving" / "frames.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["frame"] for r in records] == list(range(FRAMES))
    assert all(r["face"] and r["tracking"] == TRACK_DETECTED for r in records)
    assert all(0.0 <= r["mean_melanin_volume_fraction"] <= 0.43 and r["nearest_camera"] for r in records)
    centres = np.array([r["crop_square"][0] + r["crop_square"][2] / 2 for r in records])
    truth = START_X + STEP_X * np.arange(FRAMES)
    assert np.abs(centres - truth).max() < 12, f"the box follows the face: {centres} vs {truth}"
    assert centres[-1] - centres[0] > 0.6 * STEP_X * (FRAMES - 1), "the box moved with the face"
    summary = json.loads((out / "moving" / "video.json").read_text())
    assert (summary["frames"], summary["fps"], summary["width"]) == (FRAMES, FPS, WIDTH)
    maps, maps_fps = read_clip(out / "moving" / "maps.mp4")
    assert len(maps) == FRAMES and maps_fps == FPS


def _flicker(frame_model, clip, time_constant) -> tuple[float, float]:
    """Mean absolute frame-to-frame change of the edit (output − input, inside the face mask) and of ``fmel``."""
    info, frames = read_frames(clip)
    faces = VideoFaces(frame_model, info.fps, map_time_constant=time_constant, mask="ellipse")
    deltas, maps = [], []
    for frame in frames:
        face = faces.step(frame)
        assert face.params is not None
        out = edit_frame(frame, face, Edit(melanin=0.4), frame_model.render)
        deltas.append(crop_square(out, face.track.square, SIZE) - face.crop)
        maps.append(face.params["fmel"][0])
    inside = face.mask[..., 0] > 0.5
    delta_change = np.mean([np.abs(b - a)[inside].mean() for a, b in zip(deltas, deltas[1:])])
    map_change = np.mean([np.abs(b - a)[inside].mean() for a, b in zip(maps, maps[1:])])
    return float(delta_change), float(map_change)


def test_smoothing_in_time_lowers_the_frame_to_frame_change_on_a_still_clip(files):
    from bioface_tf.analysis import load_model

    frame_model = keras_frame_model(load_model(files["model"]))
    raw_edit, raw_map = _flicker(frame_model, files["still"], 0.0)
    smooth_edit, smooth_map = _flicker(frame_model, files["still"], 0.3)
    assert raw_map > 0, "the noisy clip does move the tiny model's maps"
    assert smooth_map < 0.7 * raw_map, (smooth_map, raw_map)
    assert smooth_edit < 0.85 * raw_edit, (smooth_edit, raw_edit)


def test_bioface_lite_edits_and_analyses_a_clip_like_bioface(files, bundle, tmp_path, capsys):
    from mobile_export.cli import main as bioface_lite

    keras_out, lite_out = tmp_path / "keras.avi", tmp_path / "lite.avi"
    flags = ["--melanin", "0.4", "--haemoglobin", "-0.2"]
    assert bioface(["edit", str(files["moving"]), "--model", str(files["model"]), *flags, "--out", str(keras_out)]) == 0
    assert bioface_lite(["edit", str(files["moving"]), "--models", str(bundle), *flags, "--out", str(lite_out)]) == 0
    assert "audio not copied" in capsys.readouterr().out
    expected, _ = read_clip(keras_out)
    got, fps = read_clip(lite_out)
    assert got.shape == expected.shape and fps == FPS
    assert np.abs(got - expected).mean() < 0.5, "the same frames up to rounding and JPEG"
    face, background = _face_and_background_change(files["moving"], lite_out)
    assert face.min() > 4.0 and background.max() < 1.5
    assert bioface_lite(["analyze", str(files["moving"]), "--models", str(bundle), "--out", str(tmp_path / "a")]) == 0
    records = [json.loads(line) for line in (tmp_path / "a" / "moving" / "frames.jsonl").read_text().splitlines()]
    assert len(records) == FRAMES and all(r["face"] for r in records)




def test_bioface_lite_edits_a_clip_without_tensorflow(files, bundle, tmp_path):
    out = tmp_path / "edited.mp4"
    script = NO_TENSORFLOW + textwrap.dedent(
        f"""
        from mobile_export.cli import main
        assert main(["edit", {str(files["moving"])!r}, "--models", {str(bundle)!r}, "--melanin", "0.3",
                     "--out", {str(out)!r}]) == 0
        print("TF-MODULES", sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras")))
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "TF-MODULES []" in result.stdout
    assert len(read_clip(out)[0]) == FRAMES


def test_an_unreadable_or_missing_clip_is_an_error_naming_the_file(files, tmp_path, capsys):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    model = ["--model", str(files["model"])]
    assert bioface(["edit", str(broken), *model, "--melanin", "0.4", "--out", str(tmp_path / "o.mp4")]) == 1
    assert f"{broken}: unreadable video" in capsys.readouterr().err
    assert not (tmp_path / "o.mp4").exists()
    missing = tmp_path / "missing.avi"
    assert bioface(["analyze", str(broken), str(missing), *model, "--out", str(tmp_path / "maps")]) == 1
    err = capsys.readouterr().err
    assert f"skipped {broken}: unreadable video" in err and f"skipped {missing}: file not found" in err


def test_clip_flags_that_cannot_apply_are_errors_naming_the_file(files, tmp_path, capsys):
    common = [str(files["moving"]), "--model", str(files["model"]), "--melanin", "0.4"]
    assert bioface(["edit", *common, "--out", str(tmp_path / "edited.png")]) == 1
    assert f"{tmp_path / 'edited.png'}: a video is written as .mp4, .avi, .mov" in capsys.readouterr().err
    assert bioface(["edit", *common, "--all-faces", "--out", str(tmp_path / "e.mp4")]) == 1
    assert f"{files['moving']}: --all-faces is for photos" in capsys.readouterr().err
    assert bioface(["edit", *common, "--smooth", "-1", "--out", str(tmp_path / "e.mp4")]) == 1
    assert "--smooth must be >= 0" in capsys.readouterr().err


def _square_centre(track) -> float:
    left, _, side = track.square
    return left + side / 2


def test_the_tracker_keeps_the_face_it_follows_when_a_larger_one_appears():
    tracker = FaceTracker(FPS)
    left_face = draw_face(HEIGHT, WIDTH, (90, CENTRE_Y), 0.7)
    both = left_face.copy()
    both[:, 170:] = draw_face(HEIGHT, WIDTH, (245, CENTRE_Y), 0.9)[:, 170:]
    first = tracker.update(cv2.cvtColor(left_face, cv2.COLOR_BGR2RGB) / 255.0)
    assert first.new and abs(_square_centre(first) - 90) < 10
    for _ in range(3):
        track = tracker.update(cv2.cvtColor(both, cv2.COLOR_BGR2RGB) / 255.0)
        assert track.how == TRACK_DETECTED and abs(_square_centre(track) - 90) < 10, "still the left face"
    fresh = FaceTracker(FPS).update(cv2.cvtColor(both, cv2.COLOR_BGR2RGB) / 255.0)
    assert abs(_square_centre(fresh) - 245) < 10, "a new track starts on the largest face"


def test_the_tracker_holds_a_missed_face_briefly_then_loses_it():
    tracker = FaceTracker(FPS, hold_seconds=2 / FPS)
    face = cv2.cvtColor(face_frame(0), cv2.COLOR_BGR2RGB) / 255.0
    empty = np.full_like(face, 0.5)
    square = tracker.update(face).square
    assert [tracker.update(empty).how for _ in range(2)] == [TRACK_HELD, TRACK_HELD]
    assert tracker.update(empty).square is None, "lost after the hold"
    assert tracker.update(face).new and tracker.update(face).square is not None
    assert square is not None


def test_realign_moves_maps_with_the_crop():
    size = 32

    def sampled(square):
        """A linear function of frame coordinates (bilinear resampling is exact for it) at a crop's pixel centres."""
        left, top, side = square
        u = left + (np.arange(size) + 0.5) * side / size
        v = top + (np.arange(size) + 0.5) * side / size
        return (0.01 * u[None, :] - 0.02 * v[:, None]).astype(np.float32)[..., None]

    old, new = (100, 50, 160), (110, 46, 150)
    got = realign(sampled(old), old, new)
    expected = sampled(new)
    assert got.shape == (size, size, 1)
    inner = slice(2, size - 2)
    steepest = 0.02 * old[2] / size  # per old-crop pixel; OpenCV resamples at 1/32-pixel precision
    assert np.abs(got - expected)[inner, inner].max() < steepest / 32
    assert np.abs(sampled(old) - expected)[inner, inner].max() > 0.1, "without realigning the maps would not match"


def test_the_moving_average_has_the_documented_time_constant():
    fps, tau = 25.0, 0.2
    smoother = ParameterSmoother(fps, tau)
    square = (0, 0, 64)
    zeros = {"fmel": np.zeros((1, 4, 4, 1)), "fblood": np.zeros((1, 4, 4, 1)), "shading": np.zeros((1, 4, 4, 1)),
             "specmask": np.zeros((1, 4, 4, 1)), "b": np.zeros((1, 2)), "light_weights": np.zeros((1, 14)),
             "cct": np.zeros((1, 1))}
    ones = {k: np.ones_like(v) for k, v in zeros.items()}
    smoother.update(zeros, square)
    for _ in range(int(round(fps * tau))):
        state = smoother.update(ones, square)
    assert state["fmel"].mean() == pytest.approx(1 - np.exp(-1), abs=0.01), "a step reaches 1 - 1/e after tau"
    assert ParameterSmoother(fps, 0.0).update(ones, square)["cct"][0, 0] == 1.0


def test_crop_none_takes_every_frame_whole_in_one_track():
    tracker = FaceTracker(FPS, crop="none")
    empty = np.full((HEIGHT, WIDTH, 3), 0.5, np.float32)
    tracks = [tracker.update(empty) for _ in range(3)]
    assert [t.new for t in tracks] == [True, False, False], "one average over the clip, not a new one per frame"
    assert all(t.square == ((WIDTH - WIDTH) // 2, (HEIGHT - WIDTH) // 2, WIDTH) for t in tracks)


def test_a_mov_clip_reads_with_its_frame_rate_and_count(tmp_path):
    clip = write_clip(tmp_path / "clip.mov", [face_frame(t) for t in range(4)], fps=15, fourcc="mp4v")
    info, frames = read_frames(clip)
    frames = list(frames)
    assert (info.width, info.height, info.fps) == (WIDTH, HEIGHT, 15)
    assert len(frames) == 4 and frames[0].shape == (HEIGHT, WIDTH, 3) and frames[0].dtype == np.float32
    assert 0.0 <= frames[0].min() and frames[0].max() <= 1.0


def test_the_skin_mask_follows_the_face_and_the_ellipse_stays_put():
    from bioface_tf.masks import elliptical_mask
    from bioface_tf.video import MaskTracker

    frames = [cv2.cvtColor(face_frame(t), cv2.COLOR_BGR2RGB) / 255.0 for t in (0, 1)]
    tracker = FaceTracker(FPS)
    squares = [tracker.update(frame).square for frame in frames]
    ellipse = MaskTracker("ellipse", FPS, SIZE)
    assert all(np.array_equal(ellipse.update(f, s, i == 0), elliptical_mask(SIZE)) for i, (f, s) in
               enumerate(zip(frames, squares)))
    skin = MaskTracker("skin", FPS, SIZE)
    first = skin.update(frames[0], squares[0], True)
    assert first.shape == (SIZE, SIZE, 1) and 0.1 < first.mean() < 0.9
    assert not np.array_equal(first, elliptical_mask(SIZE)), "the skin, not the ellipse"
    moved = skin.update(frames[1], squares[1], False)
    assert moved.shape == (SIZE, SIZE, 1) and set(np.unique(moved)) <= {0.0, 1.0}
    assert np.abs(moved - first).mean() < 0.05, "moved with the crop, not recomputed from scratch differently"
