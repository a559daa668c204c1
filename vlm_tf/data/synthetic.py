"""The embedded dataset: synthetic motion clips written as real encoded video files.

Eight classes that only motion tells apart. Start positions, sizes and
angles are drawn from distributions that are the same for both members of a
pair (left/right, up/down, grow/shrink, clockwise/anticlockwise), so a single
frame carries no label information and the time-average of a clip is the
same blur for both directions: a model has to use frame order.

Each video gets a JSON file beside it with the object's box in every frame
(for the detection task of chapter 6), and the dataset root gets
`dataset.json`: the class list and the label maps that keep augmentation
honest (a horizontal flip turns `move_left` into `move_right`).
"""

from __future__ import annotations

import json
import math
import os

import cv2
import numpy as np

from vlm_tf import atomic
from vlm_tf.data.decode import write_video
from vlm_tf.data.lists import VideoList

CLASS_NAMES = (
    "move_left",
    "move_right",
    "move_up",
    "move_down",
    "grow",
    "shrink",
    "rotate_cw",
    "rotate_ccw",
)

# What each transform does to a label. A class missing from a map is left
# alone by that transform's augmentation (it is never applied to it).
LABEL_MAPS = {
    "horizontal_flip": {
        "move_left": "move_right",
        "move_right": "move_left",
        "move_up": "move_up",
        "move_down": "move_down",
        "grow": "grow",
        "shrink": "shrink",
        "rotate_cw": "rotate_ccw",
        "rotate_ccw": "rotate_cw",
    },
    "time_reversal": {
        "move_left": "move_right",
        "move_right": "move_left",
        "move_up": "move_down",
        "move_down": "move_up",
        "grow": "shrink",
        "shrink": "grow",
        "rotate_cw": "rotate_ccw",
        "rotate_ccw": "rotate_cw",
    },
}

# make-data's and the quickstart's defaults.
DEFAULT_VIDEOS_PER_CLASS = 120
DEFAULT_NUM_FRAMES = 24
DEFAULT_SIZE = 64
DATASET_FILE = "dataset.json"

# Unit outlines, centred on the origin. None looks the same after a turn of
# less than 72 degrees; the largest turn between two sampled frames (14
# degrees a frame, 16 of 24 frames sampled: 21) stays under half of that, so
# the direction of rotation is never ambiguous.
OUTLINES = {
    "triangle": [(0.0, -1.0), (0.87, 0.5), (-0.87, 0.5)],
    "square": [(-0.75, -0.75), (0.75, -0.75), (0.75, 0.75), (-0.75, 0.75)],
    "bar": [(-1.0, -0.45), (1.0, -0.45), (1.0, 0.45), (-1.0, 0.45)],
    "arrow": [
        (-1.0, -0.3),
        (0.2, -0.3),
        (0.2, -0.7),
        (1.0, 0.0),
        (0.2, 0.7),
        (0.2, 0.3),
        (-1.0, 0.3),
    ],
    "ell": [(-0.8, -1.0), (-0.2, -1.0), (-0.2, 0.4), (0.8, 0.4), (0.8, 1.0), (-0.8, 1.0)],
    "star": [
        (
            math.cos(math.radians(-90 + 36 * k)) * (1.0 if k % 2 == 0 else 0.45),
            math.sin(math.radians(-90 + 36 * k)) * (1.0 if k % 2 == 0 else 0.45),
        )
        for k in range(10)
    ],
}


BACKGROUND_KINDS = ("gradient", "stripes", "checks", "blobs")


