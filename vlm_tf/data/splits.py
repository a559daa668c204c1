"""Folders of videos: which files are videos, which are a class's, and which train or validate.

No TensorFlow here: the folder walks and splits that every task's data
starts from (`vlm_tf.data.pipeline` turns them into datasets).

- `index_directory`: `DATA_DIR/<class>/<video>` (or a list file's `VideoList`,
  `vlm_tf.data.lists`) → paths, labels, class names.
- `find_split_dirs`: `DATA_DIR/train` and `DATA_DIR/val` of a classifier's data
  (or a list's training and validation parts).
- `list_videos` and `video_split`: any folder of videos, class folders or not
  (restoration and detection), split into training and validation files.
- `empty_class_folders`, `refuse_empty_class_folders`: class folders without a
  video, skipped with a word when reading, refused as training classes.
- `probe_files` and `readable_files`: which of the videos open (with OpenCV,
  in parallel), and why the others do not.
"""

from __future__ import annotations

import concurrent.futures
import logging
import os

import numpy as np

from vlm_tf.data import lists
from vlm_tf.data.decode import VIDEO_EXTENSIONS, VideoReadError, probe_video

logger = logging.getLogger(__name__)

# Without a DATA_DIR/val folder, this share of the training videos is held out for validation.
VALIDATION_FALLBACK_SPLIT = 0.2
# Why a class folder is refused (training) or skipped (anything else).
EMPTY_CLASS_FOLDER = "class folder without video files"


def find_split_dirs(data_dir):
    """`DATA_DIR/train` and `DATA_DIR/val` (else `None`: validation is then split off train).

    `DATA_DIR/test` is never used for validation: the best checkpoint is
    chosen on validation accuracy, so a test split used for it would no
    longer be held out and its accuracy would be optimistic.

    List-file data (`vlm_tf.data.lists`: a CSV file, a UCF101-style folder or
    list) gives its training and validation `VideoList`s instead.
    """
    data_dir = os.fspath(data_dir)
    if os.path.exists(data_dir) and lists.is_list_source(data_dir):
        return lists.training_lists(data_dir)
    if not os.path.isdir(data_dir):
        raise FileNotFoundError(f"{data_dir}: no such directory")
    train_dir = os.path.join(data_dir, "train")
    if not os.path.isdir(train_dir):
        raise FileNotFoundError(
            f"{train_dir}: no such directory (expected DATA_DIR/train/<class>/<video>, optionally "
            "DATA_DIR/val)"
        )
    val_dir = os.path.join(data_dir, "val")
    return train_dir, val_dir if os.path.isdir(val_dir) else None


def evaluation_source(data):
    """What evaluation reads of `data`: a folder of class folders as it is, the test part of
    list-file data (`vlm_tf.data.lists.evaluation_list`).
    """
    if isinstance(data, lists.VideoList):
        return data
    data = os.fspath(data)
    if os.path.exists(data) and lists.is_list_source(data):
        return lists.evaluation_list(data)
    return data


def list_video_files(directory):
    """Every video file under `directory`, at any depth, sorted; hidden folders skipped."""
    paths = []
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        paths += [
            os.path.join(root, f) for f in sorted(files) if f.lower().endswith(VIDEO_EXTENSIONS)
        ]
    return paths


def list_videos(directory):
    """Every video file under `directory`, at any depth, sorted.

    Class folders are welcome but not needed.
    """
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"{directory}: no such directory (expected a folder of videos)")
    paths = list_video_files(directory)
    if not paths:
        raise ValueError(
            f"{directory}: no video files found (expected files ending in one of "
            f"{', '.join(VIDEO_EXTENSIONS)})"
        )
    return paths


def video_split(data_dir, seed=0):
    """`(train_paths, val_paths)`: DATA_DIR/train and DATA_DIR/val.

    Without val/, 20 % of train/; without train/, 20 % of every video under
    DATA_DIR.

    DATA_DIR/test is never used for validation, as for the classifiers.
    """
    data_dir = os.fspath(data_dir)
    train_dir, val_dir = os.path.join(data_dir, "train"), os.path.join(data_dir, "val")
    if os.path.isdir(train_dir) and os.path.isdir(val_dir):
        return list_videos(train_dir), list_videos(val_dir)
    paths = list_videos(train_dir if os.path.isdir(train_dir) else data_dir)
    order = np.random.default_rng(seed).permutation(len(paths))
    held = int(round(VALIDATION_FALLBACK_SPLIT * len(paths)))
    if held == 0 or held == len(paths):
        raise ValueError(
            f"{data_dir}: {len(paths)} video(s) cannot be split into training and validation; "
            "add videos or a val/ folder"
        )
    return [paths[i] for i in sorted(order[held:])], [paths[i] for i in sorted(order[:held])]


