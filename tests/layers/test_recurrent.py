"""vlm_tf's LSTM and ConvLSTM2D compute what Keras' layers compute, with the same weights, forward
and backward."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from vlm_tf.layers import LSTM, ConvLSTM2D


def _pair(activation, return_sequences, features=40, units=6):
    ours = LSTM(units, activation=activation, return_sequences=return_sequences)
    reference = keras.layers.LSTM(units, activation=activation, return_sequences=return_sequences)
    ours.build((None, None, features))
    reference.build((None, None, features))
    # Non-zero weights everywhere, the bias included, so every term shows.
    rng = np.random.default_rng(0)
    weights = [rng.normal(0, 0.3, w.shape).astype("float32") for w in reference.get_weights()]
    ours.set_weights(weights)
    reference.set_weights(weights)
    return ours, reference


def _gradients(layer, x):
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_sum(tf.sin(layer(x)))
    return tape.gradient(loss, [x, *layer.trainable_weights])


@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_same_outputs_and_gradients_as_keras(activation, return_sequences):
    ours, reference = _pair(activation, return_sequences)
    gpu = bool(tf.config.list_logical_devices("GPU"))
    assert ours._projects_inputs(None, None) == (activation == "relu" or not gpu), (
        "wherever Keras has no fused kernel"
    )
    x = tf.constant(np.random.default_rng(1).normal(0, 1, (3, 7, 40)).astype("float32"))
    np.testing.assert_allclose(ours(x).numpy(), reference(x).numpy(), rtol=1e-5, atol=1e-6)
    for mine, theirs in zip(_gradients(ours, x), _gradients(reference, x)):
        # Float32 round-off of sums taken in another order, relative to the gradient's scale.
        np.testing.assert_allclose(
            mine.numpy(), theirs.numpy(), rtol=1e-4, atol=1e-5 * np.abs(theirs.numpy()).max()
        )


def test_masked_sequences_take_keras_path_and_agree():
    ours, reference = _pair("relu", False)
    x = tf.constant(np.random.default_rng(2).normal(0, 1, (2, 5, 40)).astype("float32"))
    mask = tf.constant([[True] * 5, [True, True, True, False, False]])
    np.testing.assert_allclose(
        ours(x, mask=mask).numpy(), reference(x, mask=mask).numpy(), rtol=1e-5, atol=1e-6
    )


def test_mixed_bfloat16_stays_close_and_config_round_trips(tmp_path):
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        ours, reference = _pair("relu", False)
        x = tf.constant(np.random.default_rng(3).normal(0, 1, (2, 6, 40)).astype("float32"))
        assert ours(x).dtype == tf.bfloat16
        np.testing.assert_allclose(
            tf.cast(ours(x), tf.float32).numpy(),
            tf.cast(reference(x), tf.float32).numpy(),
            atol=0.05,
        )
    finally:
        keras.mixed_precision.set_global_policy(previous)
    inputs = keras.Input((4, 40))
    model = keras.Model(inputs, LSTM(6, activation="relu", name="lstm1")(inputs))
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert type(loaded.get_layer("lstm1")) is LSTM
    x = np.random.default_rng(4).normal(0, 1, (2, 4, 40)).astype("float32")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)


def test_trains_under_xla():
    inputs = keras.Input((5, 40))
    model = keras.Model(inputs, keras.layers.Dense(2)(LSTM(6, activation="relu")(inputs)))
    model.compile(optimizer="adam", loss="mse", jit_compile=True)
    x = np.random.default_rng(5).normal(0, 1, (4, 5, 40)).astype("float32")
    before = model.predict(x, verbose=0)
    assert np.isfinite(model.train_on_batch(x, np.ones((4, 2), "float32")))
    assert np.abs(model.predict(x, verbose=0) - before).max() > 0, "the step changed the weights"


def _conv_pair(**options):
    reference = keras.layers.ConvLSTM2D(4, 3, **options)
    ours = ConvLSTM2D.from_config(reference.get_config())
    shape = (None, None, 9, 9, 5)
    ours.build(shape)
    reference.build(shape)
    rng = np.random.default_rng(6)
    weights = [rng.normal(0, 0.3, w.shape).astype("float32") for w in reference.get_weights()]
    ours.set_weights(weights)
    reference.set_weights(weights)
    return ours, reference


@pytest.mark.parametrize(
    "options",
    [
        {"padding": "same", "return_sequences": True},
        {"padding": "same", "return_sequences": True, "go_backwards": True},
        # The input convolution's own stride and padding; the state's stays "same".
        {"padding": "valid", "strides": 2, "return_sequences": False},
    ],
)
def test_conv_lstm_same_outputs_and_gradients_as_keras(options):
    ours, reference = _conv_pair(**options)
    assert ours._projects_inputs(None, None)
    x = tf.constant(np.random.default_rng(7).normal(0, 1, (2, 6, 9, 9, 5)).astype("float32"))
    np.testing.assert_allclose(ours(x).numpy(), reference(x).numpy(), rtol=1e-5, atol=1e-5)
    for mine, theirs in zip(_gradients(ours, x), _gradients(reference, x)):
        np.testing.assert_allclose(
            mine.numpy(), theirs.numpy(), rtol=1e-4, atol=1e-5 * np.abs(theirs.numpy()).max()
        )


def test_bidirectional_conv_lstm_with_free_time_axis_saves_and_loads(tmp_path):
    """The detector's use: both directions (the backward copy made from the config), any number
    of frames, and a `.keras` file that loads back as vlm_tf's layer.
    """
    inputs = keras.Input((None, 9, 9, 5))

    def model_of(layer_class):
        rnn = layer_class(4, 3, padding="same", return_sequences=True)
        return keras.Model(inputs, keras.layers.Bidirectional(rnn, name="context")(inputs))

    ours, reference = model_of(ConvLSTM2D), model_of(keras.layers.ConvLSTM2D)
    assert type(ours.get_layer("context").backward_layer) is ConvLSTM2D
    ours.set_weights(reference.get_weights())
    x = np.random.default_rng(8).normal(0, 1, (2, 7, 9, 9, 5)).astype("float32")
    expected = reference.predict(x, verbose=0)
    np.testing.assert_allclose(ours.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-5)
    ours.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert type(loaded.get_layer("context").forward_layer) is ConvLSTM2D
    np.testing.assert_allclose(loaded.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-5)


def test_conv_lstm_with_dropout_takes_keras_path():
    ours, _ = _conv_pair(padding="same", recurrent_dropout=0.5)
    assert not ours._projects_inputs(None, None)
