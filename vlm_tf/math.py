"""Chapter 4's formulas (and §2.3's attention) in plain NumPy, one function per formula.

Each function is the reference the tests hold the TensorFlow / Keras op to
(`tests/test_math.py`), and `notebooks/ch04_math.ipynb` prints them side by
side. Where the text's formula differs from what frameworks compute, both
are here under names that say which is which, and docs/errata.md explains.

Recurrent weights follow the text's notation: `W_i[h_{t-1}, x_t]` multiplies
the concatenation of the previous hidden state and the input, so a weight
matrix has shape `(units, units + features)` and a bias `(units,)`. States
and inputs may carry any leading batch axes.
"""

from __future__ import annotations

import numpy as np

PADDINGS = ("valid", "same")
CONV_MODES = ("cross_correlation", "convolution")
# Keras clips probabilities to [EPSILON, 1 - EPSILON] before taking logs.
EPSILON = 1e-7


# === Argument checks ===


def _pair(value, name):
    values = (value, value) if np.isscalar(value) else tuple(value)
    if len(values) != 2 or any(int(v) != v or int(v) < 1 for v in values):
        raise ValueError(f"{name} must be a positive int or a pair of them, received {value!r}")
    return int(values[0]), int(values[1])


def _check_padding(padding):
    if padding not in PADDINGS:
        raise ValueError(f"padding must be one of {PADDINGS}, received {padding!r}")


