"""How good an explanation is, measured (§8.2 ④): `vlm-tf explain RUN DATA --score`.

On videos whose objects' boxes are known (every video `make-data` writes
has a box file beside it), each method of `vlm_tf.tasks.explain` is scored
for the true class of every clip:

- the pointing game (Zhang et al., 2016): the share of frames whose hottest
  pixel lies inside an object's box (a frame whose map is flat misses);
- heat in box: the share of a frame's heat inside the boxes;
- deletion and insertion (Petsiuk et al., 2018): accuracy as the most
  salient pixels of the clip are removed (replaced by its background, as
  in `explain`), and as they are put back into the background alone; the
  area under each curve over the removed share, lower for deletion and
  higher for insertion being better;
- and for "when": accuracy as the frames that mattered most by temporal
  occlusion are removed, against frames removed in random order.

Beside them, what a map that knows nothing scores: a random map (the
pointing game then hits as often as boxes cover the frame) and a centre
map, a Gaussian on the frame's centre (objects are more often near the
middle than at the edges); and random pixel order for the curves.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from vlm_tf.data import sampling
from vlm_tf.data.decode import VideoReadError, probe_video, read_frames
from vlm_tf.data.detection import box_file, read_boxes
from vlm_tf.data.splits import evaluation_source, index_directory
from vlm_tf.tasks.base import Report, skipped_lines
from vlm_tf.tasks.classify import check_class_folders
from vlm_tf.tasks.explain import Explainer, background

# The removed (or inserted) shares of a clip's pixels the curves are measured at.
FRACTIONS = np.linspace(0.0, 1.0, 11)
# Clips explained at once: occlusion's many forward passes are batched within a clip.
_CHUNK = 16


@dataclasses.dataclass(eq=False)
class ExplanationScores(Report):
    """`vlm-tf explain RUN DATA --score`'s report."""

    num_videos: int
    # `{method: {pointing_game, heat_in_box, deletion_auc, insertion_auc}}`.
    methods: dict
    # `{"random": {pointing_game, heat_in_box}, "centre": {...}, "random_order": {deletion_auc,
    # insertion_auc}}`.
    baselines: dict
    # Temporal occlusion's order against a random one: `{deletion_auc, random_deletion_auc}`.
    frames: dict
    # The accuracy on the clips scored, for reading the curves.
    accuracy: float
    skipped: list

    def lines(self):
        head = (
            f"  {'':<22}{'pointing':>9}{'in box':>8}{'deletion':>10}{'insertion':>11}"
            "   (deletion: lower is better)"
        )
        lines = [
            f"explanations on {self.num_videos} videos with boxes (accuracy {self.accuracy:.3f})",
            head,
        ]

        def cell(values, key, width):
            return f"{values[key]:>{width}.3f}" if key in values else " " * width

        rows = {**self.methods, **{f"({name})": v for name, v in self.baselines.items()}}
        for name, values in rows.items():
            lines.append(
                f"  {name:<22}{cell(values, 'pointing_game', 9)}{cell(values, 'heat_in_box', 8)}"
                f"{cell(values, 'deletion_auc', 10)}{cell(values, 'insertion_auc', 11)}"
            )
        lines.append(
            f"  frames removed by importance: deletion {self.frames['deletion_auc']:.3f} "
            f"(random order {self.frames['random_deletion_auc']:.3f})"
        )
        return lines + skipped_lines(self.skipped)


def _box_masks(path, indices, num_source_frames, image_size):
    """`(T, H, W)` bool: where the objects of the box file of `path` are, in the frames `indices`,
    at the model's frame size.
    """
    objects = read_boxes(box_file(path), num_frames=num_source_frames)
    info = probe_video(path)
    scale_x, scale_y = image_size[1] / info.width, image_size[0] / info.height
    masks = np.zeros((len(indices), *image_size), bool)
    for t, frame in enumerate(indices):
        for entry in objects:
            box = entry["boxes"][frame]
            if box is None:
                continue
            x0, x1 = int(np.floor(box[0] * scale_x)), int(np.ceil(box[2] * scale_x))
            y0, y1 = int(np.floor(box[1] * scale_y)), int(np.ceil(box[3] * scale_y))
            masks[t, max(y0, 0) : y1 + 1, max(x0, 0) : x1 + 1] = True
    return masks


