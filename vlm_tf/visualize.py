"""Pictures of clips for TensorBoard, notebooks and videos: a clip as one image, attention under
frames, boxes on a frame, heat maps over frames.

Every function takes and returns NumPy arrays of RGB pixels in [0, 255],
so the same picture lands in TensorBoard (`tf.summary.image`), a notebook
(`plt.imshow`) or a video file (`vlm_tf.data.write_video`).
"""

from __future__ import annotations

import cv2
import numpy as np

# Height in pixels of one row of weights under the frames.
_BAR_HEIGHT = 10
# The smallest side explanations' frames are shown at (a 64-pixel clip is enlarged).
EXPLANATION_SIZE = 128


def clip_montage(clip, max_frames=8):
    """One clip `(T, H, W, 3)` in [0, 255] → one image `(H, T'·W, 3)` uint8 of up to `max_frames`
    frames.
    """
    clip = np.asarray(clip)
    step = max(1, int(np.ceil(len(clip) / max_frames)))
    return np.concatenate(list(clip[::step]), axis=1).clip(0, 255).astype(np.uint8)


def attention_map_image(clip, rows):
    """Frames side by side `(H, T·W)` with one bar per row of weights under them, brighter where the
    weight is higher.

    Each row is scaled to its own maximum, so a row shows where its
    attention went, not how much of the total it carries.
    """
    clip = np.asarray(clip)
    num_frames, height, width = clip.shape[:3]
    frames = np.concatenate(list(clip), axis=1).clip(0, 255).astype(np.uint8)
    bars = []
    for row in np.asarray(rows, np.float32):
        level = row / max(float(row.max()), 1e-12)
        # Black (no weight) through red to yellow (the row's largest weight).
        colour = np.stack(
            [np.minimum(1.0, 2 * level), np.maximum(0.0, 2 * level - 1), np.zeros_like(level)],
            axis=-1,
        )
        bar = np.repeat(np.repeat(colour[None], _BAR_HEIGHT, axis=0), width, axis=1)
        bar[:2] = 0.0
        bars.append((bar * 255).astype(np.uint8))
    return np.concatenate([frames, *bars], axis=0)


def draw_boxes(frame, boxes, captions=None, *, colour=(255, 0, 0)):
    """A copy of RGB `frame` with `boxes` drawn, each with its caption above it; `colour` is one RGB
    triple or one per box.
    """
    frame = np.ascontiguousarray(frame, dtype=np.uint8).copy()
    colours = [colour] * len(boxes) if np.ndim(colour) == 1 else list(colour)
    for k, box in enumerate(np.asarray(boxes).reshape(-1, 4)):
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        cv2.rectangle(frame, (x0, y0), (x1, y1), tuple(int(c) for c in colours[k]), 1)
        if captions is not None:
            cv2.putText(
                frame,
                str(captions[k]),
                (x0, max(8, y0 - 2)),
                cv2.FONT_HERSHEY_PLAIN,
                0.8,
                tuple(int(c) for c in colours[k]),
                1,
                cv2.LINE_AA,
            )
    return frame


def enlarge(frames, size):
    """Frames `(N, h, w, 3)` of any size shown at `size` `(H, W)`, nearest neighbour, so a small
    input's pixels stay visible: uint8.
    """
    frames = np.asarray(frames)
    rows = (np.arange(size[0]) * frames.shape[1] // size[0]).astype(int)
    columns = (np.arange(size[1]) * frames.shape[2] // size[1]).astype(int)
    return np.clip(frames[:, rows][:, :, columns], 0, 255).astype(np.uint8)


def overlay(frames, heat, *, strength=0.55):
    """Frames `(T, H, W, 3)` with `heat` `(T, H, W)` in [0, 1] laid over them in colour: uint8."""
    coloured = np.stack(
        [
            cv2.cvtColor(
                cv2.applyColorMap(np.uint8(255 * np.clip(h, 0, 1)), cv2.COLORMAP_JET),
                cv2.COLOR_BGR2RGB,
            )
            for h in heat
        ]
    ).astype(np.float32)
    alpha = strength * np.clip(heat, 0, 1)[..., None] ** 0.5
    return ((1 - alpha) * frames + alpha * coloured).clip(0, 255).astype(np.uint8)


def explanation_image(clip, heat, importance):
    """A clip `(T, H, W, 3)` shown with its heat maps `(T, H, W)` and each frame's `importance`.

    Returns:
        uint8 `(frames, overlays, picture)`: the frames enlarged to at least
        `EXPLANATION_SIZE` a side, the same with the heat (scaled to its
        largest value) laid over them, and one picture of the frames above
        the overlays above a bar per frame, brighter for more importance.
    """
    clip = np.asarray(clip, np.float32)
    factor = max(1, int(np.ceil(EXPLANATION_SIZE / min(clip.shape[1:3]))))
    size = (clip.shape[1] * factor, clip.shape[2] * factor)
    shown = enlarge(clip, size)
    scaled = heat / max(float(heat.max()), 1e-12)
    laid = overlay(shown, np.stack([cv2.resize(h, size[::-1]) for h in scaled]))
    return (
        shown,
        laid,
        np.concatenate(
            [
                np.concatenate(list(shown), axis=1),
                attention_map_image(laid, [np.maximum(importance, 0)]),
            ]
        ),
    )
