"""Layers of the chapter-6 restoration models (`vlm_tf.models.restoration`)."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops


@keras.saving.register_keras_serializable(package="vlm_tf")
class CentreFrame(keras.layers.Layer):
    """`(B, T, H, W, C)` → `(B, H, W, C)`: frame T // 2, the one a window of frames restores."""

    def call(self, inputs):
        return inputs[:, inputs.shape[1] // 2]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *input_shape[2:])


@keras.saving.register_keras_serializable(package="vlm_tf")
class RelativeToCentre(keras.layers.Layer):
    """`(B, T, H, W, C)` → the same shape: the centre frame kept.

    Every other frame is replaced by its difference from the centre one.

    The same information, arranged so that a network which ignores the
    neighbours is a single-frame network: where nothing moves the
    differences hold only noise, and where something does they hold the
    motion, next to the frame they are to be aligned with.
    """

    def call(self, inputs):
        centre = inputs[:, inputs.shape[1] // 2 : inputs.shape[1] // 2 + 1]
        mask = np.ones((1, inputs.shape[1], 1, 1, 1), np.float32)
        mask[0, inputs.shape[1] // 2] = 0.0
        return inputs - centre * ops.cast(mask, inputs.dtype)


@keras.saving.register_keras_serializable(package="vlm_tf")
class FoldTime(keras.layers.Layer):
    """`(B, T, H, W, C)` → `(B, H, W, T·C)`: the frames of a window stacked as channels.

    A 2-D convolution on the stack compares the same place in every frame,
    which is what averaging out noise, or gathering the sub-pixel shifts
    super-resolution lives on, needs (early fusion, as in VESPCN).
    """

    def call(self, inputs):
        # Frame sizes may be unknown until called: a restorer trained on
        # 64×64 crops restores a video of any size.
        frames, channels = inputs.shape[1], inputs.shape[4]
        shape = ops.shape(inputs)
        stacked = ops.transpose(inputs, (0, 2, 3, 1, 4))
        return ops.reshape(stacked, (shape[0], shape[2], shape[3], frames * channels))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2], input_shape[3], input_shape[1] * input_shape[4])


@keras.saving.register_keras_serializable(package="vlm_tf")
class GlobalContext(keras.layers.Layer):
    """Adds to every position a learnt function of the features' mean over the frame.

    A 3×3 stack sees a few pixels; how dark or tinted a whole clip is (what
    enhancement must undo) is a property of the frame, not of a window.
    The dense map starts at zero, so the layer starts as the identity.
    """

    def build(self, input_shape):
        channels = input_shape[-1]
        self.dense = keras.layers.Dense(
            channels, kernel_initializer="zeros", name="dense", dtype=self.dtype_policy
        )
        self.dense.build((input_shape[0], channels))

    def call(self, inputs):
        context = self.dense(ops.mean(inputs, axis=(1, 2)))
        return inputs + context[:, None, None, :]


@keras.saving.register_keras_serializable(package="vlm_tf")
class PixelShuffle(keras.layers.Layer):
    """`(B, H, W, C·s²)` → `(B, H·s, W·s, C)`: sub-pixel convolution's rearrangement.

    From Shi et al., 2016; as `tf.nn.depth_to_space` does it.
    """

    def __init__(self, scale, **kwargs):
        super().__init__(**kwargs)
        self.scale = int(scale)

    def call(self, inputs):
        s = self.scale
        out = inputs.shape[3] // (s * s)
        batch, height, width = (ops.shape(inputs)[k] for k in range(3))
        blocks = ops.reshape(inputs, (batch, height, width, s, s, out))
        blocks = ops.transpose(blocks, (0, 1, 3, 2, 4, 5))
        return ops.reshape(blocks, (batch, height * s, width * s, out))

    def compute_output_shape(self, input_shape):
        s = self.scale
        return (
            input_shape[0],
            *(None if n is None else n * s for n in input_shape[1:3]),
            input_shape[3] // (s * s),
        )

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}


# Keys' cubic convolution parameter of tf.image.resize's "bicubic".
KEYS_A = -0.5


def _keys(distance, a=KEYS_A):
    d = abs(distance)
    if d <= 1:
        return (a + 2) * d**3 - (a + 3) * d**2 + 1
    if d < 2:
        return a * d**3 - 5 * a * d**2 + 8 * a * d - 4 * a
    return 0.0


def bicubic_phase_kernel(scale):
    """`(5, scale)`: the weight of input pixels i−2 … i+2 for output pixel i·scale + p.

    It uses half-pixel centres.
    """
    kernel = np.zeros((5, scale), np.float32)
    for phase in range(scale):
        position = (2 * phase + 1 - scale) / (2 * scale)
        for tap, offset in enumerate(range(-2, 3)):
            kernel[tap, phase] = _keys(position - offset)
    return kernel


@keras.saving.register_keras_serializable(package="vlm_tf")
class Upscale(keras.layers.Layer):
    """`(B, h, w, C)` → `(B, h·s, w·s, C)`: `tf.image.resize(..., "bicubic")` by a whole factor.

    It serves frames whose size is known only when called.

    `keras.layers.UpSampling2D` and `keras.ops.image.resize` need the size
    when the graph is traced, which a SavedModel serving clips of any size
    does not have. Enlarging by a whole factor s is a fixed filter: output
    pixel i·s + p mixes input pixels i−2 … i+2 with weights that depend on
    p only, so the layer is one convolution per axis with s outputs, the
    phases then interleaved. As in TensorFlow's resize, taps that fall off
    the frame get no weight and the others are rescaled to sum to 1.
    """

    def __init__(self, scale, **kwargs):
        super().__init__(**kwargs)
        self.scale = int(scale)
        kernel = bicubic_phase_kernel(self.scale)
        self._rows = kernel.reshape(5, 1, 1, self.scale)
        self._columns = kernel.reshape(1, 5, 1, self.scale)

    def _pass(self, planes, kernel):
        # Zero padding, then the weights that fell inside the frame summed
        # from the same filter on ones, to renormalise by.
        ones = ops.ones_like(planes[:1])
        return ops.conv(planes, kernel, padding="same") / ops.conv(ones, kernel, padding="same")

    def call(self, inputs):
        s = self.scale
        batch, height, width = (ops.shape(inputs)[k] for k in range(3))
        channels = inputs.shape[3]
        planes = ops.reshape(
            ops.transpose(inputs, (0, 3, 1, 2)), (batch * channels, height, width, 1)
        )
        tall = self._pass(planes, ops.cast(self._rows, inputs.dtype))
        tall = ops.reshape(
            ops.transpose(tall, (0, 1, 3, 2)), (batch * channels, height * s, width, 1)
        )
        wide = ops.reshape(
            self._pass(tall, ops.cast(self._columns, inputs.dtype)),
            (batch, channels, height * s, width * s),
        )
        return ops.transpose(wide, (0, 2, 3, 1))

    def compute_output_shape(self, input_shape):
        return (
            input_shape[0],
            *(None if n is None else n * self.scale for n in input_shape[1:3]),
            input_shape[3],
        )

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}
