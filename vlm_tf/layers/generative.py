"""Layers of the generative models (vlm_tf.models.video_gan).

Backgrounds, sprites and their motion, rendering, compositing, pixel
ranges.
"""

from __future__ import annotations

import math

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="vlm_tf")
class SpriteRenderer(keras.layers.Layer):
    """Renders a clip from a background, a sprite and a per-frame pose.

    `[(B,H,W,3), (B,H,W,4), (B,T,4)]` or, with a pivot offset,
    `[(B,H,W,3), (B,H,W,4), (B,T,4), (B,2)]` → `(B,T,H,W,3)`.

    The sprite is an RGBA image (colour tanh, opacity sigmoid) drawn about
    the frame centre; its opacity is faded by a Gaussian window of
    `window` (in half-frames), so it starts as one compact object. Each
    frame's pose (translation x, y, log-scale, angle; unbounded values
    squashed by tanh) moves, scales and turns it, and the warped sprite is
    laid over the static background by its opacity. The warp samples the
    sprite bilinearly, so the gradient reaches both the sprite's pixels and
    the pose: the discriminator's verdict on the motion reaches the motion
    path. Background and colours are in [−1, 1].

    The optional offset (x, y; tanh-squashed to `max_offset`) puts the
    sprite that far from the point it turns about, constant over the clip:
    the pose's translation is then the pivot's, and a steady turn swings
    the sprite round it as the data's rotating objects swing (their pivot
    lies 0.9–1.3 radii off their centre, vlm_tf.data.synthetic). Without
    it the sprite can only spin in place, which a generator turned into
    drifts (docs/design.md, "Clips from words").
    """

    def __init__(self, *, max_shift=0.75, max_log_scale=0.8, window=0.35, max_offset=0.5, **kwargs):
        super().__init__(**kwargs)
        self.max_shift = max_shift
        self.max_log_scale = max_log_scale
        self.window = window
        self.max_offset = max_offset

    def get_config(self):
        return {
            **super().get_config(),
            "max_shift": self.max_shift,
            "max_log_scale": self.max_log_scale,
            "window": self.window,
            "max_offset": self.max_offset,
        }

    def call(self, inputs):
        background, sprite, pose = inputs[:3]
        height, width = sprite.shape[1], sprite.shape[2]
        batch, frames = ops.shape(pose)[0], ops.shape(pose)[1]
        grid_y, grid_x = _pixel_centres(height, width)
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
        if len(inputs) == 4:
            offset = self.max_offset * ops.tanh(ops.cast(inputs[3], "float32"))
            u = u - offset[:, None, None, None, 0]
            v = v - offset[:, None, None, None, 1]
        window = ops.exp(-(grid_x**2 + grid_y**2) / (2.0 * self.window**2))
        colour = ops.tanh(ops.cast(sprite[..., :3], "float32"))
        opacity = ops.sigmoid(ops.cast(sprite[..., 3:], "float32")) * window[..., None]
        warped = _bilinear(ops.concatenate([colour, opacity], axis=-1), u, v, batch, frames)
        alpha = warped[..., 3:]
        return alpha * warped[..., :3] + (1.0 - alpha) * ops.expand_dims(
            ops.cast(background, "float32"), 1
        )

    def compute_output_shape(self, input_shapes):
        background, _, pose = input_shapes[:3]
        return (background[0], pose[1], *background[1:])


@keras.saving.register_keras_serializable(package="vlm_tf")
class TwoColourBackground(keras.layers.Layer):
    """`[pattern, colours]` → a background `(B, H, W, 3)`: the two colours mixed by the pattern.

    `pattern` is `(B, h, w, 1)` in [0, 1], `colours` `(B, 6)` in [−1, 1].

    The pattern is upsampled bilinearly from `(h, w)` to `size`, so the
    background has no sharp detail of its own (see `build_video_generator`).
    With `colour_share` below 1 the mixture is pulled towards its own grey:
    `share · colour + (1 − share) · mean over the channels`.
    """

    def __init__(self, size, colour_share=1.0, **kwargs):
        super().__init__(**kwargs)
        self.size = tuple(size)
        self.colour_share = float(colour_share)

    def get_config(self):
        return {**super().get_config(), "size": self.size, "colour_share": self.colour_share}

    def call(self, inputs):
        pattern, colours = inputs
        pattern = ops.image.resize(
            ops.cast(pattern, "float32"), self.size, interpolation="bilinear"
        )
        first = ops.cast(colours[:, None, None, :3], "float32")
        second = ops.cast(colours[:, None, None, 3:], "float32")
        mixed = first * (1.0 - pattern) + second * pattern
        if self.colour_share == 1.0:
            return mixed
        grey = ops.mean(mixed, axis=-1, keepdims=True)
        return self.colour_share * mixed + (1.0 - self.colour_share) * grey

    def compute_output_shape(self, input_shapes):
        return (input_shapes[0][0], *self.size, 3)


@keras.saving.register_keras_serializable(package="vlm_tf")
class FlatSprite(keras.layers.Layer):
    """`[colour (B, 3), shape (B, H, W, 1)]` → the RGBA sprite `(B, H, W, 4)`.

    The sprite `SpriteRenderer` takes: one colour, opacity logits from the
    shape.
    """

    def call(self, inputs):
        colour, shape = inputs
        colour = ops.cast(colour[:, None, None, :], shape.dtype) * ops.ones_like(shape)
        return ops.concatenate([colour, shape], axis=-1)

    def compute_output_shape(self, input_shapes):
        return (*input_shapes[1][:-1], 4)


