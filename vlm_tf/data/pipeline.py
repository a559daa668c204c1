"""Folders of videos → `tf.data.Dataset` of `(clips, labels)`.

The stages: index the folder (class names from sub-folder names) → probe
every file once in parallel (unreadable ones are reported and dropped before
any label is assigned, so labels never shift) → shuffle file names → per
clip: choose frame indices (`sampling`), decode them with OpenCV inside
`tf.numpy_function` (in parallel; cv2 releases the GIL while decoding) →
augment (`transforms`) → batch → prefetch.

Clips come out as float32 `(batch, num_frames, height, width, 3)` in
[0, 255], as `keras.utils.image_dataset_from_directory` yields images; the
models rescale inside, so an exported model takes raw pixels.
"""

from __future__ import annotations

import concurrent.futures
import json
import logging
import os

import numpy as np
import tensorflow as tf

from vlm_tf.data import sampling, transforms
from vlm_tf.data.cache import DecodedVideos
from vlm_tf.data.decode import VIDEO_EXTENSIONS, VideoReadError, probe_video, read_frames
from vlm_tf.data.sampling import EVALUATION_SAMPLING
from vlm_tf.data.synthetic import DATASET_FILE

logger = logging.getLogger(__name__)

LABEL_MODES = ("int", "categorical")


def list_video_files(directory):
    """Every video file under `directory`, at any depth, sorted; hidden folders skipped."""
    paths = []
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        paths += [os.path.join(root, f) for f in sorted(files) if f.lower().endswith(VIDEO_EXTENSIONS)]
    return paths


def index_directory(directory, class_names=None):
    """Lists `directory/<class>/<video>` files.

    Args:
        class_names: the classes, in label order. `None` takes every
            sub-folder, sorted. Given, sub-folders not in the list are ignored
            and a listed class without a folder simply has no videos.

    Returns:
        `(paths, labels, class_names)`, paths sorted within each class.
    """
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"{directory}: no such directory (expected one sub-folder of videos per class)")
    folders = sorted(entry.name for entry in os.scandir(directory) if entry.is_dir() and not entry.name.startswith("."))
    if class_names is None:
        class_names = folders
    class_names = list(class_names)
    paths, labels = [], []
    for label, name in enumerate(class_names):
        class_dir = os.path.join(directory, name)
        if not os.path.isdir(class_dir):
            continue
        found = list_video_files(class_dir)
        paths += found
        labels += [label] * len(found)
    if not paths:
        raise ValueError(
            f"{directory}: no video files found (expected {directory}/<class>/<video> with one of {', '.join(VIDEO_EXTENSIONS)})"
        )
    return paths, labels, class_names


def probe_files(paths, *, strict=False):
    """Probes every file in parallel.

    Returns:
        `(frame_counts, skipped)`: a frame count per path (0 where unreadable)
        and a list of `{"path", "reason"}` for the unreadable ones.

    Raises:
        VideoReadError: with `strict=True`, for the first unreadable file in path order.
    """
    def probe(path):
        try:
            return probe_video(path, decoder_threads=1).num_frames, None
        except VideoReadError as error:
            return 0, error

    workers = min(16, (os.cpu_count() or 1) * 2)
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(probe, paths))
    skipped = []
    for path, (_, error) in zip(paths, results):
        if error is not None:
            if strict:
                raise error
            skipped.append({"path": path, "reason": error.reason})
    if skipped:
        logger.warning("skipped %d unreadable video(s), first: %s (%s)", len(skipped), skipped[0]["path"], skipped[0]["reason"])
    return [count for count, _ in results], skipped


def read_label_maps(directory):
    """The label maps of `dataset.json` in `directory` or its parent (a split folder), or `{}`."""
    for folder in (directory, os.path.dirname(os.path.abspath(directory))):
        path = os.path.join(folder, DATASET_FILE)
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as f:
                try:
                    return dict(json.load(f).get("label_maps", {}))
                except (ValueError, AttributeError) as error:
                    raise ValueError(f"{path}: not a valid dataset manifest ({error})") from None
    return {}


