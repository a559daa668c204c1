import json
import os

import numpy as np
import pytest

from vlm_tf.data.decode import probe_video
from vlm_tf.data.synthetic import CLASS_NAMES, LABEL_MAPS, render_clip, write_dataset


def test_layout_boxes_and_manifest(tiny_dataset):
    manifest = json.loads((tiny_dataset / "dataset.json").read_text())
    assert manifest["complete"] and manifest["classes"] == list(CLASS_NAMES)
    assert manifest["splits"] == {"train": 4, "val": 1, "test": 1}
    for split, count in manifest["splits"].items():
        for label in CLASS_NAMES:
            videos = sorted((tiny_dataset / split / label).glob("*.mp4"))
            assert len(videos) == count
            info = probe_video(videos[0])
            assert (info.num_frames, info.width, info.height) == (8, 32, 32)
            boxes = json.loads(videos[0].with_suffix(".json").read_text())
            assert boxes["label"] == label and len(boxes["boxes"]) == 8
            x0, y0, x1, y1 = np.array(boxes["boxes"]).T
            assert np.all(x0 < x1) and np.all(y0 < y1) and x1.max() <= 32


def _centre(boxes):
    return np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2], axis=1)


@pytest.mark.parametrize("seed", range(5))
def test_motion_matches_the_label(seed):
    moves = {"move_left": (0, -1), "move_right": (0, 1), "move_up": (1, -1), "move_down": (1, 1)}
    for label, (axis, sign) in moves.items():
        _, boxes, _ = render_clip(label, num_frames=16, size=64, seed=seed)
        centre = _centre(boxes)
        assert sign * (centre[-1, axis] - centre[0, axis]) > 8
    _, grow, _ = render_clip("grow", num_frames=16, seed=seed)
    _, shrink, _ = render_clip("shrink", num_frames=16, seed=seed)

    def area(b):
        return (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])

    assert area(grow)[-1] > 2 * area(grow)[0] and area(shrink)[0] > 2 * area(shrink)[-1]


def test_rotating_objects_swing_the_labels_way():
    """The box centre goes round the pivot clockwise for rotate_cw (y points down: the angle
    grows).
    """

    def swept_angle(label, seed):
        _, boxes, _ = render_clip(label, num_frames=24, seed=seed)
        offsets = _centre(boxes) - _centre(boxes).mean(axis=0)
        angle = np.unwrap(np.arctan2(offsets[:, 1], offsets[:, 0]))
        return angle[-1] - angle[0]

    # A box centre is not the object's centroid, so a few clips wobble the
    # wrong way; the label's direction must win clearly.
    for label, sign in (("rotate_cw", 1), ("rotate_ccw", -1)):
        right_way = sum(sign * swept_angle(label, seed) > 0 for seed in range(40))
        assert right_way >= 32, (label, right_way)


def test_deterministic_for_a_seed():
    a, boxes_a, _ = render_clip("rotate_cw", seed=(1, 2, 3))
    b, boxes_b, _ = render_clip("rotate_cw", seed=(1, 2, 3))
    c, _, _ = render_clip("rotate_cw", seed=(1, 2, 4))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(boxes_a, boxes_b)
    assert not np.array_equal(a, c)


def test_label_maps_are_involutions_over_the_classes():
    for mapping in LABEL_MAPS.values():
        assert set(mapping) == set(CLASS_NAMES)
        assert all(mapping[mapping[name]] == name for name in CLASS_NAMES)


def test_existing_folders_are_never_overwritten(tmp_path, tiny_dataset):
    manifest = write_dataset(tiny_dataset, videos_per_class=6, num_frames=8, size=32, seed=3)
    assert manifest["complete"]
    other = tmp_path / "mine"
    other.mkdir()
    (other / "holiday.mp4").write_bytes(b"precious")
    with pytest.raises(ValueError, match="not empty"):
        write_dataset(other, videos_per_class=3, num_frames=4, size=16)
    assert (other / "holiday.mp4").read_bytes() == b"precious"
    with pytest.raises(ValueError, match="not empty"):
        write_dataset(tiny_dataset, videos_per_class=3, num_frames=8, size=32, seed=3)


def test_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="videos_per_class"):
        write_dataset(tmp_path / "a", videos_per_class=2)
    with pytest.raises(ValueError, match="size"):
        write_dataset(tmp_path / "b", videos_per_class=3, size=8)
    assert not os.path.exists(tmp_path / "b")
