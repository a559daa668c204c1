"""`LSTM`: Keras' LSTM, with the input projection done once for all steps.

It does so when no fused kernel applies.

Keras' LSTM multiplies each step's input by the input kernel inside the
loop over time. When the input is wide, as in the text's §5.2.1 network
(30 752 features per frame, flattened conv maps), that is one small-batch
product per step reading the whole 31 MB kernel each time, bound by memory
bandwidth. Doing the product for every step at once, `(B·T, F) × (F, 4U)`,
is one large matrix product; only `h × R` stays in the loop. cuDNN does the
same inside its fused kernel, which Keras uses on a GPU for the standard
LSTM (tanh and sigmoid, no recurrent dropout). So this layer takes that
path wherever Keras has no fused kernel to offer: any other activation (the
text's `relu`), and every LSTM when no GPU is at hand. On a CPU even the
default model's narrow input (256 features a frame) gains: +31 % training
clips/s in mixed bfloat16 on a Xeon with AMX (benchmarks/lstm_projection.py,
docs/benchmarks.md). Everything else is Keras' own code. The weights, their
names and the results are Keras' LSTM's (tested to float32 round-off), so
a `keras.layers.LSTM`'s weights load into it.
"""

from __future__ import annotations

import functools

import keras
from keras import ops


@functools.cache
def _gpu_at_hand():
    """Whether Keras' backend sees a GPU, where its LSTM takes cuDNN's fused kernel; asked once a
    process (the devices a backend sees are fixed once it starts), not at every call of a layer.
    """
    backend = keras.config.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return bool(tf.config.list_logical_devices("GPU"))
    if backend == "jax":
        import jax

        return jax.default_backend() == "gpu"
    if backend == "torch":
        import torch

        return torch.cuda.is_available()
    return False


class _RecurrentStep(keras.layers.Layer):
    """One LSTM step on an input already multiplied by the kernel.

    `z = x_t + h·R`, then the gates of `cell`, whose weights it uses.
    """

    def __init__(self, cell, **kwargs):
        super().__init__(**kwargs)
        self.lstm_cell = cell
        self.state_size = [cell.units, cell.units]
        self.output_size = cell.units

    def call(self, inputs, states, training=False):
        h, c = states
        cell = self.lstm_cell
        i, f, g, o = ops.split(
            inputs + ops.matmul(h, ops.cast(cell.recurrent_kernel, inputs.dtype)), 4, axis=-1
        )
        c = cell.recurrent_activation(f) * c + cell.recurrent_activation(i) * cell.activation(g)
        h = cell.recurrent_activation(o) * cell.activation(c)
        return h, [h, c]


@keras.saving.register_keras_serializable(package="vlm_tf")
class LSTM(keras.layers.LSTM):
    """`keras.layers.LSTM` with the input projection hoisted out of the time loop.

    It is hoisted where no fused kernel applies (see module docstring).
    """

    def _projects_inputs(self, mask, initial_state):
        fused = (
            self.activation is keras.activations.tanh
            and self.recurrent_activation is keras.activations.sigmoid
            and _gpu_at_hand()
        )
        plain = not (
            self.go_backwards
            or self.stateful
            or self.unroll
            or self.return_state
            or self.dropout
            or self.recurrent_dropout
        )
        return not fused and plain and self.use_bias and mask is None and initial_state is None

    def build(self, sequences_shape, initial_state_shape=None):
        super().build(sequences_shape, initial_state_shape)
        # Keras' own loop over time (XLA-ready, masks and all), run on the
        # projected inputs by a weightless step that borrows this cell's weights.
        self._loop = keras.layers.RNN(
            _RecurrentStep(self.cell, dtype=self.dtype_policy),
            return_sequences=self.return_sequences,
            dtype=self.dtype_policy,
        )

    def call(self, sequences, initial_state=None, mask=None, training=False):
        if not self._projects_inputs(mask, initial_state):
            return super().call(
                sequences, initial_state=initial_state, mask=mask, training=training
            )
        cell = self.cell
        projected = ops.matmul(sequences, ops.cast(cell.kernel, sequences.dtype)) + ops.cast(
            cell.bias, sequences.dtype
        )
        return self._loop(projected, training=training)
