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

import functools

import tensorflow as tf

LABEL_MAP_TRANSFORMS = ("horizontal_flip", "time_reversal")


def crop_box(seed, *, scale=(0.8, 1.0), ratio=(0.85, 1.2)):
    """`random_crop_resize`'s box for `seed`: `[top, left, bottom, right]` as fractions."""
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
    return tf.stack([top, left, top + box_h, left + box_w])


def crop_resize_batch(clips, boxes, *, mirrored=None, reversed_=None):
    """Clip k of `clips` `(B, T, H, W, 3)` cropped to `boxes[k]` in every frame, resized back.

    `mirrored[k]` and `reversed_[k]` also mirror clip k left to right and play
    it backwards, at no cost: a box whose left edge is right of its right edge
    samples the frame mirrored, and each output frame names the frame it is
    cut from (a separate flip would pass over the whole batch again).
    """
    shape = tf.shape(clips)
    num_clips, num_frames = shape[0], shape[1]
    frames = tf.reshape(clips, tf.concat([[-1], shape[2:]], 0))
    if mirrored is not None:
        boxes = tf.where(mirrored[:, None], tf.gather(boxes, [0, 3, 2, 1], axis=1), boxes)
    steps = tf.range(num_frames)[None, :]
    if reversed_ is not None:
        steps = tf.where(reversed_[:, None], num_frames - 1 - steps, steps)
    sources = tf.reshape(tf.range(num_clips)[:, None] * num_frames + steps, [-1])
    cropped = tf.image.crop_and_resize(
        frames, tf.repeat(boxes, num_frames, axis=0), sources, shape[2:4]
    )
    return tf.reshape(cropped, shape)


def random_crop_resize(clip, seed, *, scale=(0.8, 1.0), ratio=(0.85, 1.2)):
    """Crops one random box (same for every frame) and resizes back to the clip's size."""
    box = crop_box(seed, scale=scale, ratio=ratio)
    return crop_resize_batch(clip[None], box[None])[0]


def colour_draw(seed, *, brightness=25.0, contrast=(0.75, 1.25), channel_gain=(0.9, 1.1)):
    """`random_colour`'s `(delta, factor, gain)` for `seed`: a brightness shift, a contrast
    factor and three channel gains, as one `[5]` vector.
    """
    seeds = tf.random.experimental.stateless_split(seed, 3)
    delta = tf.random.stateless_uniform([1], seeds[0], -brightness, brightness)
    factor = tf.random.stateless_uniform([1], seeds[1], contrast[0], contrast[1])
    gain = tf.random.stateless_uniform([3], seeds[2], channel_gain[0], channel_gain[1])
    return tf.concat([delta, factor, gain], 0)


def colour_batch(clips, draws):
    """Clip k of `clips` with the colour change `draws[k]` (`colour_draw`)."""
    draws = draws[:, None, None, None, :]
    delta, factor, gain = draws[..., 0:1], draws[..., 1:2], draws[..., 2:]
    mean = tf.reduce_mean(clips, axis=[1, 2, 3, 4], keepdims=True)
    # ((x - mean) · factor + mean + delta) · gain as one multiply and one add per pixel.
    scale = factor * gain
    shift = (mean * (1.0 - factor) + delta) * gain
    return tf.clip_by_value(clips * scale + shift, 0.0, 255.0)


def random_colour(clip, seed, **ranges):
    """Random brightness, contrast and per-channel gain, the same for every frame."""
    return colour_batch(clip[None], colour_draw(seed, **ranges)[None])[0]


def label_map_table(label_map, class_names):
    """`{class: class}` → int32 vector: entry k is the new label of class k, or -1 (never apply)."""
    index = {name: i for i, name in enumerate(class_names)}
    table = [-1] * len(class_names)
    for source, target in (label_map or {}).items():
        if source in index and target in index:
            table[index[source]] = index[target]
    return tf.constant(table, tf.int32)


def _label_map_draw(label, seed, table, probability=0.5):
    """`(chosen, new label)`: whether a label-mapped transform applies to a clip of `label`."""
    target = tf.gather(table, label)
    chosen = tf.logical_and(tf.random.stateless_uniform([], seed) < probability, target >= 0)
    return chosen, tf.where(chosen, target, label)


def augmentation_draws(label, seed, *, label_map_tables=None):
    """What `augment_clip` does to one clip of `label` with `seed`, drawn and not yet applied:
    `(draws, new label)`, `draws` a dict of a crop box, a colour change and, per label-mapped
    transform, whether it applies. `augment_batch` applies a batch's draws with one set of ops
    for the whole batch, where `augment_clip` on each clip would run them all per clip.
    """
    seeds = tf.random.experimental.stateless_split(seed, 2 + len(LABEL_MAP_TRANSFORMS))
    draws = {"box": crop_box(seeds[0]), "colour": colour_draw(seeds[1])}
    for i, name in enumerate(LABEL_MAP_TRANSFORMS):
        table = (label_map_tables or {}).get(name)
        if table is None:
            draws[name] = tf.constant(False)
        else:
            draws[name], label = _label_map_draw(label, seeds[2 + i], table)
    return draws, label