def textured_background(rng, size, kind=None):
    """A textured RGB float background: gradients, stripes, checks or blurred blobs (`kind`, an
    index into `BACKGROUND_KINDS`, drawn when None).
    """
    kind = rng.integers(4) if kind is None else kind
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) / size
    colour_a, colour_b = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    if kind == 0:
        angle = rng.uniform(0, 2 * np.pi)
        t = (np.cos(angle) * xs + np.sin(angle) * ys + 1.0) / 2.0
    elif kind == 1:
        angle, frequency = rng.uniform(0, np.pi), rng.uniform(2, 8)
        t = 0.5 + 0.5 * np.sin(2 * np.pi * frequency * (np.cos(angle) * xs + np.sin(angle) * ys))
    elif kind == 2:
        cells = rng.integers(3, 10)
        t = ((np.floor(xs * cells) + np.floor(ys * cells)) % 2).astype(np.float32)
    else:
        coarse = rng.uniform(0, 1, (rng.integers(3, 7),) * 2).astype(np.float32)
        t = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC).clip(0, 1)
    # Keep the background's own contrast moderate so the object stays the
    # most salient thing in the frame.
    contrast = rng.uniform(0.2, 0.6)
    t = 0.5 + contrast * (t - 0.5)
    return colour_a * (1 - t[..., None]) + colour_b * t[..., None]


def _object_colour(rng, background):
    mean = background.reshape(-1, 3).mean(axis=0)
    for _ in range(100):
        colour = rng.uniform(0, 255, 3)
        if np.linalg.norm(colour - mean) > 120:
            return colour
    return 255.0 - mean


# A rotating object turns about a pivot this far from its own centre (in
# radii): it spins and swings round like a clock hand. Spinning in place,
# the direction shows only in the orientation of small edges, which a
# CNN-LSTM at 64 px barely resolves (cw and ccw were confused half the time,
# docs/design.md); the swing puts the same direction into positions too.
PIVOT_OFFSET = (0.9, 1.3)


def _trajectory(rng, label, size, num_frames):
    """Per-frame pivot (x, y), radius and angle (degrees, clockwise on screen)."""
    t = np.arange(num_frames, dtype=np.float64)
    last = max(num_frames - 1, 1)
    angle0 = rng.uniform(0, 360)
    if label.startswith("move_"):
        radius = rng.uniform(0.09, 0.16) * size
        low, high = radius, size - radius
        travel = min(rng.uniform(0.8, 2.0) * size / 64 * last, 0.9 * (high - low))
        start = rng.uniform(low, high - travel)
        along = start + travel * t / last
        across = (
            np.full(num_frames, rng.uniform(low, high)) + rng.normal(0, 0.15, num_frames).cumsum()
        )
        if label in ("move_left", "move_up"):
            along = along[::-1]
        x, y = (along, across) if label in ("move_left", "move_right") else (across, along)
        return x, y, np.full(num_frames, radius), np.full(num_frames, angle0)
    if label in ("grow", "shrink"):
        small, large = rng.uniform(0.06, 0.11) * size, rng.uniform(0.22, 0.3) * size
        radius = small * (large / small) ** (t / last)
        if label == "shrink":
            radius = radius[::-1]
        centre = rng.uniform(large, size - large, 2)
        drift = rng.normal(0, 0.15, (2,))
        return (
            centre[0] + drift[0] * t,
            centre[1] + drift[1] * t,
            radius,
            np.full(num_frames, angle0),
        )
    if label in ("rotate_cw", "rotate_ccw"):
        radius = rng.uniform(0.1, 0.16) * size
        reach = radius * (1.0 + PIVOT_OFFSET[1])
        step = rng.uniform(8.0, 14.0) * (1 if label == "rotate_cw" else -1)
        pivot = rng.uniform(reach, size - reach, 2)
        return (
            np.full(num_frames, pivot[0]),
            np.full(num_frames, pivot[1]),
            np.full(num_frames, radius),
            angle0 + step * t,
        )
    raise ValueError(f"unknown synthetic class {label!r}; expected one of {CLASS_NAMES}")


