"""Frame differences as extra channels: where something moved, and which way."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="vlm_tf")
class FrameDifference(keras.layers.Layer):
    """`(B, T, H, W, C)` → `(B, T, H, W, 2C)`.

    Each frame next to its difference from the previous one.

    The first frame's difference is zero. A 2-D convolution sees a single
    frame and cannot tell which way an edge is moving; given the frame and
    the change since the last one, a 3×3 kernel can, because the sign of the
    change at an edge depends on the direction of motion.
    """

    def call(self, inputs):
        previous = ops.concatenate([inputs[:, :1], inputs[:, :-1]], axis=1)
        return ops.concatenate([inputs, inputs - previous], axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], None if input_shape[-1] is None else 2 * input_shape[-1])
