"""The classical methods a user would otherwise reach for, which the chapter-6 restoration models must beat.

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
    return np.stack([_rgb(cv2.fastNlMeansDenoisingColored(_bgr(f), None, h, h, 7, 21)) for f in frames])


def nlm_multi(frames, h=10.0, window=NLM_TEMPORAL_WINDOW):
    """Non-local means with patches from `window` neighbouring frames (fewer at the clip's ends, where OpenCV's window would run off it)."""
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
    return np.stack([cv2.resize(f, (width * scale, height * scale), interpolation=cv2.INTER_CUBIC) for f in frames])


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
    """Each channel stretched so that its `low`-th and `high`-th percentiles over the frame become 0 and 255."""
    out = []
    for frame in frames.astype(np.float32):
        bottom, top = np.percentile(frame.reshape(-1, 3), [low, high], axis=0)
        out.append(np.clip((frame - bottom) * (255.0 / np.maximum(top - bottom, 1.0)), 0, 255))
    return np.round(np.stack(out)).astype(np.uint8)


def candidates(task, *, scale=2):
    """`{method: {setting: function(frames) → frames}}`: the baselines of a restoration task, with every setting to choose from."""
    if task == "denoise":
        return {
            "nlm": {f"h={h:g}": lambda frames, h=h: nlm(frames, h) for h in NLM_STRENGTHS},
            "nlm_multi": {f"h={h:g}": lambda frames, h=h: nlm_multi(frames, h) for h in NLM_STRENGTHS},
        }
    if task == "superres":
        return {"bicubic": {f"x{scale}": lambda frames: bicubic(frames, scale)}}
    if task == "enhance":
        return {"clahe": {f"clip {CLAHE_CLIP_LIMIT:g}": clahe}, "equalize_histogram": {"": equalize_histogram}, "auto_levels": {"1-99%": auto_levels}}
    raise ValueError(f"no baselines for task {task!r}")


def choose_settings(methods, degraded_clips, clean_clips):
    """`{method: (setting, function)}`: for each method of `candidates`, the setting with the least squared error on the given clips."""
    chosen = {}
    for method, settings in methods.items():
        if len(settings) == 1:
            chosen[method] = next(iter(settings.items()))
            continue

        def error(function):
            return np.mean([np.mean((function(d).astype(np.float64) - c) ** 2) for d, c in zip(degraded_clips, clean_clips)])

        setting = min(settings, key=lambda name: error(settings[name]))
        chosen[method] = (setting, settings[setting])
    return chosen