def make_clip_dataset(
    paths,
    labels,
    frame_counts,
    *,
    class_names,
    num_frames=16,
    image_size=(64, 64),
    batch_size=8,
    label_mode="int",
    shuffle=False,
    seed=None,
    sampling_mode="uniform",
    augment=False,
    label_maps=None,
    crop_to_aspect_ratio=False,
    strict=False,
    cache=None,
    shard=None,
):
    """Builds the clip dataset from already indexed and probed files (see module docstring)."""
    if sampling_mode not in sampling.SAMPLING_MODES:
        raise ValueError(f"sampling must be one of {sampling.SAMPLING_MODES}, received {sampling_mode!r}")
    if label_mode not in LABEL_MODES:
        raise ValueError(f"label_mode must be one of {LABEL_MODES}, received {label_mode!r}")
    height, width = _check_size(image_size)
    if num_frames < 1 or batch_size < 1:
        raise ValueError(f"num_frames and batch_size must be positive, received num_frames={num_frames}, batch_size={batch_size}")
    seed = int(np.random.randint(2**31 - 1)) if seed is None else int(seed)
    tables = {
        name: transforms.label_map_table(mapping, class_names)
        for name, mapping in (label_maps or {}).items()
        if name in transforms.LABEL_MAP_TRANSFORMS
    }

    store = None if cache is None else DecodedVideos(cache, (height, width), crop_to_aspect_ratio=crop_to_aspect_ratio)

    def read(path, indices):
        if store is not None:
            return store.read(path.decode(), indices)
        return read_frames(path.decode(), indices, (height, width), crop_to_aspect_ratio=crop_to_aspect_ratio, decoder_threads=1)

    def load(element, random_value):
        path, label, count = element
        element_seed = tf.stack([random_value, tf.cast(label, tf.int64)])
        if sampling_mode == "random":
            indices = sampling.random_indices(count, num_frames, element_seed)
        elif sampling_mode == "consecutive":
            indices = sampling.consecutive_indices(count, num_frames)
        elif sampling_mode == "random_consecutive":
            indices = sampling.consecutive_indices(count, num_frames, element_seed)
        else:
            indices = sampling.uniform_indices(count, num_frames)
        clip = tf.numpy_function(read, [path, indices], tf.uint8, stateful=False)
        clip = tf.cast(tf.ensure_shape(clip, [num_frames, height, width, 3]), tf.float32)
        if augment:
            clip, label = transforms.augment_clip(clip, label, element_seed, label_map_tables=tables)
        if label_mode == "categorical":
            label = tf.one_hot(label, len(class_names))
        return clip, label

    files = tf.data.Dataset.from_tensor_slices(
        (tf.constant(list(paths)), tf.constant(list(labels), tf.int32), tf.constant(list(frame_counts), tf.int64))
    )
    if shuffle:
        files = files.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
    # One random value per element and epoch, from a seeded stream: the
    # clip's sampling and augmentation are reproducible yet new every epoch.
    randoms = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
    dataset = tf.data.Dataset.zip(files, randoms)
    if shard is not None:
        # Every worker shuffles with the same seed, so their shares of a pass
        # never overlap, and a clip gets the random value it would get in
        # one process; endless, so each worker takes the steps it is told to.
        dataset = dataset.shard(*shard).repeat()
    dataset = dataset.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if not strict:
        # A file that passed the probe but fails later (changed on disk)
        # drops out of the epoch instead of ending it.
        dataset = dataset.ignore_errors(log_warning=True)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def video_dataset_from_directory(
    directory,
    *,
    class_names=None,
    label_mode="int",
    num_frames=16,
    image_size=(64, 64),
    batch_size=8,
    shuffle=True,
    seed=None,
    validation_split=None,
    subset=None,
    sampling=None,
    augment=False,
    label_maps="auto",
    crop_to_aspect_ratio=False,
    strict=False,
    cache=None,
    shard=None,
):
    """Clips and labels from `directory/<class>/<video>`, like `keras.utils.image_dataset_from_directory`.

    Args:
        directory: one sub-folder per class holding video files (any container
            OpenCV's FFmpeg reads: mp4, avi, webm, mkv, ...); other files are ignored.
        class_names: the classes in label order; default: sub-folders, sorted.
        label_mode: `"int"` (sparse labels) or `"categorical"` (one-hot).
        num_frames: frames per clip (see `vlm_tf.data.sampling` for videos
            shorter than this).
        image_size: `(height, width)` every frame is resized to.
        batch_size: clips per batch.
        shuffle: shuffle the files every epoch.
        seed: seed for shuffling, the validation split, sampling and augmentation.
        validation_split: fraction of files held out; requires `subset`.
        subset: `"training"`, `"validation"` or `"both"` (returns a pair).
        sampling: how frames are chosen (`vlm_tf.data.sampling`):
            `"uniform"` or `"random"` (one frame per segment of the whole
            video), `"consecutive"` or `"random_consecutive"` (neighbouring
            frames from the first or a random start); default `"random"`
            when augmenting, else `"uniform"`. A validation subset uses the
            mode without randomness.
        augment: apply `vlm_tf.data.transforms.augment_clip`.
        label_maps: `{"horizontal_flip": {...}, "time_reversal": {...}}` for the
            label-changing augmentations; `"auto"` reads them from `dataset.json`
            in `directory` or its parent; `None` disables those transforms.
        crop_to_aspect_ratio: centre-crop frames instead of stretching them.
        strict: raise on the first unreadable file instead of skipping it.
        cache: `None` decodes the chosen frames of every clip each epoch;
            `"memory"` or a folder keeps each video, decoded once at
            `image_size`, for the epochs after (`vlm_tf.data.cache`): the same
            clips, at the memory or disk cost of every frame of every video.
        shard: `(num_workers, index)`: this worker's share of the training
            files for multi-worker training (`vlm_tf.training.distribute`),
            a different share each epoch, repeated without end (the caller
            sets the steps per epoch); requires `seed`.

    Returns:
        A `tf.data.Dataset` (or a pair for `subset="both"`) with attributes
        `class_names`, `file_paths` and `skipped` (a list of `{"path", "reason"}`).
    """
    if subset not in (None, "training", "validation", "both"):
        raise ValueError(f"subset must be None, 'training', 'validation' or 'both', received {subset!r}")
    if (validation_split is None) != (subset is None):
        raise ValueError("validation_split and subset must be given together")
    if validation_split is not None and not 0 < validation_split < 1:
        raise ValueError(f"validation_split must be between 0 and 1, received {validation_split}")
    if validation_split is not None and seed is None and shuffle:
        raise ValueError("a seed is required with validation_split and shuffle, so the two subsets do not overlap")
    if shard is not None:
        if seed is None:
            raise ValueError("a seed is required with shard, so the workers' shares do not overlap")
        if not (len(shard) == 2 and 0 <= shard[1] < shard[0]):
            raise ValueError(f"shard must be (num_workers, index) with 0 <= index < num_workers, received {shard!r}")
    paths, labels, class_names = index_directory(directory, class_names)
    counts, skipped = probe_files(paths, strict=strict)
    readable = [i for i, count in enumerate(counts) if count > 0]
    if not readable:
        raise ValueError(f"{directory}: none of the {len(paths)} video files could be read, first: {skipped[0]['path']} ({skipped[0]['reason']})")
    paths = [paths[i] for i in readable]
    labels = [labels[i] for i in readable]
    counts = [counts[i] for i in readable]
    if label_maps == "auto":
        label_maps = read_label_maps(directory)

    common = dict(
        class_names=class_names,
        num_frames=num_frames,
        image_size=image_size,
        batch_size=batch_size,
        label_mode=label_mode,
        seed=seed,
        label_maps=label_maps,
        crop_to_aspect_ratio=crop_to_aspect_ratio,
        strict=strict,
        cache=cache,
    )
    sampling_mode = sampling or ("random" if augment else "uniform")

    def build(indices, training):
        dataset = make_clip_dataset(
            [paths[i] for i in indices],
            [labels[i] for i in indices],
            [counts[i] for i in indices],
            shuffle=shuffle if training else False,
            sampling_mode=sampling_mode if training else EVALUATION_SAMPLING.get(sampling or "uniform", sampling),
            augment=augment and training,
            shard=shard if training else None,
            **common,
        )
        dataset.class_names = class_names
        dataset.file_paths = [paths[i] for i in indices]
        dataset.skipped = skipped
        return dataset

    order = np.arange(len(paths))
    if validation_split is None:
        return build(order, training=True)
    if shuffle:
        np.random.default_rng(seed).shuffle(order)
    num_validation = int(round(validation_split * len(order)))
    if num_validation == 0 or num_validation == len(order):
        raise ValueError(f"validation_split={validation_split} of {len(order)} videos leaves one subset empty")
    training, validation = order[:-num_validation], order[-num_validation:]
    if subset == "training":
        return build(training, training=True)
    if subset == "validation":
        return build(validation, training=False)
    return build(training, training=True), build(validation, training=False)


def _check_size(image_size):
    try:
        height, width = (int(v) for v in image_size)
    except (TypeError, ValueError):
        raise ValueError(f"image_size must be (height, width), received {image_size!r}") from None
    if height < 1 or width < 1:
        raise ValueError(f"image_size must be positive, received {image_size!r}")
    return height, width
