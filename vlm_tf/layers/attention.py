"""The three kinds of attention of §2.3 as Keras layers: soft, hard and multi-scale.

Each layer pools a sequence of feature vectors `(B, T, D)` (frames, or the
steps of an LSTM) into one vector `(B, D)` and returns the weights it used,
`(pooled, weights)`, so a model can show which frames it looked at
(`vlm_tf.tasks.tensorboard.AttentionMaps`). Every layer accepts a Keras
mask `(B, T)`: padded frames get zero weight.

The scores come from the input itself, `s_t = score(x_t)`, so the weights
change from clip to clip; `vlm_tf.math.soft_attention` / `hard_attention`
are the NumPy references (one linear scorer, `units=None`).
"""

from __future__ import annotations

import math

import keras
from keras import ops

OVER = ("time", "space")
# A score for padded positions that no real score reaches and that stays
# finite under bfloat16 and float16 once cast (exp underflows to 0).
_MASKED_SCORE = -1e4


def _masked_softmax(scores, mask):
    """Softmax over the last axis in float32, with masked positions at zero weight."""
    scores = ops.cast(scores, "float32")
    if mask is not None:
        scores = ops.where(mask, scores, _MASKED_SCORE)
    # Written out rather than ops.softmax, which warns on a single position
    # (a window as long as the clip): one weight of 1 is what is meant there.
    exp = ops.exp(scores - ops.max(scores, axis=-1, keepdims=True))
    return exp / ops.sum(exp, axis=-1, keepdims=True)


