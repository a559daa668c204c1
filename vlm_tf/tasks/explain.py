"""Where and when a classifier looked (§8.2 ④): `vlm-tf explain RUN VIDEO --out FILE`.

Every method gives a heat map per frame at the model's frame size, larger
where the clip mattered more to the class explained (the predicted one,
unless another is asked for):

- `gradcam` (Selvaraju et al., 2017): the last spatio-temporal feature map
  (`pool3` of the default model, a transformer's tokens on their patch
  grid), each channel weighted by the mean gradient of the class's log
  probability over that frame's map, summed, negatives dropped. Per-frame
  weights, not one set for the clip: a recurrent model uses a channel at
  one moment and not at another.
- `rollout` (Abnar and Zuidema, 2020), for the video transformers: the
  blocks' attention (half of it, half the residual identity) multiplied
  through the blocks and read by the class-attention head. It does not
  depend on the class asked for.
- `occlusion` (Zeiler and Fergus, 2014): how much the class's probability
  falls when a square of the clip, a few frames long, is removed.
- `integrated-gradients` (Sundararajan et al., 2017): gradients summed on
  the straight path from a black clip to the clip, times the clip, summed
  over colour; smoothed a little, as single pixels' values are noisy.

And when: `frame_importance`, the fall of the class's probability when one
frame is removed (temporal occlusion), for every method.

"Removed" means one thing everywhere here and in the scores
(`vlm_tf.tasks.explanation_scores`): replaced by the clip's background,
the per-pixel median over its frames. A moving object vanishes; the scene
stays, so the model is not shown a grey square it never saw in training.
"""

from __future__ import annotations

import dataclasses
import os

import cv2
import keras
import numpy as np
import tensorflow as tf

from vlm_tf import atomic
from vlm_tf.data import sampling
from vlm_tf.data.decode import frame_rate, read_frames, write_video
from vlm_tf.layers.transformer import ClassAttentionPooling, SpaceTimeBlock, TubeletEmbedding
from vlm_tf.tasks.base import Report
from vlm_tf.visualize import explanation_image

METHODS = ("gradcam", "rollout", "occlusion", "integrated-gradients")
# Occlusion: a square an eighth of the frame's side, moved by half of it, over this many frames.
OCCLUSION_FRAMES = 4
INTEGRATED_STEPS = 32


def background(clips):
    """The per-pixel median over time of `clips` `(N, T, H, W, 3)`: `(N, 1, H, W, 3)`."""
    return np.median(clips, axis=1, keepdims=True)


@dataclasses.dataclass(frozen=True)
class FeatureGrid:
    """Where a model's last spatio-temporal map lies on its input.

    Cell `(i, j)` of the map is centred on input pixel `(start[0] + i·jump[0], start[1] +
    j·jump[1])`; one step of its time axis covers `frames` input frames. `tokens` is the
    `(rows, columns)` patch grid of a transformer's `(B, T', S, D)` tokens, `None` for a
    `(B, T, H', W', C)` map.
    """

    layer: keras.layers.Layer
    start: tuple
    jump: tuple
    frames: int
    tokens: tuple | None


def _spatial_layer(layer):
    inner = layer.layer if isinstance(layer, keras.layers.TimeDistributed) else layer
    if isinstance(inner, keras.layers.Conv2D):
        return inner, inner.kernel_size
    if isinstance(inner, (keras.layers.MaxPooling2D, keras.layers.AveragePooling2D)):
        return inner, inner.pool_size
    return None, None


