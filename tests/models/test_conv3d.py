"""The 3-D CNN: which way a thing moves is a local pattern its kernels see, wherever it is."""

import keras
import numpy as np
import pytest

from vlm_tf.models.conv3d import build_conv3d_classifier


def moving_dots(count, *, frames=8, size=16, seed=0):
    """Clips of one bright 2×2 dot moving a pixel a frame, left (label 0) or right (1), from a
    random start; labels alternate.
    """
    rng = np.random.default_rng(seed)
    clips = np.full((count, frames, size, size, 3), 40, np.float32)
    labels = np.arange(count) % 2
    for clip, label in zip(clips, labels):
        row = rng.integers(0, size - 2)
        start = rng.integers(frames, size - 2) if label == 0 else rng.integers(0, size - frames - 2)
        for t in range(frames):
            column = start - t if label == 0 else start + t
            clip[t, row : row + 2, column : column + 2] = 230
    return clips, labels


def test_it_learns_the_direction_of_motion_wherever_the_dot_is():
    keras.utils.set_random_seed(0)
    model = build_conv3d_classifier(
        num_classes=2, num_frames=8, image_size=(16, 16), filters=(8, 16)
    )
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy")
    clips, labels = moving_dots(128)
    model.fit(clips, labels, epochs=15, batch_size=16, verbose=0)
    test_clips, test_labels = moving_dots(64, seed=1)
    accuracy = np.mean(model.predict(test_clips, verbose=0).argmax(axis=1) == test_labels)
    # Chance is 0.5; the same clips played backwards swap the answer, so no still cue gives it.
    assert accuracy >= 0.9, accuracy


@pytest.mark.parametrize(
    "kwargs,message",
    [(dict(num_classes=1), "num_classes"), (dict(num_classes=3, filters=()), "filters")],
)
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_conv3d_classifier(**kwargs)