def _as_nhwc(x, name="x"):
    """Returns `(x as NHWC, was_2d)` for a 2-D image or an NHWC batch."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 2:
        return x[None, :, :, None], True
    if x.ndim == 4:
        return x, False
    raise ValueError(
        f"{name} must be a 2-D array (H, W) or an NHWC batch (N, H, W, C), received shape {x.shape}"
    )


def _output_size(size, window, stride, padding):
    """Output length and padding before/after along one axis, as Keras defines them."""
    if padding == "valid":
        if size < window:
            raise ValueError(
                f"a window of {window} does not fit an input of {size} with padding='valid'"
            )
        return (size - window) // stride + 1, 0, 0
    out = -(-size // stride)
    total = max((out - 1) * stride + window - size, 0)
    # TensorFlow puts the odd padding pixel after (bottom / right).
    return out, total // 2, total - total // 2


def _windows(x, window, stride, padding, fill):
    """Sliding windows of an NHWC array: (N, H_out, W_out, C, kh, kw), plus a validity mask."""
    (kh, kw), (sh, sw) = window, stride
    out_h, top, bottom = _output_size(x.shape[1], kh, sh, padding)
    out_w, left, right = _output_size(x.shape[2], kw, sw, padding)
    pads = ((0, 0), (top, bottom), (left, right), (0, 0))
    padded = np.pad(x, pads, constant_values=fill)
    inside = np.pad(np.ones(x.shape[1:3] + (1,)), pads[1:], constant_values=0.0)[None]

    def view(a):
        return np.lib.stride_tricks.sliding_window_view(a, (kh, kw), axis=(1, 2))[:, ::sh, ::sw][
            :, :out_h, :out_w
        ]

    return view(padded), view(inside)


# === 2.3 Attention ===


def _scores(x, w):
    x, w = np.asarray(x, dtype=np.float64), np.asarray(w, dtype=np.float64)
    if x.ndim < 2 or w.shape != x.shape[-1:]:
        raise ValueError(
            f"x must be (..., T, D) and w (D,), received shapes {x.shape} and {w.shape}"
        )
    return x, x @ w


def soft_attention(x, w):
    """Soft attention over time (§2.3): weights computed from the input itself.

        s_t = x_t · w,   a = softmax(s),   y = Σ_t a_t x_t

    The learnable part is the scoring vector w; the weights a depend on what
    each frame contains. The text's wording, "a learnable weight matrix
    weights the input", describes a fixed weighting instead, which is a
    linear layer (docs/errata.md).

    Args:
        x: `(..., T, D)`: T feature vectors (frames).
        w: `(D,)` scoring vector.

    Returns:
        `(y, a)`: the attended vector `(..., D)` and the weights `(..., T)`.
    """
    x, s = _scores(x, w)
    a = np.exp(s - s.max(axis=-1, keepdims=True))
    a /= a.sum(axis=-1, keepdims=True)
    return np.einsum("...t,...td->...d", a, x), a


def hard_attention(x, w):
    """Hard attention over time (§2.3): the frame with the highest score.

    The text says hard attention "takes the highest score"; what it attends
    to is the input at that position, x_argmax(s), not the score itself.

    Returns:
        `(y, index)`: the chosen frame `(..., D)` and its position `(...)`.
    """
    x, s = _scores(x, w)
    index = s.argmax(axis=-1)
    return np.take_along_axis(x, index[..., None, None], axis=-2)[..., 0, :], index


# === 4.1.1 Convolution ===


def conv2d(x, kernel, bias=0.0, *, stride=1, padding="valid", mode="cross_correlation"):
    """Conv2D(X, W, b) of §4.1.1.

    The text defines convolution as (f * g)(x) = Σ_y f(x − y) g(y): the
    kernel is flipped before it slides. Deep-learning `Conv2D` layers compute
    cross-correlation, Σ_y f(y) g(x + y), without the flip. `mode` picks:
    `"cross_correlation"` (what `keras.layers.Conv2D` and `tf.nn.conv2d`
    compute, the default) or `"convolution"` (the formula as printed).

    Args:
        x: a 2-D image `(H, W)`, or an NHWC batch `(N, H, W, C)`.
        kernel: `(kh, kw)` for a 2-D image, or HWIO `(kh, kw, C, O)` for a batch.
        bias: a scalar, or one value per output channel `(O,)`.
        stride: an int or a `(sh, sw)` pair.
        padding: `"valid"` (no padding) or `"same"` (output size
            ceil(input / stride), zeros split as TensorFlow splits them).
        mode: `"cross_correlation"` or `"convolution"`.

    Returns:
        `(H_out, W_out)` for a 2-D image, else `(N, H_out, W_out, O)`.
    """
    if mode not in CONV_MODES:
        raise ValueError(f"mode must be one of {CONV_MODES}, received {mode!r}")
    _check_padding(padding)
    stride = _pair(stride, "stride")
    x, was_2d = _as_nhwc(x)
    kernel = np.asarray(kernel, dtype=np.float64)
    if was_2d:
        if kernel.ndim != 2:
            raise ValueError(
                f"a 2-D image needs a 2-D kernel (kh, kw), received kernel of shape {kernel.shape}"
            )
        kernel = kernel[:, :, None, None]
    elif kernel.ndim != 4 or kernel.shape[2] != x.shape[3]:
        raise ValueError(
            f"an NHWC batch with {x.shape[3]} channels needs an HWIO kernel (kh, kw, {x.shape[3]}, "
            f"O), received kernel of shape {kernel.shape}"
        )
    if mode == "convolution":
        kernel = kernel[::-1, ::-1]
    bias = np.asarray(bias, dtype=np.float64)
    if bias.ndim > 1 or (bias.ndim == 1 and bias.shape[0] != kernel.shape[3]):
        raise ValueError(
            f"bias must be a scalar or have one value per output channel ({kernel.shape[3]},), "
            f"received shape {bias.shape}"
        )
    windows, _ = _windows(x, kernel.shape[:2], stride, padding, fill=0.0)
    y = np.einsum("nhwcij,ijco->nhwo", windows, kernel) + bias
    return y[0, :, :, 0] if was_2d else y


# === 4.1.2 Pooling ===


def _pool(x, pool_size, stride, padding, reduce):
    _check_padding(padding)
    pool_size = _pair(pool_size, "pool_size")
    stride = pool_size if stride is None else _pair(stride, "stride")
    x, was_2d = _as_nhwc(x)
    windows, inside = _windows(x, pool_size, stride, padding, fill=np.nan)
    y = reduce(windows, inside)
    return y[0, :, :, 0] if was_2d else y


def max_pooling(x, pool_size, *, stride=None, padding="valid"):
    """MaxPooling(X, pool_size) = max over the pool_size² window (§4.1.2).

    The text's formula names no stride; Keras' `MaxPooling2D` moves the
    window by `pool_size` unless told otherwise, and so does `stride=None`
    here. With `padding="same"` padded positions never win.
    """
    return _pool(x, pool_size, stride, padding, lambda w, inside: np.nanmax(w, axis=(-2, -1)))


def average_pooling(x, pool_size, *, stride=None, padding="valid"):
    """AveragePooling(X, pool_size) = (1 / pool_size²) Σ X over the window (§4.1.2).

    With `padding="same"` the mean is over the real pixels of a window only
    (as `AveragePooling2D` does), not over pool_size².
    """
    return _pool(
        x,
        pool_size,
        stride,
        padding,
        lambda w, inside: np.nansum(w, axis=(-2, -1)) / inside.sum(axis=(-2, -1)),
    )


# === 4.1.3 Activations ===


def relu(x):
    """ReLU(x) = max(0, x) (§4.1.3): the rectified linear unit."""
    return np.maximum(np.asarray(x, dtype=np.float64), 0.0)


def sigmoid(x):
    """Sigmoid(x) = 1 / (1 + e^(−x)) (§4.1.3).

    Computed from e^(−|x|) so no exponential overflows: for x < 0 the
    equal form e^x / (1 + e^x) is used.
    """
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def tanh(x):
    """Tanh(x) = (e^x − e^(−x)) / (e^x + e^(−x)) (§4.1.3).

    Rewritten as sign(x)(1 − e^(−2|x|)) / (1 + e^(−2|x|)), which is the same
    function and never divides infinity by infinity.
    """
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(-2.0 * np.abs(x))
    return np.sign(x) * (1.0 - e) / (1.0 + e)


# === 4.2 Recurrence ===


def _affine(W, b, h_prev, x_t):
    """W[h_{t-1}, x_t] + b, the text's notation: W multiplies the concatenation."""
    h_prev, x_t = np.asarray(h_prev, dtype=np.float64), np.asarray(x_t, dtype=np.float64)
    W, b = np.asarray(W, dtype=np.float64), np.asarray(b, dtype=np.float64)
    units, width = h_prev.shape[-1], h_prev.shape[-1] + x_t.shape[-1]
    if h_prev.shape[:-1] != x_t.shape[:-1]:
        raise ValueError(
            f"h_prev and x_t must share their leading axes, received shapes {h_prev.shape} and "
            f"{x_t.shape}"
        )
    if W.shape != (units, width) or b.shape != (units,):
        raise ValueError(
            f"with {units} units and {x_t.shape[-1]} input features W must be ({units}, {width}) "
            f"and b ({units},), received {W.shape} and {b.shape}"
        )
    return np.concatenate([h_prev, x_t], axis=-1) @ W.T + b