def render_clip(label, *, num_frames=24, size=64, seed=0):
    """Renders one clip of class `label`.

    Returns:
        `(frames, boxes, shape)`: RGB uint8 `(T, size, size, 3)`, float
        `(T, 4)` boxes `[x_min, y_min, x_max, y_max]` in pixels, and the
        name of the object's outline.
    """
    if label not in CLASS_NAMES:
        raise ValueError(f"unknown synthetic class {label!r}; expected one of {CLASS_NAMES}")
    if num_frames < 2 or size < 16:
        raise ValueError(
            f"a clip needs num_frames >= 2 and size >= 16, received num_frames={num_frames}, "
            f"size={size}"
        )
    rng = np.random.default_rng(seed)
    background = textured_background(rng, size)
    colour = _object_colour(rng, background)
    shape = list(OUTLINES)[rng.integers(len(OUTLINES))]
    outline = np.array(OUTLINES[shape])
    aspect = rng.uniform(0.8, 1.25)
    xs, ys, radii, angles = _trajectory(rng, label, size, num_frames)
    offset = rng.uniform(*PIVOT_OFFSET) if label.startswith("rotate_") else 0.0
    noise_sigma = rng.uniform(0.0, 8.0)
    frames = np.empty((num_frames, size, size, 3), np.uint8)
    boxes = np.empty((num_frames, 4))
    for i in range(num_frames):
        points = outline_points(outline, aspect, radii[i], angles[i], [xs[i], ys[i]], offset)
        canvas = background.copy()
        # 4 fractional bits: sub-pixel motion stays smooth at slow speeds.
        cv2.fillPoly(
            canvas, [np.round(points * 16).astype(np.int32)], colour.tolist(), cv2.LINE_AA, shift=4
        )
        canvas += rng.normal(0.0, noise_sigma, canvas.shape)
        frames[i] = canvas.clip(0, 255).astype(np.uint8)
        boxes[i] = [*points.min(axis=0).clip(0, size), *points.max(axis=0).clip(0, size)]
    return frames, boxes, shape


def finished_dataset(out_dir, params):
    """The manifest of the complete dataset with `params` in `out_dir`, or None.

    None when `out_dir` is empty, missing or holds an unfinished one.

    Raises ValueError for a non-empty folder holding anything else, so no
    one's files are overwritten.
    """
    if not (os.path.isdir(out_dir) and os.listdir(out_dir)):
        return None
    manifest_path = os.path.join(out_dir, DATASET_FILE)
    existing = _read_json(manifest_path) if os.path.isfile(manifest_path) else None
    if existing is None or {k: existing.get(k) for k in params} != params:
        raise ValueError(
            f"{out_dir} is not empty and does not hold this dataset; choose a new folder"
        )
    return existing if existing.get("complete") else None


def find_manifest(directory):
    """The `dataset.json` that describes `directory`: in it, or in its parent (a split folder).

    None when neither has one.
    """
    for folder in (os.fspath(directory), os.path.dirname(os.path.abspath(directory))):
        path = os.path.join(folder, DATASET_FILE)
        if os.path.isfile(path):
            return path
    return None


def read_label_maps(directory):
    """The label maps of `dataset.json` in `directory` or its parent (a split folder), or `{}`
    (a list file's videos, `VideoList`, have none).
    """
    if isinstance(directory, VideoList):
        return {}
    path = find_manifest(directory)
    if path is None:
        return {}
    with open(path, encoding="utf-8") as f:
        try:
            return dict(json.load(f).get("label_maps", {}))
        except (ValueError, AttributeError) as error:
            raise ValueError(f"{path}: not a valid dataset manifest ({error})") from None


def unfinished_manifest(directory):
    """`(path, manifest)` of `directory`'s manifest (`find_manifest`) if its writing stopped early.

    None when there is none, or it does not say `"complete": false`.
    """
    path = find_manifest(directory)
    if path is None:
        return None
    try:
        manifest = _read_json(path)
    except ValueError as error:
        raise ValueError(f"{path}: not a valid dataset manifest ({error})") from None
    if isinstance(manifest, dict) and manifest.get("complete") is False:
        return path, manifest
    return None


