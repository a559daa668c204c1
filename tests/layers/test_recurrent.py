"""vlm_tf's LSTM computes what Keras' LSTM computes, with the same weights, forward and backward."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from vlm_tf.layers import LSTM


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
