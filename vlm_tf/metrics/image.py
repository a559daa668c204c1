"""How close a restored or predicted frame is to the true one: PSNR and SSIM.

Both are on RGB pixels in [0, 255].

`psnr` and `ssim` are Keras metrics (registered, so a restorer's
`model.keras` that was compiled with them loads again); `frame_quality`
scores whole clips frame by frame. Both use `tf.image.psnr` and
`tf.image.ssim` (its default 11×11 Gaussian window, so frames of at least
11 pixels).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf


def psnr_ceiling(frame_shape):
    """The highest finite PSNR a uint8 frame of `(H, W, C)` can score.

    One value one level off: 10·log10(255² · H·W·C).
    """
    return 10.0 * np.log10(255.0**2 * np.prod(frame_shape))


def capped_psnr(predicted, target):
    """`tf.image.psnr` per frame (pixels in [0, 255]), capped for an exact match.

    An exact match is counted as one level off (`psnr_ceiling`), not infinity.

    Real clips hold identical neighbouring frames (a slow object, no noise,
    at a small size), where copying the last frame is exact; one infinite
    frame would make the mean over a test set infinite.
    """
    psnr = tf.image.psnr(predicted, target, max_val=255.0)
    values = tf.cast(tf.reduce_prod(tf.shape(predicted)[-3:]), tf.float32)
    # psnr_ceiling, for frames whose size is known only when called.
    ceiling = 10.0 * tf.math.log(255.0**2 * values) / tf.math.log(10.0)
    return tf.minimum(psnr, ceiling)


def frame_quality(predicted, target):
    """PSNR (dB, `capped_psnr`) and SSIM of every frame of `(B, K, H, W, 3)` clips in [0, 255].

    Returns two `(B, K)` tensors.

    `tf.image.psnr` and `tf.image.ssim` (its default 11×11 Gaussian window,
    so frames of at least 11 pixels) on RGB.
    """
    predicted, target = tf.cast(predicted, tf.float32), tf.cast(target, tf.float32)
    return capped_psnr(predicted, target), tf.image.ssim(predicted, target, max_val=255.0)


@keras.saving.register_keras_serializable(package="vlm_tf")
def psnr(y_true, y_pred):
    """PSNR in dB of each restored frame, pixels in [0, 255], after rounding as a video file would.

    With `tf.image.psnr`, an exact match capped as in `capped_psnr`.
    """
    return capped_psnr(tf.clip_by_value(tf.round(y_pred), 0.0, 255.0), tf.cast(y_true, tf.float32))


@keras.saving.register_keras_serializable(package="vlm_tf")
def ssim(y_true, y_pred):
    """SSIM of each restored frame (`tf.image.ssim`, 11×11 Gaussian window), after rounding."""
    return tf.image.ssim(tf.clip_by_value(tf.round(y_pred), 0.0, 255.0), y_true, max_val=255.0)


def as_pixels(clips):
    """Model output → what a video file would hold: values rounded into [0, 255], as float32."""
    return np.round(np.clip(np.asarray(clips), 0, 255)).astype(np.float32)


def frame_scores(predicted, target):
    """`frame_quality` as NumPy arrays: `(psnr, ssim)`, each `(B, K)`."""
    return tuple(np.asarray(values) for values in frame_quality(predicted, target))
