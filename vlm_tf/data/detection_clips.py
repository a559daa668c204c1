"""A detector's training data: videos with box files (`vlm_tf.data.detection`).

They come as batches of clips and CenterNet targets.

`annotated_videos` reads which videos decode and have a valid box file;
`DetectionClips` batches `num_frames` of them at a time with the targets
a centre-point detector learns (`detection_targets`: a heat map per class
and the box's sides at each object's centre cell, `vlm_tf.models.detection`).
"""

from __future__ import annotations

import dataclasses
import math

import keras
import numpy as np

from vlm_tf.data.decode import VideoReadError, probe_video, read_frames
from vlm_tf.data.detection import box_file, frame_boxes, read_boxes

# The detector's output grid is the frame's size divided by this (vlm_tf.models.detection).
STRIDE = 4


def detection_targets(frame_objects, num_classes, grid_size):
    """Training targets for one frame: `(Hg, Wg, C + 5)` float32.

    From `frame_objects` = `(boxes (N, 4) in input pixels, classes (N,))`.
    """
    grid_h, grid_w = grid_size
    target = np.zeros((grid_h, grid_w, num_classes + 5), np.float32)
    rows, columns = np.mgrid[0:grid_h, 0:grid_w].astype(np.float32) + 0.5
    boxes, classes = frame_objects
    for box, c in zip(np.asarray(boxes, np.float32).reshape(-1, 4) / STRIDE, classes):
        centre_x, centre_y = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        j, i = int(np.clip(centre_x, 0, grid_w - 1e-3)), int(np.clip(centre_y, 0, grid_h - 1e-3))
        # Spread as CenterNet's, about a sixth of the box, at least half a cell.
        sigma = max(0.5, (box[2] - box[0] + box[3] - box[1]) / 12.0)
        bump = np.exp(-((columns - centre_x) ** 2 + (rows - centre_y) ** 2) / (2 * sigma**2))
        bump[i, j] = 1.0
        target[..., c] = np.maximum(target[..., c], bump)
        target[i, j, num_classes : num_classes + 4] = [
            j + 0.5 - box[0],
            i + 0.5 - box[1],
            box[2] - j - 0.5,
            box[3] - i - 0.5,
        ]
        target[i, j, -1] = 1.0
    return target


@dataclasses.dataclass
class AnnotatedVideo:
    path: str
    num_frames: int
    width: int
    height: int
    objects: list

    def truth(self, class_names, size=None):
        """Per frame `(boxes (N, 4), classes (N,), ids (N,))`.

        Boxes are scaled to `size` `(height, width)` when given; labels not in
        `class_names` are left out.
        """
        scale = (
            np.ones(4, np.float32)
            if size is None
            else np.array([size[1] / self.width, size[0] / self.height] * 2, np.float32)
        )
        known = [o for o in self.objects if o["label"] in class_names]
        frames = []
        for t in range(self.num_frames):
            boxes, labels, ids = frame_boxes(known, t)
            frames.append(
                (boxes * scale, np.array([class_names.index(label) for label in labels], int), ids)
            )
        return frames


def annotated_videos(paths, *, strict=False):
    """`(videos, skipped)`: the videos at `paths` that decode and have a valid box file.

    `skipped` holds `{"path", "reason"}` for the rest.

    With `strict`, the first problem raises instead.
    """
    videos, skipped = [], []
    for path in paths:
        try:
            info = probe_video(path)
            objects = read_boxes(box_file(path), num_frames=info.num_frames)
        except (VideoReadError, FileNotFoundError, ValueError) as error:
            if strict:
                raise
            skipped.append({"path": path, "reason": getattr(error, "reason", None) or str(error)})
            continue
        videos.append(AnnotatedVideo(path, info.num_frames, info.width, info.height, objects))
    return videos, skipped


def detection_classes(videos):
    """The class names of a run: every label in the training videos' box files, sorted."""
    return sorted({o["label"] for video in videos for o in video.objects})


class DetectionClips(keras.utils.PyDataset):
    """Batches of `(clips (B, T, H, W, 3) float32, targets (B, T, H/4, W/4, C + 5))`.

    In training, each video gives `num_frames` consecutive frames from a
    random start, flipped left-right half the time, in a new order every
    epoch (seeded by the seed and the epoch number, from `first_epoch` on, so
    a resumed run sees what the uninterrupted one saw); otherwise its first
    `num_frames`. A video shorter than `num_frames` repeats its last frame.
    """

    def __init__(
        self,
        videos,
        class_names,
        *,
        num_frames,
        image_size,
        batch_size,
        training,
        seed=0,
        first_epoch=0,
    ):
        super().__init__()
        self.videos, self.class_names = videos, class_names
        # Every video's boxes as training targets want them, worked out once rather than per batch.
        self.truths = [video.truth(class_names, image_size) for video in videos]
        self.num_frames, self.image_size, self.batch_size = num_frames, image_size, batch_size
        self.training, self.seed = training, seed
        self.epoch = first_epoch
        self.order = self._order()

    def _order(self):
        if not self.training:
            return np.arange(len(self.videos))
        return np.random.default_rng((self.seed, self.epoch)).permutation(len(self.videos))

    def __len__(self):
        return math.ceil(len(self.videos) / self.batch_size)

    def __getitem__(self, index):
        rng = np.random.default_rng((self.seed, self.epoch, index))
        grid = (self.image_size[0] // STRIDE, self.image_size[1] // STRIDE)
        clips, targets = [], []
        for k in self.order[index * self.batch_size : (index + 1) * self.batch_size]:
            video = self.videos[k]
            start = (
                int(rng.integers(0, max(1, video.num_frames - self.num_frames + 1)))
                if self.training
                else 0
            )
            indices = np.minimum(np.arange(start, start + self.num_frames), video.num_frames - 1)
            frames = read_frames(video.path, indices, size=self.image_size)
            truth = self.truths[k]
            flip = self.training and rng.random() < 0.5
            if flip:
                frames = frames[:, :, ::-1]
            clip_targets = []
            for t in indices:
                boxes, classes, _ = truth[t]
                if flip:
                    boxes = np.stack(
                        [
                            self.image_size[1] - boxes[:, 2],
                            boxes[:, 1],
                            self.image_size[1] - boxes[:, 0],
                            boxes[:, 3],
                        ],
                        axis=-1,
                    )
                clip_targets.append(
                    detection_targets((boxes, classes), len(self.class_names), grid)
                )
            clips.append(frames.astype(np.float32))
            targets.append(np.stack(clip_targets))
        return np.stack(clips), np.stack(targets)

    def on_epoch_end(self):
        self.epoch += 1
        self.order = self._order()