def outline_points(outline, aspect, radius, angle, centre, offset=0.0):
    """A unit outline stretched by `aspect` and shifted `offset` radii up from its pivot.

    It is then turned `angle` degrees clockwise on screen, scaled and placed
    at `centre`.
    """
    theta = math.radians(angle)
    rotation = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    return (outline * [aspect, 1.0] + [0.0, -offset]) @ rotation.T * radius + centre


def _split_sizes(videos_per_class):
    held_out = max(1, round(0.15 * videos_per_class))
    return {"train": videos_per_class - 2 * held_out, "val": held_out, "test": held_out}


def write_dataset(
    out_dir,
    *,
    videos_per_class=DEFAULT_VIDEOS_PER_CLASS,
    num_frames=DEFAULT_NUM_FRAMES,
    size=DEFAULT_SIZE,
    seed=0,
    fps=10.0,
    extension=".mp4",
    progress=None,
):
    """Writes the synthetic dataset to `out_dir/{train,val,test}/<class>/<class>_NNNN<extension>`.

    `videos_per_class` clips per class are split 70/15/15 into train, val and
    test. Every clip is seeded by (seed, split, class, index), so a dataset is
    the same on every machine for the same arguments. Writing into a folder
    that already holds this exact dataset does nothing; any other non-empty
    folder is refused so nobody's files are overwritten. An interrupted
    write (its manifest says incomplete) is written again from the start.

    Args:
        progress: optional callable `progress(done, total)`.

    Returns:
        The parameters written to `out_dir/dataset.json`.
    """
    if videos_per_class < 3:
        raise ValueError(
            "videos_per_class must be at least 3 (one each for train, val and test), received "
            f"{videos_per_class}"
        )
    params = {
        "generator": "vlm_tf.data.synthetic",
        "videos_per_class": int(videos_per_class),
        "num_frames": int(num_frames),
        "size": int(size),
        "seed": int(seed),
        "fps": float(fps),
        "extension": extension,
    }
    manifest = {
        **params,
        "classes": list(CLASS_NAMES),
        "label_maps": LABEL_MAPS,
        "splits": _split_sizes(videos_per_class),
    }
    out_dir = os.fspath(out_dir)
    manifest_path = os.path.join(out_dir, DATASET_FILE)
    existing = finished_dataset(out_dir, params)
    if existing is not None:
        return existing
    # Validate the clip arguments before creating anything on disk.
    render_clip(CLASS_NAMES[0], num_frames=num_frames, size=size, seed=seed)
    os.makedirs(out_dir, exist_ok=True)
    atomic.write_json(manifest_path, {**manifest, "complete": False})
    total = len(CLASS_NAMES) * videos_per_class
    done = 0
    for split_index, (split, count) in enumerate(manifest["splits"].items()):
        for class_index, label in enumerate(CLASS_NAMES):
            class_dir = os.path.join(out_dir, split, label)
            os.makedirs(class_dir, exist_ok=True)
            for i in range(count):
                frames, boxes, shape = render_clip(
                    label,
                    num_frames=num_frames,
                    size=size,
                    seed=(seed, split_index, class_index, i),
                )
                stem = os.path.join(class_dir, f"{label}_{i:04d}")
                write_video(stem + extension, frames, fps)
                atomic.write_json(
                    stem + ".json",
                    box_record(label, boxes, fps=fps, size=size, shape=shape),
                )
                done += 1
                if progress is not None:
                    progress(done, total)
    manifest["complete"] = True
    atomic.write_json(manifest_path, manifest)
    return manifest


def box_record(label, boxes, *, fps, size, **extra):
    """The JSON beside a generated video: its label, what else the generator says of it
    (`extra`), its frame rate, frame count and size, and the object's box in every frame.
    """
    return {
        "label": label,
        **extra,
        "fps": fps,
        "num_frames": len(boxes),
        "width": size,
        "height": size,
        "boxes": np.round(boxes, 2).tolist(),
    }


def _read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)
