"""Test-time views: several clips × crops of every video.

They serve evaluation that averages a model's predictions over them.

Clips (`sampling.spread_indices`): each takes one frame per segment, as
the evaluation clip does, at a different place in the segment. Every clip
spans the whole video at the frame rate the model trained on, so each is
a clip the `random` sampler could have drawn; consecutive windows would
instead show the model a part of the motion at another speed.

Crops: the whole frame first, then boxes of `CROP_FRACTION` of its height
and width at the corners and the centre, each resized back to the frame
size with the bilinear `crop_and_resize` of the training crop
(`transforms.random_crop_resize`). 0.9 × 0.9 is 81 % of the frame, inside
the 80-100 % the training crop draws, so every view is of a kind the model
has seen. The usual "three crops along the long side" needs frames wider
than the model's input; ours are resized (stretched, as in training) to
the model's square, where those three crops would coincide.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from vlm_tf import budget
from vlm_tf.budget import clip_bytes
from vlm_tf.data import sampling
from vlm_tf.data.decode import read_frames
from vlm_tf.data.splits import readable_files

CROP_FRACTION = 0.9
_MARGIN = 1.0 - CROP_FRACTION
# (top, left, bottom, right) as fractions of the frame; the whole frame
# first, so one crop is the plain evaluation clip, then opposite corners in
# pairs, so an odd count stays balanced.
CROP_BOXES = (
    (0.0, 0.0, 1.0, 1.0),
    (0.0, 0.0, CROP_FRACTION, CROP_FRACTION),
    (_MARGIN, _MARGIN, 1.0, 1.0),
    (0.0, _MARGIN, CROP_FRACTION, 1.0),
    (_MARGIN, 0.0, 1.0, CROP_FRACTION),
    (_MARGIN / 2, _MARGIN / 2, 1.0 - _MARGIN / 2, 1.0 - _MARGIN / 2),
)


def check_views(clips, crops):
    """Raises a one-line ValueError unless `clips` and `crops` are valid.

    `clips` must be a positive integer and `crops` one of 1..len(CROP_BOXES).
    """
    if int(clips) < 1:
        raise ValueError(f"clips must be a positive integer, received {clips!r}")
    if not 1 <= int(crops) <= len(CROP_BOXES):
        raise ValueError(
            f"crops must be between 1 and {len(CROP_BOXES)} "
            f"(the whole frame, four corners, the centre), received {crops!r}"
        )


def apply_crop_views(clips, crops):
    """`(C, T, H, W, 3)` → `(C·crops, T, H, W, 3)`, clip-major.

    Each clip as it is, then cropped by `CROP_BOXES[1:crops]` and resized
    back.
    """
    if crops == 1:
        return clips
    num_clips, num_frames, height, width, channels = clips.shape
    frames = tf.reshape(clips, [-1, height, width, channels])
    count = num_clips * num_frames
    views = [clips]
    for box in CROP_BOXES[1:crops]:
        cropped = tf.image.crop_and_resize(
            frames, tf.tile([box], [count, 1]), tf.range(count), [height, width]
        )
        views.append(tf.reshape(cropped, clips.shape))
    return tf.reshape(
        tf.stack(views, axis=1), [num_clips * crops, num_frames, height, width, channels]
    )


def view_dataset_from_directory(
    directory, *, class_names, num_frames, image_size, clips=1, crops=1, batch_size=8, strict=False
):
    """Batches `(views, labels, paths)` from `directory/<class>/<video>`.

    Views are float32 `(batch, clips·crops, num_frames, H, W, 3)` in [0, 255].

    Files are indexed and probed as `pipeline.video_dataset_from_directory`
    does (unreadable ones and class folders without videos skipped and
    listed in the dataset's `skipped`, or the first raising with `strict`),
    and one clip and one crop are exactly its evaluation clips. Labels and
    paths travel with their views, so a file that fails later and drops out
    cannot misalign them; `file_paths` lists the files that passed the
    probe, so a caller can name the ones that dropped out.
    """
    check_views(clips, crops)
    height, width = image_size
    budget.require_memory(
        clip_bytes(
            batch_size=batch_size,
            num_frames=num_frames,
            height=height,
            width=width,
            views=clips * crops,
        ),
        f"batches of {batch_size} videos of {clips} clip(s) x {crops} crop(s) of {num_frames} "
        f"frames of {height}x{width}",
        "lower the views",
    )
    paths, labels, counts, class_names, skipped = readable_files(
        directory, class_names, strict=strict
    )

    def read(path, indices):
        # Clips share frames where segments are short: each is decoded once.
        unique, inverse = np.unique(indices, return_inverse=True)
        frames = read_frames(path.decode(), unique, (height, width), decoder_threads=1)
        return frames[inverse.reshape(indices.shape)]

    def load(path, label, count):
        indices = sampling.spread_indices(count, num_frames, clips)
        frames = tf.numpy_function(read, [path, indices], tf.uint8, stateful=False)
        frames = tf.cast(tf.ensure_shape(frames, [clips, num_frames, height, width, 3]), tf.float32)
        return apply_crop_views(frames, crops), label, path

    files = tf.data.Dataset.from_tensor_slices(
        (
            tf.constant(paths),
            tf.constant(labels, tf.int32),
            tf.constant(counts, tf.int64),
        )
    )
    dataset = files.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if not strict:
        dataset = dataset.ignore_errors(log_warning=True)
    dataset = dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)
    dataset.class_names = class_names
    dataset.file_paths = paths
    dataset.skipped = skipped
    return dataset
