"""Seeded degradations that turn any clean clip into a restoration training pair (chapter 6).

Every function takes a float32 batch of clips `(B, T, H, W, 3)` with values
in [0, 255] and returns the degraded clips rounded to whole values in
[0, 255], what a video file of them would hold. Random values come from a
stateless seed `(2,)`, so the same clips and seed always give the same
degraded clips: a validation or test set is degraded the same way on every
pass.

- `add_noise` (§6.7, denoising): Poisson shot noise, then Gaussian read
  noise, drawn anew for every pixel of every frame.
- `downscale` (§6.6, super-resolution): a Gaussian blur, then the mean of
  each `scale × scale` block, the usual "blur and decimate" model of a
  low-resolution camera. Block means put the small frame's pixel centres
  where `cv2.resize` and `tf.image.resize` expect them, so upscaling back
  does not shift the picture by a fraction of a pixel.
- `darken` (§6.4, enhancement): low light (a gamma curve and a gain), low
  contrast and a colour cast, one set of values for each whole clip.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

TASKS = ("denoise", "superres", "enhance")
# Shot noise of a sensor that collects 100 photons at full white (σ ≈ 18
# at mid-grey); with the runs' default read noise of σ 15
# (`RunConfig.noise_sigma`), about σ 23 at mid-grey, a dim indoor webcam.
NOISE_PEAK = 100.0
# Enhancement's ranges: brightness ×0.35-0.7 after a gamma of 1.4-2.2,
# contrast ×0.5-0.8 about the clip's mean, each channel ×0.75-1.0.
DARKEN_GAMMA = (1.4, 2.2)
DARKEN_GAIN = (0.35, 0.7)
DARKEN_CONTRAST = (0.5, 0.8)
DARKEN_CAST = (0.75, 1.0)


def _as_pixels(clip):
    return tf.clip_by_value(tf.round(clip), 0.0, 255.0)


def add_noise(clips, seed, *, sigma, peak=NOISE_PEAK):
    """Poisson noise at `peak` photons for white, then Gaussian noise of std `sigma`.

    `peak=None`: no Poisson noise.
    """
    clip = tf.convert_to_tensor(clips, tf.float32)
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 2)
    if peak:
        photons = tf.random.stateless_poisson(
            tf.shape(clip), seeds[0], clip * (peak / 255.0), dtype=tf.float32
        )
        clip = photons * (255.0 / peak)
    if sigma:
        clip = clip + tf.random.stateless_normal(tf.shape(clip), seeds[1], stddev=sigma)
    return _as_pixels(clip)


def gaussian_kernel(sigma):
    """A 1-D Gaussian of std `sigma` pixels, radius ⌈3σ⌉, summing to 1."""
    radius = max(1, int(np.ceil(3 * sigma)))
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * (x / sigma) ** 2)
    return (kernel / kernel.sum()).astype(np.float32)


def blur_sigma(scale):
    """The blur before the block means: σ = scale / 4 pixels (0.5 at ×2, 1 at ×4).

    It stands for a camera's optics, a little softer than its pixels.
    """
    return scale / 4


def downscale(clips, scale):
    """Blurs every frame (Gaussian, σ = `blur_sigma(scale)`, edges mirrored) and takes block means.

    The mean of each `scale`² block:
    `(B, T, H, W, 3)` → `(B, T, H/scale, W/scale, 3)`.
    """
    if int(scale) != scale or scale < 2:
        raise ValueError(f"scale must be an integer of at least 2, received {scale!r}")
    clips = tf.convert_to_tensor(clips, tf.float32)
    height, width = clips.shape[2], clips.shape[3]
    if height is not None and (height % scale or width % scale):
        raise ValueError(f"frames of {height}x{width} do not divide by scale {scale}")
    shape = tf.shape(clips)
    clip = tf.reshape(clips, [-1, height, width, 3])
    kernel = gaussian_kernel(blur_sigma(scale))
    radius = len(kernel) // 2
    # Separable blur, one channel at a time (depthwise), with the border
    # mirrored so that edges do not darken.
    frames = tf.pad(clip, [[0, 0], [radius, radius], [radius, radius], [0, 0]], mode="SYMMETRIC")
    rows = tf.tile(tf.reshape(kernel, [-1, 1, 1, 1]), [1, 1, 3, 1])
    columns = tf.tile(tf.reshape(kernel, [1, -1, 1, 1]), [1, 1, 3, 1])
    frames = tf.nn.depthwise_conv2d(frames, rows, [1, 1, 1, 1], "VALID")
    frames = tf.nn.depthwise_conv2d(frames, columns, [1, 1, 1, 1], "VALID")
    small = tf.nn.avg_pool2d(frames, scale, scale, "VALID")
    return _as_pixels(tf.reshape(small, [shape[0], shape[1], height // scale, width // scale, 3]))


def darken(clips, seed):
    """Low light, low contrast and a colour cast, with one set of random values for each clip."""
    clips = tf.convert_to_tensor(clips, tf.float32)
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 4)
    batch = tf.shape(clips)[0]

    def uniform(bounds, channels, k):
        return tf.random.stateless_uniform([batch, 1, 1, 1, channels], seeds[k], *bounds)

    light = uniform(DARKEN_GAIN, 1, 1) * 255.0 * (clips / 255.0) ** uniform(DARKEN_GAMMA, 1, 0)
    mean = tf.reduce_mean(light, axis=(1, 2, 3, 4), keepdims=True)
    flat = mean + uniform(DARKEN_CONTRAST, 1, 2) * (light - mean)
    return _as_pixels(flat * uniform(DARKEN_CAST, 3, 3))


def degrade(clips, seed, task, *, scale, noise_sigma):
    """The degradation of `task` (`TASKS`) applied to a batch of clips."""
    if task == "denoise":
        return add_noise(clips, seed, sigma=noise_sigma)
    if task == "superres":
        return downscale(clips, scale)
    if task == "enhance":
        return darken(clips, seed)
    raise ValueError(f"task must be one of {TASKS}, received {task!r}")
