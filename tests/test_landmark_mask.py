"""The landmark mask (``--mask landmarks``): MediaPipe's Face Mesh model shipped in the package, run offline."""

import hashlib
import json
import pathlib
import re

import numpy as np
import pytest

pytest.importorskip("ai_edge_litert", reason="the landmark model runs under ai-edge-litert, not installed")

from bioface_tf import landmarks as lm  # noqa: E402
from bioface_tf.data.photos import crop_box, crop_square, detect_face, read_photo, square_masks  # noqa: E402
from bioface_tf.masks import (  # noqa: E402
    MASK_KINDS, WORK_SIZE, face_mask, landmark_mask, landmark_regions, resize_mask, skin_mask,
)
from benchmark_scripts import loaded  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
LABELS = ROOT / "tests" / "data" / "skin_labels"
TUNING = ("astronaut", "luispedro")
MODULE_OF = {"scikit-image": "skimage", "matplotlib": "matplotlib", "mahotas": "mahotas"}


@pytest.fixture(scope="module")
def bench():
    with loaded("eval_skin_masks.py", "eval_skin_masks_lm") as module:
        yield module


def labelled(bench, name):
    """``(label, rgb, square)`` of a hand-labelled photo; skipped when its package is not installed."""
    path = LABELS / f"{name}.json"
    pytest.importorskip(MODULE_OF[json.loads(path.read_text())["distribution"]])
    label, photo = bench.read_label(path)
    assert photo is not None, f"{label['file']} missing from the installed {label['distribution']}"
    rgb = read_photo(photo)
    return label, rgb, crop_box(detect_face(rgb))


def test_the_shipped_model_is_the_one_its_readme_names():
    readme = (lm.MODEL_PATH.parent / "README.md").read_text()
    digest = re.search(r"sha256\s+`([0-9a-f]{64})`", readme).group(1)
    assert hashlib.sha256(lm.MODEL_PATH.read_bytes()).hexdigest() == digest
    assert "Apache License" in (lm.MODEL_PATH.parent / "LICENSE").read_text()


def test_setup_installs_the_model_and_its_licence():
    setup = (ROOT / "setup.py").read_text()
    for name in ("face_landmark/face_landmark.tflite", "face_landmark/LICENSE"):
        assert f'"{name}"' in setup
        assert (ROOT / "bioface_tf" / name).is_file()


def test_the_roi_levels_the_eyes_and_frames_the_landmarks():
    rng = np.random.default_rng(0)
    points = rng.uniform(40, 90, (lm.N_LANDMARKS, 2))
    points[lm.EYE_CORNERS[0]], points[lm.EYE_CORNERS[1]] = (50.0, 60.0), (80.0, 75.0)  # tilted eyes
    transform = lm.roi_transform(points)
    moved = points @ transform[:, :2].T + transform[:, 2]
    left, right = moved[list(lm.EYE_CORNERS)]
    assert abs(left[1] - right[1]) < 1e-6 and right[0] > left[0]
    assert moved.min() >= 0 and moved.max() <= lm.INPUT_SIDE
    span = moved.max(axis=0) - moved.min(axis=0)
    assert max(span) == pytest.approx(lm.INPUT_SIDE / lm.ROI_SCALE, rel=1e-6)


def test_no_face_falls_back_to_the_skin_mask():
    rng = np.random.default_rng(1)
    noise = rng.uniform(0.3, 0.7, (WORK_SIZE, WORK_SIZE, 3)).astype(np.float32)
    _, presence = lm.face_landmarks(noise)
    assert presence < lm.PRESENCE_THRESHOLD
    np.testing.assert_array_equal(landmark_mask(noise), skin_mask(noise))


def test_the_kind_reaches_face_mask_and_square_masks(bench):
    assert "landmarks" in MASK_KINDS
    _, rgb, square = labelled(bench, "astronaut")
    crop = crop_square(rgb, square, WORK_SIZE)
    np.testing.assert_array_equal(face_mask(crop, "landmarks"), landmark_mask(crop))
    small, full = square_masks(rgb, square, "landmarks", [64, square[2]])
    assert small.shape == (64, 64) and full.shape == (square[2],) * 2
    np.testing.assert_array_equal(small, resize_mask(landmark_mask(crop), 64))


def test_landmarks_fall_on_the_face(bench):
    label, rgb, square = labelled(bench, "astronaut")
    crop = crop_square(rgb, square, WORK_SIZE)
    points, presence = lm.face_landmarks(crop)
    assert presence > 0.9
    # the eyes' landmarks lie inside the hand label's eye polygons (photo pixels → crop pixels)
    scale = WORK_SIZE / square[2]
    eyes = {layer["name"]: np.asarray(layer["points"], float) for layer in label["layers"] if "eye" in layer["name"]}
    for outline in (lm.LEFT_EYE, lm.RIGHT_EYE):
        centre = points[list(outline)].mean(axis=0) / scale + square[:2]
        nearest = min(eyes.values(), key=lambda poly: np.linalg.norm(poly.mean(axis=0) - centre))
        low, high = nearest.min(axis=0), nearest.max(axis=0)
        assert np.all(centre > low) and np.all(centre < high), (centre, low, high)


def test_the_open_mouth_and_the_eyes_are_cut_out(bench):
    label, rgb, square = labelled(bench, "astronaut")  # a smile showing teeth
    crop = crop_square(rgb, square, WORK_SIZE)
    mask = landmark_mask(crop) > 0.5
    points, _ = lm.face_landmarks(crop)
    regions = landmark_regions(points, WORK_SIZE)
    assert not (mask & regions["features"]).any()
    (layer,) = [layer for layer in label["layers"] if layer["name"] == "mouth"]  # the mouth's interior
    painted = bench.label_mask([{**layer, "value": 1}], *rgb.shape[:2])
    mouth = resize_mask(bench.square_of(painted, square), WORK_SIZE) > 0.5
    assert mouth.sum() > 50
    assert mask[mouth].mean() < 0.3, "teeth must stay out"
    assert (skin_mask(crop) > 0.5)[mouth].mean() > mask[mouth].mean(), "the colour mask keeps the teeth"


@pytest.mark.parametrize("name", TUNING)
def test_landmark_mask_beats_the_skin_mask_on_the_tuning_photos(bench, name):
    label, photo = bench.read_label(LABELS / f"{name}.json")
    labelled(bench, name)
    r = bench.photo_ious(label, photo, 64)
    assert r["landmarks_crop"] >= 0.85 and r["landmarks_photo"] >= 0.85
    assert r["landmarks_crop"] > r["skin_crop"] + 0.02


def test_landmark_mask_on_the_held_out_photo_beats_the_ellipse(bench):
    """Held out (glasses): worse than the skin mask (frames inside the oval stay in), still above the ellipse."""
    label, photo = bench.read_label(LABELS / "grace_hopper.json")
    labelled(bench, "grace_hopper")
    r = bench.photo_ious(label, photo, 64)
    assert r["landmarks_crop"] > r["ellipse_crop"] + 0.15
    assert r["landmarks_crop"] >= 0.65
