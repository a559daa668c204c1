"""vlm_tf.math against the TensorFlow / Keras ops its formulas describe."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import text_notation_weights

from vlm_tf import math as vm

RNG = np.random.default_rng(0)
TOL = dict(rtol=1e-5, atol=1e-5)


def _random(*shape):
    return RNG.normal(size=shape).astype(np.float32)


# === 2.3 Attention ===


def test_soft_attention_matches_keras_attention_with_w_as_the_query():
    x, w = _random(3, 7, 5), _random(5)
    expected, expected_weights = keras.layers.Attention()(
        [np.broadcast_to(w, (3, 1, 5)), x], return_attention_scores=True
    )
    y, a = vm.soft_attention(x, w)
    np.testing.assert_allclose(y, expected[:, 0], **TOL)
    np.testing.assert_allclose(a, expected_weights[:, 0], **TOL)
    # The weights follow the content: reorder the frames and they move with them.
    order = RNG.permutation(7)
    np.testing.assert_allclose(vm.soft_attention(x[:, order], w)[1], a[:, order], **TOL)


def test_hard_attention_picks_the_frame_with_the_highest_score():
    x, w = _random(4, 6, 3), _random(3)
    y, index = vm.hard_attention(x, w)
    np.testing.assert_array_equal(index, tf.argmax(x @ w, axis=-1))
    np.testing.assert_allclose(y, tf.gather(x, index, batch_dims=1), **TOL)
    with pytest.raises(ValueError, match=r"w \(D,\), received shapes \(4, 6, 3\) and \(2,\)"):
        vm.hard_attention(x, np.zeros(2))


# === 4.1.1 Convolution ===

CONV_CASES = [
    # (input NHWC, kernel HWIO, stride, padding)
    ((2, 9, 9, 3), (3, 3, 3, 4), 1, "valid"),
    ((2, 9, 9, 3), (3, 3, 3, 4), 1, "same"),
    ((1, 10, 7, 2), (2, 3, 2, 5), (2, 1), "same"),
    ((3, 11, 12, 1), (4, 4, 1, 2), 3, "same"),
    ((1, 8, 13, 4), (5, 2, 4, 3), (3, 2), "valid"),
    ((2, 6, 6, 2), (2, 2, 2, 2), 2, "valid"),
]


@pytest.mark.parametrize("x_shape, k_shape, stride, padding", CONV_CASES)
def test_conv2d_matches_tf_nn_conv2d(x_shape, k_shape, stride, padding):
    x, kernel, bias = _random(*x_shape), _random(*k_shape), _random(k_shape[-1])
    expected = tf.nn.bias_add(
        tf.nn.conv2d(x, kernel, strides=stride, padding=padding.upper()), bias
    )
    np.testing.assert_allclose(
        vm.conv2d(x, kernel, bias, stride=stride, padding=padding), expected, **TOL
    )


@pytest.mark.parametrize("x_shape, k_shape, stride, padding", CONV_CASES[:3])
def test_conv2d_matches_keras_conv2d_layer(x_shape, k_shape, stride, padding):
    x = _random(*x_shape)
    layer = keras.layers.Conv2D(k_shape[-1], k_shape[:2], strides=stride, padding=padding)
    expected = layer(x)
    kernel, bias = (w.numpy() for w in layer.weights)
    np.testing.assert_allclose(
        vm.conv2d(x, kernel, bias, stride=stride, padding=padding), expected, **TOL
    )


def test_convolution_mode_is_cross_correlation_with_the_kernel_flipped():
    x, kernel = _random(7, 6), _random(3, 2)
    flipped = tf.constant(kernel[::-1, ::-1].copy())[:, :, None, None]
    expected = tf.nn.conv2d(x[None, :, :, None], flipped, 1, "VALID")[0, :, :, 0]
    np.testing.assert_allclose(vm.conv2d(x, kernel, mode="convolution"), expected, **TOL)
    # And it is the 4.1.1 sum Σ_y f(x − y) g(y) written out, for one output pixel.
    row, col = 2, 3
    direct = sum(kernel[i, j] * x[row + 2 - i, col + 1 - j] for i in range(3) for j in range(2))
    assert vm.conv2d(x, kernel, mode="convolution")[row, col] == pytest.approx(direct, rel=1e-5)
    assert not np.allclose(vm.conv2d(x, kernel, mode="convolution"), vm.conv2d(x, kernel))


def test_conv2d_rejects_bad_arguments_saying_what_it_received():
    with pytest.raises(ValueError, match=r"HWIO kernel \(kh, kw, 3, O\).*\(3, 3, 2, 4\)"):
        vm.conv2d(_random(1, 5, 5, 3), _random(3, 3, 2, 4))
    with pytest.raises(ValueError, match=r"received shape \(5, 5, 3\)"):
        vm.conv2d(_random(5, 5, 3), _random(3, 3))
    with pytest.raises(ValueError, match="padding must be one of .*'full'"):
        vm.conv2d(_random(5, 5), _random(3, 3), padding="full")
    with pytest.raises(ValueError, match="stride must be .* received 0"):
        vm.conv2d(_random(5, 5), _random(3, 3), stride=0)
    with pytest.raises(ValueError, match="mode must be one of"):
        vm.conv2d(_random(5, 5), _random(3, 3), mode="fft")
    with pytest.raises(ValueError, match="window of 6 does not fit an input of 5"):
        vm.conv2d(_random(5, 5), _random(6, 6))
    with pytest.raises(ValueError, match=r"bias .* \(4,\), received shape \(3,\)"):
        vm.conv2d(_random(1, 5, 5, 1), _random(3, 3, 1, 4), _random(3))


# === 4.1.2 Pooling ===

POOL_CASES = [
    ((2, 8, 8, 3), 2, None, "valid"),
    ((2, 9, 7, 3), 2, None, "same"),
    ((1, 9, 9, 2), 3, 1, "valid"),
    ((1, 10, 11, 1), (3, 2), (2, 3), "same"),
    ((3, 7, 7, 4), 3, 2, "same"),
]


@pytest.mark.parametrize("x_shape, pool_size, stride, padding", POOL_CASES)
@pytest.mark.parametrize(
    "ours, keras_layer",
    [
        (vm.max_pooling, keras.layers.MaxPooling2D),
        (vm.average_pooling, keras.layers.AveragePooling2D),
    ],
)
def test_pooling_matches_keras(x_shape, pool_size, stride, padding, ours, keras_layer):
    x = _random(*x_shape)
    expected = keras_layer(pool_size, strides=stride, padding=padding)(x)
    np.testing.assert_allclose(ours(x, pool_size, stride=stride, padding=padding), expected, **TOL)


def test_pooling_2d_input_and_bad_pool_size():
    x = _random(6, 6)
    expected = keras.layers.MaxPooling2D(2)(x[None, :, :, None])[0, :, :, 0]
    np.testing.assert_allclose(vm.max_pooling(x, 2), expected, **TOL)
    with pytest.raises(ValueError, match=r"pool_size must be .* received \(2, 2, 2\)"):
        vm.average_pooling(x, (2, 2, 2))


# === 4.1.3 Activations ===


@pytest.mark.parametrize(
    "ours, theirs",
    [
        (vm.relu, keras.activations.relu),
        (vm.sigmoid, keras.activations.sigmoid),
        (vm.tanh, keras.activations.tanh),
    ],
)
def test_activations_match_keras(ours, theirs):
    x = np.concatenate([_random(1000) * 6, np.float32([-30, -1e-3, 0, 1e-3, 30])])
    np.testing.assert_allclose(ours(x), theirs(x), **TOL)


def test_sigmoid_and_tanh_stay_finite_where_the_printed_forms_overflow():
    x = np.array([-1000.0, -800.0, 800.0, 1000.0])
    with np.errstate(over="ignore", invalid="ignore"):
        printed_tanh = (np.exp(x) - np.exp(-x)) / (np.exp(x) + np.exp(-x))
    assert np.isnan(printed_tanh).all()
    np.testing.assert_array_equal(vm.tanh(x), [-1, -1, 1, 1])
    np.testing.assert_array_equal(vm.sigmoid(x), [0, 0, 1, 1])


# === 4.2 Recurrence ===


def test_rnn_step_matches_keras_simple_rnn():
    features, units, steps = 5, 4, 6
    x = _random(3, steps, features)
    layer = keras.layers.SimpleRNN(units, return_sequences=True)
    expected = layer(x).numpy()
    weights = text_notation_weights(layer, "h")
    W, b = weights["W_h"], weights["b_h"]
    h = np.zeros((3, units))
    for t in range(steps):
        h = vm.rnn_step(h, x[:, t], W, b)
        np.testing.assert_allclose(h, expected[:, t], **TOL)


def test_the_hidden_state_remembers_earlier_frames_not_only_the_current_one():
    """§3.2 calls h the features of the current frame; h_t depends on every x_1..x_t."""
    units, features = 4, 3
    W, b = _random(units, units + features), _random(units)
    frames = _random(5, features)
    changed_first = frames.copy()
    changed_first[0] += 1.0

    def last_state(sequence):
        h = np.zeros(units)
        for x_t in sequence:
            h = vm.rnn_step(h, x_t, W, b)
        return h

    assert np.abs(last_state(frames) - last_state(changed_first)).max() > 1e-4


def test_gates_and_lstm_step_match_keras_lstm_with_copied_weights():
    features, units, steps = 6, 5, 7
    x = _random(2, steps, features)
    layer = keras.layers.LSTM(
        units,
        return_sequences=True,
        return_state=True,
        unit_forget_bias=False,
        bias_initializer="random_normal",
    )
    sequence, h_last, c_last = (v.numpy() for v in layer(x))
    weights = text_notation_weights(layer, "ifco")  # Keras' gate order
    h, c = np.zeros((2, units)), np.zeros((2, units))
    for t in range(steps):
        h, c = vm.lstm_step(h, c, x[:, t], weights)
        np.testing.assert_allclose(h, sequence[:, t], **TOL)
    np.testing.assert_allclose(c, c_last, **TOL)
    # The gates alone, against the sigmoid of Keras' own pre-activations.
    h0, x0 = _random(2, units), x[:, 0]
    kernel, recurrent, bias = (w.numpy() for w in layer.weights)
    z = tf.sigmoid(x0 @ kernel + h0 @ recurrent + bias).numpy()
    i_t, f_t, o_t = vm.gates(
        h0, x0, *(weights[k] for k in ("W_i", "b_i", "W_f", "b_f", "W_o", "b_o"))
    )
    for ours, index in ((i_t, 0), (f_t, 1), (o_t, 3)):
        np.testing.assert_allclose(ours, z[:, index * units : (index + 1) * units], **TOL)


def test_text_hidden_state_is_the_printed_formula_and_not_an_lstm():
    units, features = 4, 3
    weights = {
        f"{p}_{g}": _random(units, units + features) if p == "W" else _random(units)
        for g in "ifoh"
        for p in "Wb"
    }
    h_prev, x_t = _random(2, units), _random(2, features)
    h_t, (i_t, f_t, o_t) = vm.text_cell_step(h_prev, x_t, weights)
    z = np.concatenate([h_prev, x_t], axis=-1)
    printed = (1 - f_t) * h_prev + i_t * np.tanh(z @ weights["W_h"].T + weights["b_h"])
    np.testing.assert_allclose(h_t, printed, **TOL)
    # o_t never reaches h_t: any other output gate gives the same state.
    other = dict(weights, W_o=_random(units, units + features), b_o=_random(units))
    np.testing.assert_allclose(vm.text_cell_step(h_prev, x_t, other)[0], h_t, **TOL)
    # f_t = 1 wipes the past where an LSTM's forget gate = 1 would keep it.
    np.testing.assert_allclose(
        vm.text_hidden_state(
            h_prev, x_t, np.zeros(units), np.ones(units), weights["W_h"], weights["b_h"]
        ),
        0.0,
    )


def test_recurrent_steps_reject_mismatched_weights():
    with pytest.raises(ValueError, match=r"W must be \(4, 7\) and b \(4,\), received \(4, 6\)"):
        vm.rnn_step(np.zeros(4), np.zeros(3), np.zeros((4, 6)), np.zeros(4))
    with pytest.raises(ValueError, match="share their leading axes"):
        vm.rnn_step(np.zeros((2, 4)), np.zeros((3, 3)), np.zeros((4, 7)), np.zeros(4))


# === 4.3 GAN losses ===


def test_discriminator_loss_is_binary_cross_entropy_on_real_and_fake():
    d_real, d_fake = RNG.uniform(0.01, 0.99, 16), RNG.uniform(0.01, 0.99, 16)
    bce = keras.losses.BinaryCrossentropy()
    expected = bce(np.ones(16), d_real) + bce(np.zeros(16), d_fake)
    assert vm.discriminator_loss(d_real, d_fake) == pytest.approx(float(expected), rel=1e-5)
    # Saturated outputs are clipped to [1e-7, 1 - 1e-7] as Keras clips them, so
    # the loss stays finite (Keras rounds 1 - 1e-7 in float32, hence 1 %).
    assert vm.discriminator_loss([0.0], [1.0]) == pytest.approx(
        float(bce([1.0], [0.0]) + bce([0.0], [1.0])), rel=1e-2
    )


def test_generator_losses():
    d_fake = RNG.uniform(0.01, 0.99, 16)
    expected = keras.losses.BinaryCrossentropy()(np.ones(16), d_fake)
    assert vm.generator_loss_nonsaturating(d_fake) == pytest.approx(float(expected), rel=1e-5)
    d_real = RNG.uniform(0.01, 0.99, 16)
    assert vm.generator_loss_text(d_real, d_fake) == pytest.approx(d_real.mean() - d_fake.mean())
    clip = _random(2, 4, 8, 8, 3)
    assert vm.encoder_identity(clip) is clip


def test_text_generator_loss_saturates_where_the_standard_one_does_not():
    """Gradients with respect to D's logit, by TensorFlow, where D rejects the fakes."""
    logits = tf.constant([-8.0, -4.0, 0.0])
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(logits)
        text = -tf.sigmoid(logits)  # the G-dependent part of D(E(x)) − D(G(z))
        standard = -tf.math.log(tf.sigmoid(logits))
    text_grad, standard_grad = (
        tape.gradient(text, logits).numpy(),
        tape.gradient(standard, logits).numpy(),
    )
    assert abs(text_grad[0]) < 1e-3 < 0.99 < abs(standard_grad[0])
    np.testing.assert_allclose(text_grad, -vm.sigmoid(logits) * (1 - vm.sigmoid(logits)), **TOL)


