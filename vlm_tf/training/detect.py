"""Training the chapter-6 detector (§6.2) on videos with box files, scored by mAP@0.5 every epoch.

Training clips are `num_frames` consecutive frames from a random start (and
a random horizontal flip), decoded by OpenCV batch by batch; targets are
CenterNet's heat maps and box sides (`vlm_tf.models.detection`). Each epoch
`DetectionScores` runs the detector over validation videos (their first
`FRAMES_PER_VIDEO` frames) and adds `val_map50` and `val_mean_iou` to the
epoch's logs; the epoch with the best `val_map50` becomes `model.keras`.
The classical baseline (background subtraction,
`vlm_tf.baselines.BackgroundSubtractionDetector`) is fitted on the training
videos once and kept in `RUN_DIR/baseline.json` for `evaluate`; after
training, the detection score above which boxes are tracked is chosen on
the validation videos by MOTA and kept in `RUN_DIR/tracking.json`.
"""

from __future__ import annotations

import dataclasses
import math
import os

import cv2
import keras
import numpy as np
import tensorflow as tf

from vlm_tf import atomic
from vlm_tf.baselines import BackgroundSubtractionDetector
from vlm_tf.data.decode import VideoReadError, probe_video, read_frames
from vlm_tf.data.detection import box_file, draw_boxes, frame_boxes, read_boxes
from vlm_tf.models.detection import STRIDE, detect_clip, detection_loss, detection_targets
from vlm_tf.models.registry import get_model_spec
from vlm_tf.tracking import IoUTracker, clear_mot, mean_average_precision, mota, suppress_overlaps
from vlm_tf.training import config as run_files
from vlm_tf.training.callbacks import ResumableBackup, SaveModel, TrainingThroughput, clip_montage
from vlm_tf.training.fit import TrainResult, best_validation_accuracy, make_optimizer, write_run_header
from vlm_tf.training.runtime import jit_compile_argument

BASELINE_FILE = "baseline.json"
TRACKING_FILE = "tracking.json"
# Detection scores tried as the tracker's threshold; the one with the best
# MOTA on the validation videos is kept in RUN_DIR/tracking.json.
SCORE_THRESHOLDS = (0.2, 0.25, 0.3, 0.4, 0.5)
# Validation videos scored each epoch and training videos the baseline is
# fitted on, each by its first frames only, so long videos do not fill memory.
METRIC_VIDEOS = 200
BASELINE_VIDEOS = 40
FRAMES_PER_VIDEO = 64
SAMPLE_FRAMES = 6


@dataclasses.dataclass
class AnnotatedVideo:
    path: str
    num_frames: int
    width: int
    height: int
    objects: list

    def truth(self, class_names, size=None):
        """Per frame `(boxes (N, 4), classes (N,), ids (N,))`, boxes scaled to `size` `(height, width)` when given; labels not in `class_names` are left out."""
        scale = np.ones(4, np.float32) if size is None else np.array([size[1] / self.width, size[0] / self.height] * 2, np.float32)
        known = [o for o in self.objects if o["label"] in class_names]
        frames = []
        for t in range(self.num_frames):
            boxes, labels, ids = frame_boxes(known, t)
            frames.append((boxes * scale, np.array([class_names.index(label) for label in labels], int), ids))
        return frames


def annotated_videos(paths, *, strict=False):
    """`(videos, skipped)`: the videos at `paths` that decode and have a valid box file, and `{"path", "reason"}` for the rest.

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
    epoch (seeded); otherwise its first `num_frames`. A video shorter than
    `num_frames` repeats its last frame.
    """

    def __init__(self, videos, class_names, *, num_frames, image_size, batch_size, training, seed=0):
        super().__init__()
        self.videos, self.class_names = videos, class_names
        # Every video's boxes as training targets want them, worked out once rather than per batch.
        self.truths = [video.truth(class_names, image_size) for video in videos]
        self.num_frames, self.image_size, self.batch_size = num_frames, image_size, batch_size
        self.training, self.seed = training, seed
        self.epoch = 0
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
        for k in self.order[index * self.batch_size:(index + 1) * self.batch_size]:
            video = self.videos[k]
            start = int(rng.integers(0, max(1, video.num_frames - self.num_frames + 1))) if self.training else 0
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
                    boxes = np.stack([self.image_size[1] - boxes[:, 2], boxes[:, 1], self.image_size[1] - boxes[:, 0], boxes[:, 3]], axis=-1)
                clip_targets.append(detection_targets((boxes, classes), len(self.class_names), grid))
            clips.append(frames.astype(np.float32))
            targets.append(np.stack(clip_targets))
        return np.stack(clips), np.stack(targets)

    def on_epoch_end(self):
        self.epoch += 1
        self.order = self._order()