def feature_grid(model):
    """The `FeatureGrid` of `model`'s last map over (time, rows, columns), or None.

    The geometry is read from the conv and pooling layers on the way (their
    kernels, strides and padding) or from the tubelet embedding, so the map
    lands on the pixels it saw rather than stretched over the frame: the
    default model's 6×6 `pool3` cells are centred 8 pixels apart from pixel
    10.5, not 10.7 apart from 5.3.
    """
    start, jump, frames = [0.0, 0.0], [1.0, 1.0], 1
    spatial, tokens, found = False, None, None
    for layer in model.layers:
        inner, kernel = _spatial_layer(layer)
        if isinstance(layer, keras.layers.Conv3D):
            for axis in (0, 1):
                size, stride = layer.kernel_size[axis + 1], layer.strides[axis + 1]
                # "same" pads max(k - s, 0) pixels, the smaller half before (TensorFlow's rule).
                before = 0 if layer.padding == "valid" else max(size - stride, 0) // 2
                start[axis] += jump[axis] * ((size - 1) / 2 - before)
                jump[axis] *= stride
            frames *= layer.strides[0]
            spatial = True
        elif inner is not None:
            for axis in (0, 1):
                if inner.padding == "valid":
                    start[axis] += jump[axis] * (kernel[axis] - 1) / 2
                jump[axis] *= inner.strides[axis]
            spatial = True
        elif isinstance(layer, TubeletEmbedding):
            frames, rows, columns = layer.tubelet_size
            start, jump = [(rows - 1) / 2, (columns - 1) / 2], [float(rows), float(columns)]
            tokens = layer.grid
        output = layer.output
        if isinstance(output, (list, tuple)):
            continue
        if (spatial and len(output.shape) == 5) or (
            tokens is not None
            and len(output.shape) == 4
            and output.shape[2] == tokens[0] * tokens[1]
        ):
            found = FeatureGrid(layer, tuple(start), tuple(jump), frames, tokens)
    return found


