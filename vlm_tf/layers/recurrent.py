"""`LSTM`: Keras' LSTM, with the input projection done once for all steps when no fused kernel applies.

Keras' LSTM multiplies each step's input by the input kernel inside the
loop over time. When the input is wide, as in the text's §5.2.1 network
(30 752 features per frame, flattened conv maps), that is one small-batch
product per step reading the whole 31 MB kernel each time, bound by memory
bandwidth. Doing the product for every step at once, `(B·T, F) × (F, 4U)`,
is one large matrix product; only `h × R` stays in the loop. cuDNN does the
same inside its fused kernel, which Keras uses on a GPU for the standard
LSTM (tanh and sigmoid, no recurrent dropout). So this layer takes that
path only where Keras has no fused kernel to offer: any other activation
(the text's `relu`). Everything else is Keras' own code. The weights, their
names and the results are Keras' LSTM's (tested to float32 round-off), so
a `keras.layers.LSTM`'s weights load into it.
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="vlm_tf")
class LSTM(keras.layers.LSTM):
    """`keras.layers.LSTM` with the input projection hoisted out of the time loop where no fused kernel applies (see module docstring)."""

    def _projects_inputs(self, mask, initial_state):
        fused = self.activation is keras.activations.tanh and self.recurrent_activation is keras.activations.sigmoid
        plain = not (self.go_backwards or self.stateful or self.unroll or self.return_state or self.dropout or self.recurrent_dropout)
        return not fused and plain and self.use_bias and mask is None and initial_state is None

    def call(self, sequences, initial_state=None, mask=None, training=False):
        if not self._projects_inputs(mask, initial_state):
            return super().call(sequences, initial_state=initial_state, mask=mask, training=training)
        cell, units = self.cell, self.units
        projected = ops.matmul(sequences, ops.cast(cell.kernel, sequences.dtype)) + ops.cast(cell.bias, sequences.dtype)
        recurrent = ops.cast(cell.recurrent_kernel, sequences.dtype)
        state = ops.zeros((ops.shape(sequences)[0], 2 * units), dtype=projected.dtype)

        def step(state, inputs):
            h, c = state[:, :units], state[:, units:]
            i, f, g, o = ops.split(inputs + ops.matmul(h, recurrent), 4, axis=-1)
            c = self.recurrent_activation(f) * c + self.recurrent_activation(i) * self.activation(g)
            h = self.recurrent_activation(o) * self.activation(c)
            # h and c travel as one tensor: the TensorFlow backend's scan
            # needs each step's output to match the carried state's shape.
            state = ops.concatenate([h, c], axis=-1)
            return state, state

        state, states = ops.scan(step, state, ops.moveaxis(projected, 1, 0))
        if self.return_sequences:
            return ops.moveaxis(states[..., :units], 0, 1)
        return state[:, :units]
