"""Skin masks for photos (bioface_tf.masks): agreement with hand labels and rendered truth, edits, empty masks."""

import pathlib
import types

import cv2
import numpy as np
import pytest

from bioface_tf.analysis import FaceAnalysis
from bioface_tf.data.faces import Failure, iter_faces
from bioface_tf.data.photos import find_faces
from bioface_tf.editing import Edit, edit_photo
from bioface_tf.errors import BioFaceError, DataError
from bioface_tf.masks import elliptical_mask, resize_mask, skin_mask
from data_builders import draw_face
from benchmark_scripts import loaded

LABELS = sorted((pathlib.Path(__file__).parent / "data" / "skin_labels").glob("*.json"))
MODULE_OF = {"scikit-image": "skimage", "matplotlib": "matplotlib", "mahotas": "mahotas"}
NON_SKIN = (-1, 2, 3, 4, 5, 6, 7, 8)
"""eval_faces materials that are not face skin: background, hair, sclera, iris, pupil, mouth, teeth, lashes (not neck)."""


@pytest.fixture(scope="module")
def bench():
    with loaded("eval_skin_masks.py", "eval_skin_masks") as module:
        yield module


@pytest.fixture(scope="module")
def rendered():
    from bioface_tf.data.eval_faces import render_eval_faces

    return render_eval_faces(8, 64, seed=0)


@pytest.mark.parametrize("label_path", LABELS, ids=[p.stem for p in LABELS])
def test_skin_mask_agrees_with_the_hand_label_better_than_the_ellipse(bench, label_path):
    import json

    pytest.importorskip(MODULE_OF[json.loads(label_path.read_text())["distribution"]])
    label, photo = bench.read_label(label_path)
    assert photo is not None, f"{label['file']} missing from the installed {label['distribution']}"
    r = bench.photo_ious(label, photo, 64)
    assert r["sha256_matches"], "the photo is not the one labelled"
    assert r["skin_crop"] > r["ellipse_crop"]
    assert r["skin_photo"] > r["ellipse_photo"]
    assert r["skin_crop"] >= 0.74 and r["skin_photo"] >= 0.74


def test_label_polygons_paint_in_order(bench):
    layers = [
        {"value": 1, "points": [[0, 0], [9, 0], [9, 9], [0, 9]]},
        {"value": 0, "points": [[2, 2], [4, 2], [4, 4], [2, 4]]},
    ]
    mask = bench.label_mask(layers, 12, 12)
    assert mask[0, 0] == 1 and mask[3, 3] == 0 and mask[11, 11] == 0
    assert mask.sum() == 100 - 9


def test_skin_mask_beats_the_ellipse_on_rendered_faces(bench, rendered):
    ellipse = elliptical_mask(64)[..., 0]
    skin = [bench.iou(skin_mask(image), truth) for image, truth in zip(rendered["image"], rendered["mask"])]
    old = [bench.iou(ellipse, truth) for truth in rendered["mask"]]
    assert np.mean(skin) >= 0.75
    assert np.mean(skin) > np.mean(old) + 0.1


def test_skin_mask_leaves_out_hair_eyes_mouth_and_background(rendered):
    non_skin = np.isin(rendered["material"], NON_SKIN)
    masks = np.stack([skin_mask(image) for image in rendered["image"]])
    ellipse = elliptical_mask(64)[..., 0]
    inside_new = (masks > 0.5) & non_skin
    inside_old = (ellipse > 0.5)[None] & non_skin
    assert inside_new.sum() < 0.35 * inside_old.sum()


