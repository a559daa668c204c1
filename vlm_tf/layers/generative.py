"""Layers of the generative models (vlm_tf.models.video_gan): rendering a sprite over a background, compositing, pixel ranges."""

from __future__ import annotations

import math

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="vlm_tf")
class SpriteRenderer(keras.layers.Layer):
    """Renders a clip from a background, a sprite and a per-frame pose: `[(B,H,W,3), (B,H,W,4), (B,T,4)]` → `(B,T,H,W,3)`.

    The sprite is an RGBA image (colour tanh, opacity sigmoid) drawn about
    the frame centre; its opacity is faded by a Gaussian window of
    `window` (in half-frames), so it starts as one compact object. Each
    frame's pose (translation x, y, log-scale, angle; unbounded values
    squashed by tanh) moves, scales and turns it, and the warped sprite is
    laid over the static background by its opacity. The warp samples the
    sprite bilinearly, so the gradient reaches both the sprite's pixels and
    the pose: the discriminator's verdict on the motion reaches the motion
    path. Background and colours are in [−1, 1].
    """

    def __init__(self, *, max_shift=0.75, max_log_scale=0.8, window=0.35, **kwargs):
        super().__init__(**kwargs)
        self.max_shift = max_shift
        self.max_log_scale = max_log_scale
        self.window = window

    def get_config(self):
        return {**super().get_config(), "max_shift": self.max_shift, "max_log_scale": self.max_log_scale, "window": self.window}

    def call(self, inputs):
        background, sprite, pose = inputs
        height, width = sprite.shape[1], sprite.shape[2]
        batch, frames = ops.shape(pose)[0], ops.shape(pose)[1]
        # Output pixel centres in [−1, 1].
        ys = (ops.arange(height, dtype="float32") + 0.5) / height * 2.0 - 1.0
        xs = (ops.arange(width, dtype="float32") + 0.5) / width * 2.0 - 1.0
        grid_y, grid_x = ops.meshgrid(ys, xs, indexing="ij")
        pose = ops.cast(pose, "float32")
        shift_x = self.max_shift * ops.tanh(pose[..., 0])[..., None, None]
        shift_y = self.max_shift * ops.tanh(pose[..., 1])[..., None, None]
        scale = ops.exp(self.max_log_scale * ops.tanh(pose[..., 2]))[..., None, None]
        angle = math.pi * ops.tanh(pose[..., 3])[..., None, None]
        # Where each output pixel falls in the sprite: the inverse pose.
        dx, dy = grid_x - shift_x, grid_y - shift_y
        cos, sin = ops.cos(angle), ops.sin(angle)
        u = (cos * dx + sin * dy) / scale
        v = (-sin * dx + cos * dy) / scale
        window = ops.exp(-(grid_x**2 + grid_y**2) / (2.0 * self.window**2))
        colour = ops.tanh(ops.cast(sprite[..., :3], "float32"))
        opacity = ops.sigmoid(ops.cast(sprite[..., 3:], "float32")) * window[..., None]
        warped = _bilinear(ops.concatenate([colour, opacity], axis=-1), u, v, batch, frames)
        alpha = warped[..., 3:]
        return alpha * warped[..., :3] + (1.0 - alpha) * ops.expand_dims(ops.cast(background, "float32"), 1)

    def compute_output_shape(self, input_shapes):
        background, _, pose = input_shapes
        return (background[0], pose[1], *background[1:])


def _bilinear(image, u, v, batch, frames):
    """Samples `image (B,H,W,C)` at `(u, v)` in [−1, 1], shaped `(B,T,H',W')` → `(B,T,H',W',C)`; zero outside."""
    height, width, channels = image.shape[1], image.shape[2], image.shape[3]
    x = (u + 1.0) * 0.5 * width - 0.5
    y = (v + 1.0) * 0.5 * height - 0.5
    x0, y0 = ops.floor(x), ops.floor(y)
    flat = ops.reshape(image, (-1, channels))
    offset = ops.reshape(ops.arange(batch) * (height * width), (-1, 1, 1, 1))
    result = 0.0
    for corner_x, weight_x in ((x0, x0 + 1.0 - x), (x0 + 1.0, x - x0)):
        for corner_y, weight_y in ((y0, y0 + 1.0 - y), (y0 + 1.0, y - y0)):
            inside = (corner_x >= 0) & (corner_x <= width - 1) & (corner_y >= 0) & (corner_y <= height - 1)
            cx = ops.cast(ops.clip(corner_x, 0, width - 1), "int32")
            cy = ops.cast(ops.clip(corner_y, 0, height - 1), "int32")
            values = ops.take(flat, ops.reshape(offset + cy * width + cx, (-1,)), axis=0)
            values = ops.reshape(values, (batch, frames, ops.shape(u)[2], ops.shape(u)[3], channels))
            weight = weight_x * weight_y * ops.cast(inside, "float32")
            result = result + values * weight[..., None]
    return result


@keras.saving.register_keras_serializable(package="vlm_tf")
class ToPixels(keras.layers.Layer):
    """tanh range [−1, 1] → pixels [0, 255], in float32 whatever the dtype policy."""

    def call(self, inputs):
        return (ops.cast(inputs, "float32") + 1.0) * 127.5


@keras.saving.register_keras_serializable(package="vlm_tf")
class LastFrame(keras.layers.Layer):
    """`(B, T, ...)` → `(B, ...)`: the last time step."""

    def call(self, inputs):
        return inputs[:, -1]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *input_shape[2:])


@keras.saving.register_keras_serializable(package="vlm_tf")
class PasteOnLastFrame(keras.layers.Layer):
    """`[generated (B, K, H, W, 4), observed (B, T, H, W, 3) in [0, 255]]` → `(B, K, H, W, 3)` in [0, 255].

    Each predicted frame is the generated colour (tanh) where the generated
    mask (sigmoid) says so, and the last observed frame elsewhere: what did
    not move is copied, so the model starts from the copy-last-frame
    baseline and learns only what changes.
    """

    def call(self, inputs):
        generated, observed = inputs
        colour = (ops.tanh(generated[..., :3]) + 1.0) * 127.5
        mask = ops.sigmoid(generated[..., 3:])
        last = ops.expand_dims(ops.cast(observed[:, -1], colour.dtype), 1)
        return ops.cast(mask * colour + (1.0 - mask) * last, "float32")

    def compute_output_shape(self, input_shapes):
        return (*input_shapes[0][:-1], 3)
