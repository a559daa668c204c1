"""A classifier's accuracy under real-world corruption (§8.1 ⑤): `vlm-tf evaluate RUN DATA
--corruptions`.

Every video of the folder is decoded once at its own size, corrupted by
each of `vlm_tf.data.corruptions` at each severity (seeded per video,
corruption and severity, so runs compare on the same corrupted videos),
then sampled and resized as `evaluate` reads a clip. The summary follows
ImageNet-C's: the mean of the accuracies over every corruption and
severity, and how much of the clean accuracy the corruptions take away.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import os

import numpy as np
import tensorflow as tf

from vlm_tf.data import sampling
from vlm_tf.data.corruptions import CORRUPTIONS, SEVERITIES, check_corruptions, corrupt
from vlm_tf.data.decode import VideoReadError, frame_rate, read_frames, resize_frame
from vlm_tf.data.splits import evaluation_source, index_directory
from vlm_tf.tasks.base import Report, skipped_lines
from vlm_tf.tasks.classify import check_class_folders

# The frame rate assumed for a file whose container states none (the bit-rate corruptions need one).
FALLBACK_FPS = 25.0


@dataclasses.dataclass(eq=False)
class CorruptionReport(Report):
    """`evaluate --corruptions`'s report."""

    clean_accuracy: float
    # The mean over every corruption and severity asked for.
    mean_corruption_accuracy: float
    # (clean - mean corrupted) / clean: the share of the clean accuracy the corruptions take away.
    relative_corruption_error: float
    # `{corruption: {severity: accuracy}}`, severities as strings (JSON's keys).
    corruptions: dict
    num_videos: int
    seed: int
    skipped: list

    def lines(self):
        severities = list(next(iter(self.corruptions.values())))
        width = max(len(name) for name in self.corruptions)
        lines = [
            f"clean accuracy {self.clean_accuracy:.3f} on {self.num_videos} videos; mean "
            f"corruption accuracy {self.mean_corruption_accuracy:.3f} (relative corruption "
            f"error {self.relative_corruption_error:.3f}, corruption seed {self.seed})",
            f"  {'severity':<{width}}  " + "  ".join(f"{s:>5}" for s in severities) + "   mean",
        ]
        for name, row in self.corruptions.items():
            cells = "  ".join(f"{row[s]:5.3f}" for s in severities)
            lines.append(f"  {name:<{width}}  {cells}  {np.mean(list(row.values())):5.3f}")
        return lines + skipped_lines(self.skipped)


def _model_clip(frames, num_frames, image_size):
    indices = sampling.uniform_indices(len(frames), num_frames).numpy()
    return np.stack([resize_frame(frames[i], image_size) for i in indices])


def _corrupted_clips(path, index, settings, *, seed, num_frames, image_size):
    """The clean clip of `path` and one per `(corruption, severity)` in `settings`, uint8
    `(1 + len(settings), T, H, W, 3)`.
    """
    frames = read_frames(path)
    fps = frame_rate(path) or FALLBACK_FPS
    clips = [_model_clip(frames, num_frames, image_size)]
    names = list(CORRUPTIONS)
    for name, severity in settings:
        # Keyed by the corruption's place in the full list: a subset asked for sees the very
        # videos the full evaluation does.
        rng = np.random.default_rng([seed, index, names.index(name), severity])
        corrupted = corrupt(frames, name, severity, rng=rng, fps=fps)
        clips.append(_model_clip(corrupted, num_frames, image_size))
    return np.stack(clips)


def evaluate_corruptions(
    run, data_dir, *, corruptions=None, severities=SEVERITIES, seed=0, strict=False, batch_size=None
):
    """Accuracy of a classify run on `data_dir` (class folders or list data, as `evaluate`)
    clean and under each of `corruptions` (default: all of `vlm_tf.data.corruptions.CORRUPTIONS`)
    at each of `severities`.

    One clip a video, the clip `evaluate` scores. Unreadable files are
    skipped and listed (with `strict=True`, the first raises).

    Returns:
        A `CorruptionReport`.
    """
    run.require("classify", "evaluate --corruptions")
    names = list(CORRUPTIONS) if corruptions is None else list(corruptions)
    severities = sorted(set(int(s) for s in severities))
    check_corruptions(names, severities)
    data = evaluation_source(data_dir)
    check_class_folders(run, data)
    paths, labels, _ = index_directory(data, run.class_names)
    if not paths:
        raise ValueError(f"{data_dir}: no videos to evaluate (expected <class>/<video> files)")
    settings = [(name, severity) for name in names for severity in severities]
    forward = tf.function(lambda clips: run.model(clips, training=False), reduce_retracing=True)
    batch = batch_size or run.config.batch_size
    hits = np.zeros(1 + len(settings))
    counted, skipped = 0, []
    workers = os.cpu_count() or 1

    def clips_of(item):
        index, path = item
        return _corrupted_clips(
            path,
            index,
            settings,
            seed=seed,
            num_frames=run.config.num_frames,
            image_size=run.image_size,
        )

    # Decoding and corrupting (OpenCV, FFmpeg: they let go of the GIL) on every core, a few videos
    # ahead of the model, so memory holds a handful of videos whatever the folder's size.
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        for start in range(0, len(paths), 2 * workers):
            items = [(i, paths[i]) for i in range(start, min(start + 2 * workers, len(paths)))]
            for (index, _), job in zip(items, [pool.submit(clips_of, item) for item in items]):
                try:
                    clips = job.result()
                except VideoReadError as error:
                    if strict:
                        raise
                    skipped.append({"path": error.path, "reason": error.reason})
                    continue
                predicted = np.concatenate(
                    [
                        np.argmax(forward(tf.constant(clips[i : i + batch], tf.float32)), -1)
                        for i in range(0, len(clips), batch)
                    ]
                )
                hits += predicted == labels[index]
                counted += 1
    if not counted:
        first = skipped[0]
        raise ValueError(
            f"{data_dir}: none of its videos could be evaluated, first: {first['path']} "
            f"({first['reason']})"
        )
    accuracy = hits / counted
    table = {name: {} for name in names}
    for (name, severity), value in zip(settings, accuracy[1:]):
        table[name][str(severity)] = float(value)
    clean, mean = float(accuracy[0]), float(np.mean(accuracy[1:]))
    return CorruptionReport(
        clean_accuracy=clean,
        mean_corruption_accuracy=mean,
        relative_corruption_error=(clean - mean) / clean if clean > 0 else 0.0,
        corruptions=table,
        num_videos=counted,
        seed=int(seed),
        skipped=skipped,
    )
