import numpy as np
import pytest

from vlm_tf.data.sampling import random_indices, uniform_indices


def test_uniform_takes_segment_middles():
    np.testing.assert_array_equal(uniform_indices(32, 8).numpy(), [2, 6, 10, 14, 18, 22, 26, 30])
    np.testing.assert_array_equal(uniform_indices(8, 8).numpy(), np.arange(8))


def test_short_video_repeats_frames_in_order():
    np.testing.assert_array_equal(uniform_indices(5, 8).numpy(), [0, 0, 1, 2, 2, 3, 4, 4])
    np.testing.assert_array_equal(uniform_indices(1, 4).numpy(), [0, 0, 0, 0])


@pytest.mark.parametrize("num_frames,clip_length", [(3, 16), (16, 16), (17, 5), (300, 16)])
def test_random_stays_in_its_segment_and_in_order(num_frames, clip_length):
    seen = set()
    for seed in range(20):
        indices = random_indices(num_frames, clip_length, [seed, 7]).numpy()
        assert indices.min() >= 0 and indices.max() < num_frames
        assert np.all(np.diff(indices) >= 0)
        segment = np.floor(np.arange(clip_length) * num_frames / clip_length)
        assert np.all(indices >= segment) and np.all(
            indices
            < np.maximum(
                segment + 1, np.ceil((np.arange(clip_length) + 1) * num_frames / clip_length)
            )
        )
        seen.add(tuple(indices))
    if num_frames > clip_length:
        assert len(seen) > 1
    np.testing.assert_array_equal(
        random_indices(300, 16, [1, 2]).numpy(), random_indices(300, 16, [1, 2]).numpy()
    )
