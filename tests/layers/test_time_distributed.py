import keras
import numpy as np
import pytest
import tensorflow as tf

from vlm_tf.layers import TimeDistributed


def _frames(batch=2, time=5):
    return np.random.default_rng(0).normal(size=(batch, time, 9, 9, 3)).astype(np.float32)


@pytest.mark.parametrize(
    "make_layer",
    [
        lambda: keras.layers.Conv2D(4, 3),
        lambda: keras.layers.MaxPooling2D(2),
        lambda: keras.layers.Flatten(),
    ],
)
def test_equals_the_layer_applied_frame_by_frame(make_layer):
    layer = make_layer()
    wrapped = TimeDistributed(layer)
    x = _frames()
    out = np.asarray(wrapped(x))
    expected = np.stack([np.asarray(layer(x[:, t])) for t in range(x.shape[1])], axis=1)
    np.testing.assert_allclose(out, expected, atol=1e-6)


def test_dynamic_time_axis_inside_tf_function_matches_eager():
    inputs = keras.Input((None, 9, 9, 3))
    x = TimeDistributed(keras.layers.Conv2D(4, 3))(inputs)
    x = TimeDistributed(keras.layers.Flatten())(x)
    model = keras.Model(inputs, keras.layers.LSTM(3)(x))
    traced = tf.function(model.__call__, input_signature=[tf.TensorSpec([None, None, 9, 9, 3])])
    for batch, time in ((2, 5), (3, 2)):
        x = _frames(batch, time)
        np.testing.assert_allclose(traced(x).numpy(), np.asarray(model(x)), atol=1e-5)


def test_batch_norm_sees_every_frame_and_config_round_trips():
    wrapped = TimeDistributed(keras.layers.BatchNormalization(momentum=0.0), name="bn")
    x = _frames()
    wrapped(x, training=True)
    np.testing.assert_allclose(
        wrapped.layer.moving_mean.numpy(), x.mean(axis=(0, 1, 2, 3)), atol=1e-5
    )
    clone = keras.layers.deserialize(keras.layers.serialize(wrapped))
    assert type(clone) is TimeDistributed and clone.name == "bn"
