"""Faces and people hidden in videos (§8.2 ①): `vlm-tf anonymize IN OUT`.

OpenCV 5's wheels ship neither Haar cascades nor a face detector, so the
detectors here are MediaPipe's BlazeFace and BlazePose detection models,
the `.tflite` files inside the mediapipe wheel (0.10.21, the last to ship
them), run by TensorFlow Lite. vlm_tf never imports mediapipe: it reads
the two files from the installed wheel (`pip install --no-deps
mediapipe==0.10.21`; its own dependencies pin numpy < 2 and protobuf < 5,
which TensorFlow here does not take). docs/design.md, "Anonymisation",
says why these and not another detector.

Both are SSD detectors: a fixed grid of anchors, one score and one box
offset per anchor. A face is hidden where the face model finds one; a
person, where the pose model finds one, over the square its two body
keypoints span (MediaPipe's own rule: centre on the hips, half side 1.25
times the distance to the keypoint above the head). Every box is widened
by a margin, and a frame also hides the boxes of the frames just before
and after it, so a face the detector misses for a frame or two stays
hidden.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import os
import warnings

import cv2
import numpy as np

from vlm_tf import atomic
from vlm_tf.data.decode import WRITER_CODECS, probe_video, read_frames, write_video
from vlm_tf.data.splits import list_videos

METHODS = ("blur", "pixelate", "box")
MEDIAPIPE_VERSION = "0.10.21"
# Frames before and after a detection that also hide its box.
CARRY_FRAMES = 2
# Each side of a box widened by this share of its size (BlazeFace's boxes end at brow and chin).
MARGIN = 0.25


@dataclasses.dataclass(frozen=True)
class SsdModel:
    """A MediaPipe SSD detector: its file in the wheel and how its anchors lie.

    `layers` is `(stride, anchors per cell)` for each feature map, the
    layers of equal stride merged as MediaPipe's `SsdAnchorsCalculator`
    merges them; anchors have a fixed size, so only their centres matter.
    """

    path: str
    size: int
    layers: tuple
    keypoints: int
    threshold: float

    def anchors(self):
        centres = []
        for stride, count in self.layers:
            cells = self.size // stride
            grid = (np.stack(np.meshgrid(np.arange(cells), np.arange(cells)), -1) + 0.5) / cells
            centres.append(np.repeat(grid.reshape(-1, 2), count, axis=0))
        return np.concatenate(centres).astype(np.float32)


FACE_MODEL = SsdModel(
    "mediapipe/modules/face_detection/face_detection_short_range.tflite",
    size=128,
    layers=((8, 2), (16, 6)),
    keypoints=6,
    threshold=0.5,
)
PERSON_MODEL = SsdModel(
    "mediapipe/modules/pose_detection/pose_detection.tflite",
    size=224,
    layers=((8, 2), (16, 2), (32, 6)),
    keypoints=4,
    threshold=0.5,
)


def model_file(model):
    """The path of `model`'s `.tflite` inside the installed mediapipe wheel."""
    try:
        distribution = importlib.metadata.distribution("mediapipe")
    except importlib.metadata.PackageNotFoundError:
        distribution = None
    path = None if distribution is None else os.fspath(distribution.locate_file(model.path))
    if path is None or not os.path.isfile(path):
        raise FileNotFoundError(
            f"{model.path}: not found; anonymize reads MediaPipe's detector from its wheel: "
            f"pip install --no-deps mediapipe=={MEDIAPIPE_VERSION}"
        )
    return path


def _interpreter(path):
    import tensorflow as tf

    with warnings.catch_warnings():
        # TensorFlow 2.21 warns that tf.lite moves to ai_edge_litert, which is not installed here.
        warnings.simplefilter("ignore")
        interpreter = tf.lite.Interpreter(model_path=path, num_threads=os.cpu_count() or 1)
    interpreter.allocate_tensors()
    return interpreter


def _nms(boxes, scores, threshold=0.3):
    """Indices of `boxes` kept, best first, dropping any that overlaps a kept one by IoU >
    `threshold`.
    """
    order = np.argsort(scores)[::-1]
    kept = []
    for i in order:
        if all(_iou(boxes[i], boxes[k]) <= threshold for k in kept):
            kept.append(i)
    return kept


