"""Soft, hard and multi-scale attention (§2.3): against vlm_tf.math, masks, gradients, configs."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from vlm_tf import math as vm
from vlm_tf.layers import HardAttention, MultiScaleAttention, SoftAttention


def _clips(batch=3, time=7, features=5, seed=0):
    return np.random.default_rng(seed).normal(size=(batch, time, features)).astype("float32")


def _linear_scorer(layer):
    return layer.scorer.score.kernel.numpy()[:, 0]


def test_soft_attention_is_the_numpy_formula():
    x = _clips()
    layer = SoftAttention()
    pooled, weights = layer(x)
    expected_pooled, expected_weights = vm.soft_attention(x, _linear_scorer(layer))
    np.testing.assert_allclose(weights, expected_weights, atol=1e-6)
    np.testing.assert_allclose(pooled, expected_pooled, atol=1e-5)


def test_soft_attention_over_space_pools_each_frame():
    x = np.random.default_rng(1).normal(size=(2, 3, 4, 5, 6)).astype("float32")
    layer = SoftAttention(over="space")
    pooled, weights = layer(x)
    assert pooled.shape == (2, 3, 6) and weights.shape == (2, 3, 4, 5)
    expected_pooled, expected_weights = vm.soft_attention(
        x.reshape(2, 3, 20, 6), _linear_scorer(layer)
    )
    np.testing.assert_allclose(weights.numpy().reshape(2, 3, 20), expected_weights, atol=1e-6)
    np.testing.assert_allclose(pooled, expected_pooled, atol=1e-5)


def test_hard_attention_at_inference_is_the_numpy_argmax():
    x = _clips()
    layer = HardAttention(k=1)
    pooled, weights = layer(x, training=False)
    expected_pooled, index = vm.hard_attention(x, _linear_scorer(layer))
    np.testing.assert_allclose(pooled, expected_pooled, atol=1e-6)
    np.testing.assert_array_equal(np.argmax(weights, axis=-1), index)


def test_hard_attention_at_inference_is_a_true_top_k():
    x = _clips(time=9)
    layer = HardAttention(k=3, units=4)
    pooled, weights = layer(x, training=False)
    scores = layer.scorer(x).numpy()
    top = np.argsort(-scores, axis=-1)[:, :3]
    expected = np.zeros_like(scores)
    np.put_along_axis(expected, top, 1.0 / 3.0, axis=-1)
    np.testing.assert_array_equal(weights.numpy(), expected.astype("float32"))
    np.testing.assert_allclose(pooled, np.einsum("bt,btd->bd", expected, x), atol=1e-6)


def test_hard_attention_trains_its_scorer_through_a_hard_choice():
    x = _clips(time=9)
    layer = HardAttention(k=2, units=4, seed=3)
    target = np.ones((3, 5), "float32")
    with tf.GradientTape() as tape:
        pooled, weights = layer(x, training=True)
        loss = tf.reduce_mean(tf.square(pooled - target))
    # The forward pass is the hard choice of 2 frames (of the noisy scores)...
    np.testing.assert_allclose(np.sort(weights.numpy(), axis=-1)[:, -2:], 0.5, atol=1e-6)
    np.testing.assert_allclose(np.sort(weights.numpy(), axis=-1)[:, :-2], 0.0, atol=1e-6)
    # ...and the straight-through surrogate carries a gradient to every scorer
    # weight but the last bias: a constant added to every frame's score
    # changes no softmax, so its true gradient is 0 (float noise aside).
    variables = layer.scorer.trainable_weights
    gradients = tape.gradient(loss, variables)
    assert [variable.path.split("/")[-2:] for variable in variables] == [
        ["hidden", "kernel"],
        ["hidden", "bias"],
        ["score", "kernel"],
        ["score", "bias"],
    ]
    for variable, gradient in zip(variables[:3], gradients[:3]):
        assert gradient is not None and np.abs(gradient.numpy()).max() > 1e-4, variable.path
    assert np.abs(gradients[3].numpy()).max() < 1e-6


def test_hard_attention_samples_other_frames_while_training():
    x = _clips(batch=1, time=9)
    layer = HardAttention(k=1, seed=0)
    choices = {int(np.argmax(layer(x, training=True)[1])) for _ in range(30)}
    assert int(np.argmax(layer(x, training=False)[1])) in choices
    assert len(choices) > 1


def test_multi_scale_attention_is_a_weighted_sum_of_frames():
    x = _clips(time=7)
    layer = MultiScaleAttention(scales=(1, 2, 4, 7), units=6)
    pooled, weights = layer(x)
    assert weights.shape == (3, 4, 7)
    np.testing.assert_allclose(weights.numpy().sum(axis=(1, 2)), 1.0, atol=1e-6)
    np.testing.assert_allclose(
        pooled, np.einsum("bt,btd->bd", weights.numpy().sum(axis=1), x), atol=1e-5
    )
    # Within a window every frame shares its weight: the 2-frame scale pairs (0,1), (2,3), (4,5),
    # then 6 alone.
    pairs = weights.numpy()[:, 1]
    np.testing.assert_allclose(pairs[:, 0:6:2], pairs[:, 1:6:2], atol=1e-7)
    # A window as long as the clip is the global average.
    np.testing.assert_allclose(
        weights.numpy()[:, 3], weights.numpy()[:, 3, :1].repeat(7, axis=1), atol=1e-7
    )


@pytest.mark.parametrize(
    "layer",
    [
        SoftAttention(units=4),
        HardAttention(k=2, units=4),
        MultiScaleAttention(scales=(1, 2, 3), units=4),
    ],
    ids=["soft", "hard", "multiscale"],
)
def test_padded_frames_change_nothing(layer):
    x = _clips(time=5)
    padded = np.concatenate(
        [x, np.random.default_rng(9).normal(size=(3, 3, 5)).astype("float32") * 100], axis=1
    )
    mask = np.array([[True] * 5 + [False] * 3] * 3)
    pooled, weights = layer(x)
    padded_pooled, padded_weights = layer(padded, mask=mask)
    np.testing.assert_allclose(padded_pooled, pooled, atol=1e-5)
    np.testing.assert_allclose(np.asarray(padded_weights)[..., :5], weights, atol=1e-6)
    np.testing.assert_allclose(np.asarray(padded_weights)[..., 5:], 0.0)


def test_a_keras_mask_reaches_the_layer():
    inputs = keras.Input((None, 5))
    pooled, _ = SoftAttention(units=4, name="attention")(
        keras.layers.Masking(mask_value=0.0)(inputs)
    )
    model = keras.Model(inputs, pooled)
    x = _clips(time=4)
    padded = np.concatenate([x, np.zeros((3, 2, 5), "float32")], axis=1)
    np.testing.assert_allclose(model(padded), model(x), atol=1e-5)


@pytest.mark.parametrize(
    "layer",
    [
        SoftAttention(units=3, over="space"),
        HardAttention(k=2, units=3, temperature=0.5, seed=1),
        MultiScaleAttention(scales=(1, 3)),
    ],
    ids=["soft", "hard", "multiscale"],
)
def test_config_round_trip(layer):
    x = (
        np.random.default_rng(2)
        .normal(size=(2, 4, 3, 3, 6) if isinstance(layer, SoftAttention) else (2, 4, 6))
        .astype("float32")
    )
    expected = layer(x)
    clone = layer.__class__.from_config(layer.get_config())
    clone(x)
    clone.set_weights(layer.get_weights())
    for a, b in zip(clone(x), expected):
        np.testing.assert_allclose(a, b, atol=1e-6)
    assert (
        keras.saving.deserialize_keras_object(
            keras.saving.serialize_keras_object(layer)
        ).get_config()
        == layer.get_config()
    )


def test_weights_stay_float32_under_mixed_precision():
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        layer = MultiScaleAttention(units=4)
        pooled, weights = layer(_clips())
    finally:
        keras.mixed_precision.set_global_policy(previous)
    assert pooled.dtype == tf.bfloat16 and weights.dtype == tf.float32
    np.testing.assert_allclose(weights.numpy().sum(axis=(1, 2)), 1.0, atol=1e-5)


@pytest.mark.parametrize(
    "build,message",
    [
        (lambda: SoftAttention(over="channels"), "over must be one of"),
        (lambda: SoftAttention(units=0), "units must be a positive integer or None"),
        (lambda: HardAttention(k=0), "k must be a positive integer"),
        (lambda: HardAttention(temperature=0), "temperature must be positive"),
        (lambda: MultiScaleAttention(scales=(1, 1)), "scales must be distinct"),
        (lambda: MultiScaleAttention(scales=()), "scales must be distinct"),
        (
            lambda: SoftAttention()(np.zeros((2, 3, 4, 4, 5), "float32")),
            r"expects \(batch, time, features\), received shape \(2, 3, 4, 4, 5\)",
        ),
        (lambda: HardAttention(k=4)(np.zeros((2, 3, 5), "float32")), "at least 4 frames"),
    ],
)
def test_bad_arguments(build, message):
    with pytest.raises(ValueError, match=message):
        build()