def augment_batch(clips, draws):
    """`clips` `(B, T, H, W, 3)` augmented by `draws` (`augmentation_draws`, batched): crop, colour
    and the label-mapped transforms, as `augment_clip` does each clip.
    """
    cropped = crop_resize_batch(
        clips,
        draws["box"],
        mirrored=draws["horizontal_flip"],
        reversed_=draws["time_reversal"],
    )
    return colour_batch(cropped, draws["colour"])


def augment_clip(clip, label, seed, *, label_map_tables=None):
    """The default training augmentation: crop, colour, then the label-mapped transforms.

    Args:
        label_map_tables: `{transform name: table}` from `label_map_table`; the
            names are `LABEL_MAP_TRANSFORMS`.
    """
    draws, label = augmentation_draws(label, seed, label_map_tables=label_map_tables)
    batched = {name: value[None] for name, value in draws.items()}
    return augment_batch(clip[None], batched)[0], label


# --- robust training (`augment="robust"`): corruptions drawn afresh for every clip ---
#
# The evaluation's corruptions (`vlm_tf.data.corruptions`) are NumPy, OpenCV and
# FFmpeg on whole videos; these are their families redone in TensorFlow on the
# sampled clip, inside tf.data: JPEG stands in for the video codecs and an
# any-angle kernel for both blurs, so a robust run is still scored on H.264,
# MPEG-4 and blurs it never trained on. Every strength is drawn uniformly up to
# about the evaluation's severity 5.

# Measured on the quickstart data (docs/robustness.md): one corruption on half the clips kept
# the clean accuracy and gained the most; chains of up to three cost 0.03 of clean accuracy.
ROBUST_PROBABILITY = 0.5
ROBUST_MAX_OPS = 1


def _strength(seed, low, high):
    return tf.random.stateless_uniform([], seed, low, high)


def _noise(clip, seed):
    seeds = tf.random.experimental.stateless_split(seed, 4)
    sigma = _strength(seeds[0], 0.0, 0.35 * 255.0)
    photons = tf.exp(_strength(seeds[1], tf.math.log(3.0), tf.math.log(60.0)))
    gaussian = clip + tf.random.stateless_normal(tf.shape(clip), seeds[2], stddev=sigma)
    shot = tf.random.stateless_poisson(tf.shape(clip), seeds[2], clip / 255.0 * photons, tf.float32)
    return tf.where(_strength(seeds[3], 0.0, 1.0) < 0.5, gaussian, shot / photons * 255.0)


def _blur(clip, seed):
    """A disk (defocus) or a line at any angle (camera shake), up to 13 % of the shorter side."""
    seeds = tf.random.experimental.stateless_split(seed, 3)
    side = tf.cast(tf.reduce_min(tf.shape(clip)[1:3]), tf.float32)
    reach = tf.maximum(_strength(seeds[0], 0.01, 0.13) * side / 2.0, 0.5)
    half = 8
    grid = tf.range(-half, half + 1, dtype=tf.float32)
    y, x = tf.meshgrid(grid, grid, indexing="ij")
    angle = _strength(seeds[1], 0.0, 3.14159)
    along = x * tf.cos(angle) + y * tf.sin(angle)
    across = -x * tf.sin(angle) + y * tf.cos(angle)
    line = tf.nn.relu(1.0 - tf.abs(across)) * tf.cast(tf.abs(along) <= reach, tf.float32)
    disk = tf.clip_by_value(reach + 0.5 - tf.sqrt(x**2 + y**2), 0.0, 1.0)
    kernel = tf.where(_strength(seeds[2], 0.0, 1.0) < 0.5, line, disk)
    kernel = tf.tile((kernel / tf.reduce_sum(kernel))[:, :, None, None], [1, 1, 3, 1])
    padded = tf.pad(clip, [[0, 0], [half, half], [half, half], [0, 0]], mode="SYMMETRIC")
    return tf.nn.depthwise_conv2d(padded, kernel, [1, 1, 1, 1], "VALID")


def _jpeg(clip, seed):
    quality = tf.random.stateless_uniform([], seed, 5, 40, dtype=tf.int32)
    frames = tf.cast(tf.clip_by_value(tf.round(clip), 0.0, 255.0), tf.uint8)
    compressed = tf.map_fn(
        lambda frame: tf.image.adjust_jpeg_quality(frame, quality),
        frames,
        fn_output_signature=tf.uint8,
    )
    return tf.cast(compressed, tf.float32)


