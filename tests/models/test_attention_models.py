"""Attention classifiers, the order-blind baseline and the video transformer; FLOPs against the
graph.
"""

import math

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

from vlm_tf.models import MODELS, build_model
from vlm_tf.models.attention import build_attention_classifier
from vlm_tf.models.flops import count_flops
from vlm_tf.models.video_transformer import SIZES, build_video_transformer


def _clips(num_frames=6, size=32, seed=0):
    return (
        np.random.default_rng(seed)
        .integers(0, 256, (2, num_frames, size, size, 3))
        .astype("float32")
    )


def test_registry_names_say_what_the_models_are():
    for word in ("soft", "hard", "multiscale", "transformer", "mean"):
        assert any(word in name for name in MODELS), word


def test_the_baseline_is_blind_to_frame_order_and_the_temporal_models_are_not():
    clips = _clips()
    shuffled = clips[:, [3, 0, 5, 1, 4, 2]]
    baseline = build_model("cnn_mean", num_classes=4, image_size=(32, 32))
    np.testing.assert_allclose(baseline(shuffled), baseline(clips), atol=1e-6)
    for name in (
        "cnn_lstm",
        "cnn_soft_attention",
        "cnn_lstm_hard_attention",
        "cnn_multiscale_attention",
        "video_transformer",
    ):
        model = build_model(name, num_classes=4, image_size=(32, 32))
        assert np.abs(np.asarray(model(shuffled)) - np.asarray(model(clips))).max() > 1e-4, name


@pytest.mark.parametrize(
    "attention,recurrent",
    [("soft", None), ("hard", "lstm"), ("multiscale", None), ("mean", "lstm")],
)
def test_layer_names_follow_the_graph(attention, recurrent):
    model = build_attention_classifier(
        num_classes=3, image_size=(32, 32), filters=(8,), attention=attention, recurrent=recurrent
    )
    names = [layer.name for layer in model.layers]
    middle = "lstm1" if recurrent else "frame_projection"
    pooled = "temporal_mean" if attention == "mean" else "attention"
    assert names == [
        "input_layer",
        "rescaling",
        "frame_difference",
        "conv1",
        "pool1",
        "frame_features",
        middle,
        pooled,
        "output_layer",
    ]


def test_transformer_sizes_from_tiny_to_base():
    tiny = build_video_transformer(num_classes=8, num_frames=16)
    assert tiny.count_params() < 500_000
    assert [layer.name for layer in tiny.layers][-4:] == [
        "block4",
        "final_norm",
        "attention",
        "output_layer",
    ]
    assert tiny.get_layer("tubelet_embedding").output.shape == (None, 8, 64, 64)
    base = build_video_transformer(num_classes=8, num_frames=16, size="base")
    # ViT-Base blocks (~7.1M weights each) plus the temporal attention of factorised blocks (~2.4M
    # each).
    assert 100e6 < base.count_params() < 125e6
    assert sum(layer.name.startswith("block") for layer in base.layers) == SIZES["base"]["depth"]


def test_transformer_takes_any_length_up_to_max_frames():
    model = build_video_transformer(num_classes=3, image_size=(32, 32), max_frames=8)
    for num_frames in (2, 5, 8):
        assert model(_clips(num_frames)).shape == (2, 3)
    with pytest.raises(ValueError, match="longer than max_frames=8"):
        build_video_transformer(num_classes=3, num_frames=10, image_size=(32, 32), max_frames=8)


def test_joint_and_factorised_attention_see_the_same_tokens():
    joint = build_video_transformer(
        num_classes=3, image_size=(32, 32), attention="joint", pooling="mean"
    )
    factorised = build_video_transformer(num_classes=3, image_size=(32, 32), pooling="mean")
    # Factorised blocks add a temporal attention: 4 projections of 64x64 (+ biases) and a norm per
    # block.
    extra = 4 * (4 * (64 * 64 + 64) + 2 * 64)
    assert factorised.count_params() - joint.count_params() == extra


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(size="huge"), "size must be one of"),
        (dict(attention="divided"), "attention must be one of"),
        (dict(pooling="cls"), "pooling must be one of"),
        (dict(dim=60, num_heads=8), "not divisible by num_heads"),
        (dict(tubelet_size=(2, 8)), "tubelet_size must be three positive integers"),
        (dict(image_size=(4, 4)), "smaller than one 8x8 patch"),
    ],
)
def test_transformer_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_video_transformer(num_classes=3, **kwargs)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(attention="max"), "attention must be one of"),
        (dict(recurrent="gru"), "recurrent must be one of"),
        (dict(units=0), "units must be"),
    ],
)
def test_attention_classifier_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_attention_classifier(num_classes=3, **kwargs)


# --- FLOPs -----------------------------------------------------------------------


def _graph_matmul_flops(model, num_frames, size):
    """2 × multiply-adds of every Conv2D, Conv3D, MatMul, BatchMatMul and Einsum in the traced
    graph.

    An independent count: from the ops TensorFlow actually runs, with their
    shapes, rather than from layer types (it needs a graph without loops).
    """
    spec = tf.TensorSpec((1, num_frames, size, size, 3), tf.float32)
    graph = convert_variables_to_constants_v2(
        tf.function(lambda x: model(x, training=False)).get_concrete_function(spec)
    ).graph
    total = 0
    for op in graph.get_operations():
        if op.type in ("Conv2D", "Conv3D"):
            kernel = op.inputs[1].shape.as_list()
            total += 2 * math.prod(op.outputs[0].shape.as_list()) * math.prod(kernel[:-1])
        elif op.type in ("MatMul", "BatchMatMulV2"):
            a = op.inputs[0].shape.as_list()
            contracted = (
                a[-2] if op.get_attr("transpose_a" if op.type == "MatMul" else "adj_x") else a[-1]
            )
            total += 2 * math.prod(op.outputs[0].shape.as_list()) * contracted
        elif op.type == "Einsum":
            inputs, _ = op.get_attr("equation").decode().split("->")
            sizes = {}
            for letters, tensor in zip(inputs.split(","), op.inputs):
                sizes.update(zip(letters, tensor.shape.as_list()))
            total += 2 * math.prod(sizes.values())
    return total


@pytest.mark.parametrize(
    "name",
    [
        "cnn_mean",
        "cnn_soft_attention",
        "cnn_multiscale_attention",
        "video_transformer",
        "video_transformer_joint",
    ],
)
def test_flops_match_the_ops_in_the_graph(name):
    model = build_model(name, num_classes=8, image_size=(64, 64))
    counted = count_flops(model, num_frames=16)
    graph = _graph_matmul_flops(model, 16, 64)
    # The layer count leaves out the scorers' and heads' smallest products the graph also has.
    assert abs(counted - graph) / graph < 0.01, (counted, graph)


def test_flops_count_every_recurrent_step():
    short = count_flops(build_model("cnn_lstm", num_classes=8), num_frames=8)
    long = count_flops(build_model("cnn_lstm", num_classes=8), num_frames=16)
    lstm = build_model("cnn_lstm", num_classes=8).get_layer("lstm1")
    per_step = 2 * 4 * 64 * (lstm.input.shape[-1] + 64)
    # Doubling the clip doubles every per-frame cost, the LSTM's steps included; the output layer is
    # paid once.
    output_layer = 2 * 64 * 8
    assert long - output_layer == 2 * (short - output_layer)
    assert long - short > 8 * per_step