def rnn_step(h_prev, x_t, W, b, *, activation=tanh):
    """h_t = RNN(h_{t−1}, x_t, W, b) (§4.2.1), as the plain Elman cell.

    The text leaves RNN(·) abstract; the simple recurrent cell makes it
    concrete: h_t = tanh(W[h_{t−1}, x_t] + b), which is what
    `keras.layers.SimpleRNN` computes.
    """
    return activation(_affine(W, b, h_prev, x_t))


def gates(h_prev, x_t, W_i, b_i, W_f, b_f, W_o, b_o):
    """The three gates of §4.2.2, returned as `(i_t, f_t, o_t)`.

    i_t = sigmoid(W_i[h_{t−1}, x_t] + b_i)
    f_t = sigmoid(W_f[h_{t−1}, x_t] + b_f)
    o_t = sigmoid(W_o[h_{t−1}, x_t] + b_o)
    """
    return tuple(
        sigmoid(_affine(W, b, h_prev, x_t)) for W, b in ((W_i, b_i), (W_f, b_f), (W_o, b_o))
    )


def text_hidden_state(h_prev, x_t, i_t, f_t, W_h, b_h):
    """The hidden state exactly as §4.2.3 prints it.

        h_t = (1 − f_t) ⊙ h_{t−1} + i_t ⊙ tanh(W_h[h_{t−1}, x_t] + b_h)

    Not an LSTM: there is no cell state, f_t = 1 *discards* the past (an
    LSTM's forget gate keeps it at 1), and the output gate o_t of §4.2.2
    appears nowhere (docs/errata.md).
    """
    h_prev = np.asarray(h_prev, dtype=np.float64)
    return (1.0 - f_t) * h_prev + i_t * tanh(_affine(W_h, b_h, h_prev, x_t))


def text_cell_step(h_prev, x_t, weights):
    """One step of the text's gated cell: §4.2.2's gates, then §4.2.3.

    Args:
        weights: a mapping with the text's names `W_i, b_i, W_f, b_f, W_o,
            b_o, W_h, b_h`.

    Returns:
        `(h_t, (i_t, f_t, o_t))`; o_t is computed, as in the text, and unused.
    """
    i_t, f_t, o_t = gates(
        h_prev, x_t, *(weights[k] for k in ("W_i", "b_i", "W_f", "b_f", "W_o", "b_o"))
    )
    return text_hidden_state(h_prev, x_t, i_t, f_t, weights["W_h"], weights["b_h"]), (i_t, f_t, o_t)


def lstm_step(h_prev, c_prev, x_t, weights):
    """One step of the standard LSTM, for contrast with §4.2.3.

        i_t, f_t, o_t as in §4.2.2
        c̃_t = tanh(W_c[h_{t−1}, x_t] + b_c)
        c_t = f_t ⊙ c_{t−1} + i_t ⊙ c̃_t
        h_t = o_t ⊙ tanh(c_t)

    Args:
        weights: `W_i, b_i, W_f, b_f, W_o, b_o, W_c, b_c`.

    Returns:
        `(h_t, c_t)`.
    """
    i_t, f_t, o_t = gates(
        h_prev, x_t, *(weights[k] for k in ("W_i", "b_i", "W_f", "b_f", "W_o", "b_o"))
    )
    c_t = f_t * np.asarray(c_prev, dtype=np.float64) + i_t * tanh(
        _affine(weights["W_c"], weights["b_c"], h_prev, x_t)
    )
    return o_t * tanh(c_t), c_t


