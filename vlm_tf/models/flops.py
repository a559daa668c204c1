"""FLOPs of a model on one clip, counted layer by layer from its shapes.

Counted: 2 × the multiply-adds of convolutions, dense layers, recurrent
layers (every step) and attention (projections and the two products).
Element-wise work (biases, activations, pooling, normalisation) is left
out; it is a few per cent of these models. TensorFlow's graph profiler
cannot be used instead: it counts nothing inside a recurrent layer's while
loop. `tests/models/test_flops.py` checks this count against the profiler on a
model without loops.
"""

from __future__ import annotations

import math

import keras

from vlm_tf.layers import TimeDistributed


def count_flops(model, *, num_frames):
    """FLOPs of one forward pass of `model` on one clip of `num_frames` frames (batch of 1).

    The model is rebuilt from its config with the clip length fixed, so
    every shape is known; its own weights are not touched. Training costs
    about three times this (forward, and backward through activations and
    weights).
    """
    config = model.get_config()
    for layer in config["layers"]:
        if layer["class_name"] == "InputLayer":
            shape = list(layer["config"]["batch_shape"])
            layer["config"]["batch_shape"] = [None, int(num_frames), *shape[2:]]
    fixed = keras.Model.from_config(config)
    total = 0
    for layer in fixed.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        total += _layer_flops(layer, _shape(layer.input), _shape(layer.output))
    return int(total)


def _shape(tensors):
    """The shape of a layer's (first) input or output, without the batch axis."""
    tensor = tensors[0] if isinstance(tensors, (list, tuple)) else tensors
    return tuple(tensor.shape[1:])


def _layer_flops(layer, input_shape, output_shape):
    """FLOPs for one sample; shapes exclude the batch axis."""
    if hasattr(layer, "flops"):
        return layer.flops((None, *input_shape))
    if isinstance(layer, (TimeDistributed, keras.layers.TimeDistributed)):
        return input_shape[0] * _layer_flops(layer.layer, input_shape[1:], output_shape[1:])
    if isinstance(layer, keras.layers.Dense):
        return 2 * math.prod(input_shape[:-1]) * input_shape[-1] * layer.units
    if isinstance(layer, (keras.layers.Conv2D, keras.layers.Conv3D)):
        per_output = math.prod(layer.kernel_size) * input_shape[-1] // layer.groups
        return 2 * math.prod(output_shape) * per_output
    if isinstance(layer, keras.layers.RNN):
        # LSTM, GRU and the text's cell: every step multiplies the input by
        # `kernel` and the previous state by `recurrent_kernel`.
        cell = layer.cell
        return (
            2
            * input_shape[0]
            * (math.prod(cell.kernel.shape) + math.prod(cell.recurrent_kernel.shape))
        )
    return 0
