"""Scores of detection and tracking (§6.2): IoU, PASCAL VOC's mAP and CLEAR MOT.

Boxes are `[x_min, y_min, x_max, y_max]` in pixels, as float arrays `(N, 4)`.

- `mean_average_precision`: PASCAL VOC's all-point interpolated average
  precision per class at an IoU threshold (0.5: "mAP@0.5"), averaged over
  the classes that have ground truth, with the mean IoU of the true positives.
- `clear_mot` and `mota`: CLEAR MOT's counts (misses, false positives,
  identity switches: a true object matched, IoU >= 0.5, to a different
  track from the last time) and its tracking accuracy, MOTA. Switches alone
  reward finding little: MOTA weighs them against what was missed and
  made up.
"""

from __future__ import annotations

import numpy as np


def box_iou(a, b):
    """IoU of every box in `a` `(N, 4)` with every box in `b` `(M, 4)` → `(N, M)`."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    overlap = np.prod(np.clip(bottom_right - top_left, 0, None), axis=-1)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=-1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=-1)
    union = area_a[:, None] + area_b[None, :] - overlap
    return np.where(union > 0, overlap / np.maximum(union, 1e-12), 0.0)


def greedy_match(iou, threshold):
    """Pairs `(row, column)` of largest IoU first, each row and column used once.

    Every pair has IoU >= `threshold`.
    """
    pairs, used_rows, used_columns = [], set(), set()
    for flat in np.argsort(-iou, axis=None, kind="stable"):
        row, column = np.unravel_index(flat, iou.shape)
        if iou[row, column] < threshold:
            break
        if row not in used_rows and column not in used_columns:
            pairs.append((int(row), int(column)))
            used_rows.add(row)
            used_columns.add(column)
    return pairs


def average_precision(scores, true_positive, num_truth):
    """All-point interpolated AP (PASCAL VOC 2010 on) of detections.

    They come with `scores` and a `true_positive` flag each.
    """
    if num_truth == 0:
        return None
    order = np.argsort(-np.asarray(scores, np.float64), kind="stable")
    hits = np.asarray(true_positive, np.float64)[order]
    true_positives, false_positives = np.cumsum(hits), np.cumsum(1.0 - hits)
    recall = np.concatenate([[0.0], true_positives / num_truth, [1.0]])
    precision = np.concatenate(
        [[0.0], true_positives / np.maximum(true_positives + false_positives, 1e-12), [0.0]]
    )
    # Precision made non-increasing from the right: the best precision at
    # this recall or any higher one.
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    steps = np.nonzero(recall[1:] != recall[:-1])[0]
    return float(np.sum((recall[steps + 1] - recall[steps]) * precision[steps + 1]))


def mean_average_precision(detections, truths, num_classes, *, iou_threshold=0.5):
    """mAP of `detections` against `truths`, frame by frame.

    Args:
        detections: one `(boxes (N, 4), scores (N,), classes (N,))` per frame.
        truths: one `(boxes (M, 4), classes (M,))` per frame, in the same order.

    Returns:
        `{"map": float, "per_class": [AP or None per class], "mean_iou": float}`:
        a detection is a true positive when it is the most confident one on an
        unclaimed ground-truth box of its class with IoU >= `iou_threshold`
        (VOC's rule); `mean_iou` averages the IoU of the true positives.
    """
    if len(detections) != len(truths):
        raise ValueError(
            f"{len(detections)} frames of detections for {len(truths)} frames of ground truth"
        )
    scores = [[] for _ in range(num_classes)]
    hits = [[] for _ in range(num_classes)]
    counts = np.zeros(num_classes, int)
    matched_iou = []
    for (boxes, box_scores, classes), (true_boxes, true_classes) in zip(detections, truths):
        boxes, classes, box_scores = (
            np.asarray(boxes).reshape(-1, 4),
            np.asarray(classes, int),
            np.asarray(box_scores),
        )
        true_boxes, true_classes = (
            np.asarray(true_boxes).reshape(-1, 4),
            np.asarray(true_classes, int),
        )
        counts += np.bincount(true_classes, minlength=num_classes)[:num_classes]
        for c in range(num_classes):
            mine, theirs = np.nonzero(classes == c)[0], np.nonzero(true_classes == c)[0]
            iou = box_iou(boxes[mine], true_boxes[theirs])
            claimed = np.zeros(len(theirs), bool)
            for k in np.argsort(-box_scores[mine], kind="stable"):
                best = int(np.argmax(iou[k])) if len(theirs) else -1
                hit = best >= 0 and iou[k, best] >= iou_threshold and not claimed[best]
                if hit:
                    claimed[best] = True
                    matched_iou.append(iou[k, best])
                scores[c].append(box_scores[mine][k])
                hits[c].append(hit)
    per_class = [average_precision(scores[c], hits[c], counts[c]) for c in range(num_classes)]
    present = [ap for ap in per_class if ap is not None]
    return {
        "map": float(np.mean(present)) if present else 0.0,
        "per_class": per_class,
        "mean_iou": float(np.mean(matched_iou)) if matched_iou else 0.0,
    }


def clear_mot(tracks, truths, *, iou_threshold=0.5):
    """CLEAR MOT's counts for one video's tracks.

    Returns `{"objects", "misses", "false_positives", "id_switches"}`.

    Each frame, true objects and tracked boxes are paired by IoU (largest
    first, at least `iou_threshold`); an unpaired object is a miss, an
    unpaired box a false positive, and an object paired with a different
    track from the last time it was paired an identity switch. (CLEAR MOT
    keeps last frame's pairs while they still overlap and pairs the rest by
    the Hungarian method; largest-IoU-first differs from it only when
    boxes overlap several objects at once.)

    Args:
        tracks: one `(boxes (N, 4), track_ids (N,))` per frame.
        truths: one `(boxes (M, 4), object_ids (M,))` per frame.
    """
    counts = {"objects": 0, "misses": 0, "false_positives": 0, "id_switches": 0}
    last_track = {}
    for (boxes, track_ids), (true_boxes, object_ids) in zip(tracks, truths):
        pairs = greedy_match(box_iou(true_boxes, boxes), iou_threshold)
        counts["objects"] += len(object_ids)
        counts["misses"] += len(object_ids) - len(pairs)
        counts["false_positives"] += len(track_ids) - len(pairs)
        for row, column in pairs:
            object_id, track_id = object_ids[row], track_ids[column]
            if object_id in last_track and last_track[object_id] != track_id:
                counts["id_switches"] += 1
            last_track[object_id] = track_id
    return counts


def mota(counts):
    """Multiple-object tracking accuracy from summed `clear_mot` counts.

    It is 1 − (misses + false positives + switches) / objects.
    """
    return 1.0 - (counts["misses"] + counts["false_positives"] + counts["id_switches"]) / max(
        counts["objects"], 1
    )