def _light(clip, seed):
    """Brighter or darker (HSV value shifted), or flatter (contrast cut toward the mean)."""
    seeds = tf.random.experimental.stateless_split(seed, 3)
    hsv = tf.image.rgb_to_hsv(clip / 255.0)
    shift = _strength(seeds[0], -0.3, 0.5)
    brighter = tf.image.hsv_to_rgb(
        tf.concat([hsv[..., :2], tf.clip_by_value(hsv[..., 2:] + shift, 0.0, 1.0)], -1)
    )
    mean = tf.reduce_mean(clip, axis=[1, 2, 3], keepdims=True)
    flatter = (clip - mean) * _strength(seeds[1], 0.05, 0.8) + mean
    return tf.where(_strength(seeds[2], 0.0, 1.0) < 0.5, brighter * 255.0, flatter)


def _haze(clip, seed):
    seeds = tf.random.experimental.stateless_split(seed, 3)
    size = tf.shape(clip)[1:3]
    haze = tf.image.resize(
        tf.random.stateless_uniform([1, 5, 5, 1], seeds[0]), size, method="bicubic"
    ) + 0.5 * tf.image.resize(
        tf.random.stateless_uniform([1, 9, 9, 1], seeds[1]), size, method="bicubic"
    )
    haze = (haze - tf.reduce_min(haze)) / (tf.reduce_max(haze) - tf.reduce_min(haze) + 1e-6)
    strength = _strength(seeds[2], 0.2, 1.3) * 255.0
    peak = tf.reduce_max(clip)
    return (clip + strength * haze) * peak / (peak + strength)


def _pixelate(clip, seed):
    size = tf.shape(clip)[1:3]
    factor = _strength(seed, 0.2, 0.7)
    small = tf.maximum(tf.cast(tf.cast(size, tf.float32) * factor, tf.int32), 1)
    return tf.image.resize(tf.image.resize(clip, small, method="area"), size, method="nearest")


def _stutter(clip, seed):
    """Frames shown again in place of the next (a stuttering player) or a frame or two out of
    order (jitter).
    """
    seeds = tf.random.experimental.stateless_split(seed, 3)
    count = tf.shape(clip)[0]
    steps = tf.range(count)
    repeat = tf.random.stateless_uniform([count], seeds[0]) < _strength(seeds[1], 0.1, 0.5)
    stuttered = tf.scan(tf.maximum, tf.where(repeat, 0, steps))
    jitter = tf.random.stateless_uniform([count], seeds[1], -2, 3, dtype=tf.int32)
    jittered = tf.clip_by_value(steps + jitter, 0, count - 1)
    shown = tf.where(_strength(seeds[2], 0.0, 1.0) < 0.5, stuttered, jittered)
    return tf.gather(clip, shown)


ROBUST_OPS = (_noise, _blur, _jpeg, _light, _haze, _pixelate, _stutter)


def _one_op(clip, op, seed):
    branches = [functools.partial(f, clip, seed) for f in ROBUST_OPS]
    return tf.clip_by_value(tf.switch_case(op, branches), 0.0, 255.0)


def corrupt_clip(clip, seed, *, probability=ROBUST_PROBABILITY, max_ops=ROBUST_MAX_OPS):
    """With `probability`, a chain of 1 to `max_ops` corruptions drawn from `ROBUST_OPS`, each
    at a random strength; otherwise the clip as it is, so the model still sees clean clips.
    """
    seeds = tf.random.experimental.stateless_split(seed, 2 + 2 * max_ops)
    length = tf.random.stateless_uniform([], seeds[1], 1, max_ops + 1, dtype=tf.int32)
    corrupted = clip
    for step in range(max_ops):
        op = tf.random.stateless_uniform([], seeds[2 + 2 * step], 0, len(ROBUST_OPS), tf.int32)
        corrupted = tf.cond(
            step < length,
            functools.partial(_one_op, corrupted, op, seeds[3 + 2 * step]),
            functools.partial(tf.identity, corrupted),
        )
    chosen = tf.random.stateless_uniform([], seeds[0]) < probability
    # The branches lose the static frame size the model's layers need; the size never changes.
    return tf.ensure_shape(tf.cond(chosen, lambda: corrupted, lambda: clip), clip.shape)


def corrupted_views(clip, seed, views):
    """`(views, T, H, W, 3)`: the clip itself, then `views - 1` copies each with one corruption
    drawn independently: what `vlm_tf.models.consistency` compares. One view: `corrupt_clip`'s
    clip, corrupted or not, alone.
    """
    fold_in = tf.random.experimental.stateless_fold_in
    if views == 1:
        return corrupt_clip(clip, fold_in(seed, 1))
    copies = [corrupt_clip(clip, fold_in(seed, view), probability=1.0) for view in range(1, views)]
    return tf.stack([clip] + copies)
