"""The classical methods a user would otherwise reach for.

The chapter-6 restoration models must beat them.

Each takes uint8 RGB frames `(T, h, w, 3)` (the degraded clip) and returns
uint8 RGB frames at the clean size, using OpenCV only:

- denoising: non-local means, frame by frame
  (`cv2.fastNlMeansDenoisingColored`) and over a window of neighbouring
  frames (`cv2.fastNlMeansDenoisingColoredMulti`);
- super-resolution: bicubic upscaling (`cv2.resize`, `INTER_CUBIC`);
- enhancement: CLAHE on the lightness of CIELAB, histogram equalisation
  of the luma of YCrCb, and auto levels (each channel's 1st-99th
  percentiles stretched to the full range, which also undoes a colour
  cast).

Non-local means needs its filter strength `h` matched to the noise:
`choose_settings` picks, for each method, the strength of `NLM_STRENGTHS`
with the least squared error on a few clips (`evaluate_restoration` gives
it the first batch), so the baseline is compared at its own best setting.
"""

from __future__ import annotations

import cv2
import numpy as np

# Filter strengths tried for non-local means (OpenCV's default is 3, for
# faint noise); the degradation's default is σ ≈ 23 at mid-grey.
NLM_STRENGTHS = (5.0, 10.0, 15.0, 20.0)
NLM_TEMPORAL_WINDOW = 5
CLAHE_CLIP_LIMIT = 2.0
CLAHE_TILES = (4, 4)


def _bgr(frame):
    return cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)


def _rgb(frame):
    return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)


def nlm(frames, h=10.0):
    """Non-local means on each frame alone (7×7 patches searched over 21×21)."""
    return np.stack(
        [_rgb(cv2.fastNlMeansDenoisingColored(_bgr(f), None, h, h, 7, 21)) for f in frames]
    )


def nlm_multi(frames, h=10.0, window=NLM_TEMPORAL_WINDOW):
    """Non-local means with patches from `window` neighbouring frames.

    It takes fewer at the clip's ends, where OpenCV's window would run off it.
    """
    frames = [_bgr(f) for f in frames]
    out = []
    for t in range(len(frames)):
        size = min(window, 2 * min(t, len(frames) - 1 - t) + 1)
        if size == 1:
            out.append(cv2.fastNlMeansDenoisingColored(frames[t], None, h, h, 7, 21))
        else:
            out.append(cv2.fastNlMeansDenoisingColoredMulti(frames, t, size, None, h, h, 7, 21))
    return np.stack([_rgb(f) for f in out])


def bicubic(frames, scale):
    """Every frame enlarged `scale` times by bicubic interpolation."""
    height, width = frames.shape[1:3]
    return np.stack(
        [
            cv2.resize(f, (width * scale, height * scale), interpolation=cv2.INTER_CUBIC)
            for f in frames
        ]
    )


def clahe(frames, clip_limit=CLAHE_CLIP_LIMIT, tiles=CLAHE_TILES):
    """Contrast-limited adaptive histogram equalisation of L in CIELAB; colour (a, b) kept."""
    equaliser = cv2.createCLAHE(clipLimit=clip_limit, tileGridSize=tiles)
    out = []
    for frame in frames:
        lab = cv2.cvtColor(frame, cv2.COLOR_RGB2LAB)
        lab[..., 0] = equaliser.apply(np.ascontiguousarray(lab[..., 0]))
        out.append(cv2.cvtColor(lab, cv2.COLOR_LAB2RGB))
    return np.stack(out)


def equalize_histogram(frames):
    """Histogram equalisation of Y in YCrCb; colour (Cr, Cb) kept."""
    out = []
    for frame in frames:
        ycc = cv2.cvtColor(frame, cv2.COLOR_RGB2YCrCb)
        ycc[..., 0] = cv2.equalizeHist(np.ascontiguousarray(ycc[..., 0]))
        out.append(cv2.cvtColor(ycc, cv2.COLOR_YCrCb2RGB))
    return np.stack(out)