def _pointing(heat, masks):
    """Per frame: the hottest pixel inside a box, and the share of heat inside the boxes."""
    flat = heat.reshape(*heat.shape[:2], -1)
    peaks = flat.argmax(-1)
    inside = np.take_along_axis(masks.reshape(flat.shape), peaks[..., None], -1)[..., 0]
    hits = inside & (flat.max(-1) > flat.min(-1))
    total = flat.sum(-1)
    share = np.where(
        total > 0, (flat * masks.reshape(flat.shape)).sum(-1) / np.maximum(total, 1e-12), 0.0
    )
    return hits, share


def _ranks(keys, rng):
    """Each element's place `(N, ...)` when every clip's elements are sorted by `keys`, largest
    first, ties in random order.
    """
    flat = keys.reshape(len(keys), -1)
    ranks = np.empty(flat.shape, np.int64)
    for n, row in enumerate(flat):
        order = np.lexsort((rng.random(row.size), -row))
        ranks[n, order] = np.arange(row.size)
    return ranks.reshape(keys.shape)


def _curves(explainer, clips, labels, ranks):
    """Accuracy `(N, len(FRACTIONS))` with each share of the highest-ranked pixels removed
    (deletion), and with only they kept over the background (insertion).
    """
    scene = background(clips)
    count = ranks[0].size
    deletion, insertion = [], []
    for fraction in FRACTIONS:
        chosen = (ranks < fraction * count)[..., None]
        removed = np.where(chosen, scene, clips)
        kept = np.where(chosen, clips, scene)
        deletion.append(explainer.probabilities(removed).argmax(-1) == labels)
        insertion.append(explainer.probabilities(kept).argmax(-1) == labels)
    return np.array(deletion, np.float32).T, np.array(insertion, np.float32).T


def _area(curves, steps=FRACTIONS):
    """Area under the mean of accuracy curves `(N, len(steps))` over the removed share."""
    return float(np.trapezoid(curves.mean(0), steps))


def _frame_curve(explainer, clips, labels, ranks):
    """Accuracy `(N, T + 1)` with the k highest-ranked frames removed, k = 0..T."""
    scene = background(clips)
    found = []
    for k in range(clips.shape[1] + 1):
        removed = np.where((ranks < k)[:, :, None, None, None], scene, clips)
        found.append(explainer.probabilities(removed).argmax(-1) == labels)
    return np.array(found, np.float32).T


def _centre_map(size):
    rows, columns = (np.arange(n) - (n - 1) / 2 for n in size)
    spread = min(size) / 4
    return np.exp(-(rows[:, None] ** 2 + columns[None] ** 2) / (2 * spread**2))


def _load(run, paths, labels, strict):
    clips, masks, kept, skipped = [], [], [], []
    for path, label in zip(paths, labels):
        try:
            frames = read_frames(path, None, run.image_size)
            indices = sampling.uniform_indices(len(frames), run.config.num_frames).numpy()
            masks.append(_box_masks(path, indices, len(frames), run.image_size))
        except (VideoReadError, OSError, ValueError) as error:
            if strict:
                raise
            reason = error.reason if isinstance(error, VideoReadError) else str(error)
            skipped.append({"path": os.fspath(path), "reason": reason})
            continue
        clips.append(frames[indices].astype(np.float32))
        kept.append(label)
    return clips, masks, kept, skipped


