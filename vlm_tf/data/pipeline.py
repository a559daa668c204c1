"""Folders of videos → `tf.data.Dataset` of `(clips, labels)`.

The stages: index the folder (class names from sub-folder names) → probe
every file once in parallel (unreadable ones are reported and dropped before
any label is assigned, so labels never shift) → shuffle file names → per
clip: draw its frame indices (`sampling`) and augmentation → batch → per
batch (`clip_batches`): decode its clips with OpenCV in one
`tf.numpy_function` call (batches in parallel; cv2 releases the GIL while
decoding), augment them with one set of ops (`transforms`) → prefetch.

Clips come out as float32 `(batch, num_frames, height, width, 3)` in
[0, 255], as `keras.utils.image_dataset_from_directory` yields images; the
models rescale inside, so an exported model takes raw pixels.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from vlm_tf.data import epochs, sampling, transforms
from vlm_tf.data import service as data_service
from vlm_tf.data.cache import DecodedVideos
from vlm_tf.data.clip_batches import clip_batch_functions, frame_reader
from vlm_tf.data.corruptions import PIPELINE_AUGMENTATIONS, check_augment
from vlm_tf.data.lists import evaluation_list, training_lists
from vlm_tf.data.sampling import EVALUATION_SAMPLING
from vlm_tf.data.splits import VALIDATION_FALLBACK_SPLIT, readable_files
from vlm_tf.data.synthetic import read_label_maps

LABEL_MODES = ("int", "categorical")


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
    first_pass=None,
    views=1,
    service=None,
):
    """Builds the clip dataset from already indexed and probed files (see module docstring).

    With `first_pass` (an epoch number), the dataset is endless: pass after
    pass over the files from that one on, each pass in batches of its own
    (`dataset.steps_per_pass` of them), and what a pass shows (its order,
    each clip's frames and augmentation) depends on the seed and the pass
    number only. A training run resumed at epoch N then sees what the
    uninterrupted run saw in its epoch N; without `first_pass` the files are
    reshuffled every time the dataset is iterated, so a new process starts
    again from the first epoch's order. With `service` (a dispatcher's
    `host:port`, and `first_pass`), that endless stream's batches are made by
    tf.data service's workers (`vlm_tf.data.service`).
    """
    if service is not None and (cache is not None or shard is not None or first_pass is None):
        raise ValueError(
            "clips from tf.data service are an endless training stream (first_pass) decoded on "
            f"its workers, without a cache or shards (received cache={cache!r}, shard={shard!r}, "
            f"first_pass={first_pass!r})"
        )
    if sampling_mode not in sampling.SAMPLING_MODES:
        raise ValueError(
            f"sampling must be one of {sampling.SAMPLING_MODES}, received {sampling_mode!r}"
        )
    if label_mode not in LABEL_MODES:
        raise ValueError(f"label_mode must be one of {LABEL_MODES}, received {label_mode!r}")
    check_augment(augment, allowed=PIPELINE_AUGMENTATIONS)
    height, width = _check_size(image_size)
    if num_frames < 1 or batch_size < 1:
        raise ValueError(
            f"num_frames and batch_size must be positive, received num_frames={num_frames}, "
            f"batch_size={batch_size}"
        )
    seed = int(np.random.randint(2**31 - 1)) if seed is None else int(seed)
    tables = {
        name: transforms.label_map_table(mapping, class_names)
        for name, mapping in (label_maps or {}).items()
        if name in transforms.LABEL_MAP_TRANSFORMS
    }
    failed = []
    if service is None:
        read = frame_reader(
            cache,
            (height, width),
            crop_to_aspect_ratio=crop_to_aspect_ratio,
            strict=strict,
            failed=failed,
        )

        def read_batch(paths, indices):
            return tf.numpy_function(read, [paths, indices], (tf.uint8, tf.int64), stateful=False)
    else:

        def read_batch(paths, indices):
            return data_service.read_op(
                paths, indices, (height, width), crop_to_aspect_ratio, strict
            )

    choose, load = clip_batch_functions(
        read_batch,
        sampling_mode=sampling_mode,
        num_frames=num_frames,
        size=(height, width),
        augment=augment,
        tables=tables,
        views=views,
        label_mode=label_mode,
        num_classes=len(class_names),
    )
    columns = (
        tf.constant(list(paths)),
        tf.constant(list(labels), tf.int32),
        tf.constant(list(frame_counts), tf.int64),
    )
    if service is not None:
        dataset = epochs.keyed_batches(columns, choose, load, shuffle, seed, first_pass, batch_size)
        steps = dataset.steps_per_pass
        dataset = data_service.distribute(dataset, service)
        dataset.steps_per_pass = steps
    elif shard is not None:
        dataset = epochs.worker_share(
            columns, choose, load, shuffle, seed, shard, first_pass or 0, batch_size
        )
    elif first_pass is not None:
        dataset = epochs.keyed_passes(columns, choose, load, shuffle, seed, first_pass, batch_size)
    else:
        files = tf.data.Dataset.from_tensor_slices(columns)
        if shuffle:
            files = files.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
        # One random value per element and epoch, from a seeded stream: the
        # clip's sampling and augmentation are reproducible yet new every epoch.
        randoms = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
        dataset = tf.data.Dataset.zip(files, randoms)
        dataset = epochs.loaded(dataset, choose, load, batch_size).prefetch(tf.data.AUTOTUNE)
    dataset.failed = failed
    return dataset


def _check_subsets(*, subset, validation_split, seed, shuffle, shard):
    """Raises a one-line ValueError unless the subset and shard arguments agree.

    They are `video_dataset_from_directory`'s.
    """
    if subset not in (None, "training", "validation", "both"):
        raise ValueError(
            f"subset must be None, 'training', 'validation' or 'both', received {subset!r}"
        )
    if (validation_split is None) != (subset is None):
        raise ValueError("validation_split and subset must be given together")
    if validation_split is not None and not 0 < validation_split < 1:
        raise ValueError(f"validation_split must be between 0 and 1, received {validation_split}")
    if validation_split is not None and seed is None and shuffle:
        raise ValueError(
            "a seed is required with validation_split and shuffle, "
            "so the two subsets do not overlap"
        )
    if shard is not None:
        if seed is None:
            raise ValueError("a seed is required with shard, so the workers' shares do not overlap")
        if not (len(shard) == 2 and 0 <= shard[1] < shard[0]):
            raise ValueError(
                "shard must be (num_workers, index) with 0 <= index < num_workers, received "
                f"{shard!r}"
            )


def _split_files(num_files, validation_split, *, shuffle, seed):
    """The indices, out of `num_files`, of the training and the validation files.

    The validation files are the last `validation_split` of them, after a
    seeded shuffle with `shuffle`.
    """
    order = np.arange(num_files)
    if shuffle:
        np.random.default_rng(seed).shuffle(order)
    num_validation = int(round(validation_split * len(order)))
    if num_validation == 0 or num_validation == len(order):
        raise ValueError(
            f"validation_split={validation_split} of {len(order)} videos leaves one subset empty"
        )
    return order[:-num_validation], order[-num_validation:]


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
    first_pass=None,
    views=1,
    service=None,
):
    """Clips and labels from `directory/<class>/<video>`, or from a list file's `VideoList`
    (`vlm_tf.data.lists`).

    It works like `keras.utils.image_dataset_from_directory`.

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
        augment: True applies `vlm_tf.data.transforms.augment_clip`; "robust" that, then
            `corrupt_clip` (one corruption for half the clips); False neither.
        views: with `augment="robust"`, above 1: each training clip as `(views, T, H, W, 3)`, the
            clip then corrupted copies (`transforms.corrupted_views`); validation clips stay single.
        label_maps: `{"horizontal_flip": {...}, "time_reversal": {...}}` for the
            label-changing augmentations; `"auto"` reads them from `dataset.json`
            in `directory` or its parent; `None` disables those transforms.
        crop_to_aspect_ratio: centre-crop frames instead of stretching them.
        strict: raise on the first unreadable file, class folder without
            videos or corrupt cache file instead of skipping it.
        cache: `None` decodes the chosen frames of every clip each epoch;
            `"memory"` or a folder keeps each video, decoded once at
            `image_size`, for the epochs after (`vlm_tf.data.cache`): the same
            clips, at the memory or disk cost of every frame of every video.
            A folder's corrupt files of these videos are removed first
            (`DecodedVideos.discard_corrupt`), so the videos are decoded
            again instead of dropping out of every epoch, and are listed in
            `skipped`.
        shard: `(num_workers, index)`: this worker's share of the training
            files for multi-worker training (`vlm_tf.training.distribute`),
            a different share each epoch, repeated without end, with
            `batch_size` the global batch; `dataset.steps_per_pass` is the
            steps of an epoch, and `first_pass` starts the stream at that
            epoch; requires `seed`.
        first_pass: the training files as an endless stream of passes from
            this epoch on, each keyed by its number (`make_clip_dataset`), for
            a run that resumes where it stopped; the caller sets the steps per
            epoch (`dataset.steps_per_pass`).
        service: with `first_pass`, a tf.data service dispatcher's `host:port`: its workers
            decode the training clips (`vlm_tf.data.service`); no `cache` or `shard`.

    Returns:
        A `tf.data.Dataset` (or a pair for `subset="both"`) with attributes
        `class_names`, `file_paths` and `skipped` (a list of `{"path", "reason"}`:
        unreadable files, class folders without videos, removed cache files).
    """
    _check_subsets(
        subset=subset, validation_split=validation_split, seed=seed, shuffle=shuffle, shard=shard
    )
    paths, labels, counts, class_names, skipped = readable_files(
        directory, class_names, strict=strict
    )
    if cache is not None:
        discarded = DecodedVideos(
            cache, _check_size(image_size), crop_to_aspect_ratio=crop_to_aspect_ratio
        ).discard_corrupt(paths)
        if discarded and strict:
            raise ValueError(f"{discarded[0]['path']}: {discarded[0]['reason']}")
        skipped = skipped + discarded
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
            sampling_mode=sampling_mode
            if training
            else EVALUATION_SAMPLING.get(sampling or "uniform", sampling),
            augment=augment if training else False,
            shard=shard if training else None,
            first_pass=first_pass if training else None,
            views=views if training else 1,
            service=service if training else None,
            **common,
        )
        dataset.class_names = class_names
        dataset.file_paths = [paths[i] for i in indices]
        dataset.skipped = skipped
        return dataset

    if validation_split is None:
        return build(np.arange(len(paths)), training=True)
    training, validation = _split_files(len(paths), validation_split, shuffle=shuffle, seed=seed)
    if subset == "training":
        return build(training, training=True)
    if subset == "validation":
        return build(validation, training=False)
    return build(training, training=True), build(validation, training=False)


def video_dataset_from_list(source, *, part="train", class_names=None, **options):
    """Clips and labels of list-file data (`vlm_tf.data.lists`): a UCF101-style folder or list
    file, a Kinetics-style or `path,label` CSV file.

    The companion of `video_dataset_from_directory` for lists, with its
    options. `part` is `"train"` (the train list or rows), `"val"` (the
    `val` rows of a CSV file) or `"test"` (the test list or rows; every row
    of a CSV file without any).
    """
    if part == "test":
        videos = evaluation_list(source)
    elif part in ("train", "val"):
        train, val = training_lists(source)
        videos = train if part == "train" else val
        if videos is None:
            raise ValueError(f"{source}: no rows with split 'val'")
    else:
        raise ValueError(f"part must be 'train', 'val' or 'test', received {part!r}")
    return video_dataset_from_directory(videos, class_names=class_names, **options)


def _check_size(image_size):
    try:
        height, width = (int(v) for v in image_size)
    except (TypeError, ValueError):
        raise ValueError(f"image_size must be (height, width), received {image_size!r}") from None
    if height < 1 or width < 1:
        raise ValueError(f"image_size must be positive, received {image_size!r}")
    return height, width


def make_split_datasets(
    train_dir,
    val_dir,
    *,
    num_frames,
    image_size,
    batch_size,
    seed,
    augment,
    label_mode,
    sampling=None,
    cache=None,
    shard=None,
    first_pass=None,
    views=1,
    service=None,
):
    """A run's training and validation datasets.

    The validation set is `val_dir`, else `VALIDATION_FALLBACK_SPLIT` of
    `train_dir` (`find_split_dirs`).

    Augmentation applies to the training clips only; `cache`, and `shard`,
    `first_pass`, `views` and `service` (training files only), as
    `video_dataset_from_directory` takes them.
    """
    common = dict(
        num_frames=num_frames,
        image_size=image_size,
        batch_size=batch_size,
        label_mode=label_mode,
        seed=seed,
        sampling=sampling,
        cache=cache,
    )
    if val_dir is None:
        return video_dataset_from_directory(
            train_dir,
            augment=augment,
            validation_split=VALIDATION_FALLBACK_SPLIT,
            subset="both",
            shard=shard,
            first_pass=first_pass,
            views=views,
            service=service,
            **common,
        )
    train_ds = video_dataset_from_directory(
        train_dir,
        augment=augment,
        shard=shard,
        first_pass=first_pass,
        views=views,
        service=service,
        **common,
    )
    return train_ds, video_dataset_from_directory(
        val_dir, class_names=train_ds.class_names, shuffle=False, **common
    )


def pick_clips(dataset, max_clips):
    """Up to `max_clips` clips of different classes from a batched `(clips, labels)` dataset.

    Returned with their labels.
    """
    clips, labels = [], []
    for batch_clips, batch_labels in dataset:
        batch_labels = batch_labels.numpy()
        if batch_labels.ndim == 2:
            batch_labels = batch_labels.argmax(axis=-1)
        for clip, label in zip(batch_clips.numpy(), batch_labels):
            if label not in labels:
                clips.append(clip)
                labels.append(int(label))
            if len(clips) == max_clips:
                return np.stack(clips), labels
    return (np.stack(clips), labels) if clips else (None, [])