def _iou(a, b):
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    overlap = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - overlap
    return overlap / union if union > 0 else 0.0


class Detector:
    """One MediaPipe SSD model on RGB frames of any size: `detect(frame)` → boxes in pixels."""

    def __init__(self, model):
        self.model = model
        self.interpreter = _interpreter(model_file(model))
        self.input = self.interpreter.get_input_details()[0]["index"]
        outputs = sorted(self.interpreter.get_output_details(), key=lambda d: d["shape"][-1])
        self.scores_output, self.boxes_output = outputs[0]["index"], outputs[-1]["index"]
        self.centres = self.model.anchors()

    def detect(self, frame):
        """`(boxes (N, 4) [x0, y0, x1, y1] in pixels, scores (N,))` of `frame` (RGB uint8)."""
        height, width = frame.shape[:2]
        side = max(height, width)
        # Letterboxed to a square, as MediaPipe feeds it, so faces keep their shape.
        square = np.zeros((side, side, 3), np.uint8)
        top, left = (side - height) // 2, (side - width) // 2
        square[top : top + height, left : left + width] = frame
        size = self.model.size
        tensor = cv2.resize(square, (size, size), interpolation=cv2.INTER_AREA)
        self.interpreter.set_tensor(self.input, (tensor[None] / 127.5 - 1.0).astype(np.float32))
        self.interpreter.invoke()
        raw = self.interpreter.get_tensor(self.boxes_output)[0]
        logits = self.interpreter.get_tensor(self.scores_output)[0, :, 0]
        scores = 1.0 / (1.0 + np.exp(-np.clip(logits.astype(np.float64), -100, 100)))
        chosen = np.nonzero(scores >= self.model.threshold)[0]
        if not len(chosen):
            return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
        offsets = raw[chosen] / size
        centres = self.centres[chosen]
        if self.model is PERSON_MODEL:
            # Keypoint 0 is the hips' centre, keypoint 1 the point above the head.
            hips = centres + offsets[:, 4:6]
            head = centres + offsets[:, 6:8]
            half = 1.25 * np.linalg.norm(head - hips, axis=1, keepdims=True)
            boxes = np.concatenate([hips - half, hips + half], axis=1)
        else:
            middle = centres + offsets[:, :2]
            half = offsets[:, 2:4] / 2
            boxes = np.concatenate([middle - half, middle + half], axis=1)
        boxes = boxes * side - np.array([left, top, left, top])
        boxes = np.clip(boxes, 0, [width, height, width, height])
        kept = _nms(boxes, scores[chosen])
        return boxes[kept].astype(np.float32), scores[chosen][kept].astype(np.float32)


def widen(box, width, height, margin=MARGIN):
    """`box` grown by `margin` of its size on every side, inside the frame, as whole pixels."""
    x0, y0, x1, y1 = box
    dx, dy = margin * (x1 - x0), margin * (y1 - y0)
    return [
        int(max(0, np.floor(x0 - dx))),
        int(max(0, np.floor(y0 - dy))),
        int(min(width, np.ceil(x1 + dx))),
        int(min(height, np.ceil(y1 + dy))),
    ]