def place_maps(maps, grid, num_frames, size):
    """Maps `(N, T', rows, columns)` on `grid` → `(N, num_frames, H, W)` on the input's pixels.

    Bilinear between cell centres, the edge cells' values beyond them; each
    frame takes the map step that covers it.
    """
    placed = np.asarray(maps, np.float32)
    for axis, length in ((2, size[0]), (3, size[1])):
        cells = placed.shape[axis]
        where = np.clip(
            (np.arange(length) - grid.start[axis - 2]) / grid.jump[axis - 2], 0, cells - 1
        )
        low = np.floor(where).astype(int)
        high = np.minimum(low + 1, cells - 1)
        shape = [1, 1, 1, 1]
        shape[axis] = length
        weight = (where - low).reshape(shape)
        placed = np.take(placed, low, axis) * (1 - weight) + np.take(placed, high, axis) * weight
    steps = np.minimum(np.arange(num_frames) // grid.frames, placed.shape[1] - 1)
    return placed[:, steps]


def attention_rollout(weights, steps, space, reader=None):
    """How much each of the `steps · space` input tokens reaches the pooled token: `(B, N)`.

    Args:
        weights: per block, `SpaceTimeBlock.attention_weights`: `[joint (B, N, N)]` or
            `[space (B·steps, S, S), time (B·S, steps, steps)]`, N = steps · space, tokens
            numbered step · space + patch.
        reader: the head's weights over the tokens `(B, N)` (class attention); `None`: a mean.

    Each attention is blended half and half with the identity (the residual
    path), and the blends are multiplied from the first block to the last.
    """
    count = steps * space
    batch = len(weights[0][0]) // (1 if len(weights[0]) == 1 else steps)
    identity = np.eye(count, dtype=np.float32)
    rollout = np.broadcast_to(identity, (batch, count, count))
    for mixes in weights:
        if len(mixes) == 2:
            space_mix = mixes[0].reshape(batch, steps, space, space)
            time_mix = mixes[1].reshape(batch, space, steps, steps)
            # Space mixes within a step, time within a patch; the block applies space first.
            mixes = [
                np.einsum("btij,tu->btiuj", space_mix, np.eye(steps)).reshape(batch, count, count),
                np.einsum("bptu,pq->btpuq", time_mix, np.eye(space)).reshape(batch, count, count),
            ]
        for mix in mixes:
            # Attention rows sum to 1, so the blend with the residual path does too.
            rollout = (0.5 * mix + 0.5 * identity) @ rollout
    if reader is None:
        reader = np.full((batch, count), 1.0 / count, np.float32)
    return np.einsum("bn,bnm->bm", reader, rollout)


class Explainer:
    """The methods of this module on one Keras classifier taking `(N, T, H, W, 3)` pixels in
    [0, 255].

    Args:
        model: the classifier (`Run.model`).
        batch_size: clips a forward pass takes at once (occlusion and the
            scores run many).
    """

    def __init__(self, model, *, batch_size=32):
        self.model = model
        self.batch_size = int(batch_size)
        self.grid = feature_grid(model)
        self.blocks = [layer for layer in model.layers if isinstance(layer, SpaceTimeBlock)]
        self._forward = tf.function(
            lambda clips: model(clips, training=False), reduce_retracing=True
        )
        self._probes = {}

    @property
    def methods(self):
        """The methods this model can be explained by: rollout for transformers only."""
        return tuple(m for m in METHODS if m != "rollout" or self.blocks)

    @property
    def default_method(self):
        """Attention rollout for a transformer, integrated gradients for every other model.

        Grad-CAM is not the default: its channel weights average the gradient
        over the map, which assumes a head that averages the map too, and the
        default model flattens it (direction of motion needs positions). On it
        Grad-CAM points at the object about as often as a map of the frame's
        centre does (docs/explanations.md).
        """
        return "rollout" if self.blocks else "integrated-gradients"

    def check_method(self, method):
        if method not in self.methods:
            raise ValueError(
                f"method {method!r} does not apply to {self.model.name}; its methods: "
                f"{', '.join(self.methods)}"
            )

    def probabilities(self, clips):
        """Class probabilities `(N, K)` of clips `(N, T, H, W, 3)`, batch by batch."""
        clips = np.asarray(clips, np.float32)
        return np.concatenate(
            [
                np.asarray(self._forward(tf.constant(clips[i : i + self.batch_size])), np.float32)
                for i in range(0, len(clips), self.batch_size)
            ]
        )

    def heat(self, clips, targets, method=None):
        """Heat maps `(N, T, H, W)`, non-negative, of `clips` for class `targets[i]` each."""
        method = method or self.default_method
        self.check_method(method)
        clips = np.asarray(clips, np.float32)
        targets = np.asarray(targets, np.int64).reshape(len(clips))
        return {
            "gradcam": self._gradcam,
            "rollout": self._rollout,
            "occlusion": self._occlusion,
            "integrated-gradients": self._integrated_gradients,
        }[method](clips, targets)

    def frame_importance(self, clips, targets):
        """`(N, T)`: how far each class's probability falls when frame t alone is removed."""
        clips = np.asarray(clips, np.float32)
        targets = np.asarray(targets, np.int64).reshape(len(clips))
        num_frames = clips.shape[1]
        scene = background(clips)
        rows = np.arange(len(clips))
        before = self.probabilities(clips)[rows, targets]
        falls = np.empty((len(clips), num_frames), np.float32)
        for t in range(num_frames):
            removed = clips.copy()
            removed[:, t] = scene[:, 0]
            falls[:, t] = before - self.probabilities(removed)[rows, targets]
        return falls

    # === Methods ===

    def _probe(self, name, outputs):
        if name not in self._probes:
            self._probes[name] = keras.Model(self.model.inputs, outputs)
        return self._probes[name]

    @staticmethod
    def _class_gradient(call, inputs, targets):
        """`call(inputs)` gives `(values, probabilities)`; returns the values and the gradient of
        the summed log probabilities of `targets` with respect to them.
        """
        with tf.GradientTape() as tape:
            inputs = tf.constant(inputs)
            tape.watch(inputs)
            values, probabilities = call(inputs)
            chosen = tf.gather(tf.cast(probabilities, tf.float32), targets, batch_dims=1)
            score = tf.reduce_sum(tf.math.log(chosen + 1e-12))
        return values, tape.gradient(score, values)

    def _gradcam(self, clips, targets):
        if self.grid is None:
            raise ValueError(f"{self.model.name} has no spatio-temporal feature map for Grad-CAM")
        probe = self._probe("gradcam", [self.grid.layer.output, self.model.output])
        heat = []
        for i in range(0, len(clips), self.batch_size):
            maps, grads = self._class_gradient(
                lambda x: probe(x, training=False),
                clips[i : i + self.batch_size],
                targets[i : i + self.batch_size],
            )
            maps = np.asarray(tf.cast(maps, tf.float32))
            grads = np.asarray(tf.cast(grads, tf.float32))
            if self.grid.tokens is not None:
                shape = (*maps.shape[:2], *self.grid.tokens, maps.shape[-1])
                maps, grads = maps.reshape(shape), grads.reshape(shape)
            weights = grads.mean(axis=(2, 3), keepdims=True)
            heat.append(np.maximum((maps * weights).sum(-1), 0.0))
        return place_maps(np.concatenate(heat), self.grid, clips.shape[1], clips.shape[2:4])

    def _rollout(self, clips, targets):
        heads = [layer for layer in self.model.layers if isinstance(layer, ClassAttentionPooling)]
        outputs = [block.input for block in self.blocks]
        if heads:
            outputs.append(heads[-1].output[1])
        probe = self._probe("rollout", outputs)
        heat = []
        for i in range(0, len(clips), self.batch_size):
            found = probe(tf.constant(clips[i : i + self.batch_size]), training=False)
            found = found if isinstance(found, (list, tuple)) else [found]
            batch, steps, space = found[0].shape[:3]
            weights = [
                [np.asarray(w) for w in block.attention_weights(x)]
                for block, x in zip(self.blocks, found)
            ]
            reader = np.asarray(found[-1]).reshape(batch, -1) if heads else None
            relevance = attention_rollout(weights, steps, space, reader)
            heat.append(relevance.reshape(batch, steps, *self.grid.tokens))
        return place_maps(np.concatenate(heat), self.grid, clips.shape[1], clips.shape[2:4])

    def _occlusion(self, clips, targets):
        _, num_frames, height, width, _ = clips.shape
        side = max(2, min(height, width) // 8)
        stride = max(1, side // 2)

        def corners(length):
            found = list(range(0, length - side + 1, stride))
            return found if found[-1] == length - side else [*found, length - side]

        windows = [
            (t, y, x)
            for t in range(0, num_frames, OCCLUSION_FRAMES)
            for y in corners(height)
            for x in corners(width)
        ]
        scene = background(clips)
        heat = np.zeros(clips.shape[:4], np.float32)
        for n, clip in enumerate(clips):
            before = self.probabilities(clip[None])[0, targets[n]]
            falls = np.zeros(clips.shape[1:4], np.float32)
            covered = np.zeros(clips.shape[1:4], np.float32)
            for start in range(0, len(windows), self.batch_size):
                chunk = windows[start : start + self.batch_size]
                occluded = np.repeat(clip[None], len(chunk), axis=0)
                for k, (t, y, x) in enumerate(chunk):
                    occluded[k, t : t + OCCLUSION_FRAMES, y : y + side, x : x + side] = scene[
                        n, 0, y : y + side, x : x + side
                    ]
                after = self.probabilities(occluded)[:, targets[n]]
                for (t, y, x), value in zip(chunk, after):
                    region = (
                        slice(t, t + OCCLUSION_FRAMES),
                        slice(y, y + side),
                        slice(x, x + side),
                    )
                    falls[region] += before - value
                    covered[region] += 1
            heat[n] = np.maximum(falls / np.maximum(covered, 1), 0.0)
        return heat

    def _integrated_gradients(self, clips, targets):
        fractions = (np.arange(INTEGRATED_STEPS, dtype=np.float32) + 0.5) / INTEGRATED_STEPS
        sigma = max(1.0, min(clips.shape[2:4]) / 32)
        heat = np.empty(clips.shape[:4], np.float32)
        for n, clip in enumerate(clips):
            total = np.zeros_like(clip)
            for start in range(0, INTEGRATED_STEPS, self.batch_size):
                steps = fractions[start : start + self.batch_size]
                _, grads = self._class_gradient(
                    lambda x: (x, self.model(x, training=False)),
                    steps[:, None, None, None, None] * clip[None],
                    np.full(len(steps), targets[n]),
                )
                total += np.asarray(grads).sum(0)
            attribution = np.abs((clip * total / INTEGRATED_STEPS).sum(-1))
            heat[n] = [cv2.GaussianBlur(frame, (0, 0), sigma) for frame in attribution]
        return heat


# === One video ===


@dataclasses.dataclass(eq=False)
class ExplanationReport(Report):
    """`vlm-tf explain`'s report on one video."""

    path: str
    method: str
    # The class explained, its probability, and the model's label for the clip.
    target: str
    target_probability: float
    label: str
    # The frames of the video the clip took, and how much each mattered (temporal occlusion).
    frame_indices: list
    frame_importance: list
    # Each frame's hottest pixel, [x, y] at the model's frame size.
    peaks: list
    files: dict

    def lines(self):
        ranked = np.argsort(self.frame_importance)[::-1][:3]
        most = ", ".join(
            f"{self.frame_indices[k]} ({self.frame_importance[k]:+.3f})" for k in ranked
        )
        return [
            f"{self.path}: {self.label}; explained {self.target} (p={self.target_probability:.3f})"
            f" by {self.method}",
            f"  frames that mattered most (video frame, fall in p when removed): {most}",
            *(f"  wrote {name}: {path}" for name, path in self.files.items()),
        ]


def explain_video(run, path, out, *, method=None, target=None):
    """Explains the clip `evaluate` reads from the video at `path` and writes the pictures.

    Writes `out` (a video: each frame next to its heat map laid over it) and
    `out` with `.png` in place of its extension (the frames, the heat maps,
    and a bar under each frame for how much it mattered). Neither may exist.

    Args:
        run: a classify run (`vlm_tf.inference.load_run`).
        method: one of `METHODS` (default: `Explainer.default_method`).
        target: the class to explain (default: the predicted one).

    Returns:
        An `ExplanationReport`.
    """
    run.require("classify", "`vlm-tf explain`")
    explainer = Explainer(run.model)
    method = method or explainer.default_method
    explainer.check_method(method)
    if target is not None and target not in run.class_names:
        raise ValueError(
            f"--target {target!r} is not one of the run's classes: {', '.join(run.class_names)}"
        )
    grid_path = os.path.splitext(os.fspath(out))[0] + ".png"
    for written in (out, grid_path):
        if os.path.exists(written):
            raise FileExistsError(f"{written} exists; explain never overwrites a file")
    frames = read_frames(path, None, run.image_size)
    indices = sampling.uniform_indices(len(frames), run.config.num_frames).numpy()
    clip = frames[indices].astype(np.float32)
    probabilities = explainer.probabilities(clip[None])[0]
    chosen = int(np.argmax(probabilities)) if target is None else run.class_names.index(target)
    heat = explainer.heat(clip[None], [chosen], method)[0]
    importance = explainer.frame_importance(clip[None], [chosen])[0]
    shown, laid, picture = explanation_image(clip, heat, importance)
    fps = (frame_rate(path) or 10.0) * len(indices) / max(len(frames), 1)
    with atomic.replacing(out) as temporary:
        write_video(temporary, np.concatenate([shown, laid], axis=2), fps=max(fps, 1.0))
    with atomic.replacing(grid_path) as temporary:
        cv2.imwrite(temporary, cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
    flat = heat.reshape(len(heat), -1).argmax(-1)
    return ExplanationReport(
        path=os.fspath(path),
        method=method,
        target=run.class_names[chosen],
        target_probability=float(probabilities[chosen]),
        label=run.class_names[int(np.argmax(probabilities))],
        frame_indices=[int(i) for i in indices],
        frame_importance=[float(v) for v in importance],
        peaks=[[int(k % heat.shape[2]), int(k // heat.shape[2])] for k in flat],
        files={"video": os.fspath(out), "grid": grid_path},
    )
