"""The recurrent cell of §4.2.2 and §4.2.3, exactly as the text writes it."""

from __future__ import annotations

import keras
from keras import ops

# The order of the four blocks in `kernel`, `recurrent_kernel` and `bias`.
GATE_ORDER = ("i", "f", "o", "h")


@keras.saving.register_keras_serializable(package="vlm_tf")
class TextGatedRNNCell(keras.layers.Layer):
    """A Keras RNN cell for the text's gated recurrence (use it in `keras.layers.RNN`).

        i_t = sigmoid(W_i[h_{t−1}, x_t] + b_i)                      (4.2.2)
        f_t = sigmoid(W_f[h_{t−1}, x_t] + b_f)
        o_t = sigmoid(W_o[h_{t−1}, x_t] + b_o)
        h_t = (1 − f_t) ⊙ h_{t−1} + i_t ⊙ tanh(W_h[h_{t−1}, x_t] + b_h)   (4.2.3)

    As printed, and so not an LSTM: there is one state (no cell state), a
    forget gate at 1 discards the past, and o_t reaches nothing: the cell
    keeps the text's W_o and b_o, which receive no gradient (docs/errata.md). The weights are
    stored the Keras way, `x·kernel + h·recurrent_kernel + bias`, with the
    blocks in `GATE_ORDER`; the text's W_g is `[recurrent_kernel_g.T, kernel_g.T]`.

    Args:
        units: size of the hidden state.
        kernel_initializer, recurrent_initializer, bias_initializer: as in
            `keras.layers.LSTMCell`.
    """

    def __init__(
        self,
        units,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if int(units) < 1:
            raise ValueError(f"units must be a positive integer, received {units!r}")
        self.units = int(units)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.recurrent_initializer = keras.initializers.get(recurrent_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.state_size = self.units
        self.output_size = self.units

    def build(self, input_shape):
        width = len(GATE_ORDER) * self.units
        self.kernel = self.add_weight(
            shape=(input_shape[-1], width), initializer=self.kernel_initializer, name="kernel"
        )
        self.recurrent_kernel = self.add_weight(
            shape=(self.units, width),
            initializer=self.recurrent_initializer,
            name="recurrent_kernel",
        )
        self.bias = self.add_weight(shape=(width,), initializer=self.bias_initializer, name="bias")

    def call(self, inputs, states, training=False):
        h_prev = states[0] if isinstance(states, (list, tuple)) else states
        z = ops.matmul(inputs, self.kernel) + ops.matmul(h_prev, self.recurrent_kernel) + self.bias
        # o_t = sigmoid(z_o) is left out: §4.2.3 never uses it, so computing
        # it would change nothing but the time a step takes.
        z_i, z_f, _, z_h = ops.split(z, len(GATE_ORDER), axis=-1)
        i_t, f_t = ops.sigmoid(z_i), ops.sigmoid(z_f)
        h_t = (1.0 - f_t) * h_prev + i_t * ops.tanh(z_h)
        return h_t, [h_t]

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "recurrent_initializer": keras.initializers.serialize(self.recurrent_initializer),
            "bias_initializer": keras.initializers.serialize(self.bias_initializer),
        }