def score_detections(detections, truths, num_classes):
    """mAP@0.5 and mean IoU of per-video detections against per-video truths (as `AnnotatedVideo.truth` gives them)."""
    return mean_average_precision(
        [d for video in detections for d in video], [(boxes, classes) for video in truths for boxes, classes, _ in video], num_classes
    )


class DetectionScores(keras.callbacks.Callback):
    """Each epoch: `val_map50` and `val_mean_iou` over the validation clips given into the logs, and frames with boxes in TensorBoard.

    The image shows the first validation video's frames with its true boxes
    in green and the detections scoring at least `threshold` in red.
    """

    def __init__(self, clips, truths, class_names, log_dir, *, threshold=0.3):
        super().__init__()
        self.clips, self.truths, self.class_names = clips, truths, class_names
        self.log_dir, self.threshold = log_dir, threshold

    def on_train_begin(self, logs=None):
        self.writer = tf.summary.create_file_writer(self.log_dir)

    def on_epoch_end(self, epoch, logs=None):
        detections = [detect_clip(self.model, clip, len(self.class_names)) for clip in self.clips]
        scores = score_detections(detections, self.truths, len(self.class_names))
        if logs is not None:
            logs["val_map50"], logs["val_mean_iou"] = scores["map"], scores["mean_iou"]
        frames = []
        for t in np.linspace(0, len(self.clips[0]) - 1, SAMPLE_FRAMES).astype(int):
            boxes, box_scores, classes = detections[0][t]
            keep = box_scores >= self.threshold
            # Four times larger, so the captions can be read.
            frame = cv2.resize(np.asarray(self.clips[0][t], np.uint8), None, fx=4, fy=4, interpolation=cv2.INTER_NEAREST)
            frame = draw_boxes(frame, self.truths[0][t][0] * 4, colour=(0, 255, 0))
            frames.append(draw_boxes(frame, boxes[keep] * 4, [self.class_names[c] for c in classes[keep]], colour=(255, 0, 0)))
        with self.writer.as_default():
            tf.summary.image("detections/truth_green_detected_red", clip_montage(np.stack(frames), max_frames=SAMPLE_FRAMES)[None], step=epoch)
        self.writer.flush()

    def on_train_end(self, logs=None):
        self.writer.close()


def _first_frames(video, size=None):
    return read_frames(video.path, np.arange(min(video.num_frames, FRAMES_PER_VIDEO)), size=size)


def track_clip(detections, threshold):
    """One clip's detections (`detect_clip`'s) → per frame `(kept, track_ids)`: the indices of the boxes at least `threshold` confident, one per object (`suppress_overlaps`), and their track identities."""
    tracker = IoUTracker()
    tracked = []
    for boxes, scores, _ in detections:
        kept = np.nonzero(scores >= threshold)[0]
        kept = kept[suppress_overlaps(boxes[kept], scores[kept])]
        tracked.append((kept, tracker.update(boxes[kept])))
    return tracked


def tracking_counts(detections, truth, threshold):
    """`clear_mot` counts of one clip's tracked detections against its truth (`AnnotatedVideo.truth`)."""
    tracks = [(boxes[kept], ids) for (boxes, _, _), (kept, ids) in zip(detections, track_clip(detections, threshold))]
    return clear_mot(tracks, [(boxes, ids) for boxes, _, ids in truth])


def choose_score_threshold(model, clips, truths, num_classes):
    """The score of `SCORE_THRESHOLDS` with which the tracked detections of `clips` have the best MOTA."""
    detections = [detect_clip(model, clip, num_classes) for clip in clips]

    def accuracy(threshold):
        counts = [tracking_counts(d, truth, threshold) for d, truth in zip(detections, truths)]
        return mota({key: sum(c[key] for c in counts) for key in counts[0]})

    return max(SCORE_THRESHOLDS, key=accuracy)