# === 4.3 GAN losses ===


def _probabilities(p, name):
    p = np.asarray(p, dtype=np.float64)
    if p.size == 0 or np.any((p < 0) | (p > 1)) or np.any(np.isnan(p)):
        raise ValueError(
            f"{name} must be non-empty probabilities in [0, 1] (the discriminator's sigmoid "
            f"output), received {p!r}"
        )
    return np.clip(p, EPSILON, 1.0 - EPSILON)


def discriminator_loss(d_real, d_fake):
    """D_Loss = −log(D(x)) − log(1 − D(G(z))) (§4.3.2), averaged over the batch.

    Args:
        d_real: D(x), the discriminator's probabilities on real clips.
        d_fake: D(G(z)), its probabilities on generated clips.
    """
    d_real, d_fake = _probabilities(d_real, "d_real"), _probabilities(d_fake, "d_fake")
    return float(np.mean(-np.log(d_real)) + np.mean(-np.log(1.0 - d_fake)))


def encoder_identity(x):
    """E of §4.3.1, which the text never defines: vlm_tf takes the identity.

    With E(x) = x, D(E(x)) is the discriminator's score on the real clip, and
    G_Loss = D(x) − D(G(z)) is the difference of scores a critic compares.
    An encoder trained with G (as in BiGAN / VAE-GAN) would need a
    discriminator over (clip, code) pairs, which the text does not describe.
    """
    return x


def generator_loss_text(d_encoded_real, d_fake):
    """G_Loss = D(E(x)) − D(G(z)) (§4.3.1, as printed), averaged over the batch.

    `d_encoded_real` is D(E(x)); with `encoder_identity` that is D(x). The
    first term does not depend on G, so its gradient is that of −D(G(z)):
    dσ(l)/dl = σ(1 − σ) vanishes exactly when D confidently rejects the
    fakes (σ → 0), which is when G needs it most (docs/errata.md).
    """
    d_encoded_real, d_fake = (
        _probabilities(d_encoded_real, "d_encoded_real"),
        _probabilities(d_fake, "d_fake"),
    )
    return float(np.mean(d_encoded_real) - np.mean(d_fake))


def generator_loss_nonsaturating(d_fake):
    """G_Loss = −log(D(G(z))), the standard non-saturating generator loss.

    Its gradient with respect to D's logit is −(1 − σ): largest when D
    rejects the fakes, so G learns from the start of training.
    """
    return float(np.mean(-np.log(_probabilities(d_fake, "d_fake"))))


# === 4.4 The worked examples ===

TEXT_X = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9]], dtype=np.float64)
TEXT_W = np.array([[1, 0], [-1, 1]], dtype=np.float64)
TEXT_B = 2.0
TEXT_POOL_SIZE = 2
# What §4.4 prints as the results.
TEXT_PRINTED = {
    "conv2d": np.array([[1, 2, 3], [1, 2, 3], [0, 1, 2]], dtype=np.float64),
    "max_pooling": np.array([[5, 6], [7, 8]], dtype=np.float64),
    "average_pooling": np.array([[4.5, 5.5], [6.5, 7.5]], dtype=np.float64),
}


def worked_examples():
    """What §4.4 really computes for its X, W, b and pool size, under each reading.

    Returns:
        `{"conv2d": {...}, "max_pooling": {...}, "average_pooling": {...}}`,
        each mapping a reading to its result, with `"printed"` the text's.
        Convolution readings: `{cross_correlation,convolution}_{valid,same}`
        (stride 1; the text's W is 2×2). Pooling readings: stride 1 (the
        only one that gives the text's 2×2 shape) and stride 2 (Keras'
        default), each `valid` and `same`.
    """
    results = {"conv2d": {"printed": TEXT_PRINTED["conv2d"]}}
    for mode in CONV_MODES:
        for padding in PADDINGS:
            results["conv2d"][f"{mode}_{padding}"] = conv2d(
                TEXT_X, TEXT_W, TEXT_B, padding=padding, mode=mode
            )
    for name, pool in (("max_pooling", max_pooling), ("average_pooling", average_pooling)):
        results[name] = {"printed": TEXT_PRINTED[name]}
        for stride in (1, TEXT_POOL_SIZE):
            for padding in PADDINGS:
                results[name][f"stride{stride}_{padding}"] = pool(
                    TEXT_X, TEXT_POOL_SIZE, stride=stride, padding=padding
                )
    return results
