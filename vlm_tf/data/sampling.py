"""Which frames of a video make a clip.

The segment samplers (`uniform`, `random`) split the video into
`clip_length` equal segments and take one frame from each (the segment
scheme of temporal segment networks): the clip always spans the whole
video, in order, whatever its length or frame rate.

Videos shorter than the clip: the same formula makes segments shorter than a
frame, so frames repeat in order (a 5-frame video sampled to 8 gives
`0 0 1 2 2 3 4 4`). The motion keeps its direction and covers the whole clip;
padding with a frozen last frame would instead tell the model that things
stop halfway.

The consecutive samplers (`consecutive`, `random_consecutive`) take
neighbouring frames at the video's own rate, from the first frame or from a
random one: what predicting the next frames needs, where every step between
two frames must be one frame period. A video shorter than the clip holds its
last frame.
"""

from __future__ import annotations

import tensorflow as tf

SAMPLING_MODES = ("uniform", "random", "consecutive", "random_consecutive")
# The sampler an evaluation uses for a training run's sampler: no randomness.
EVALUATION_SAMPLING = {
    "uniform": "uniform",
    "random": "uniform",
    "consecutive": "consecutive",
    "random_consecutive": "consecutive",
}


def _segment_indices(num_frames, clip_length, offsets):
    num_frames = tf.cast(num_frames, tf.float32)
    positions = (tf.range(clip_length, dtype=tf.float32) + offsets) * num_frames / clip_length
    return tf.minimum(tf.cast(tf.floor(positions), tf.int64), tf.cast(num_frames, tf.int64) - 1)


def uniform_indices(num_frames, clip_length):
    """The middle frame of each of `clip_length` equal segments (evaluation)."""
    return _segment_indices(num_frames, clip_length, tf.fill([clip_length], 0.5))


def spread_indices(num_frames, clip_length, num_clips):
    """`num_clips` clips `(num_clips, clip_length)` for multi-view evaluation.

    Clip c takes the frame at fraction (c + ½)/num_clips of each segment.

    Each clip spans the whole video at the rate the model trained on (the
    `random` sampler draws any fraction; these spread evenly over what it
    draws), so the clips differ where a segment holds more than one frame
    and coincide where it does not. One clip is `uniform_indices`.
    """
    offsets = (tf.range(num_clips, dtype=tf.float32)[:, None] + 0.5) / num_clips
    return _segment_indices(num_frames, clip_length, offsets)


def random_indices(num_frames, clip_length, seed):
    """A random frame from each of `clip_length` equal segments (training).

    `seed` is a stateless seed (shape `[2]` int), so the choice is the same
    for the same seed whatever the tf.data parallelism.
    """
    offsets = tf.random.stateless_uniform([clip_length], seed=seed, maxval=1.0)
    return _segment_indices(num_frames, clip_length, offsets)


def consecutive_indices(num_frames, clip_length, seed=None):
    """`clip_length` neighbouring frames from the first (`seed=None`) or from a random start."""
    num_frames = tf.cast(num_frames, tf.int64)
    latest_start = tf.maximum(num_frames - clip_length, 0)
    start = tf.constant(0, tf.int64)
    if seed is not None:
        start = tf.random.stateless_uniform([], seed=seed, maxval=latest_start + 1, dtype=tf.int64)
    return tf.minimum(start + tf.range(clip_length, dtype=tf.int64), num_frames - 1)
