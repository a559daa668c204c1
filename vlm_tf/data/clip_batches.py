"""How the pipeline makes a batch of clips: drawn clip by clip, made a batch at a time.

Each clip's frame indices and augmentation are drawn on their own, from the
clip's stateless seed (`choose`), so a clip is the same whatever the batch
around it and whatever tf.data's parallelism. The clips of a batch are then
decoded in one Python call and augmented with one set of ops
(`load`): per clip, the calls into Python and the dozens of small graph ops
cost more than decoding a small clip does (docs/benchmarks.md, "A batch at a
time").
"""

from __future__ import annotations

import logging

import numpy as np
import tensorflow as tf

from vlm_tf.data import sampling, transforms
from vlm_tf.data.cache import DecodedVideos
from vlm_tf.data.decode import VideoReadError, read_frames

logger = logging.getLogger(__name__)


def frame_reader(cache, size, *, crop_to_aspect_ratio, strict, failed):
    """`read(paths, indices)` for `tf.numpy_function`, called once a batch: `(clips, kept)`, uint8
    `(n, len(indices[0]), *size, 3)` and the positions in the batch of those n clips.

    Clip k is the frames at `indices[k]` of the video at `paths[k]` (bytes),
    from the `cache` of decoded videos where there is one (made here, once
    for the dataset), else decoded from the file. A video that passed the
    probe and fails here (changed on disk) ends a `strict` dataset; otherwise
    its clip is left out, and the video is added once to `failed`, with its
    reason.
    """
    store = (
        None
        if cache is None
        else DecodedVideos(cache, size, crop_to_aspect_ratio=crop_to_aspect_ratio)
    )

    def read_one(path, indices):
        if store is not None:
            return store.read(path, indices)
        return read_frames(
            path, indices, size, crop_to_aspect_ratio=crop_to_aspect_ratio, decoder_threads=1
        )

    def skip(path, error):
        if strict:
            raise error
        # Once each: read-ahead can meet the video again in the next epoch's first batches.
        if all(item["path"] != path for item in failed):
            reason = f"failed in training: {error.reason}"
            logger.warning("%s: %s; its clips are left out", path, reason)
            failed.append({"path": path, "reason": reason})

    def read(paths, indices):
        clips = np.empty((len(paths), indices.shape[1], *size, 3), np.uint8)
        kept = []
        for position, (path, wanted) in enumerate(zip(paths, indices)):
            try:
                clips[len(kept)] = read_one(path.decode(), wanted)
            except VideoReadError as error:
                skip(path.decode(), error)
                continue
            kept.append(position)
        return clips[: len(kept)], np.asarray(kept, np.int64)

    return read


def frame_indices(sampling_mode, count, num_frames, element_seed):
    """The `num_frames` frame indices of a video of `count` frames, chosen by `sampling_mode`."""
    if sampling_mode == "random":
        return sampling.random_indices(count, num_frames, element_seed)
    if sampling_mode == "consecutive":
        return sampling.consecutive_indices(count, num_frames)
    if sampling_mode == "random_consecutive":
        return sampling.consecutive_indices(count, num_frames, element_seed)
    return sampling.uniform_indices(count, num_frames)


def clip_batch_functions(
    read_batch, *, sampling_mode, num_frames, size, augment, tables, views, label_mode, num_classes
):
    """`(choose, load)` for `epochs.loaded`: `choose((path, label, count), random value)` draws
    one clip; `load(chosen, labels)` makes a batch of drawn clips: float32 `(n, T, H, W, 3)` in
    [0, 255] (`(n, views, T, H, W, 3)` for robust views) and their labels, one-hot with
    `label_mode="categorical"`.

    `read_batch(paths, indices)` decodes a batch as graph ops: `(uint8 clips, kept)`, the clips
    of the files that read and their positions in the batch.
    """
    height, width = size

    def choose(element, random_value):
        path, label, count = element
        element_seed = tf.stack([random_value, tf.cast(label, tf.int64)])
        chosen = {
            "path": path,
            "indices": frame_indices(sampling_mode, count, num_frames, element_seed),
            "seed": element_seed,
        }
        if augment == "crop":
            chosen["box"] = transforms.crop_box(element_seed)
        elif augment:
            chosen["draws"], label = transforms.augmentation_draws(
                label, element_seed, label_map_tables=tables
            )
        return chosen, label

    def load(chosen, label):
        clips, kept = read_batch(chosen["path"], chosen["indices"])
        kept = tf.ensure_shape(kept, [None])
        chosen, label = tf.nest.map_structure(lambda x: tf.gather(x, kept), (chosen, label))
        clips = tf.ensure_shape(clips, [None, num_frames, height, width, 3])
        # The crop reads uint8 and writes float32: no pass of its own to cast the batch.
        if augment == "crop":
            clips = transforms.crop_resize_batch(clips, chosen["box"])
        elif augment:
            clips = transforms.augment_batch(clips, chosen["draws"])
        else:
            clips = tf.cast(clips, tf.float32)
        if augment == "robust":
            view_shape = [views, num_frames, height, width, 3] if views > 1 else clips.shape[1:]
            clips = tf.map_fn(
                lambda pair: transforms.corrupted_views(*pair, views),
                (clips, chosen["seed"]),
                fn_output_signature=tf.TensorSpec(view_shape, tf.float32),
            )
        if label_mode == "categorical":
            label = tf.one_hot(label, num_classes)
        return clips, label

    return choose, load
