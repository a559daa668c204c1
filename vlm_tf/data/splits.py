"""Folders of videos: which files are videos, which are a class's, and which train or validate.

No TensorFlow here: the folder walks and splits that every task's data
starts from (`vlm_tf.data.pipeline` turns them into datasets).

- `index_directory`: `DATA_DIR/<class>/<video>` → paths, labels, class names.
- `find_split_dirs`: `DATA_DIR/train` and `DATA_DIR/val` of a classifier's data.
- `list_videos` and `video_split`: any folder of videos, class folders or not
  (restoration and detection), split into training and validation files.
"""

from __future__ import annotations

import os

import numpy as np

from vlm_tf.data.decode import VIDEO_EXTENSIONS

# Without a DATA_DIR/val folder, this share of the training videos is held out for validation.
VALIDATION_FALLBACK_SPLIT = 0.2


def find_split_dirs(data_dir):
    """`DATA_DIR/train` and `DATA_DIR/val` (else `None`: validation is then split off train).

    `DATA_DIR/test` is never used for validation: the best checkpoint is
    chosen on validation accuracy, so a test split used for it would no
    longer be held out and its accuracy would be optimistic.
    """
    data_dir = os.fspath(data_dir)
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
        `(paths, labels, class_names)`, paths sorted within each class.
    """
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