def hide(frame, boxes, method):
    """A copy of `frame` with each of `boxes` (whole pixels) blurred, pixelated or filled."""
    out = frame.copy()
    for x0, y0, x1, y1 in boxes:
        region = out[y0:y1, x0:x1]
        if region.size == 0:
            continue
        if method == "box":
            region[:] = 0
        elif method == "pixelate":
            cells = (max(1, (x1 - x0) // 12), max(1, (y1 - y0) // 12))
            small = cv2.resize(region, cells, interpolation=cv2.INTER_AREA)
            region[:] = cv2.resize(small, (x1 - x0, y1 - y0), interpolation=cv2.INTER_NEAREST)
        else:
            # A kernel as wide as the box: a kernel half as wide left a face-like blob that the
            # face detector still found in most frames of a test video.
            kernel = max(3, max(x1 - x0, y1 - y0) | 1)
            region[:] = cv2.GaussianBlur(region, (kernel, kernel), 0)
    return out


def anonymize_frames(frames, *, faces=True, people=False, method="blur", detectors=None):
    """Frames `(T, H, W, 3)` with faces (and people) hidden, and what was hidden in each frame.

    Returns:
        `(frames, hidden)`: uint8 frames, and per frame a list of
        `{"kind": "face" | "person", "box": [x0, y0, x1, y1], "score", "from_frame"}`,
        `from_frame` being the frame the box was detected in (this one, or
        one up to `CARRY_FRAMES` away).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, received {method!r}")
    if not (faces or people):
        raise ValueError("nothing to hide: ask for faces, people or both")
    detectors = detectors or load_detectors(faces=faces, people=people)
    height, width = frames.shape[1:3]
    found = [[] for _ in frames]
    for t, frame in enumerate(frames):
        for kind, detector in detectors.items():
            for box, score in zip(*detector.detect(frame)):
                found[t].append(
                    {"kind": kind, "box": widen(box, width, height), "score": float(score)}
                )
    hidden, out = [], np.empty_like(frames)
    for t, frame in enumerate(frames):
        near = range(max(0, t - CARRY_FRAMES), min(len(frames), t + CARRY_FRAMES + 1))
        boxes = [{**item, "from_frame": s} for s in near for item in found[s]]
        hidden.append(boxes)
        out[t] = hide(frame, [item["box"] for item in boxes], method)
    return out, hidden


def load_detectors(*, faces=True, people=False):
    """`{"face": Detector, "person": Detector}`, those asked for."""
    wanted = {"face": FACE_MODEL if faces else None, "person": PERSON_MODEL if people else None}
    return {kind: Detector(model) for kind, model in wanted.items() if model is not None}


def anonymize_video(path, out, *, faces=True, people=False, method="blur", detectors=None):
    """Writes `out`, the video at `path` with faces (and people) hidden, at its frame rate, and
    `out` with `.json` in place of its extension: what was hidden in each frame.

    Returns:
        The report written to the JSON file.
    """
    report_path = os.path.splitext(os.fspath(out))[0] + ".json"
    for target in (out, report_path):
        if os.path.lexists(target):
            raise FileExistsError(f"{target} exists; anonymize never overwrites a file")
    info = probe_video(path)
    frames = read_frames(path)
    hidden_frames, hidden = anonymize_frames(
        frames, faces=faces, people=people, method=method, detectors=detectors
    )
    report = {
        "path": os.fspath(path),
        "out": os.fspath(out),
        "method": method,
        "frames": len(frames),
        "frames_with_detections": sum(
            any(item["from_frame"] == t for item in boxes) for t, boxes in enumerate(hidden)
        ),
        "frames_hidden": sum(bool(boxes) for boxes in hidden),
        "hidden": hidden,
    }
    with atomic.replacing(out) as temporary:
        write_video(temporary, hidden_frames, fps=info.fps or 10.0)
    atomic.write_json(report_path, report)
    return report


def anonymize_folder(folder, out_dir, *, faces=True, people=False, method="blur"):
    """`anonymize_video` on every video under `folder`, written to the same place under
    `out_dir` (as `.mp4` where OpenCV cannot write the input's container); the reports, in
    order.
    """
    paths = list_videos(folder)
    targets = []
    for path in paths:
        stem, extension = os.path.splitext(os.path.relpath(path, folder))
        extension = extension if extension.lower() in WRITER_CODECS else ".mp4"
        targets.append(os.path.join(out_dir, stem + extension))
    # Every refusal before the first file is written.
    for target in targets:
        for name in (target, os.path.splitext(target)[0] + ".json"):
            if os.path.lexists(name):
                raise FileExistsError(f"{name} exists; anonymize never overwrites a file")
    detectors = load_detectors(faces=faces, people=people)
    return [
        anonymize_video(
            path, target, faces=faces, people=people, method=method, detectors=detectors
        )
        for path, target in zip(paths, targets)
    ]
