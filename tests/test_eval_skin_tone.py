"""Map agreement by skin type: benchmarks/eval_skin_tone.py's grouping and the per-face scores it groups."""

import numpy as np
import pytest

from benchmark_scripts import loaded


@pytest.fixture(scope="module")
def tone():
    with loaded("eval_skin_tone.py", "eval_skin_tone") as module:
        yield module


def test_faces_are_split_into_equal_groups_from_lightest_to_darkest(tone):
    melanin = np.array([0.9, -0.8, 0.1, -0.2, 0.5, -0.9, 0.3, 0.7])
    labels, edges = tone.skin_tone_groups(melanin, 4)
    np.testing.assert_array_equal(labels, [3, 0, 1, 1, 2, 0, 2, 3])
    np.testing.assert_allclose(edges, [-0.9, -0.2, 0.3, 0.7, 0.9])
    uneven, _ = tone.skin_tone_groups(np.arange(10.0), 4)
    assert sorted(np.bincount(uneven)) == [2, 2, 3, 3], "sizes differ by at most one face"
    assert np.all(np.diff(uneven) >= 0), "more melanin never lands in a lighter group"
    with pytest.raises(ValueError, match="3 faces into 4 groups"):
        tone.skin_tone_groups(np.zeros(3), 4)


def test_group_means_leave_out_faces_without_a_score(tone):
    labels = np.array([0, 0, 1, 1])
    means = tone.group_means({"r": np.array([0.2, np.nan, 0.4, 0.8]), "none": np.array([np.nan] * 4)}, labels, 2)
    np.testing.assert_allclose(means["r"], [0.2, 0.6])
    assert np.all(np.isnan(means["none"]))


def test_face_scores_average_to_bioface_evaluate_and_carry_each_faces_skin_type(tmp_path):
    from bioface_tf.data import CelebAFaces
    from bioface_tf.data.synth import write_synthetic
    from bioface_tf.model import build_bioface
    from training.evaluate import evaluate, face_scores

    build_bioface(32, "mobile", width_multiplier=0.25).save(tmp_path / "m.keras")
    data = str(write_synthetic(tmp_path / "faces.h5", n=5, size=32, seed=2, progress=False))
    per_face = face_scores(tmp_path / "m.keras", [data], batch_size=3, progress=False)
    averaged = evaluate(tmp_path / "m.keras", [data], progress=False)
    assert averaged["n_faces"] == 5 and "true_melanin_mean" not in averaged
    for key, values in per_face.items():
        assert values.shape == (5,), key
        if key != "true_melanin_mean":
            assert averaged[key] == pytest.approx(np.nanmean(values), abs=1e-6), key
    with CelebAFaces([data], image_size=None) as source:
        truth = source.read(np.arange(5), ground_truth=True)
    expected = [fmel[mask > 0.5].mean() for fmel, mask in zip(truth["gt_fmel"], truth["mask"])]
    np.testing.assert_allclose(per_face["true_melanin_mean"], expected, atol=1e-6)


def test_a_file_without_ground_truth_is_an_error_naming_it(tone, tmp_path):
    from bioface_tf.model import build_bioface
    from data_builders import random_faces, write_pair

    images, _ = write_pair(tmp_path, random_faces(4, 32))
    model = build_bioface(32, "mobile", width_multiplier=0.125)
    with pytest.raises(SystemExit, match=f"{images.name}: holds no ground truth"):
        tone.family_table(model, str(images), 2)
