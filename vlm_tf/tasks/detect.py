"""Detection and tracking (§6.2): find the objects of each frame, give them identities over time.

Training reads videos with a box file each (`vlm_tf.data.detection`):
`num_frames` consecutive frames from a random start (and a random
horizontal flip), decoded batch by batch (`DetectionClips`); targets are
CenterNet's heat maps and box sides (`vlm_tf.models.detection`). Each epoch
`DetectionScores` runs the detector over validation videos (their first
`FRAMES_PER_VIDEO` frames) and adds `val_map50` and `val_mean_iou` to the
epoch's logs; the epoch with the best `val_map50` becomes `model.keras`.
When training ends, the classical baseline (background subtraction,
`vlm_tf.BackgroundSubtractionDetector`) is fitted on the training
videos and kept in `RUN_DIR/baseline.json` for `evaluate`, and the
detection score above which boxes are tracked is chosen on the validation
videos by MOTA and kept in `RUN_DIR/tracking.json`.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from vlm_tf import atomic
from vlm_tf.baselines import BackgroundSubtractionDetector
from vlm_tf.data.decode import probe_video, read_frames, resize_frame, write_video
from vlm_tf.data.detection_clips import DetectionClips, annotated_videos, detection_classes
from vlm_tf.data.splits import list_videos, video_split
from vlm_tf.export import export_detector
from vlm_tf.metrics.detection import clear_mot, mean_average_precision, mota
from vlm_tf.models.backbone import load_backbone
from vlm_tf.models.detection import detect_clip, detection_loss, load_trunk
from vlm_tf.models.presets import describe_init
from vlm_tf.models.registry import get_model_spec, model_names
from vlm_tf.tasks.base import Report, Task, TaskData, skipped_lines
from vlm_tf.tasks.tensorboard import EpochImages
from vlm_tf.tracking import track_clip, tracking_counts
from vlm_tf.visualize import clip_montage, draw_boxes, enlarge

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
# Frames per second of a written video whose input did not say.
DEFAULT_FPS = 10.0


@dataclasses.dataclass(eq=False)
class DetectionReport(Report):
    """`evaluate`'s report on a detect run (`evaluate_detection`): the model's scores, then the
    baseline's under `baseline`.
    """

    task: str
    map50: float
    map50_agnostic: float
    mean_iou: float
    id_switches: int
    mota: float
    misses: int
    false_positives: int
    object_frames: int
    ap50_per_class: dict
    score_threshold: float
    baseline: dict
    num_videos: int
    num_objects: int
    skipped: list

    def lines(self):
        lines = [
            f"detection: {self.num_videos} videos, {self.num_objects} objects; boxes scoring "
            f"{self.score_threshold:g} or more are tracked"
        ]
        rows = [("model", self.to_dict()), (self.baseline["name"], self.baseline)]
        width = max(len(name) for name, _ in rows)
        for name, scores in rows:
            lines.append(
                f"  {name:<{width}}  mAP@0.5 {scores['map50']:.3f}  class-agnostic "
                f"{scores['map50_agnostic']:.3f}  IoU {scores['mean_iou']:.3f}"
                f"  ID switches {scores['id_switches']}  MOTA {scores['mota']:.3f}"
            )
        lines.append(
            "  AP@0.5 per class: "
            + ", ".join(
                f"{name} {'-' if ap is None else f'{ap:.3f}'}"
                for name, ap in self.ap50_per_class.items()
            )
        )
        return lines + skipped_lines(self.skipped)


@dataclasses.dataclass(eq=False)
class DetectedVideoReport(Report):
    """`apply`'s report on a video with its tracked boxes drawn (`write_detected_video`)."""

    out: str
    frames: int
    size: list
    tracks: int
    detections: int
    side_by_side: bool

    def lines(self):
        height, width = self.size
        return [
            f"{self.out}: {self.frames} frames, {height}x{width}, {self.detections} boxes in "
            f"{self.tracks} tracks{' (input | output)' if self.side_by_side else ''}"
        ]


