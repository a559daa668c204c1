"""Boxes over time: the detection dataset of chapter 6 (§6.2) and the box file format users bring.

A box file sits beside its video with the same name and `.json` in place of
the video's extension:

    {
      "objects": [
        {"id": 7, "label": "car", "boxes": [[x_min, y_min, x_max, y_max], null, ...]},
        ...
      ]
    }

`boxes` has one entry per frame of the video, in pixels of the video's own
frames, `null` where the object is not in the frame. `id` is the object's
identity across frames (it defaults to the object's place in the list);
tracking is scored against it. The classification dataset's per-video file
(`"shape"` and one `"boxes"` list) is read as one object labelled by its
shape, so `vlm-tf make-data` output works for detection too.

`write_detection_dataset` writes clips with one to three objects of six
shapes that move, bounce and pass in front of one another, sometimes with a
moving disc that is not an object (a distractor) and a flickering light, so
a detector has to know what it is looking for and a background model is
fooled now and then.
"""

from __future__ import annotations

import math
import os

import cv2
import numpy as np

from vlm_tf import atomic
from vlm_tf.data.decode import write_video
from vlm_tf.data.names import check_name
from vlm_tf.data.synthetic import (
    DATASET_FILE,
    OUTLINES,
    _object_colour,
    _read_json,
    _split_sizes,
    finished_dataset,
    outline_points,
    textured_background,
)

DETECTION_CLASSES = tuple(OUTLINES)
MAX_OBJECTS = 3
DEFAULT_DETECTION_VIDEOS = 400


def box_file(video_path):
    """The box file of `video_path`: the same name with `.json`."""
    return os.path.splitext(os.fspath(video_path))[0] + ".json"


def _valid_box(box):
    return (
        isinstance(box, (list, tuple))
        and len(box) == 4
        and all(isinstance(v, (int, float)) for v in box)
        and box[0] < box[2]
        and box[1] < box[3]
    )