def _score_batch(explainer, methods, clips, masks, labels, rng, centre):
    """Every figure of a few clips, per clip: `{row: {name: array (N, ...)}}`."""
    rows = {}
    for method in methods:
        heat = explainer.heat(clips, labels, method)
        hits, share = _pointing(heat, masks)
        deletion, insertion = _curves(explainer, clips, labels, _ranks(heat, rng))
        rows[method] = {"hits": hits, "share": share, "deletion": deletion, "insertion": insertion}
    for name, heat in (
        ("random", rng.random(masks.shape)),
        ("centre", np.broadcast_to(centre, masks.shape)),
    ):
        hits, share = _pointing(heat, masks)
        rows[name] = {"hits": hits, "share": share}
    deletion, insertion = _curves(explainer, clips, labels, _ranks(rng.random(masks.shape), rng))
    rows["random_order"] = {"deletion": deletion, "insertion": insertion}
    importance = explainer.frame_importance(clips, labels)
    rows["frames"] = {
        "deletion": _frame_curve(explainer, clips, labels, _ranks(importance, rng)),
        "random_deletion": _frame_curve(
            explainer, clips, labels, _ranks(rng.random(importance.shape), rng)
        ),
    }
    rows["accuracy"] = {"correct": explainer.probabilities(clips).argmax(-1) == labels}
    return rows


def score_explanations(run, data_dir, *, methods=None, max_videos=None, seed=0, strict=False):
    """Scores `methods` (default: every one the run's model has) on the videos of `data_dir`
    (class folders or list data, as `evaluate`) that have box files.

    Args:
        max_videos: score this many videos, spread evenly over the folder's list.
        seed: the random baselines' and the tie-breaking's seed.
        strict: raise on the first video that cannot be read or has no usable box file,
            rather than skip and list it.

    Returns:
        An `ExplanationScores`.
    """
    run.require("classify", "`vlm-tf explain --score`")
    explainer = Explainer(run.model)
    methods = list(methods or explainer.methods)
    for method in methods:
        explainer.check_method(method)
    data = evaluation_source(data_dir)
    check_class_folders(run, data)
    paths, labels, _ = index_directory(data, run.class_names)
    if max_videos is not None and max_videos < len(paths):
        chosen = np.linspace(0, len(paths) - 1, max_videos).round().astype(int)
        paths, labels = [paths[i] for i in chosen], [labels[i] for i in chosen]
    clips, masks, labels, skipped = _load(run, paths, labels, strict)
    if not clips:
        first = skipped[0] if skipped else {"path": os.fspath(data_dir), "reason": "no videos"}
        raise ValueError(
            f"{data_dir}: no video with a box file could be scored, first: {first['path']} "
            f"({first['reason']})"
        )
    clips, masks, labels = np.stack(clips), np.stack(masks), np.array(labels)
    rng = np.random.default_rng(seed)
    centre = _centre_map(clips.shape[2:4])
    parts = [
        _score_batch(
            explainer, methods, *(a[i : i + _CHUNK] for a in (clips, masks, labels)), rng, centre
        )
        for i in range(0, len(clips), _CHUNK)
    ]
    found = {
        row: {key: np.concatenate([part[row][key] for part in parts]) for key in parts[0][row]}
        for row in parts[0]
    }

    def pointing(values):
        return {
            "pointing_game": float(values["hits"].mean()),
            "heat_in_box": float(values["share"].mean()),
        }

    def areas(values):
        return {
            "deletion_auc": _area(values["deletion"]),
            "insertion_auc": _area(values["insertion"]),
        }

    frame_steps = np.linspace(0.0, 1.0, clips.shape[1] + 1)
    return ExplanationScores(
        num_videos=len(clips),
        methods={method: {**pointing(found[method]), **areas(found[method])} for method in methods},
        baselines={
            "random": pointing(found["random"]),
            "centre": pointing(found["centre"]),
            "random_order": areas(found["random_order"]),
        },
        frames={
            "deletion_auc": _area(found["frames"]["deletion"], frame_steps),
            "random_deletion_auc": _area(found["frames"]["random_deletion"], frame_steps),
        },
        accuracy=float(found["accuracy"]["correct"].mean()),
        skipped=skipped,
    )