class DetectTask(Task):
    monitor = "val_map50"

    def split(self, data_dir):
        # Any folder of videos with box files: DATA_DIR/train and val, or a split of them.
        return video_split(data_dir, seed=self.config.seed)

    def make_data(self, train, val, *, cache=None, distribution=None, first_epoch=0):
        config = self.config
        train_videos, skipped = annotated_videos(train)
        val_videos, val_skipped = annotated_videos(val)
        for name, videos, problems in (
            ("training", train_videos, skipped),
            ("validation", val_videos, val_skipped),
        ):
            if not videos:
                first = (
                    f"; first: {problems[0]['path']} ({problems[0]['reason']})" if problems else ""
                )
                raise ValueError(
                    f"no {name} video with a readable box file (VIDEO.json beside VIDEO, "
                    f"vlm_tf.data.detection){first}"
                )
        class_names = detection_classes(train_videos)
        common = dict(
            num_frames=config.num_frames, image_size=self.image_size, batch_size=config.batch_size
        )
        train_ds = DetectionClips(
            train_videos,
            class_names,
            training=True,
            seed=config.seed,
            first_epoch=first_epoch,
            **common,
        )
        val_ds = DetectionClips(val_videos, class_names, training=False, **common)
        metric_videos = val_videos[:METRIC_VIDEOS]
        extras = {
            "train_videos": train_videos,
            "metric_clips": [_first_frames(v, self.image_size) for v in metric_videos],
            "metric_truths": [
                v.truth(class_names, self.image_size)[:FRAMES_PER_VIDEO] for v in metric_videos
            ],
        }
        return TaskData(
            train_ds,
            val_ds,
            class_names,
            len(train_videos),
            len(train_ds),
            skipped + val_skipped,
            extras=extras,
        )

    def check_config(self):
        if self.options.init is None:
            return
        # From the backbone's JSON: the run folder is not touched for a backbone that cannot fit.
        backbone = describe_init(self.options.init)["model_name"]
        trunk = get_model_spec(self.config.model).kwargs.get("backbone")
        if backbone != trunk:
            on_it = [
                name
                for name in model_names("detect")
                if get_model_spec(name).kwargs.get("backbone") is not None
            ]
            built_on = "its own trunk" if trunk is None else f"a {trunk} trunk"
            raise ValueError(
                f"{self.options.init}: a {backbone} backbone; this run trains {self.config.model}, "
                f"built on {built_on} (detectors built on a backbone: {', '.join(on_it)})"
            )

    def build_model(self, data):
        detector = get_model_spec(self.config.model).build(
            num_classes=len(data.class_names), image_size=self.image_size
        )
        if self.options.init is not None:
            # The backbone's frame encoder becomes the trunk (`check_config` matched the models);
            # its recurrent layer and the detector's ConvLSTM and head have nothing in common.
            load_trunk(detector, load_backbone(self.options.init))
        return detector

    def compile(self, model, make_optimizer, jit_compile):
        model.compile(optimizer=make_optimizer(), loss=detection_loss, jit_compile=jit_compile)

    def metric_callbacks(self, data, log_dir):
        # DetectionScores draws the boxes it scores too.
        return [
            DetectionScores(
                data.extras["metric_clips"],
                data.extras["metric_truths"],
                data.class_names,
                os.path.join(log_dir, "samples"),
            )
        ]

    def finish(self, run_dir, model, data, best_path):
        class_names = data.class_names
        atomic.write_json(
            os.path.join(run_dir, BASELINE_FILE),
            fit_baseline(data.extras["train_videos"], class_names).to_dict(),
        )
        threshold = choose_score_threshold(
            atomic.load_model(best_path),
            data.extras["metric_clips"],
            data.extras["metric_truths"],
            len(class_names),
        )
        atomic.write_json(os.path.join(run_dir, TRACKING_FILE), {"score_threshold": threshold})

    def evaluate(self, run, data_dir, *, strict=False, views=(1, 1)):
        self.refuse_views(run, views)
        return evaluate_detection(run, data_dir, strict=strict)

    def apply(self, run, video, out, *, side_by_side=False, degrade=False, seed=0):
        if degrade:
            raise ValueError(
                "--degrade is for the restoration runs; a detect run draws its boxes on VIDEO as "
                "it is"
            )
        return DetectedVideoReport(
            out=os.fspath(out),
            side_by_side=side_by_side,
            **write_detected_video(run, video, out, side_by_side=side_by_side),
        )

    def export(self, run, path):
        export_detector(run.model, path, class_names=run.class_names)
        return (
            "serving_default takes one video's uint8 frames (time, height, width, 3), returns "
            "boxes, scores, class_index, class_name per frame"
        )


def score_detections(detections, truths, num_classes):
    """mAP@0.5 and mean IoU of per-video detections against per-video truths (as
    `AnnotatedVideo.truth` gives them).
    """
    return mean_average_precision(
        [d for video in detections for d in video],
        [(boxes, classes) for video in truths for boxes, classes, _ in video],
        num_classes,
    )