def _fake_model(size):
    """An analyser and renderer without TensorFlow: the render is grey plus 0.3·fmel."""

    def decoder(params):
        return {"srgb": np.clip(np.repeat(0.5 + 0.3 * np.asarray(params["fmel"]), 3, axis=-1), 0.0, 1.0)}

    def analyser(crops, masks):
        n = len(crops)
        params = {
            "fmel": np.zeros((n, size, size, 1), np.float32), "fblood": np.zeros((n, size, size, 1), np.float32),
            "shading": np.ones((n, size, size, 1), np.float32), "specmask": np.zeros((n, size, size, 1), np.float32),
            "b": np.zeros((n, 2), np.float32), "light_weights": np.zeros((n, 14), np.float32),
            "cct": np.ones((n, 1), np.float32),
        }
        rendered = decoder(params)["srgb"]
        return FaceAnalysis(crops, masks, params, rendered, rendered)

    return types.SimpleNamespace(image_size=size), analyser, decoder


def test_an_edit_leaves_non_skin_pixels_unchanged():
    from bioface_tf.data.eval_faces import render_eval_faces

    face = render_eval_faces(1, 160, seed=0, start=2)
    photo, material = face["image"][0], face["material"][0]
    model, analyser, decoder = _fake_model(64)
    squares = [(0, 0, 160)]
    out = {
        kind: edit_photo(model, photo, Edit(melanin=0.4), squares, analyser=analyser, decoder=decoder, mask=kind)
        for kind in ("skin", "ellipse")
    }
    changed = {kind: np.abs(image - photo).max(axis=-1) > 1e-6 for kind, image in out.items()}
    non_skin = np.isin(material, NON_SKIN)
    skin = material == 0
    assert changed["skin"][skin].mean() > 0.5
    assert changed["skin"][non_skin].mean() < 0.35 * changed["ellipse"][non_skin].mean()
    from bioface_tf.data.photos import square_masks

    outside = square_masks(photo, squares[0], "skin", [160])[0] < 0.5
    assert not changed["skin"][outside].any()


