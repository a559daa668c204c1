"""Clip augmentation that keeps labels true.

Every transform draws its parameters once per clip and applies them to all
frames: a crop that jumped from frame to frame would itself look like motion.
Transforms that change what a label means (a mirror turns "left" into
"right") run only through a label map, a `{class: class}` dict saying what
each class becomes; a class without an entry is never transformed. With no
map, such a transform never runs: nothing is flipped blindly.

All functions take one clip, float32 `(T, H, W, 3)` in [0, 255], and a
stateless seed, so they are reproducible under parallel `tf.data.map`.
"""

from __future__ import annotations

import tensorflow as tf

LABEL_MAP_TRANSFORMS = ("horizontal_flip", "time_reversal")


def random_crop_resize(clip, seed, *, scale=(0.8, 1.0), ratio=(0.85, 1.2)):
    """Crops one random box (same for every frame) and resizes back to the clip's size."""
    seeds = tf.random.experimental.stateless_split(seed, 4)
    area = tf.random.stateless_uniform([], seeds[0], scale[0], scale[1])
    log_ratio = tf.random.stateless_uniform(
        [], seeds[1], tf.math.log(ratio[0]), tf.math.log(ratio[1])
    )
    aspect = tf.exp(log_ratio)
    box_w = tf.minimum(tf.sqrt(area * aspect), 1.0)
    box_h = tf.minimum(tf.sqrt(area / aspect), 1.0)
    top = tf.random.stateless_uniform([], seeds[2], 0.0, 1.0) * (1.0 - box_h)
    left = tf.random.stateless_uniform([], seeds[3], 0.0, 1.0) * (1.0 - box_w)
    num_frames = tf.shape(clip)[0]
    boxes = tf.tile([[top, left, top + box_h, left + box_w]], [num_frames, 1])
    crop_size = tf.shape(clip)[1:3]
    return tf.image.crop_and_resize(clip, boxes, tf.range(num_frames), crop_size)


def random_colour(clip, seed, *, brightness=25.0, contrast=(0.75, 1.25), channel_gain=(0.9, 1.1)):
    """Random brightness, contrast and per-channel gain, the same for every frame."""
    seeds = tf.random.experimental.stateless_split(seed, 3)
    delta = tf.random.stateless_uniform([], seeds[0], -brightness, brightness)
    factor = tf.random.stateless_uniform([], seeds[1], contrast[0], contrast[1])
    gain = tf.random.stateless_uniform([3], seeds[2], channel_gain[0], channel_gain[1])
    mean = tf.reduce_mean(clip)
    clip = (clip - mean) * factor + mean + delta
    return tf.clip_by_value(clip * gain, 0.0, 255.0)


def horizontal_flip(clip):
    return tf.reverse(clip, axis=[2])


def time_reversal(clip):
    return tf.reverse(clip, axis=[0])


def label_map_table(label_map, class_names):
    """`{class: class}` → int32 vector: entry k is the new label of class k, or -1 (never apply)."""
    index = {name: i for i, name in enumerate(class_names)}
    table = [-1] * len(class_names)
    for source, target in (label_map or {}).items():
        if source in index and target in index:
            table[index[source]] = index[target]
    return tf.constant(table, tf.int32)


def apply_with_label_map(transform, clip, label, seed, table, probability=0.5):
    """Applies `transform` with `probability` where the class allows it, relabelling the clip."""
    target = tf.gather(table, label)
    chosen = tf.logical_and(tf.random.stateless_uniform([], seed) < probability, target >= 0)
    clip = tf.cond(chosen, lambda: transform(clip), lambda: clip)
    return clip, tf.where(chosen, target, label)


def augment_clip(clip, label, seed, *, label_map_tables=None):
    """The default training augmentation: crop, colour, then the label-mapped transforms.

    Args:
        label_map_tables: `{transform name: table}` from `label_map_table`; the
            names are `LABEL_MAP_TRANSFORMS`.
    """
    seeds = tf.random.experimental.stateless_split(seed, 2 + len(LABEL_MAP_TRANSFORMS))
    clip = random_crop_resize(clip, seeds[0])
    clip = random_colour(clip, seeds[1])
    transforms = {"horizontal_flip": horizontal_flip, "time_reversal": time_reversal}
    for i, name in enumerate(LABEL_MAP_TRANSFORMS):
        table = (label_map_tables or {}).get(name)
        if table is not None:
            clip, label = apply_with_label_map(transforms[name], clip, label, seeds[2 + i], table)
    return clip, label