def index_directory(directory, class_names=None):
    """Lists `directory/<class>/<video>` files.

    Args:
        class_names: the classes, in label order. `None` takes every
            sub-folder, sorted. Given, sub-folders not in the list are ignored
            and a listed class without a folder simply has no videos.

    Returns:
        `(paths, labels, class_names)`, paths sorted within each class (a
        `VideoList`'s in its order).
    """
    if isinstance(directory, lists.VideoList):
        return _index_list(directory, class_names)
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        raise FileNotFoundError(
            f"{directory}: no such directory (expected one sub-folder of videos per class)"
        )
    folders = sorted(
        entry.name
        for entry in os.scandir(directory)
        if entry.is_dir() and not entry.name.startswith(".")
    )
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
            f"{directory}: no video files found (expected {directory}/<class>/<video> with one of "
            f"{', '.join(VIDEO_EXTENSIONS)})"
        )
    return paths, labels, class_names


def _index_list(videos, class_names):
    """`index_directory` of a `VideoList`: its entries of `class_names` (all of its classes by
    default), labelled in that order.
    """
    class_names = list(videos.class_names if class_names is None else class_names)
    index = {name: i for i, name in enumerate(class_names)}
    kept = [
        (path, index[videos.class_names[label]])
        for path, label in zip(videos.paths, videos.labels)
        if videos.class_names[label] in index
    ]
    if not kept:
        raise ValueError(
            f"{videos.source}: lists no videos of the classes {', '.join(class_names)}"
        )
    return [path for path, _ in kept], [label for _, label in kept], class_names


def empty_class_folders(directory, class_names, labels):
    """The folders of `class_names` in `directory` that hold no video file.

    `class_names` and `labels` are `index_directory`'s: a class it found no
    video of, whose folder exists. A class without a folder is not one, and
    a list has no folders.
    """
    if isinstance(directory, lists.VideoList):
        return []
    found = set(labels)
    folders = [os.path.join(os.fspath(directory), name) for name in class_names]
    return [
        folder
        for label, folder in enumerate(folders)
        if label not in found and os.path.isdir(folder)
    ]


def refuse_empty_class_folders(directory):
    """Raises a one-line ValueError naming the first class folder of `directory` without videos.

    For training data, whose classes are its folders: an empty one would be
    a class of the model that no video teaches. A list's classes are those
    of its class index (UCF101) or its rows, so one without a video is
    refused the same way.
    """
    paths, labels, class_names = index_directory(directory)
    if isinstance(directory, lists.VideoList):
        found = set(labels)
        missing = [name for i, name in enumerate(class_names) if i not in found]
        if missing:
            raise ValueError(
                f"{directory.source}: class {missing[0]!r} has no video to train on; list some "
                "or remove the class"
            )
        return
    empty = empty_class_folders(directory, class_names, labels)
    if empty:
        raise ValueError(
            f"{empty[0]}: {EMPTY_CLASS_FOLDER}, so no video teaches its class; add videos or "
            "remove the folder"
        )


def readable_videos(paths, *, strict=False):
    """`(paths, frame_counts, skipped)` of the readable videos among `paths` (`probe_files`); a
    one-line error naming the first unreadable one when none is.
    """
    counts, skipped = probe_files(paths, strict=strict)
    readable = [(path, count) for path, count in zip(paths, counts) if count > 0]
    if not readable:
        raise ValueError(
            f"none of the {len(paths)} video(s) could be read; first: {skipped[0]['path']} "
            f"({skipped[0]['reason']})"
        )
    return [path for path, _ in readable], [count for _, count in readable], skipped


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
        logger.warning(
            "skipped %d unreadable video(s), first: %s (%s)",
            len(skipped),
            skipped[0]["path"],
            skipped[0]["reason"],
        )
    return [count for count, _ in results], skipped


def readable_files(directory, class_names, *, strict):
    """The videos of `directory` that open: `(paths, labels, frame_counts, class_names, skipped)`.

    Unreadable files are dropped after the labels are assigned, so no label
    shifts; a folder where none opens is refused. A class folder without
    videos is listed in `skipped` too (with `strict`, raises ValueError).
    """
    paths, labels, class_names = index_directory(directory, class_names)
    counts, unreadable = probe_files(paths, strict=strict)
    empty = empty_class_folders(directory, class_names, labels)
    if empty and strict:
        raise ValueError(f"{empty[0]}: {EMPTY_CLASS_FOLDER}")
    readable = [i for i, count in enumerate(counts) if count > 0]
    if not readable:
        first = (
            f", first: {unreadable[0]['path']} ({unreadable[0]['reason']})" if unreadable else ""
        )
        raise ValueError(f"{directory}: none of the {len(paths)} video files could be read{first}")
    paths = [paths[i] for i in readable]
    labels = [labels[i] for i in readable]
    counts = [counts[i] for i in readable]
    skipped = [{"path": folder, "reason": EMPTY_CLASS_FOLDER} for folder in empty] + unreadable
    return paths, labels, counts, class_names, skipped