class _Scorer(keras.layers.Layer):
    """score(x) = v·tanh(W x + b) with `units`, or w·x + b without: one number per position."""

    def __init__(self, units=None, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.hidden = (
            None
            if units is None
            else keras.layers.Dense(
                units, activation="tanh", name="hidden", dtype=self.dtype_policy
            )
        )
        self.score = keras.layers.Dense(1, name="score", dtype=self.dtype_policy)
        # One score per position: a mask on the positions still applies.
        self.supports_masking = True

    def build(self, input_shape):
        if self.hidden is not None:
            self.hidden.build(input_shape)
            input_shape = (*input_shape[:-1], self.units)
        self.score.build(input_shape)

    def call(self, inputs):
        x = inputs if self.hidden is None else self.hidden(inputs)
        return ops.squeeze(self.score(x), axis=-1)

    def flops(self, positions, dim):
        """Multiply-adds × 2 of scoring `positions` vectors of width `dim`."""
        per_position = dim if self.units is None else dim * self.units + self.units
        return 2 * positions * per_position


def _positions(input_shape):
    """Positions attended over, per clip, in `(None, T, ..., D)`."""
    return math.prod(input_shape[1:-1])


def _check_units(units):
    if units is not None and int(units) < 1:
        raise ValueError(
            f"units must be a positive integer or None (a linear scorer), received {units!r}"
        )
    return None if units is None else int(units)


@keras.saving.register_keras_serializable(package="vlm_tf")
class SoftAttention(keras.layers.Layer):
    """Soft attention (§2.3): learned scores, softmax weights, a weighted sum.

        s_t = score(x_t),   a = softmax(s),   y = Σ_t a_t x_t

    `over="time"`: `(B, T, D)` → `y (B, D)`, `a (B, T)`.
    `over="space"`: `(B, T, H, W, D)` → `y (B, T, D)`, `a (B, T, H, W)`:
    each frame pooled over its positions (where in the frame to look), in
    place of flattening the feature map.

    Args:
        units: hidden size of an additive scorer `v·tanh(W x + b)`, or
            `None` for a linear scorer `w·x + b` (the text's "learnable
            weight matrix", as in `vlm_tf.math.soft_attention`).
        over: `"time"` or `"space"`.
    """

    def __init__(self, units=None, over="time", **kwargs):
        super().__init__(**kwargs)
        if over not in OVER:
            raise ValueError(f"over must be one of {OVER}, received {over!r}")
        self.units = _check_units(units)
        self.over = over
        self.scorer = _Scorer(self.units, name="scorer", dtype=self.dtype_policy)
        self.supports_masking = True

    def build(self, input_shape):
        expected_rank = 3 if self.over == "time" else 5
        if len(input_shape) != expected_rank:
            layout = (
                "(batch, time, features)"
                if self.over == "time"
                else "(batch, time, height, width, features)"
            )
            raise ValueError(
                f"SoftAttention(over={self.over!r}) expects {layout}, received shape "
                f"{tuple(input_shape)}"
            )
        self.scorer.build((None, input_shape[-1]))

    def call(self, inputs, mask=None):
        if self.over == "space":
            return self._call_space(inputs)
        weights = _masked_softmax(self.scorer(inputs), mask)
        pooled = ops.einsum("bt,btd->bd", ops.cast(weights, inputs.dtype), inputs)
        return pooled, weights

    def _call_space(self, inputs):
        batch, time, height, width = (ops.shape(inputs)[k] for k in range(4))
        positions = ops.reshape(inputs, (batch * time, height * width, inputs.shape[-1]))
        weights = _masked_softmax(self.scorer(positions), None)
        pooled = ops.einsum("bp,bpd->bd", ops.cast(weights, inputs.dtype), positions)
        return ops.reshape(pooled, (batch, time, inputs.shape[-1])), ops.reshape(
            weights, (batch, time, height, width)
        )

    def compute_mask(self, inputs, mask=None):
        # Pooling over time leaves nothing to mask; pooling over space keeps the frames.
        return mask if self.over == "space" else None

    def compute_output_shape(self, input_shape):
        if self.over == "space":
            return (*input_shape[:2], input_shape[-1]), tuple(input_shape[:4])
        return (input_shape[0], input_shape[-1]), tuple(input_shape[:2])

    def flops(self, input_shape):
        """Scores, then the weighted sum: multiply-adds × 2 per clip (`vlm_tf.models.flops`)."""
        positions = _positions(input_shape)
        return self.scorer.flops(positions, input_shape[-1]) + 2 * positions * input_shape[-1]

    def get_config(self):
        return {**super().get_config(), "units": self.units, "over": self.over}


@keras.saving.register_keras_serializable(package="vlm_tf")
class HardAttention(keras.layers.Layer):
    """Hard attention (§2.3): the mean of the `k` frames with the highest learned scores.

        s_t = score(x_t),   S = top-k(s),   y = (1/k) Σ_{t ∈ S} x_t

    At inference the choice is a true top-k: `a` is exactly 1/k on the
    chosen frames and 0 elsewhere. A top-k has no gradient, so training uses
    the straight-through Gumbel-softmax estimator: Gumbel noise is added to
    the scores (the choice is sampled, so frames that score lower are still
    tried), the forward pass uses the hard top-k of the noisy scores, and the
    backward pass uses the gradient of `softmax(noisy scores / temperature)`.
    The scorer learns from that surrogate; the output it trains on is the
    hard one it is used with.

    `(B, T, D)` → `y (B, D)`, `a (B, T)`. Clips need at least `k` frames that
    are not masked; shorter ones use all their frames.

    Args:
        k: frames chosen per clip (the text: the one highest score, `k=1`).
        units: scorer hidden size, or `None` for a linear scorer.
        temperature: softmax temperature of the training surrogate; lower
            is closer to the hard choice, with noisier gradients.
        seed: seed of the Gumbel noise.
    """

    def __init__(self, k=1, units=None, temperature=1.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        if int(k) < 1:
            raise ValueError(f"k must be a positive integer, received {k!r}")
        if not temperature > 0:
            raise ValueError(f"temperature must be positive, received {temperature!r}")
        self.k = int(k)
        self.units = _check_units(units)
        self.temperature = float(temperature)
        self.seed = seed
        self.scorer = _Scorer(self.units, name="scorer", dtype=self.dtype_policy)
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True

    def build(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(
                "HardAttention expects (batch, time, features), received shape "
                f"{tuple(input_shape)}"
            )
        if input_shape[1] is not None and input_shape[1] < self.k:
            raise ValueError(
                f"HardAttention(k={self.k}) needs clips of at least {self.k} frames, received "
                f"shape {tuple(input_shape)}"
            )
        self.scorer.build((None, input_shape[-1]))

    def call(self, inputs, mask=None, training=None):
        scores = ops.cast(self.scorer(inputs), "float32")
        if training:
            uniform = keras.random.uniform(
                ops.shape(scores), minval=1e-6, maxval=1.0 - 1e-6, seed=self.seed_generator
            )
            scores = scores - ops.log(-ops.log(uniform))
        if mask is not None:
            scores = ops.where(mask, scores, _MASKED_SCORE)
        time = inputs.shape[1]
        k = min(self.k, time) if time is not None else ops.minimum(self.k, ops.shape(inputs)[1])
        kth_best = ops.top_k(scores, k, sorted=True)[0][:, -1:]
        chosen = ops.cast(scores >= kth_best, "float32")
        if mask is not None:
            chosen = chosen * ops.cast(mask, "float32")
        weights = chosen / ops.maximum(ops.sum(chosen, axis=-1, keepdims=True), 1.0)
        if training:
            surrogate = _masked_softmax(scores / self.temperature, mask)
            weights = weights + surrogate - ops.stop_gradient(surrogate)
        pooled = ops.einsum("bt,btd->bd", ops.cast(weights, inputs.dtype), inputs)
        return pooled, weights

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1]), tuple(input_shape[:2])

    def flops(self, input_shape):
        positions = _positions(input_shape)
        return self.scorer.flops(positions, input_shape[-1]) + 2 * positions * input_shape[-1]

    def get_config(self):
        return {
            **super().get_config(),
            "k": self.k,
            "units": self.units,
            "temperature": self.temperature,
            "seed": self.seed,
        }


@keras.saving.register_keras_serializable(package="vlm_tf")
class MultiScaleAttention(keras.layers.Layer):
    """Multi-scale attention (§2.3): soft attention over windows of 1, 2, 4... frames.

    Then soft attention over the scales.

    At scale `s` the clip is cut into windows of `s` consecutive frames
    (the last one shorter when `s` does not divide T), each window is
    averaged, and a scorer of its own gives the windows softmax weights: a
    small `s` attends to single frames (local), a large one to stretches of
    the clip (global). The per-scale vectors `y_s` are fused by a second
    attention across scales, `β = softmax(u · y_s)`, `y = Σ_s β_s y_s`.

    The result is still a weighted sum of frames, `y = Σ_t a_t x_t`, and the
    layer returns the weights per scale: `a (B, num_scales, T)` with
    `a[:, i, t] = β_i · α_i(window of t) / |window of t|`, so
    `a.sum(axis=1)` are the frame weights (summing to 1) and each row shows
    one scale's share.

    `(B, T, D)` → `y (B, D)`, `a (B, num_scales, T)`.

    Args:
        scales: window lengths in frames, e.g. `(1, 2, 4)`; a scale as long as
            the clip averages all of it (global).
        units: hidden size of each scorer, or `None` for linear scorers.
    """

    def __init__(self, scales=(1, 2, 4), units=None, **kwargs):
        super().__init__(**kwargs)
        scales = tuple(int(s) for s in scales)
        if not scales or any(s < 1 for s in scales) or len(set(scales)) != len(scales):
            raise ValueError(
                f"scales must be distinct positive window lengths, received {scales!r}"
            )
        self.scales = scales
        self.units = _check_units(units)
        self.scorers = [
            _Scorer(self.units, name=f"scorer_{s}", dtype=self.dtype_policy) for s in scales
        ]
        self.scale_scorer = _Scorer(None, name="scale_scorer", dtype=self.dtype_policy)
        self.supports_masking = True

    def build(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(
                "MultiScaleAttention expects (batch, time, features), received shape "
                f"{tuple(input_shape)}"
            )
        for scorer in (*self.scorers, self.scale_scorer):
            scorer.build((None, input_shape[-1]))

    def call(self, inputs, mask=None):
        time = ops.shape(inputs)[1]
        frame_mask = (
            ops.ones(ops.shape(inputs)[:2], inputs.dtype)
            if mask is None
            else ops.cast(mask, inputs.dtype)
        )
        pooled_per_scale, frame_weights = [], []
        for scale, scorer in zip(self.scales, self.scorers):
            windows, counts = self._windows(inputs, frame_mask, scale)
            alpha = _masked_softmax(scorer(windows), counts > 0)
            pooled_per_scale.append(
                ops.einsum("bw,bwd->bd", ops.cast(alpha, inputs.dtype), windows)
            )
            # α of a window, shared by its frames: padded frames get nothing.
            per_frame = ops.repeat(
                alpha / ops.maximum(ops.cast(counts, "float32"), 1.0), scale, axis=1
            )[:, :time]
            frame_weights.append(per_frame * ops.cast(frame_mask, "float32"))
        pooled_per_scale = ops.stack(pooled_per_scale, axis=1)
        beta = _masked_softmax(self.scale_scorer(pooled_per_scale), None)
        pooled = ops.einsum("bs,bsd->bd", ops.cast(beta, inputs.dtype), pooled_per_scale)
        weights = ops.stack(frame_weights, axis=1) * beta[:, :, None]
        return pooled, weights

    @staticmethod
    def _windows(inputs, frame_mask, scale):
        """Masked means of consecutive windows of `scale` frames.

        Returns `(B, ceil(T/scale), D)` and their frame counts.
        """
        if scale == 1:
            return inputs, frame_mask
        time = ops.shape(inputs)[1]
        pad = (scale - time % scale) % scale
        x = ops.pad(inputs * frame_mask[:, :, None], [[0, 0], [0, pad], [0, 0]])
        m = ops.pad(frame_mask, [[0, 0], [0, pad]])
        batch, num_windows = ops.shape(x)[0], ops.shape(x)[1] // scale
        sums = ops.sum(ops.reshape(x, (batch, num_windows, scale, inputs.shape[-1])), axis=2)
        counts = ops.sum(ops.reshape(m, (batch, num_windows, scale)), axis=2)
        return sums / ops.maximum(counts, 1.0)[:, :, None], counts

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1]), (input_shape[0], len(self.scales), input_shape[1])

    def flops(self, input_shape):
        time, dim = input_shape[1], input_shape[-1]
        total = self.scale_scorer.flops(len(self.scales), dim) + 2 * len(self.scales) * dim
        for scale, scorer in zip(self.scales, self.scorers):
            windows = -(-time // scale)
            total += scorer.flops(windows, dim) + 2 * windows * dim
        return total

    def get_config(self):
        return {**super().get_config(), "scales": list(self.scales), "units": self.units}
