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
    fixed = _with_clip_length(model, num_frames)
    total = 0
    for layer in fixed.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        total += _layer_flops(layer, _shape(layer.input), _shape(layer.output))
    return int(total)


def count_activations(model, *, num_frames):
    """Numbers one forward pass of `model` on one clip of `num_frames` frames keeps for the
    backward pass: every layer's output, the layers inside a per-frame model once per frame.

    A lower bound on a training step's memory (what a memory budget needs:
    `vlm_tf.budget`): the gradients, an optimizer's moments and the
    framework's own buffers come on top.
    """
    try:
        fixed = _with_clip_length(model, num_frames)
    except (NotImplementedError, KeyError):
        # A subclassed model (a GAN's two players): what its functional parts keep.
        return sum(
            count_activations(part, num_frames=num_frames)
            for part in model.layers
            if isinstance(part, keras.Model)
        )
    return int(_outputs(fixed.layers))


def _with_clip_length(model, num_frames):
    """`model` rebuilt from its config with the clip length fixed, so every shape is known (itself
    when no clip input leaves it open).
    """
    config = model.get_config()
    open_clips = [
        layer["config"]
        for layer in config["layers"]
        if layer["class_name"] == "InputLayer"
        and len(layer["config"]["batch_shape"]) == 5
        and layer["config"]["batch_shape"][1] is None
    ]
    if not open_clips:
        return model
    for layer_config in open_clips:
        shape = list(layer_config["batch_shape"])
        layer_config["batch_shape"] = [None, int(num_frames), *shape[2:]]
    return keras.Model.from_config(config)


def _outputs(layers, repeat=1):
    total = 0
    for layer in layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        # An unknown size (a subclassed layer's output) counts as one: still a lower bound.
        total += repeat * math.prod(size or 1 for size in _shape(layer.output))
        if isinstance(layer, (TimeDistributed, keras.layers.TimeDistributed)) and isinstance(
            layer.layer, keras.Model
        ):
            total += _outputs(layer.layer.layers, repeat * (_shape(layer.input)[0] or 1))
        elif isinstance(layer, keras.Model):
            total += _outputs(layer.layers, repeat)
    return total


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
