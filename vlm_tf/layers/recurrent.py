"""`LSTM` and `ConvLSTM2D`: Keras' layers, with the input projection done once for all steps.

`LSTM` does so when no fused kernel applies; `ConvLSTM2D` wherever no dropout,
mask or given state asks for Keras' own path.

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


class _ProjectedLoop:
    """The hoisting both layers share: where `_projects_inputs` allows, `_project` takes every
    step's input through the kernel at once, and Keras' own loop over time (XLA-ready) runs
    `_step`, a weightless step that borrows the cell's weights, on the result; elsewhere the
    Keras layer's own `call` runs.
    """

    def _plain(self, mask, initial_state):
        """Whether the call asks for nothing but the loop: no mask, no given or kept state, no
        dropout, no unrolling. Going backwards is the loop's own (`build`).
        """
        special = (
            self.stateful
            or self.unroll
            or self.return_state
            or self.dropout
            or self.recurrent_dropout
        )
        return not special and mask is None and initial_state is None

    def build(self, sequences_shape, initial_state_shape=None):
        super().build(sequences_shape, initial_state_shape)
        # Going backwards too, as `Bidirectional`'s second copy of a layer does.
        self._loop = keras.layers.RNN(
            self._step(self.cell, dtype=self.dtype_policy),
            return_sequences=self.return_sequences,
            go_backwards=self.go_backwards,
            dtype=self.dtype_policy,
        )

    def call(self, sequences, initial_state=None, mask=None, training=False):
        if not self._projects_inputs(mask, initial_state):
            return super().call(
                sequences, initial_state=initial_state, mask=mask, training=training
            )
        return self._loop(self._project(sequences), training=training)


@keras.saving.register_keras_serializable(package="vlm_tf")
class LSTM(_ProjectedLoop, keras.layers.LSTM):
    """`keras.layers.LSTM` with the input projection hoisted out of the time loop.

    It is hoisted where no fused kernel applies (see module docstring).
    """

    _step = _RecurrentStep

    def _projects_inputs(self, mask, initial_state):
        fused = (
            self.activation is keras.activations.tanh
            and self.recurrent_activation is keras.activations.sigmoid
            and _gpu_at_hand()
        )
        return not fused and self.use_bias and self._plain(mask, initial_state)

    def _project(self, sequences):
        cell = self.cell
        return ops.matmul(sequences, ops.cast(cell.kernel, sequences.dtype)) + ops.cast(
            cell.bias, sequences.dtype
        )


class _ConvRecurrentStep(keras.layers.Layer):
    """One ConvLSTM step on an input already convolved with the kernel.

    `z = x_t + conv(h, R)`, one convolution with all four gates' recurrent
    kernels at once, then the gates of `cell`, whose weights it uses.
    """

    def __init__(self, cell, **kwargs):
        super().__init__(**kwargs)
        self.conv_cell = cell
        self.state_size = -1  # the states are maps: `get_initial_state` makes them

    def get_initial_state(self, batch_size=None):
        return self.conv_cell.get_initial_state(batch_size)

    def call(self, inputs, states, training=False):
        h, c = states
        cell = self.conv_cell
        recurrent = cell.recurrent_conv(h, ops.cast(cell.recurrent_kernel, inputs.dtype))
        i, f, g, o = ops.split(inputs + recurrent, 4, axis=-1)
        c = cell.recurrent_activation(f) * c + cell.recurrent_activation(i) * cell.activation(g)
        h = cell.recurrent_activation(o) * cell.activation(c)
        return h, [h, c]


@keras.saving.register_keras_serializable(package="vlm_tf")
class ConvLSTM2D(_ProjectedLoop, keras.layers.ConvLSTM2D):
    """`keras.layers.ConvLSTM2D` with the input convolution hoisted out of the time loop.

    Keras' cell makes eight small convolutions a step: the input and the
    state, each with the four gates' kernels one at a time. Here the input
    is convolved for every frame at once, `(B·T, H, W, C)` with all four
    gates' kernels, one large convolution; the loop keeps one convolution of
    the state a step. The weights, their names and the results are Keras'
    (tested to float32 round-off), so a `keras.layers.ConvLSTM2D`'s weights
    load into it; Keras' own path still runs where this one does not apply
    (dropout, masks, states given or kept, channels first).
    """

    _step = _ConvRecurrentStep

    def _projects_inputs(self, mask, initial_state):
        return self.data_format == "channels_last" and self._plain(mask, initial_state)

    def _project(self, sequences):
        cell = self.cell
        batch, steps = ops.shape(sequences)[0], ops.shape(sequences)[1]
        projected = ops.conv(
            ops.reshape(sequences, (-1, *tuple(sequences.shape[2:]))),
            ops.cast(cell.kernel, sequences.dtype),
            strides=cell.strides,
            padding=cell.padding,
            data_format=cell.data_format,
            dilation_rate=cell.dilation_rate,
        )
        if cell.bias is not None:
            projected = projected + ops.cast(cell.bias, sequences.dtype)
        return ops.reshape(projected, (batch, steps, *tuple(projected.shape[1:])))