def fit_baseline(videos, class_names):
    """The background-subtraction detector fitted on the first `BASELINE_VIDEOS` of `videos`, at their own size."""
    chosen = videos[:BASELINE_VIDEOS]
    clips = [_first_frames(video) for video in chosen]
    truths = [[(boxes, classes) for boxes, classes, _ in video.truth(class_names)[:FRAMES_PER_VIDEO]] for video in chosen]
    return BackgroundSubtractionDetector.fit(clips, truths, len(class_names))


def train_detection(data_dir, run_dir, config, train_paths, val_paths, resumed, verbose, extras):
    """Trains a detect model of a resolved `config` on the annotated videos among `train_paths` into `run_dir` (called by `vlm_tf.training.train`)."""
    spec = get_model_spec(config.model)
    if spec.task != "detect":
        raise ValueError(f"{config.model!r} is a {spec.task} model, not a detector")
    image_size = (config.image_size, config.image_size)
    train_videos, skipped = annotated_videos(train_paths)
    val_videos, val_skipped = annotated_videos(val_paths)
    for name, videos, problems in (("training", train_videos, skipped), ("validation", val_videos, val_skipped)):
        if not videos:
            first = f"; first: {problems[0]['path']} ({problems[0]['reason']})" if problems else ""
            raise ValueError(f"{data_dir}: no {name} video with a readable box file (VIDEO.json beside VIDEO, vlm_tf.data.detection){first}")
    class_names = detection_classes(train_videos)
    write_run_header(run_dir, data_dir, config, class_names)
    model = spec.build(num_classes=len(class_names), image_size=image_size)
    train_ds = DetectionClips(train_videos, class_names, num_frames=config.num_frames, image_size=image_size, batch_size=config.batch_size, training=True, seed=config.seed)
    val_ds = DetectionClips(val_videos, class_names, num_frames=config.num_frames, image_size=image_size, batch_size=config.batch_size, training=False)
    model.compile(optimizer=make_optimizer(config, len(train_ds)), loss=detection_loss, jit_compile=jit_compile_argument(config.jit))

    baseline_path = os.path.join(run_dir, BASELINE_FILE)
    if not os.path.isfile(baseline_path):
        atomic.write_json(baseline_path, fit_baseline(train_videos, class_names).to_dict())
    metric_videos = val_videos[:METRIC_VIDEOS]
    metric_clips = [_first_frames(v, image_size) for v in metric_videos]
    metric_truths = [v.truth(class_names, image_size)[:FRAMES_PER_VIDEO] for v in metric_videos]
    log_dir = os.path.join(run_dir, run_files.LOG_DIR)
    best_path = os.path.join(run_dir, run_files.BEST_CHECKPOINT)
    model_path = os.path.join(run_dir, run_files.MODEL_FILE)
    backup = ResumableBackup(os.path.join(run_dir, run_files.BACKUP_DIR))
    run_files.trim_history(run_dir, backup.saved_epoch())
    callbacks = [
        TrainingThroughput(len(train_videos)),
        DetectionScores(metric_clips, metric_truths, class_names, os.path.join(log_dir, "samples")),
        SaveModel(best_path, monitor="val_map50", initial_value=best_validation_accuracy(run_dir, "val_map50")),
        keras.callbacks.CSVLogger(os.path.join(run_dir, run_files.HISTORY_FILE), append=True),
        keras.callbacks.TensorBoard(log_dir, write_graph=False),
        *extras.callbacks,
        backup,
    ]
    history = model.fit(train_ds, validation_data=val_ds, epochs=config.epochs, callbacks=callbacks, verbose=verbose)
    best = keras.models.load_model(best_path)
    atomic.write_json(os.path.join(run_dir, TRACKING_FILE), {"score_threshold": choose_score_threshold(best, metric_clips, metric_truths, len(class_names))})
    atomic.copy_file(best_path, model_path)
    backup.discard()
    rows = run_files.read_history(run_dir)
    summary = dict(max(rows, key=lambda row: row.get("val_map50", 0.0))) if rows else {}
    summary.pop("epoch", None)
    return TrainResult(
        run_dir=run_dir,
        model_path=model_path,
        best_val_accuracy=None,
        epochs_run=len(history.history.get("loss", [])),
        resumed=resumed,
        skipped=skipped + val_skipped,
        summary=summary,
    )