def read_boxes(path, *, num_frames=None):
    """Reads a box file into `[{"id", "label", "boxes": [box or None per frame]}]`.

    Raises a one-line `ValueError` naming the file and the entry that is
    wrong; with `num_frames`, every object must give one entry per frame.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"{path}: no box file (expected one JSON per video, see vlm_tf.data.detection)"
        )
    try:
        data = _read_json(path)
    except ValueError as error:
        raise ValueError(f"{path}: not valid JSON ({error})") from None
    if isinstance(data, dict) and "objects" not in data and "boxes" in data and "shape" in data:
        data = {"objects": [{"id": 0, "label": data["shape"], "boxes": data["boxes"]}]}
    if not isinstance(data, dict) or not isinstance(data.get("objects"), list):
        raise ValueError(f'{path}: expected {{"objects": [{{"label": ..., "boxes": [...]}}, ...]}}')
    objects = []
    for k, entry in enumerate(data["objects"]):
        where = f"{path}: objects[{k}]"
        if (
            not isinstance(entry, dict)
            or not isinstance(entry.get("label"), str)
            or not isinstance(entry.get("boxes"), list)
        ):
            raise ValueError(f'{where} must have a "label" string and a "boxes" list')
        # Labels become a detect run's class names, which are folder names to the commands after.
        check_name(entry["label"], source=path, what=f"objects[{k}].label")
        for i, box in enumerate(entry["boxes"]):
            if box is not None and not _valid_box(box):
                raise ValueError(
                    f"{where}.boxes[{i}] must be [x_min, y_min, x_max, y_max] with x_min < x_max "
                    f"and y_min < y_max, or null; received {box!r}"
                )
        if num_frames is not None and len(entry["boxes"]) != num_frames:
            raise ValueError(
                f"{where} has {len(entry['boxes'])} boxes for a video of {num_frames} frames "
                "(one per frame, null where absent)"
            )
        objects.append(
            {
                "id": entry.get("id", k),
                "label": entry["label"],
                "boxes": [None if b is None else [float(v) for v in b] for b in entry["boxes"]],
            }
        )
    return objects


def frame_boxes(objects, frame):
    """The objects present in `frame`: `(boxes (N, 4) float32, labels [str], ids [int])`."""
    present = [o for o in objects if frame < len(o["boxes"]) and o["boxes"][frame] is not None]
    boxes = np.array([o["boxes"][frame] for o in present], np.float32).reshape(-1, 4)
    return boxes, [o["label"] for o in present], [o["id"] for o in present]


def _bounce(position, velocity, low, high, num_frames):
    """Positions of a point moving at `velocity`, reflected at `low` and `high`."""
    track = np.empty((num_frames, 2))
    for i in range(num_frames):
        track[i] = position
        position = position + velocity
        for axis in range(2):
            if not low[axis] <= position[axis] <= high[axis]:
                velocity[axis] = -velocity[axis]
                position[axis] = np.clip(position[axis], low[axis], high[axis])
    return track


def _mover(rng, background, k, *, num_frames, size):
    """Object `k` of a clip: its shape, size, colour and its track and angle in every frame."""
    label = DETECTION_CLASSES[rng.integers(len(DETECTION_CLASSES))]
    radius = rng.uniform(0.09, 0.15) * size
    speed, heading = rng.uniform(0.6, 2.2) * size / 64, rng.uniform(0, 2 * np.pi)
    low, high = np.full(2, radius), np.full(2, size - radius)
    track = _bounce(
        rng.uniform(low, high),
        speed * np.array([math.cos(heading), math.sin(heading)]),
        low,
        high,
        num_frames,
    )
    spin = rng.uniform(-4.0, 4.0)
    return {
        "id": k,
        "label": label,
        "outline": np.array(OUTLINES[label]),
        "aspect": rng.uniform(0.8, 1.25),
        "radius": radius,
        "track": track,
        "angles": rng.uniform(0, 360) + spin * np.arange(num_frames),
        "colour": _object_colour(rng, background),
    }


def _distractor(rng, background, count, *, num_frames, size):
    """A moving disc that is not an object, drawn below object `layer` of `count`.

    At `layer` `count`, it is drawn above all of them.
    """
    radius = rng.uniform(0.05, 0.1) * size
    low, high = np.full(2, radius), np.full(2, size - radius)
    heading = rng.uniform(0, 2 * np.pi)
    track = _bounce(
        rng.uniform(low, high),
        rng.uniform(0.6, 2.0) * size / 64 * np.array([math.cos(heading), math.sin(heading)]),
        low,
        high,
        num_frames,
    )
    return {
        "radius": radius,
        "track": track,
        "colour": _object_colour(rng, background),
        "layer": int(rng.integers(count + 1)),
    }


def _draw_movers(canvas, movers, distractor, i, size):
    """Draws frame `i`'s objects (in list order) and distractor onto `canvas`.

    Returns each object's box.
    """
    boxes = []
    for k, mover in enumerate(movers + [None]):
        if distractor is not None and distractor["layer"] == k:
            centre = np.round(distractor["track"][i] * 16).astype(int)
            cv2.circle(
                canvas,
                tuple(centre.tolist()),
                int(round(distractor["radius"] * 16)),
                distractor["colour"].tolist(),
                -1,
                cv2.LINE_AA,
                shift=4,
            )
        if mover is None:
            break
        points = outline_points(
            mover["outline"],
            mover["aspect"],
            mover["radius"],
            mover["angles"][i],
            mover["track"][i],
        )
        cv2.fillPoly(
            canvas,
            [np.round(points * 16).astype(np.int32)],
            mover["colour"].tolist(),
            cv2.LINE_AA,
            shift=4,
        )
        boxes.append(
            [
                round(float(v), 2)
                for v in (*points.min(axis=0).clip(0, size), *points.max(axis=0).clip(0, size))
            ]
        )
    return boxes


def render_detection_clip(*, num_frames=24, size=64, seed=0):
    """One clip of moving shapes: `(frames (T, size, size, 3) uint8, objects)`.

    The objects are as `read_boxes` returns them.

    Boxes are the whole object, also where a later object covers part of it
    (objects are drawn in list order).
    """
    if num_frames < 2 or size < 32:
        raise ValueError(
            "a detection clip needs num_frames >= 2 and size >= 32, received "
            f"num_frames={num_frames}, size={size}"
        )
    rng = np.random.default_rng(seed)
    background = textured_background(rng, size)
    count = int(rng.integers(1, MAX_OBJECTS + 1))
    movers = [_mover(rng, background, k, num_frames=num_frames, size=size) for k in range(count)]
    distractor = None
    if rng.random() < 0.5:
        distractor = _distractor(rng, background, count, num_frames=num_frames, size=size)
    flicker = rng.uniform(0.0, 0.15) if rng.random() < 0.3 else 0.0
    phase, noise_sigma = rng.uniform(0, 2 * np.pi), rng.uniform(0.0, 6.0)
    frames = np.empty((num_frames, size, size, 3), np.uint8)
    objects = [{"id": m["id"], "label": m["label"], "boxes": []} for m in movers]
    for i in range(num_frames):
        canvas = background.copy()
        for entry, box in zip(objects, _draw_movers(canvas, movers, distractor, i, size)):
            entry["boxes"].append(box)
        canvas *= 1.0 + flicker * math.sin(phase + 0.9 * i)
        canvas += rng.normal(0.0, noise_sigma, canvas.shape)
        frames[i] = canvas.clip(0, 255).astype(np.uint8)
    return frames, objects


def write_detection_dataset(
    out_dir,
    *,
    videos=DEFAULT_DETECTION_VIDEOS,
    num_frames=24,
    size=64,
    seed=0,
    fps=10.0,
    extension=".mp4",
    progress=None,
):
    """Writes `out_dir/{train,val,test}/clip_NNNN<extension>` with a box file beside each.

    The clips are split 70/15/15.

    Seeded per clip by (seed, split, index), so the same arguments give the
    same dataset anywhere. As `write_dataset`: an existing complete dataset
    with these arguments is left as it is, any other non-empty folder is
    refused, and an interrupted write starts again.
    """
    if videos < 3:
        raise ValueError(
            f"videos must be at least 3 (one each for train, val and test), received {videos}"
        )
    params = {
        "generator": "vlm_tf.data.detection",
        "videos": int(videos),
        "num_frames": int(num_frames),
        "size": int(size),
        "seed": int(seed),
        "fps": float(fps),
        "extension": extension,
    }
    splits = _split_sizes(videos)
    manifest = {
        **params,
        "task": "detect",
        "classes": list(DETECTION_CLASSES),
        "max_objects": MAX_OBJECTS,
        "splits": splits,
    }
    out_dir = os.fspath(out_dir)
    manifest_path = os.path.join(out_dir, DATASET_FILE)
    existing = finished_dataset(out_dir, params)
    if existing is not None:
        return existing
    render_detection_clip(num_frames=num_frames, size=size, seed=seed)
    os.makedirs(out_dir, exist_ok=True)
    atomic.write_json(manifest_path, {**manifest, "complete": False})
    done = 0
    for split_index, (split, count) in enumerate(splits.items()):
        os.makedirs(os.path.join(out_dir, split), exist_ok=True)
        for i in range(count):
            frames, objects = render_detection_clip(
                num_frames=num_frames, size=size, seed=(seed, split_index, i)
            )
            path = os.path.join(out_dir, split, f"clip_{i:04d}{extension}")
            write_video(path, frames, fps)
            atomic.write_json(
                box_file(path),
                {
                    "width": size,
                    "height": size,
                    "num_frames": num_frames,
                    "fps": fps,
                    "objects": objects,
                },
            )
            done += 1
            if progress is not None:
                progress(done, videos)
    manifest["complete"] = True
    atomic.write_json(manifest_path, manifest)
    return manifest