@pytest.fixture()
def grey_face(tmp_path):
    """A detectable cartoon face saved as greyscale RGB (R = G = B): no skin colours anywhere."""
    bgr = draw_face(400, 400, (200, 200), 1.5)
    grey = cv2.cvtColor(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    path = tmp_path / "grey face.png"
    cv2.imwrite(str(path), grey)
    return path


def test_an_empty_skin_mask_is_an_error_naming_the_file(grey_face):
    with pytest.raises(DataError) as err:
        find_faces(grey_face, 64)
    assert str(grey_face) in str(err.value) and "skin" in str(err.value) and "--mask ellipse" in str(err.value)
    failures = [item for item in iter_faces([grey_face], 64) if isinstance(item, Failure)]
    assert len(failures) == 1 and str(grey_face) in failures[0].message


def test_the_ellipse_stays_available(grey_face):
    (face,) = find_faces(grey_face, 64, mask="ellipse")
    assert np.array_equal(face.mask, elliptical_mask(64))
    (item,) = list(iter_faces([grey_face], 64, mask="ellipse"))
    assert item.record()["mask"] == "ellipse"


def test_edit_photo_refuses_a_face_without_skin(grey_face):
    from bioface_tf.data.photos import face_squares, read_photo

    photo = read_photo(grey_face)
    model, analyser, decoder = _fake_model(64)
    squares = [square for square, _ in face_squares(photo)]
    with pytest.raises(BioFaceError, match="no skin found"):
        edit_photo(model, photo, Edit(melanin=0.4), squares, analyser=analyser, decoder=decoder)


def test_a_colour_face_gets_a_skin_mask_inside_its_face(tmp_path):
    path = tmp_path / "face.png"
    cv2.imwrite(str(path), draw_face(400, 400, (200, 200), 1.5))
    (face,) = find_faces(path, 64)
    mask = face.mask[..., 0]
    assert 0.1 < mask.mean() < elliptical_mask(64).mean()
    assert mask[int(0.55 * 64), 32] == 1  # the nose's cheek level, centre of the face
    assert mask[2, 2] == 0 and mask[-3, -3] == 0


def test_resize_mask_keeps_pixels_more_than_half_inside():
    mask = np.zeros((4, 4), np.float32)
    mask[:2, :2] = 1
    mask[2, 2] = 1
    small = resize_mask(mask, 2)
    assert small.tolist() == [[1, 0], [0, 0]]
    assert resize_mask(small, 8)[:3, :3].all() and not resize_mask(small, 8)[5:, 5:].any()


def test_skin_mask_wants_a_square_colour_crop():
    with pytest.raises(ValueError, match="S, S, 3"):
        skin_mask(np.zeros((10, 12, 3), np.float32))


def test_one_photo_always_gets_one_mask():
    from bioface_tf.data.eval_faces import render_eval_faces
    from bioface_tf.data.photos import square_masks

    photo = render_eval_faces(1, 160, seed=0, start=2)["image"][0]
    masks = [square_masks(photo, (0, 0, 160), "skin", [160])[0] for _ in range(4)]
    assert masks[0].any()
    for mask in masks[1:]:
        np.testing.assert_array_equal(mask, masks[0])


def test_the_prior_follows_a_face_that_is_off_centre_in_its_crop():
    """A face moved right by an eighth of its crop keeps its far cheek (the fixed ellipse cut it all off)."""
    from bioface_tf.data.eval_faces import render_eval_faces
    from bioface_tf.masks import ellipse, prior_centre, skin_coloured

    faces = render_eval_faces(4, 128, seed=0, start=2)
    shift = np.float32([[1, 0, 16], [0, 1, 0]])
    beyond_ellipse = ~ellipse(128)
    kept = []
    for image, material in zip(faces["image"], faces["material"]):
        moved = cv2.warpAffine(image, shift, (128, 128), borderMode=cv2.BORDER_REPLICATE)
        skin = cv2.warpAffine((material == 0).astype(np.uint8), shift, (128, 128), flags=cv2.INTER_NEAREST) > 0
        assert prior_centre(skin_coloured(moved)) > 0.55
        far = skin & beyond_ellipse
        kept.append((skin_mask(moved)[far] > 0.5).mean())
    assert np.mean(kept) > 0.6


def test_the_prior_stays_put_for_a_centred_face_and_moves_at_most_its_limit():
    from bioface_tf.masks import MASK_CENTRE, PRIOR_SHIFT_LIMIT, ellipse, prior_centre

    assert prior_centre(ellipse(128)) == pytest.approx(MASK_CENTRE[0], abs=0.01)
    right_edge = np.zeros((128, 128), bool)
    right_edge[:, 100:] = True
    assert prior_centre(right_edge) == pytest.approx(MASK_CENTRE[0] + PRIOR_SHIFT_LIMIT)
    assert prior_centre(np.zeros((128, 128), bool)) == MASK_CENTRE[0]


def test_an_eye_socket_is_filled_around_a_detected_eye_and_an_undetected_eye_stays_out(monkeypatch):
    """The colour test leaves a hole larger than the eye (its shadowed socket): only the eye found is cut."""
    import bioface_tf.masks as masks
    from bioface_tf.data.eval_faces import render_eval_faces

    image = render_eval_faces(1, 128, seed=0, start=2)["image"][0].copy()
    socket, eye, missed = (np.zeros((128, 128), np.uint8) for _ in range(3))
    cv2.circle(socket, (64, 78), 7, 1, -1)
    cv2.circle(eye, (64, 78), 3, 1, -1)
    cv2.circle(missed, (64, 50), 4, 1, -1)  # eye-sized, larger than SMALL_HOLE, not detected
    image[(socket > 0) | (missed > 0)] = (0.2, 0.6, 0.2)  # green: not skin-coloured
    monkeypatch.setattr(masks, "eye_regions", lambda rgb: eye.astype(bool))
    mask = skin_mask(image) > 0.5
    assert not masks.skin_coloured(image)[(socket > 0) | (missed > 0)].any()
    assert not mask[eye > 0].any()
    assert mask[(socket > 0) & (eye == 0)].mean() > 0.9
    assert mask[missed > 0].mean() < 0.2
    around_missed = cv2.dilate(missed, np.ones((7, 7), np.uint8)) - missed
    assert mask[around_missed > 0].mean() > 0.9