def auto_levels(frames, low=1.0, high=99.0):
    """Each channel stretched so that its `low`-th and `high`-th percentiles become 0 and 255.

    The percentiles are taken over the frame.
    """
    out = []
    for frame in frames.astype(np.float32):
        bottom, top = np.percentile(frame.reshape(-1, 3), [low, high], axis=0)
        out.append(np.clip((frame - bottom) * (255.0 / np.maximum(top - bottom, 1.0)), 0, 255))
    return np.round(np.stack(out)).astype(np.uint8)


def candidates(task, *, scale=2):
    """The baselines of a restoration task, with every setting to choose from.

    Returns `{method: {setting: function(frames) → frames}}`.
    """
    if task == "denoise":
        return {
            "nlm": {f"h={h:g}": lambda frames, h=h: nlm(frames, h) for h in NLM_STRENGTHS},
            "nlm_multi": {
                f"h={h:g}": lambda frames, h=h: nlm_multi(frames, h) for h in NLM_STRENGTHS
            },
        }
    if task == "superres":
        return {"bicubic": {f"x{scale}": lambda frames: bicubic(frames, scale)}}
    if task == "enhance":
        return {
            "clahe": {f"clip {CLAHE_CLIP_LIMIT:g}": clahe},
            "equalize_histogram": {"": equalize_histogram},
            "auto_levels": {"1-99%": auto_levels},
        }
    raise ValueError(f"no baselines for task {task!r}")


def choose_settings(methods, degraded_clips, clean_clips):
    """The setting of each method of `candidates` with the least squared error on the given clips.

    Returns `{method: (setting, function)}`.
    """
    chosen = {}
    for method, settings in methods.items():
        if len(settings) == 1:
            chosen[method] = next(iter(settings.items()))
            continue

        def error(function):
            return np.mean(
                [
                    np.mean((function(d).astype(np.float64) - c) ** 2)
                    for d, c in zip(degraded_clips, clean_clips)
                ]
            )

        setting = min(settings, key=lambda name: error(settings[name]))
        chosen[method] = (setting, settings[setting])
    return chosen


# --- detection (§6.2): background subtraction + contours -------------------------

# Settings tried on the training videos: the median background's threshold
# on the largest channel difference (0-255), and MOG2's `varThreshold` (its
# default is 16).
MEDIAN_THRESHOLDS = (15, 25, 40, 60)
MOG2_THRESHOLDS = (16, 32, 64)
MIN_BOX_AREA = 16
_KERNEL = np.ones((3, 3), np.uint8)


def foreground_masks(frames, method="median", threshold=25):
    """Per-frame foreground masks `(T, H, W)` uint8 of a still-camera clip.

    `median`: the per-pixel median of the clip is the background; a pixel
    whose largest channel difference exceeds `threshold` is foreground.
    `mog2`: OpenCV's Gaussian-mixture subtractor (`varThreshold=threshold`),
    run over the clip once to learn the background and again, without
    learning, to label it: a clip of a few dozen frames is too short for it
    to learn while it labels.
    """
    frames = np.asarray(frames)
    if method == "median":
        background = np.median(frames, axis=0)
        masks = (np.abs(frames.astype(np.float32) - background).max(axis=-1) > threshold).astype(
            np.uint8
        )
    elif method == "mog2":
        subtractor = cv2.createBackgroundSubtractorMOG2(
            history=len(frames), varThreshold=threshold, detectShadows=False
        )
        for frame in frames:
            subtractor.apply(_bgr(frame))
        masks = np.stack(
            [
                (subtractor.apply(_bgr(frame), learningRate=0) > 0).astype(np.uint8)
                for frame in frames
            ]
        )
    else:
        raise ValueError(f"background method must be 'median' or 'mog2', received {method!r}")
    return np.stack(
        [
            cv2.morphologyEx(
                cv2.morphologyEx(mask, cv2.MORPH_OPEN, _KERNEL), cv2.MORPH_CLOSE, _KERNEL
            )
            for mask in masks
        ]
    )


SHAPE_FEATURES = 4


def shape_features(contour):
    """A contour's first four Hu moments on a log scale (what `cv2.matchShapes` compares).

    They are invariant to position, size and rotation.

    The last three, of high order, are mostly pixel noise on objects a
    dozen pixels wide: with all seven the nearest class mean named the shape
    of 23 % of the matched regions of generated clips, with four 54 %.
    """
    hu = cv2.HuMoments(cv2.moments(contour)).ravel()[:SHAPE_FEATURES]
    return -np.sign(hu) * np.log10(np.abs(hu) + 1e-30)


