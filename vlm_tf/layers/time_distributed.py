"""`TimeDistributed` that folds time into the batch.

Keras 3's `keras.layers.TimeDistributed` (checked on 3.15) loops in Python
over a static time axis, calling the wrapped layer once per frame, and on a
dynamic one (`Input(shape=(None, H, W, C))`, the text's shape) traced inside a
`tf.function` it uses `vectorized_map` and returns wrong values: a SavedModel
exported with a free time axis disagrees with the Keras model it came from
(docs/design.md has the reproducer). Reshaping `(B, T, ...)` to
`(B·T, ...)`, calling the layer once and reshaping back is exact for any
per-frame layer, and one large call is faster than T small ones.
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="vlm_tf")
class TimeDistributed(keras.layers.TimeDistributed):
    """Applies `layer` to every frame of a `(batch, time, ...)` tensor.

    It makes one call on `(batch·time, ...)`.

    A drop-in for `keras.layers.TimeDistributed` (same constructor and
    config). The per-frame shape (everything after the time axis) must be
    known when the model is built.
    """

    def call(self, inputs, training=None, mask=None):
        frame_shape = tuple(inputs.shape[2:])
        if any(dim is None for dim in frame_shape):
            raise ValueError(
                f"TimeDistributed({self.layer.name}) needs a known per-frame shape, received "
                f"{inputs.shape}"
            )
        batch, time = ops.shape(inputs)[0], ops.shape(inputs)[1]
        kwargs = {}
        if self.layer._call_has_training_arg:
            kwargs["training"] = training
        if mask is not None and self.layer._call_has_mask_arg:
            kwargs["mask"] = ops.reshape(mask, (-1, *tuple(mask.shape[2:])))
        outputs = self.layer.call(ops.reshape(inputs, (-1, *frame_shape)), **kwargs)
        return ops.reshape(outputs, (batch, time, *tuple(outputs.shape[1:])))