class DetectionScores(EpochImages):
    """Each epoch: `val_map50` and `val_mean_iou` over the validation clips given into the logs, and
    frames with boxes in TensorBoard.

    The image shows the first validation video's frames with its true boxes
    in green and the detections scoring at least `threshold` in red.
    """

    def __init__(self, clips, truths, class_names, log_dir, *, threshold=0.3):
        super().__init__(log_dir)
        self.clips, self.truths, self.class_names = clips, truths, class_names
        self.threshold = threshold

    def images(self, epoch, logs):
        # The figures join the epoch's logs here, before the best model is chosen from them.
        detections = [detect_clip(self.model, clip, len(self.class_names)) for clip in self.clips]
        scores = score_detections(detections, self.truths, len(self.class_names))
        if logs is not None:
            logs["val_map50"], logs["val_mean_iou"] = scores["map"], scores["mean_iou"]
        frames = []
        for t in np.linspace(0, len(self.clips[0]) - 1, SAMPLE_FRAMES).astype(int):
            boxes, box_scores, classes = detections[0][t]
            keep = box_scores >= self.threshold
            # Four times larger, so the captions can be read.
            clip = np.asarray(self.clips[0])
            frame = enlarge(clip[t : t + 1], (4 * clip.shape[1], 4 * clip.shape[2]))[0]
            frame = draw_boxes(frame, self.truths[0][t][0] * 4, colour=(0, 255, 0))
            frames.append(
                draw_boxes(
                    frame,
                    boxes[keep] * 4,
                    [self.class_names[c] for c in classes[keep]],
                    colour=(255, 0, 0),
                )
            )
        image = clip_montage(np.stack(frames), max_frames=SAMPLE_FRAMES)
        return {"detections/truth_green_detected_red": image}


def _first_frames(video, size=None):
    return read_frames(video.path, np.arange(min(video.num_frames, FRAMES_PER_VIDEO)), size=size)


def choose_score_threshold(model, clips, truths, num_classes):
    """The score of `SCORE_THRESHOLDS` with which the tracked detections of `clips` have the best
    MOTA.
    """
    detections = [detect_clip(model, clip, num_classes) for clip in clips]

    def accuracy(threshold):
        counts = [tracking_counts(d, truth, threshold) for d, truth in zip(detections, truths)]
        return mota({key: sum(c[key] for c in counts) for key in counts[0]})

    return max(SCORE_THRESHOLDS, key=accuracy)


def fit_baseline(videos, class_names):
    """The background-subtraction detector fitted on the first `BASELINE_VIDEOS` of `videos`, at
    their own size.
    """
    chosen = videos[:BASELINE_VIDEOS]
    clips = [_first_frames(video) for video in chosen]
    truths = [
        [(boxes, classes) for boxes, classes, _ in video.truth(class_names)[:FRAMES_PER_VIDEO]]
        for video in chosen
    ]
    return BackgroundSubtractionDetector.fit(clips, truths, len(class_names))


# --- using a finished run ---


def score_threshold(run):
    """The detection score above which a detect run's boxes are tracked and drawn, chosen on its
    validation videos (`RUN_DIR/tracking.json`).
    """
    return float(atomic.read_json(os.path.join(run.run_dir, TRACKING_FILE))["score_threshold"])


def detect_video(run, frames, *, threshold=None):
    """Detects and tracks objects in one video's RGB frames `(T, H, W, 3)` of any size.

    The frames are resized to the run's size for the model and the boxes
    scaled back. Returns one dict per frame: `boxes` `(K, 4)` in the
    frames' pixels, `scores`, `classes` (indices into `run.class_names`),
    best first, every candidate; and `tracked`, the indices of those at
    least `threshold` confident (the run's `score_threshold` by default)
    and not overlapping a better one by more than half, with `track_ids`,
    their identities (`track_clip`).
    """
    run.require("detect", "detect_video")
    frames = np.asarray(frames)
    height, width = frames.shape[1:3]
    resized = np.stack([resize_frame(frame, run.image_size) for frame in frames])
    scale = np.array([width / run.image_size[1], height / run.image_size[0]] * 2, np.float32)
    detections = [
        (boxes * scale, scores, classes)
        for boxes, scores, classes in detect_clip(run.model, resized, len(run.class_names))
    ]
    tracks = track_clip(detections, score_threshold(run) if threshold is None else threshold)
    return [
        {"boxes": boxes, "scores": scores, "classes": classes, "tracked": kept, "track_ids": ids}
        for (boxes, scores, classes), (kept, ids) in zip(detections, tracks)
    ]


