"""Video data: decode → sampling → transforms → pipeline, and the synthetic dataset."""

from vlm_tf.data.decode import VIDEO_EXTENSIONS, VideoInfo, VideoReadError, probe_video, read_frames, write_video
from vlm_tf.data.pipeline import index_directory, make_clip_dataset, probe_files, video_dataset_from_directory
from vlm_tf.data.synthetic import CLASS_NAMES, LABEL_MAPS, render_clip, write_dataset

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
    "write_dataset",
    "write_video",
]
