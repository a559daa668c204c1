"""Training pairs for the chapter-6 restoration tasks, from any folder of videos.

The tasks are §6.4 enhancement, §6.6 super-resolution and §6.7 denoising.

A clean clip is read, degraded by `vlm_tf.data.degrade` with a seeded
draw, and a restorer learns to give back the clean centre frame of each
window (`centre_targets`). Fresh noise every epoch in training; the same
degradation on every pass in validation and evaluation.
"""

from __future__ import annotations

import tensorflow as tf

from vlm_tf.data.degrade import degrade
from vlm_tf.data.pipeline import make_clip_dataset
from vlm_tf.data.splits import readable_videos


def restoration_pairs(
    paths,
    *,
    task,
    num_frames,
    image_size,
    scale,
    noise_sigma,
    batch_size=8,
    training=False,
    seed=0,
    strict=False,
    first_epoch=None,
):
    """Batches of `(degraded, clean)` clips from the videos at `paths`.

    They are `(B, T, h, w, 3)` and `(B, T, H, W, 3)`.

    In training each video gives a run of `num_frames` neighbouring frames
    from a random start, with a new degradation every epoch; otherwise the
    first `num_frames` and one fixed degradation (seeded by `seed`), so
    every evaluation sees the same pairs. Unreadable files are skipped
    (listed in the dataset's `skipped`) unless `strict`. With `first_epoch`
    (training), the pairs are an endless stream of epochs from that one on,
    each keyed by its number (`make_clip_dataset`), its degradations too.
    """
    readable, counts, skipped = readable_videos(paths, strict=strict)
    clips = make_clip_dataset(
        readable,
        [0] * len(readable),
        counts,
        class_names=["videos"],
        num_frames=num_frames,
        image_size=image_size,
        batch_size=batch_size,
        shuffle=training,
        seed=seed,
        sampling_mode="random_consecutive" if training else "consecutive",
        strict=strict,
        first_pass=first_epoch if training else None,
    )
    if first_epoch is not None and training:
        # One degradation seed per batch, from its number counted from epoch 0.
        first_batch = first_epoch * clips.steps_per_pass
        seeds = tf.data.Dataset.counter(first_batch, dtype=tf.int64).map(
            lambda number: tf.stack([tf.constant(seed + 1, tf.int64), number])
        )
    else:
        # One degradation seed per batch, new each epoch only in training.
        seeds = tf.data.Dataset.random(seed=seed + 1, rerandomize_each_iteration=training).batch(2)

    def pair(batch, degradation_seed):
        clean = batch[0]
        return degrade(clean, degradation_seed, task, scale=scale, noise_sigma=noise_sigma), clean

    dataset = (
        tf.data.Dataset.zip(clips, seeds)
        .map(pair, num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )
    dataset.file_paths = list(readable)
    dataset.skipped = skipped
    if hasattr(clips, "steps_per_pass"):
        dataset.steps_per_pass = clips.steps_per_pass
    return dataset


def sliding_windows(frames, window):
    """`(T, h, w, 3)` → `(T, window, h, w, 3)`: for every frame, the window of frames centred on it.

    The first and last frame are repeated past the ends.
    """
    frames = tf.convert_to_tensor(frames)
    reach = window // 2
    padded = tf.concat(
        [tf.repeat(frames[:1], reach, axis=0), frames, tf.repeat(frames[-1:], reach, axis=0)],
        axis=0,
    )
    return tf.signal.frame(padded, window, 1, axis=0)


def centre_targets(dataset):
    """`(degraded window, clean window)` → `(degraded window, clean centre frame)`.

    That is what a restorer is trained on.
    """

    def centre(degraded, clean):
        return degraded, clean[:, clean.shape[1] // 2]

    return dataset.map(centre)