def evaluate_detection(run, data_dir, *, strict=False):
    """mAP@0.5, mean IoU, ID switches and MOTA of a detect run on every annotated video under
    `data_dir`, next to the background-subtraction baseline's.

    Each whole video is scored at its own size against its box file
    (`vlm_tf.data.detection`). `map50` is PASCAL VOC's all-point AP at IoU
    0.5 averaged over classes; `map50_agnostic` the same with classes
    ignored (how well boxes are found at all: the fair comparison for a
    background model, which only guesses classes from shapes);
    `mean_iou` the IoU of the true positives; `id_switches` and `mota`
    CLEAR MOT's identity switches and tracking accuracy of the tracks
    (`vlm_tf.tracking`), over all videos, from `misses` and
    `false_positives` out of `object_frames` (objects summed over frames); `score_threshold` the
    run's
    threshold for tracked boxes.
    Videos without a readable box file are skipped and listed.
    """
    run.require("detect", "evaluate_detection")
    videos, skipped = annotated_videos(list_videos(data_dir), strict=strict)
    if not videos:
        first = f"; first: {skipped[0]['path']} ({skipped[0]['reason']})" if skipped else ""
        raise ValueError(f"{data_dir}: no video with a readable box file{first}")
    detector = BackgroundSubtractionDetector.from_dict(
        atomic.read_json(os.path.join(run.run_dir, BASELINE_FILE))
    )
    threshold = score_threshold(run)
    detections = {"model": [], "baseline": []}
    counts = {"model": [], "baseline": []}
    truths = []
    for video in videos:
        frames = read_frames(video.path)
        truth = video.truth(run.class_names)
        truths.append(truth)
        results = detect_video(run, frames, threshold=threshold)
        detections["model"].append([(r["boxes"], r["scores"], r["classes"]) for r in results])
        counts["model"].append(
            clear_mot(
                [(r["boxes"][r["tracked"]], r["track_ids"]) for r in results],
                [(boxes, ids) for boxes, _, ids in truth],
            )
        )
        detections["baseline"].append(detector.detect(frames))
        # The background model's boxes are all tracked: it has no score to threshold.
        counts["baseline"].append(tracking_counts(detections["baseline"][-1], truth, 0.0))
    results = {}
    for name, found in detections.items():
        totals = {key: sum(c[key] for c in counts[name]) for key in counts[name][0]}
        aware = score_detections(found, truths, len(run.class_names))
        agnostic = mean_average_precision(
            [(b, s, np.zeros(len(b), int)) for video in found for b, s, _ in video],
            [(b, np.zeros(len(b), int)) for video in truths for b, _, _ in video],
            1,
        )
        results[name] = {
            "map50": aware["map"],
            "map50_agnostic": agnostic["map"],
            "mean_iou": aware["mean_iou"],
            "id_switches": totals["id_switches"],
            "mota": mota(totals),
            "misses": totals["misses"],
            "false_positives": totals["false_positives"],
            "object_frames": totals["objects"],
            "ap50_per_class": dict(zip(run.class_names, aware["per_class"])),
        }
    return DetectionReport(
        task="detect",
        **results["model"],
        score_threshold=threshold,
        baseline={
            "name": (
                f"background subtraction ({detector.method}, threshold {detector.threshold:g}) + "
                "contour shape"
            ),
            **results["baseline"],
        },
        num_videos=len(videos),
        num_objects=int(sum(len({i for _, _, ids in t for i in ids}) for t in truths)),
        skipped=skipped,
    )


def write_detected_video(run, path, out, *, side_by_side=False, threshold=None, fps=None):
    """Writes the video at `path` with its tracked detections drawn: a box, track ID and class per
    object, a colour per track.

    Boxes scoring at least `threshold` (the run's `score_threshold` by
    default) are tracked and drawn. With `side_by_side`, each frame is
    input | output. Returns `{"frames", "size", "tracks", "detections"}`.
    """
    run.require("detect", "drawing detections")
    info = probe_video(path)
    frames = read_frames(path)
    results = detect_video(run, frames, threshold=threshold)
    palette = np.array(
        [
            [230, 25, 75],
            [60, 180, 75],
            [255, 225, 25],
            [0, 130, 200],
            [245, 130, 48],
            [145, 30, 180],
            [70, 240, 240],
            [240, 50, 230],
        ]
    )
    drawn = []
    for frame, result in zip(frames, results):
        kept = result["tracked"]
        captions = [
            f"{i} {run.class_names[c]}"
            for i, c in zip(result["track_ids"], result["classes"][kept])
        ]
        colours = [palette[i % len(palette)] for i in result["track_ids"]]
        drawn.append(
            draw_boxes(frame, result["boxes"][kept], captions, colour=colours)
            if len(kept)
            else frame
        )
    drawn = np.stack(drawn)
    if side_by_side:
        drawn = np.concatenate([frames, drawn], axis=2)
    write_video(out, drawn, fps=fps or info.fps or DEFAULT_FPS)
    return {
        "frames": len(frames),
        "size": [info.height, info.width],
        "tracks": len({i for r in results for i in r["track_ids"]}),
        "detections": int(sum(len(r["tracked"]) for r in results)),
    }