@keras.saving.register_keras_serializable(package="vlm_tf")
class IntegrateMotion(keras.layers.Layer):
    """`[pose (B, P), velocity (B, P), residual (B, T, P)]` → per-frame poses `(B, T, P)`.

    Frame t's pose is the running sum of `velocity + residual_scale ·
    residual` up to t, shifted so that its mean over the clip is `pose`: a
    constant velocity is a straight, steady motion centred on `pose`, which
    keeps the object in the frame whichever way it moves. The scale keeps
    the residual a correction: its weights learn at the optimizer's rate,
    and unscaled they soon outweigh the velocity they correct.
    """

    def __init__(self, *, residual_scale=0.03, **kwargs):
        super().__init__(**kwargs)
        self.residual_scale = residual_scale

    def get_config(self):
        return {**super().get_config(), "residual_scale": self.residual_scale}

    def call(self, inputs):
        pose, velocity, residual = inputs
        path = ops.cumsum(velocity[:, None, :] + self.residual_scale * residual, axis=1)
        return pose[:, None, :] + path - ops.mean(path, axis=1, keepdims=True)

    def compute_output_shape(self, input_shapes):
        return input_shapes[2]


def _pixel_centres(height, width):
    """`(H, W)` grids of the y and x of every pixel centre.

    They are in the [−1, 1] units `_bilinear` samples at.
    """
    ys = (ops.arange(height, dtype="float32") + 0.5) / height * 2.0 - 1.0
    xs = (ops.arange(width, dtype="float32") + 0.5) / width * 2.0 - 1.0
    return ops.meshgrid(ys, xs, indexing="ij")


def _bilinear(image, u, v, batch, frames):
    """Samples `image (B,H,W,C)` at `(u, v)` in [−1, 1], shaped `(B,T,H',W')` → `(B,T,H',W',C)`.

    Samples outside the image are zero.
    """
    height, width, channels = image.shape[1], image.shape[2], image.shape[3]
    x = (u + 1.0) * 0.5 * width - 0.5
    y = (v + 1.0) * 0.5 * height - 0.5
    x0, y0 = ops.floor(x), ops.floor(y)
    flat = ops.reshape(image, (-1, channels))
    offset = ops.reshape(ops.arange(batch) * (height * width), (-1, 1, 1, 1))
    result = 0.0
    for corner_x, weight_x in ((x0, x0 + 1.0 - x), (x0 + 1.0, x - x0)):
        for corner_y, weight_y in ((y0, y0 + 1.0 - y), (y0 + 1.0, y - y0)):
            inside = (
                (corner_x >= 0)
                & (corner_x <= width - 1)
                & (corner_y >= 0)
                & (corner_y <= height - 1)
            )
            cx = ops.cast(ops.clip(corner_x, 0, width - 1), "int32")
            cy = ops.cast(ops.clip(corner_y, 0, height - 1), "int32")
            values = ops.take(flat, ops.reshape(offset + cy * width + cx, (-1,)), axis=0)
            values = ops.reshape(
                values, (batch, frames, ops.shape(u)[2], ops.shape(u)[3], channels)
            )
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
class WarpLastFrame(keras.layers.Layer):
    """`[generated (B, K, H, W, 6), observed (B, T, H, W, 3)]` → `(B, K, H, W, 3)`.

    `observed` and the result are in [0, 255].

    Each predicted frame is the last observed frame warped by a generated
    flow (channels 4–5: how far, in pixels up to `max_flow`, to look back
    for each output pixel), with the generated colour (channels 0–2, tanh)
    pasted where the generated mask (channel 3, sigmoid) says: what moves
    is moved, what appears is painted. A zero flow and mask is the
    copy-last-frame baseline, where training starts.
    """

    # sigmoid(x − 4): a zero channel is a mask of 0.02, so the model starts
    # from the (warped) last frame, not from half a grey frame.
    MASK_OFFSET = 4.0

    def __init__(self, *, max_flow=8.0, **kwargs):
        super().__init__(**kwargs)
        self.max_flow = max_flow

    def get_config(self):
        return {**super().get_config(), "max_flow": self.max_flow}

    def call(self, inputs):
        generated, observed = inputs
        generated = ops.cast(generated, "float32")
        last = ops.cast(observed[:, -1], "float32")
        height, width = last.shape[1], last.shape[2]
        batch, frames = ops.shape(generated)[0], ops.shape(generated)[1]
        grid_y, grid_x = _pixel_centres(height, width)
        flow = self.max_flow * ops.tanh(generated[..., 4:6])
        # Pixels → [−1, 1] units; clipped to the frame, so the border repeats
        # instead of going black.
        u = ops.clip(grid_x + flow[..., 0] * 2.0 / width, -1.0 + 1.0 / width, 1.0 - 1.0 / width)
        v = ops.clip(grid_y + flow[..., 1] * 2.0 / height, -1.0 + 1.0 / height, 1.0 - 1.0 / height)
        warped = _bilinear(last, u, v, batch, frames)
        colour = (ops.tanh(generated[..., :3]) + 1.0) * 127.5
        mask = ops.sigmoid(generated[..., 3:4] - self.MASK_OFFSET)
        return mask * colour + (1.0 - mask) * warped

    def compute_output_shape(self, input_shapes):
        return (*input_shapes[0][:-1], 3)
