"""The seeded degradations that make restoration pairs (vlm_tf.data.degrade), checked against OpenCV
and against the noise model's own arithmetic.
"""

import cv2
import numpy as np
import pytest

from vlm_tf.data import degrade


def _clips(seed=0, shape=(2, 3, 32, 32, 3)):
    return np.random.default_rng(seed).integers(0, 256, shape).astype(np.float32)


def test_noise_is_reproducible_from_its_seed_and_new_with_another():
    clips = _clips()
    a = np.asarray(degrade.add_noise(clips, [1, 2], sigma=15.0))
    np.testing.assert_array_equal(a, np.asarray(degrade.add_noise(clips, [1, 2], sigma=15.0)))
    assert not np.array_equal(a, np.asarray(degrade.add_noise(clips, [1, 3], sigma=15.0)))
    assert a.min() >= 0 and a.max() <= 255 and np.array_equal(a, np.round(a))


def test_noise_has_the_variance_of_shot_plus_read_noise():
    # Mid-grey, away from the 0/255 clipping: Poisson variance in pixel
    # units is value · 255 / peak, plus the Gaussian's σ².
    grey = np.full((1, 8, 64, 64, 3), 100.0, np.float32)
    noisy = np.asarray(degrade.add_noise(grey, [0, 0], sigma=10.0, peak=50.0))
    expected = np.sqrt(100.0 * 255.0 / 50.0 + 10.0**2 + 1 / 12)  # + rounding
    assert abs(noisy.std() - expected) < 0.03 * expected
    assert abs(noisy.mean() - 100.0) < 0.5
    only_read = np.asarray(degrade.add_noise(grey, [0, 0], sigma=10.0, peak=None))
    assert abs(only_read.std() - np.sqrt(100 + 1 / 12)) < 0.3


@pytest.mark.parametrize("scale", [2, 4])
def test_downscale_is_opencv_gaussian_blur_then_area_resize(scale):
    clips = _clips(1, (1, 2, 32, 32, 3))
    small = np.asarray(degrade.downscale(clips, scale))
    assert small.shape == (1, 2, 32 // scale, 32 // scale, 3)
    sigma = degrade.blur_sigma(scale)
    size = len(degrade.gaussian_kernel(sigma))
    for frame, ours in zip(clips[0], small[0]):
        blurred = cv2.GaussianBlur(frame, (size, size), sigma, borderType=cv2.BORDER_REFLECT)
        expected = cv2.resize(blurred, (32 // scale, 32 // scale), interpolation=cv2.INTER_AREA)
        # Ours is rounded to whole pixel values, OpenCV's is not.
        assert np.abs(ours - expected).max() <= 0.5 + 1e-3


def test_downscale_rejects_a_frame_that_does_not_divide():
    with pytest.raises(ValueError, match="30x30 do not divide by scale 4"):
        degrade.downscale(_clips(shape=(1, 1, 30, 30, 3)), 4)


def test_darken_uses_one_set_of_values_per_clip():
    frame = _clips(2, (1, 1, 32, 32, 3))[0, 0]
    # Two clips, each the same frame twice.
    clips = np.stack([np.stack([frame, frame])] * 2)
    dark = np.asarray(degrade.darken(clips, [4, 4]))
    np.testing.assert_array_equal(dark[0, 0], dark[0, 1])
    assert not np.array_equal(dark[0, 0], dark[1, 0])
    # Gain at most 0.7 and a gamma above 1 on values below 255.
    assert dark.mean() < 0.7 * clips.mean()


def test_degrade_names_the_tasks_it_knows():
    with pytest.raises(ValueError, match="task must be one of"):
        degrade.degrade(_clips(), [0, 0], "deblur", scale=2, noise_sigma=1.0)