def test_losses_reject_values_that_are_not_probabilities():
    with pytest.raises(ValueError, match=r"d_fake must be .* \[0, 1\].*1\.5"):
        vm.generator_loss_nonsaturating([0.5, 1.5])
    with pytest.raises(ValueError, match="d_real must be non-empty"):
        vm.discriminator_loss([], [0.5])


# === 4.4 Worked examples ===


def test_worked_examples_true_values():
    results = vm.worked_examples()
    conv = results["conv2d"]
    np.testing.assert_array_equal(conv["cross_correlation_valid"], [[4, 5], [7, 8]])
    np.testing.assert_array_equal(conv["convolution_valid"], [[6, 7], [9, 10]])
    # Keras agrees with the cross-correlation reading, in both paddings.
    for padding in vm.PADDINGS:
        layer = keras.layers.Conv2D(1, 2, padding=padding)
        layer.build((1, 3, 3, 1))
        layer.set_weights([vm.TEXT_W[:, :, None, None], np.float32([vm.TEXT_B])])
        np.testing.assert_allclose(
            conv[f"cross_correlation_{padding}"],
            layer(vm.TEXT_X[None, :, :, None])[0, :, :, 0],
            **TOL,
        )
    # The printed 3×3 result is no reading's.
    assert not any(np.array_equal(v, conv["printed"]) for k, v in conv.items() if k != "printed")

    np.testing.assert_array_equal(results["max_pooling"]["stride1_valid"], [[5, 6], [8, 9]])
    np.testing.assert_array_equal(results["average_pooling"]["stride1_valid"], [[3, 4], [6, 7]])
    np.testing.assert_array_equal(results["max_pooling"]["stride2_valid"], [[5]])
    np.testing.assert_array_equal(results["average_pooling"]["stride2_valid"], [[3]])
    for name in ("max_pooling", "average_pooling"):
        assert not any(
            np.array_equal(v, results[name]["printed"])
            for k, v in results[name].items()
            if k != "printed"
        )
