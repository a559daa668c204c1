"""Video data: folders and splits → decode → sampling → transforms → pipeline.

The synthetic datasets live here too.

The TensorFlow parts (`pipeline`, `sampling`, `transforms`) load on first
use, so the CLI can read the synthetic dataset's defaults for `--help`
without importing TensorFlow.
"""

import importlib

from vlm_tf.data.decode import (
    VIDEO_EXTENSIONS,
    VideoInfo,
    VideoReadError,
    probe_video,
    read_frames,
    write_video,
)
from vlm_tf.data.splits import index_directory
from vlm_tf.data.synthetic import CLASS_NAMES, LABEL_MAPS, render_clip, write_dataset

_PIPELINE_NAMES = (
    "make_clip_dataset",
    "probe_files",
    "video_dataset_from_directory",
    "video_dataset_from_list",
)


def __getattr__(name):
    if name in _PIPELINE_NAMES:
        return getattr(importlib.import_module("vlm_tf.data.pipeline"), name)
    raise AttributeError(f"module 'vlm_tf.data' has no attribute {name!r}")


__all__ = [
    "CLASS_NAMES",
    "LABEL_MAPS",
    "VIDEO_EXTENSIONS",
    "VideoInfo",
    "VideoReadError",
    "index_directory",
    "make_clip_dataset",
    "probe_files",
    "probe_video",
    "read_frames",
    "render_clip",
    "video_dataset_from_directory",
    "video_dataset_from_list",
    "write_dataset",
    "write_video",
]
