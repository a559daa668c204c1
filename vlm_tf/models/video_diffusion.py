"""A conditional video diffusion model trained by flow matching (rectified flow).

A clip x₀ (pixels scaled to [−1, 1]) and Gaussian noise ε are mixed on a
straight line,

    x_t = (1 − t)·x₀ + t·ε,    t ∈ [0, 1]  (0: the clip, 1: pure noise),

and the denoiser learns the velocity along that line, v = ε − x₀, by mean
squared error (Lipman et al., 2023; Liu et al., 2023). Sampling starts from
noise at t = 1 and follows the predicted velocity to t = 0 in Euler steps.

Two things steer a clip: a condition vector (a caption embedding; all zeros
means "no prompt") and, optionally, the clip's first frame. Training drops
each now and then, so one network also learns the unconditional velocity,
and sampling mixes the two (classifier-free guidance, Ho & Salimans, 2022):

    v = v_uncond + guidance · (v_cond − v_uncond)

`build_video_denoiser` builds the (2+1)-D U-Net (`keras.layers` and
`keras.ops` only), `VideoDiffusion` trains it (`fit` on batches of
`{"frames": (B, T, H, W, 3) in [0, 255], "condition": (B, D)}`) and
`sample_clips` turns noise into uint8 clips, deterministic for a seed.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf
from keras import ops

DEFAULT_DIFFUSION_STEPS = 32
DEFAULT_GUIDANCE = 3.0
# Groups of GroupNormalization (fewer where a level has fewer channels).
NORM_GROUPS = 8
# Channels per head of the temporal attention.
HEAD_CHANNELS = 32
# The time embedding sees t·1000, DDPM's range of noise levels: on t in
# [0, 1] even its fastest sine would turn through less than a sixth of a period.
TIME_SCALE = 1000.0
# The denoiser's inputs, in order.
DENOISER_INPUTS = ("noisy", "time", "condition", "first_frame", "first_frame_mask")


@keras.saving.register_keras_serializable(package="vlm_tf")
class SinusoidalEmbedding(keras.layers.Layer):
    """`(B,)` times → `(B, dim)`: sines and cosines of `scale·t` at geometric frequencies.

    The transformer's position encoding (Vaswani et al., 2017), as DDPM
    embeds its noise level.
    """

    def __init__(self, dim, *, scale=TIME_SCALE, **kwargs):
        super().__init__(**kwargs)
        if dim < 2 or dim % 2:
            raise ValueError(f"dim must be an even integer ≥ 2, received {dim!r}")
        self.dim = dim
        self.scale = scale

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "scale": self.scale}

    def call(self, time):
        half = self.dim // 2
        # Periods from 2π to 10 000·2π, the transformer's.
        frequencies = ops.exp(-math.log(10_000.0) * ops.arange(half, dtype="float32") / half)
        angles = ops.expand_dims(ops.cast(time, "float32") * self.scale, -1) * frequencies
        embedding = ops.concatenate([ops.sin(angles), ops.cos(angles)], axis=-1)
        return ops.cast(embedding, self.compute_dtype)


@keras.saving.register_keras_serializable(package="vlm_tf")
class AppendFirstFrame(keras.layers.Layer):
    """`[noisy (B,T,H,W,3), first_frame (B,H,W,3), mask (B,)]` → `(B, T, H, W, 7)`.

    Every frame's channels are followed by the first frame's and by the
    mask as a constant channel: each frame sees the frame it must agree
    with, and the mask tells a black first frame from an absent one.
    """

    def call(self, inputs):
        noisy, first_frame, mask = inputs
        ones = ops.ones_like(noisy[..., :1])
        first = ops.expand_dims(ops.cast(first_frame, noisy.dtype), 1) * ones
        mask = ops.reshape(ops.cast(mask, noisy.dtype), (-1, 1, 1, 1, 1)) * ones
        return ops.concatenate([noisy, first, mask], axis=-1)


@keras.saving.register_keras_serializable(package="vlm_tf")
class AdaptiveGroupNorm(keras.layers.Layer):
    """`[x (B, …, C), film (B, 2C)]` → GroupNorm(x)·(1 + scale) + shift.

    `scale, shift = split(film)`: adaptive group normalisation (AdaGN,
    Dhariwal & Nichol, 2021), FiLM (Perez et al., 2018) folded into the
    normalisation, so that both are one multiply-add over the activations
    (on 2 CPU cores a pass over memory at 32×32 costs more than a convolution).
    """

    def __init__(self, groups=NORM_GROUPS, *, epsilon=1e-5, **kwargs):
        super().__init__(**kwargs)
        self.groups = groups
        self.epsilon = epsilon

    def get_config(self):
        return {**super().get_config(), "groups": self.groups, "epsilon": self.epsilon}

    def build(self, input_shapes):
        x, film = input_shapes
        if x[-1] % self.groups or film[-1] != 2 * x[-1]:
            raise ValueError(
                f"AdaptiveGroupNorm needs channels divisible by groups={self.groups} and a film "
                f"vector of twice the channels, received {x} and {film}"
            )

    def call(self, inputs):
        x, film = inputs
        channels = x.shape[-1]
        per_group = (-1, self.groups, channels // self.groups)
        # Statistics in float32, also under mixed precision. Moments per
        # channel, then per group on the small (B, C) tensors: a third
        # faster, forward and backward, than reducing a reshape into groups.
        x = ops.cast(x, "float32")
        channel_mean, channel_variance = ops.moments(x, axes=tuple(range(1, len(x.shape) - 1)))
        channel_mean = ops.reshape(channel_mean, per_group)
        mean = ops.mean(channel_mean, axis=-1, keepdims=True)
        # A group's variance: its channels' variances plus the spread of their means.
        variance = ops.mean(
            ops.reshape(channel_variance, per_group) + ops.square(channel_mean - mean),
            axis=-1,
            keepdims=True,
        )
        scale, shift = ops.split(ops.cast(film, "float32"), 2, axis=-1)
        scale = ops.reshape(1.0 + scale, per_group) * ops.rsqrt(variance + self.epsilon)
        shift = ops.reshape(shift, per_group) - mean * scale
        broadcast = (-1, *(1,) * (len(x.shape) - 2), channels)
        normalized = x * ops.reshape(scale, broadcast) + ops.reshape(shift, broadcast)
        return ops.cast(normalized, self.compute_dtype)


@keras.saving.register_keras_serializable(package="vlm_tf")
class TemporalAttention(keras.layers.Layer):
    """`(B, T, h, w, C)` → the same plus self-attention over the T frames of each pixel.

    Pre-normalised (GroupNorm) and residual, with a learnt embedding of the
    frame index: attention alone does not know the order of the frames.
    The temporal convolutions see three frames each; this lets every frame
    see all the others, at the coarsest level, where it is cheap.
    """

    def __init__(self, *, head_channels=HEAD_CHANNELS, groups=NORM_GROUPS, **kwargs):
        super().__init__(**kwargs)
        self.head_channels = head_channels
        self.groups = groups

    def get_config(self):
        return {**super().get_config(), "head_channels": self.head_channels, "groups": self.groups}

    def build(self, input_shape):
        frames, channels = input_shape[1], input_shape[-1]
        heads = max(1, channels // self.head_channels)
        self.norm = keras.layers.GroupNormalization(
            self.groups, dtype=self.dtype_policy, name="norm"
        )
        self.norm.build(input_shape)
        self.position = self.add_weight(
            shape=(frames, channels),
            initializer=keras.initializers.RandomNormal(stddev=0.02),
            name="position",
        )
        self.attention = keras.layers.MultiHeadAttention(
            heads, channels // heads, dtype=self.dtype_policy, name="attention"
        )
        self.attention.build((None, frames, channels), (None, frames, channels))

    def call(self, x):
        batch = ops.shape(x)[0]
        frames, height, width, channels = x.shape[1:]
        # (B, T, h, w, C) → (B·h·w, T, C): one sequence of frames per pixel.
        tokens = ops.reshape(
            ops.transpose(self.norm(x), (0, 2, 3, 1, 4)), (-1, frames, channels)
        ) + ops.cast(self.position, x.dtype)
        attended = ops.reshape(
            self.attention(tokens, tokens), (batch, height, width, frames, channels)
        )
        return x + ops.transpose(attended, (0, 3, 1, 2, 4))


def _groups(channels):
    return math.gcd(NORM_GROUPS, channels)


def _residual_block(x, embedding, *, name):
    """`(B, T, h, w, C)` → the same: an R(2+1)D unit, modulated, on a residual path.

    spatial conv 1×3×3 → AdaGN(embedding) → swish → temporal conv 3×1×1 → + x

    The nonlinearity sits between the spatial and the temporal convolution,
    as in R(2+1)D (Tran et al., 2018). One normalisation per block, as in
    ConvNeXt, not the two of a pre-activation block: on 2 CPU cores each
    pass over the activations costs about as much as a convolution.
    """
    channels = x.shape[-1]
    h = keras.layers.Conv3D(channels, (1, 3, 3), padding="same", name=f"{name}_spatial")(x)
    # Zero-initialised: every block starts as a plain GroupNorm, and the
    # time and conditions come in as training finds a use for them.
    film = keras.layers.Dense(2 * channels, kernel_initializer="zeros", name=f"{name}_film")(
        embedding
    )
    h = AdaptiveGroupNorm(_groups(channels), name=f"{name}_norm")([h, film])
    h = keras.layers.Activation("swish", name=f"{name}_swish")(h)
    h = keras.layers.Conv3D(channels, (3, 1, 1), padding="same", name=f"{name}_temporal")(h)
    return keras.layers.Add(name=f"{name}_add")([x, h])


def build_video_denoiser(
    *,
    condition_dim,
    num_frames=16,
    image_size=(32, 32),
    filters=(32, 64, 128),
    name="denoiser",
):
    """Builds the velocity network: `{noisy, time, condition, first_frame, first_frame_mask}` → v.

    Inputs, a dict in this order: `noisy (B, T, H, W, 3)` (the clip in
    [−1, 1] mixed with noise), `time (B,)` in [0, 1], `condition (B, D)`
    (zeros: no prompt), `first_frame (B, H, W, 3)` in [−1, 1] (zeros when
    absent), `first_frame_mask (B,)` (1 given, 0 not). Output: the
    velocity `(B, T, H, W, 3)`, float32.

    Shape flow (F₀, F₁, … = filters, E = 4·F₀; level ℓ is H/2^ℓ × W/2^ℓ):

        embedding = swish(Dense(Sinusoidal(time), swish) + Dense(condition))   (B, E)
        [noisy, first_frame, mask] → AppendFirstFrame              (B, T, H, W, 7)
        → Conv3D(F₀, 1×3×3) = skip 0                               (B, T, H, W, F₀)
        down, ℓ = 1 … L−1: Conv3D(Fℓ, 1×2×2, stride 1×2×2) → block = skip ℓ
        coarsest:          → TemporalAttention                     (B, T, H/2^(L−1), …, F_(L−1))
        up, ℓ = L−2 … 0:   Dense(Fℓ) → UpSampling3D(1×2×2) → + skip ℓ → block (ℓ ≥ 1)
        head:              AdaGN → swish → Conv3D(3, 1×3×3)        (B, T, H, W, 3)

    A block (`_residual_block`) is spatial conv 1×3×3 → AdaGN → swish →
    temporal conv 3×1×1, added to its input; AdaGN normalises and then
    scales and shifts every channel by a Dense projection of the embedding
    (FiLM). Down-sampling is ConvNeXt's 2×2 stride-2 convolution.

    Sized for training on 2 CPU cores, where a pass over the activations
    costs about what a convolution does: the full-resolution level has no
    block, only the first convolution and the output head (a block at 32×32
    cost as much as the two coarser levels' together), skips are added, not
    concatenated, and the coarsest level has the attention but no second
    block. The output convolution starts at zero, as in DDPM and ADM: the
    first prediction is v = 0 whatever the input, so training starts at a
    loss of about 1 + var(x₀) instead of that plus a random network's
    output, and no early steps go into undoing that.

    Args:
        condition_dim: length D of the condition vector.
        num_frames: frames per clip.
        image_size: `(H, W)`, each divisible by 2^(len(filters) − 1).
        filters: channels per level, finest first; at least two levels.
        name: model name.
    """
    # === Config checks ===
    filters = (filters,) if isinstance(filters, int) else tuple(filters)
    if len(filters) < 2 or any(int(f) < 1 for f in filters):
        raise ValueError(
            "filters must be two or more positive integers, finest level first, received "
            f"{filters!r}"
        )
    for key, value in (("condition_dim", condition_dim), ("num_frames", num_frames)):
        if value is None or int(value) < 1:
            raise ValueError(f"{key} must be a positive integer, received {value!r}")
    height, width = image_size
    scale = 2 ** (len(filters) - 1)
    if height < scale or width < scale or height % scale or width % scale:
        raise ValueError(
            f"image_size={tuple(image_size)} must be divisible by {scale} for {len(filters)} levels"
        )

    # === Inputs ===
    inputs = {
        "noisy": keras.Input((num_frames, height, width, 3), name="noisy"),
        "time": keras.Input((), name="time"),
        "condition": keras.Input((condition_dim,), name="condition"),
        "first_frame": keras.Input((height, width, 3), name="first_frame"),
        "first_frame_mask": keras.Input((), name="first_frame_mask"),
    }

    # === Layers: the embedding of time and condition ===
    dim = 4 * filters[0]
    time = SinusoidalEmbedding(dim, name="time_embedding")(inputs["time"])
    time = keras.layers.Dense(dim, activation="swish", name="time_dense")(time)
    condition = keras.layers.Dense(dim, name="condition_dense")(inputs["condition"])
    embedding = keras.layers.Add(name="embedding")([time, condition])
    embedding = keras.layers.Activation("swish", name="embedding_swish")(embedding)

    # === Layers: down ===
    x = AppendFirstFrame(name="append_first_frame")(
        [inputs["noisy"], inputs["first_frame"], inputs["first_frame_mask"]]
    )
    x = keras.layers.Conv3D(filters[0], (1, 3, 3), padding="same", name="stem")(x)
    skips = [x]
    for level, channels in enumerate(filters[1:], start=1):
        x = keras.layers.Conv3D(channels, (1, 2, 2), strides=(1, 2, 2), name=f"down{level}")(x)
        x = _residual_block(x, embedding, name=f"down{level}_block")
        skips.append(x)

    # === Layers: the coarsest level ===
    x = TemporalAttention(groups=_groups(filters[-1]), name="middle_attention")(skips.pop())

    # === Layers: up ===
    for level in range(len(filters) - 2, -1, -1):
        x = keras.layers.Dense(filters[level], name=f"up{level}_project")(x)
        x = keras.layers.UpSampling3D((1, 2, 2), name=f"up{level}_upsample")(x)
        x = keras.layers.Add(name=f"up{level}_skip")([x, skips.pop()])
        if level:
            x = _residual_block(x, embedding, name=f"up{level}_block")

    # === Layers: output head ===
    film = keras.layers.Dense(2 * filters[0], kernel_initializer="zeros", name="head_film")(
        embedding
    )
    x = AdaptiveGroupNorm(_groups(filters[0]), name="head_norm")([x, film])
    x = keras.layers.Activation("swish", name="head_swish")(x)
    velocity = keras.layers.Conv3D(
        3, (1, 3, 3), padding="same", kernel_initializer="zeros", dtype="float32", name="velocity"
    )(x)

    # === Functional Model ===
    return keras.Model(inputs, velocity, name=name)


def noised(clips, noise, t):
    """`(x_t, target)`: the clips moved a fraction `t` of the way to the noise, and the velocity.

    `clips` and `noise` are `(B, T, H, W, 3)`, `t` is `(B,)`:

        x_t = (1 − t)·clips + t·noise,    target v = noise − clips = dx_t/dt
    """
    t = ops.reshape(ops.cast(t, "float32"), (-1, 1, 1, 1, 1))
    return (1.0 - t) * clips + t * noise, noise - clips


class VideoDiffusion(keras.Model):
    """Flow-matching training of a `build_video_denoiser` network.

    `fit` takes batches `{"frames": (B, T, H, W, 3) in [0, 255],
    "condition": (B, D)}`. Each step, per clip: noise ε ~ N(0, I), a time
    t ~ U(0, 1), the condition zeroed with probability `condition_drop`
    and the clip's own frame 0 given as first frame with probability
    1 − `first_frame_drop`; the loss is the mean squared error between the
    denoiser's velocity and ε − x₀. The dropped cases are what
    classifier-free guidance needs at sampling time: the same network's
    unconditional velocity (and a first frame that may be absent).

    t is uniform, not logit-normal as in Stable Diffusion 3: sampling's
    first step, at t = 1, decides the colours and layout of the whole clip,
    and a logit-normal t would hardly ever train there.

    Calling the model calls the denoiser.
    """

    def __init__(self, denoiser, *, condition_drop=0.1, first_frame_drop=0.5, seed=0, **kwargs):
        super().__init__(**kwargs)
        if not (0.0 <= condition_drop <= 1.0 and 0.0 <= first_frame_drop <= 1.0):
            raise ValueError(
                "condition_drop and first_frame_drop must lie in [0, 1], received "
                f"{condition_drop!r} and {first_frame_drop!r}"
            )
        self.denoiser = denoiser
        self.condition_drop = float(condition_drop)
        self.first_frame_drop = float(first_frame_drop)
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        # The denoiser is a built functional model: nothing is left to build
        # (BackupAndRestore refuses an unbuilt model).
        self.built = True

    @property
    def metrics(self):
        return [self.loss_tracker]

    def optimizer_variables(self):
        """`[(optimizer, variables)]`: what `train_step` applies the optimizer to."""
        return [(self.optimizer, self.denoiser.trainable_weights)]

    def call(self, inputs, training=False):
        return self.denoiser(inputs, training=training)

    def _kept(self, batch, drop):
        """`(B,)`: 1 for the clips that keep a condition, 0 for the `drop` share that lose it."""
        draw = keras.random.uniform((batch,), seed=self.seed_generator)
        return ops.cast(draw >= drop, "float32")

    def train_step(self, data):
        clips = ops.cast(data["frames"], "float32") / 127.5 - 1.0
        batch = ops.shape(clips)[0]
        noise = keras.random.normal(ops.shape(clips), seed=self.seed_generator)
        t = keras.random.uniform((batch,), seed=self.seed_generator)
        noisy, target = noised(clips, noise, t)
        first_frame_mask = self._kept(batch, self.first_frame_drop)
        inputs = {
            "noisy": noisy,
            "time": t,
            "condition": ops.cast(data["condition"], "float32")
            * self._kept(batch, self.condition_drop)[:, None],
            "first_frame": clips[:, 0] * first_frame_mask[:, None, None, None],
            "first_frame_mask": first_frame_mask,
        }
        with tf.GradientTape() as tape:
            velocity = self.denoiser(inputs, training=True)
            loss = ops.mean(ops.square(ops.cast(velocity, "float32") - target))
        weights = self.denoiser.trainable_weights
        self.optimizer.apply_gradients(zip(tape.gradient(loss, weights), weights))
        self.loss_tracker.update_state(loss)
        return {m.name: m.result() for m in self.metrics}


def guided_velocity(denoiser, inputs, guidance):
    """`v_uncond + guidance · (v_cond − v_uncond)` for a dict of denoiser inputs (NumPy).

    One call on the batch twice over, the second copy with its condition
    zeroed (its first frame, if any, kept): the unconditional velocity is
    "no prompt", not "no first frame".
    """
    count = len(inputs["condition"])
    both = {key: np.concatenate([inputs[key], inputs[key]]) for key in DENOISER_INPUTS}
    both["condition"][count:] = 0.0
    velocity = np.asarray(denoiser.predict_on_batch(both), np.float32)
    conditional, unconditional = velocity[:count], velocity[count:]
    return unconditional + guidance * (conditional - unconditional)


def sample_clips(
    denoiser,
    condition,
    *,
    first_frame=None,
    steps=DEFAULT_DIFFUSION_STEPS,
    guidance=DEFAULT_GUIDANCE,
    seed=0,
    batch_size=32,
):
    """Clips for `condition (N, D)`: uint8 `(N, T, H, W, 3)`.

    Euler steps of the guided velocity from noise at t = 1 to t = 0:

        x ← x + (t_next − t) · v(x, t),    t = 1, 1 − 1/steps, …, 0

    `first_frame`, `(N, H, W, 3)` pixels in [0, 255], conditions every clip
    on its frame and is pasted in as frame 0 of the result: the network is
    trained to reproduce it, and pasting removes what error is left. The
    noise is drawn for all N clips at once from `numpy.random.default_rng(seed)`,
    so a clip depends on the seed and its place in the batch, not on
    `batch_size` (which only bounds memory).
    """
    condition = np.asarray(condition, np.float32)
    num_frames, height, width = denoiser.input["noisy"].shape[1:4]
    if condition.ndim != 2:
        raise ValueError(f"condition must be (N, D), received shape {condition.shape}")
    if int(steps) < 1 or int(batch_size) < 1:
        raise ValueError(
            f"steps and batch_size must be positive, received {steps!r} and {batch_size!r}"
        )
    count = len(condition)
    if first_frame is None:
        first = np.zeros((count, height, width, 3), np.float32)
        mask = np.zeros((count,), np.float32)
    else:
        first_frame = np.asarray(first_frame)
        if first_frame.shape != (count, height, width, 3):
            raise ValueError(
                f"first_frame must be {(count, height, width, 3)} pixels, received "
                f"{first_frame.shape}"
            )
        first = first_frame.astype(np.float32) / 127.5 - 1.0
        mask = np.ones((count,), np.float32)

    x = np.random.default_rng(seed).standard_normal(
        (count, num_frames, height, width, 3), dtype=np.float32
    )
    times = np.linspace(1.0, 0.0, int(steps) + 1, dtype=np.float32)
    for start in range(0, count, int(batch_size)):
        part = slice(start, start + int(batch_size))
        inputs = {
            "condition": condition[part],
            "first_frame": first[part],
            "first_frame_mask": mask[part],
        }
        for t, t_next in zip(times[:-1], times[1:]):
            inputs["noisy"] = x[part]
            inputs["time"] = np.full((len(x[part]),), t, np.float32)
            x[part] += (t_next - t) * guided_velocity(denoiser, inputs, guidance)

    clips = np.clip(np.round((x + 1.0) * 127.5), 0, 255).astype(np.uint8)
    if first_frame is not None:
        clips[:, 0] = np.clip(np.round(first_frame), 0, 255).astype(np.uint8)
    return clips
