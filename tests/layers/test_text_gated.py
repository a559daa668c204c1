"""TextGatedRNNCell: §4.2.2 + §4.2.3 as a Keras cell, step by step against vlm_tf.math."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import text_notation_weights

from vlm_tf import math as vm
from vlm_tf.layers import TextGatedRNNCell
from vlm_tf.layers.text_gated import GATE_ORDER

UNITS, FEATURES, STEPS = 5, 3, 6


def _layer():
    return keras.layers.RNN(
        TextGatedRNNCell(UNITS, bias_initializer="random_normal"), return_sequences=True
    )


def test_every_step_matches_the_numpy_formulas():
    x = np.random.default_rng(0).normal(size=(2, STEPS, FEATURES)).astype("float32")
    layer = _layer()
    sequence = layer(x).numpy()
    weights = text_notation_weights(layer.cell, GATE_ORDER)
    h = np.zeros((2, UNITS))
    for t in range(STEPS):
        h, _ = vm.text_cell_step(h, x[:, t], weights)
        np.testing.assert_allclose(sequence[:, t], h, rtol=1e-5, atol=1e-5)


def test_the_output_gate_receives_no_gradient_and_the_others_do():
    x = np.random.default_rng(1).normal(size=(4, STEPS, FEATURES)).astype("float32")
    layer = _layer()
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(x) ** 2)
    kernel_grad = tape.gradient(loss, layer.cell.kernel)
    kernel_grad = tf.convert_to_tensor(kernel_grad).numpy()
    for index, gate in enumerate(GATE_ORDER):
        block = np.abs(kernel_grad[:, index * UNITS : (index + 1) * UNITS]).sum()
        assert (block == 0) == (gate == "o"), (gate, block)


def test_serializes_inside_a_saved_model(tmp_path):
    inputs = keras.Input((None, FEATURES))
    model = keras.Model(inputs, _layer()(inputs))
    x = np.random.default_rng(2).normal(size=(1, STEPS, FEATURES)).astype("float32")
    model.save(tmp_path / "cell.keras")
    loaded = keras.models.load_model(tmp_path / "cell.keras")
    np.testing.assert_allclose(loaded(x), model(x), rtol=1e-6)
    assert loaded.layers[-1].cell.get_config()["units"] == UNITS


def test_rejects_non_positive_units():
    with pytest.raises(ValueError, match="units must be a positive integer, received 0"):
        TextGatedRNNCell(0)
