"""Boxes over time (§6.2): a tracker that gives boxes identities, and one box per object before it.

Boxes are `[x_min, y_min, x_max, y_max]` in pixels, as float arrays `(N, 4)`.
`IoUTracker` links each frame's detections to the tracks of the frames
before by IoU with where each track is expected to be (its last box moved
by its last velocity), so objects that cross keep their identities more
often than with the last box alone; a track unseen for `max_age` frames
ends. `suppress_overlaps` first leaves one box per object. How well it
tracks is scored by `vlm_tf.metrics.detection` (CLEAR MOT).
"""

from __future__ import annotations

import numpy as np

from vlm_tf.metrics.detection import box_iou, clear_mot, greedy_match


def suppress_overlaps(boxes, scores, iou_threshold=0.5):
    """Indices of the boxes left by class-blind NMS.

    Best score first, every box overlapping a kept one by more than
    `iou_threshold` is dropped.

    A detector with a heat map per class can put two peaks of different
    classes on one object; for tracking, one box per object is wanted.
    """
    order = np.argsort(-np.asarray(scores, np.float64), kind="stable")
    iou = box_iou(boxes, boxes)
    kept = []
    for k in order:
        if all(iou[k, j] <= iou_threshold for j in kept):
            kept.append(int(k))
    return np.array(kept, int)


class IoUTracker:
    """Gives the detections of consecutive frames track identities (1, 2, ...).

    A detection joins the live track it overlaps most (IoU >= `min_iou`)
    with that track's predicted box; the rest start new tracks. Classes play
    no part: a detector's class for one object can change from frame to
    frame, its identity should not. `update` returns the ids in the order
    of the boxes given.
    """

    # Chosen on the detection set's validation videos (docs/design.md): a
    # low gate, with the velocity prediction, and tracks kept through gaps
    # of a few frames switch less at every score threshold (103 switches
    # against 129 for min_iou=0.3, max_age=3 at 0.3; 53 against 98 at 0.4).
    def __init__(self, *, min_iou=0.1, max_age=6):
        self.min_iou = min_iou
        self.max_age = max_age
        self.tracks = []
        self.next_id = 1

    def update(self, boxes):
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        expected = np.array([t["box"] + t["velocity"] * t["age"] for t in self.tracks]).reshape(
            -1, 4
        )
        ids = [0] * len(boxes)
        matched = set()
        for row, column in greedy_match(box_iou(boxes, expected), self.min_iou):
            track = self.tracks[column]
            track["velocity"] = (boxes[row] - track["box"]) / track["age"]
            track["box"], track["age"] = boxes[row], 1
            ids[row] = track["id"]
            matched.add(column)
        for column, track in enumerate(self.tracks):
            if column not in matched:
                track["age"] += 1
        self.tracks = [t for t in self.tracks if t["age"] <= self.max_age]
        for row in range(len(boxes)):
            if not ids[row]:
                ids[row] = self.next_id
                self.tracks.append(
                    {"id": self.next_id, "box": boxes[row], "velocity": np.zeros(4), "age": 1}
                )
                self.next_id += 1
        return ids


def track_clip(detections, threshold):
    """One clip's detections (`detect_clip`'s) → per frame `(kept, track_ids)`: the indices of the
    boxes at least `threshold` confident, one per object (`suppress_overlaps`), and their track
    identities.
    """
    tracker = IoUTracker()
    tracked = []
    for boxes, scores, _ in detections:
        kept = np.nonzero(scores >= threshold)[0]
        kept = kept[suppress_overlaps(boxes[kept], scores[kept])]
        tracked.append((kept, tracker.update(boxes[kept])))
    return tracked


def tracking_counts(detections, truth, threshold):
    """`clear_mot` counts of one clip's tracked detections against its truth
    (`AnnotatedVideo.truth`).
    """
    tracks = [
        (boxes[kept], ids)
        for (boxes, _, _), (kept, ids) in zip(detections, track_clip(detections, threshold))
    ]
    return clear_mot(tracks, [(boxes, ids) for boxes, _, ids in truth])