def moving_regions(frames, method="median", threshold=25, min_area=MIN_BOX_AREA):
    """Per frame, the outer contours of the foreground: a list of `(box, features, score)`.

    `box` is `[x0, y0, x1, y1]`.

    The score, for ranking boxes in average precision, is the share of the
    box that is foreground.
    """
    regions = []
    for mask in foreground_masks(frames, method, threshold):
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        found = []
        for contour in contours:
            x, y, w, h = cv2.boundingRect(contour)
            if w * h >= min_area:
                found.append(
                    (
                        [x, y, x + w, y + h],
                        shape_features(contour),
                        float(mask[y : y + h, x : x + w].mean()),
                    )
                )
        regions.append(found)
    return regions


class BackgroundSubtractionDetector:
    """The classical detector: moving regions found by background subtraction.

    Each region is given the class whose shape it is closest to.

    Classes come from the nearest class mean of `shape_features`, learnt by
    `fit` from the regions that overlap a ground-truth box of the training
    videos (IoU >= 0.5); the background method and threshold are the ones
    with the best mAP@0.5 on those same videos.
    """

    def __init__(self, method="median", threshold=25, centres=None):
        self.method, self.threshold = method, threshold
        self.centres = None if centres is None else np.asarray(centres, np.float64)

    def detect(self, frames):
        """`[(boxes (N, 4), scores (N,), classes (N,))]`, one per frame."""
        return self.label(moving_regions(frames, self.method, self.threshold))

    def label(self, regions):
        """One clip's `moving_regions` → its detections.

        Each region is given the class of the nearest shape mean.
        """
        detections = []
        for found in regions:
            boxes = np.array([box for box, _, _ in found], np.float32).reshape(-1, 4)
            scores = np.array([score for _, _, score in found], np.float32)
            features = np.array([f for _, f, _ in found]).reshape(-1, SHAPE_FEATURES)
            classes = (
                np.argmin(((features[:, None, :] - self.centres[None]) ** 2).sum(-1), axis=1)
                if len(found)
                else np.zeros(0, int)
            )
            detections.append((boxes, scores, classes))
        return detections

    @classmethod
    def fit(cls, clips, truths, num_classes):
        """Chooses the setting and learns the class shapes from training `clips` and `truths`.

        `clips` are uint8 `(T, H, W, 3)` each; `truths` are, per clip, per frame
        `(boxes, classes)`.
        """
        from vlm_tf.metrics.detection import box_iou, mean_average_precision

        best = None
        for method, thresholds in (("median", MEDIAN_THRESHOLDS), ("mog2", MOG2_THRESHOLDS)):
            for threshold in thresholds:
                regions = [moving_regions(clip, method, threshold) for clip in clips]
                sums, counts = np.zeros((num_classes, SHAPE_FEATURES)), np.zeros(num_classes)
                for clip_regions, clip_truth in zip(regions, truths):
                    for found, (true_boxes, true_classes) in zip(clip_regions, clip_truth):
                        if not found or not len(true_boxes):
                            continue
                        iou = box_iou([box for box, _, _ in found], true_boxes)
                        for k, (_, features, _) in enumerate(found):
                            if iou[k].max() >= 0.5:
                                c = int(true_classes[int(iou[k].argmax())])
                                sums[c] += features
                                counts[c] += 1
                # A class never seen gets a centre no region is near.
                centres = np.where(counts[:, None] > 0, sums / np.maximum(counts[:, None], 1), 1e6)
                detector = cls(method, threshold, centres)
                score = mean_average_precision(
                    [d for clip_regions in regions for d in detector.label(clip_regions)],
                    [t for clip in truths for t in clip],
                    num_classes,
                )["map"]
                if best is None or score > best[0]:
                    best = (score, detector)
        return best[1]

    def to_dict(self):
        return {
            "method": self.method,
            "threshold": self.threshold,
            "centres": self.centres.tolist(),
        }

    @classmethod
    def from_dict(cls, values):
        return cls(values["method"], values["threshold"], values["centres"])
