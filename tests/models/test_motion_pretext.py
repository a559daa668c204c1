"""Camera-motion prediction (vlm_tf.models.motion_pretext): the moves drawn are the moves made."""

import keras
import numpy as np
import pytest

from vlm_tf.models.motion_pretext import build_camera_motion_pretext, camera_transforms


def _dot_positions(move, num_frames=5, side=33):
    """Where a dot 4 pixels below the centre of a `side`² frame lands in each moved frame."""
    image = np.zeros((num_frames, side, side, 1), "float32")
    image[:, side // 2 + 4, side // 2] = 1.0
    rows = camera_transforms(np.array([move], "float32"), num_frames, side, side)
    moved = np.asarray(keras.ops.image.affine_transform(image, rows, interpolation="nearest"))[
        ..., 0
    ]
    return [tuple(np.argwhere(frame > 0.5)[0][::-1] - side // 2) for frame in moved]


@pytest.mark.parametrize(
    "move, expected",
    [
        # Content shifted 2 pixels right a frame, about the middle frame.
        ([2, 0, 0, 0], [(-4, 4), (-2, 4), (0, 4), (2, 4), (4, 4)]),
        ([0, -1, 0, 0], [(0, 6), (0, 5), (0, 4), (0, 3), (0, 2)]),
        # Scaled by e^0.1 a frame about the centre: 4 pixels out grows to 4·e^0.2 = 4.9.
        ([0, 0, 0.1, 0], [(0, 3), (0, 4), (0, 4), (0, 4), (0, 5)]),
        # Turned 45 degrees in two frames each way: (0, 4) → (∓2.8, 2.8).
        ([0, 0, 0, 22.5], [(3, 3), (2, 4), (0, 4), (-2, 4), (-3, 3)]),
    ],
)
def test_each_drawn_move_moves_the_content_as_it_says(move, expected):
    assert _dot_positions(move) == expected


def test_the_model_is_told_the_moves_it_must_tell():
    model = build_camera_motion_pretext(
        encoder="cnn_lstm", num_frames=4, image_size=(32, 32), seed=1
    )
    clips = np.random.default_rng(0).uniform(0, 255, (64, 4, 32, 32, 3)).astype("float32")
    moved, drawn = (np.asarray(x) for x in model.moved(clips))
    assert moved.shape == clips.shape and drawn.shape == (64, 4)
    assert np.abs(drawn).max() <= 1.0
    # Each of shift, zoom and turn is present in about half the clips, absent (0) in the rest.
    for columns in (slice(0, 2), slice(2, 3), slice(3, 4)):
        present = (np.abs(drawn[:, columns]) > 0).any(axis=1).mean()
        assert 0.25 < present < 0.75, present
    # A clip with no move keeps its frames.
    still = np.flatnonzero((drawn == 0).all(axis=1))
    if still.size:
        np.testing.assert_allclose(moved[still], clips[still], atol=1e-3)
    predicted, told = model(clips[:2])
    assert predicted.shape == told.shape == (2, 4)
