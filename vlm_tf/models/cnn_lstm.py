"""The text's CNN-LSTM video classifier (§2.2, §2.4, §5.2), made to run.

The listing of §5.2.1 applies `Conv2D` to the 5-D video tensor and `LSTM` to
a 4-D feature map; both raise (see docs/errata.md). The fix the text implies
is to run the convolution and pooling on every frame with `TimeDistributed`
and turn each pooled map into one feature vector per frame before the LSTM.
"""

from __future__ import annotations

import keras

from vlm_tf.layers import LSTM, FrameDifference, TextGatedRNNCell, TimeDistributed

FRAME_FEATURES = ("flatten", "global_average")
RECURRENT_LAYERS = ("lstm", "gru", "text_gated")
TEXT_FILTERS = 32
TEXT_KERNEL_SIZE = 3
TEXT_POOL_SIZE = 2
TEXT_LSTM_UNITS = 64


def check_frame_encoder(
    *, num_classes, image_size, filters, kernel_size, pool_size, frame_features
):
    """Checks the arguments every CNN-based builder shares; returns `filters` as a tuple."""
    filters = (filters,) if isinstance(filters, int) else tuple(filters)
    if not filters or any(int(f) < 1 for f in filters):
        raise ValueError(
            f"filters must be a positive int or a non-empty sequence of them, received {filters!r}"
        )
    if num_classes is None or int(num_classes) < 2:
        raise ValueError(f"num_classes must be at least 2, received {num_classes!r}")
    if frame_features not in FRAME_FEATURES:
        raise ValueError(
            f"frame_features must be one of {FRAME_FEATURES}, received {frame_features!r}"
        )
    height, width = image_size
    for _ in range(len(filters)):
        height, width = (
            (height - kernel_size + 1) // pool_size,
            (width - kernel_size + 1) // pool_size,
        )
        if height < 1 or width < 1:
            raise ValueError(
                f"image_size={tuple(image_size)} is too small for {len(filters)} conv/pool "
                f"block(s) of kernel {kernel_size} and pool {pool_size}"
            )
    return filters


def apply_input_preprocessing(inputs, *, rescale, frame_difference):
    """Pixels [0, 255] → [0, 1] (`rescaling`), then frames next to their differences if asked.

    The differences are the `frame_difference` layer's.
    """
    x = inputs
    if rescale:
        x = keras.layers.Rescaling(1.0 / 255.0, name="rescaling")(x)
    if frame_difference:
        x = FrameDifference(name="frame_difference")(x)
    return x


def apply_frame_encoder(
    x,
    *,
    filters,
    kernel_size,
    conv_activation,
    pool_size,
    batch_norm,
    batch_norm_momentum,
    frame_features,
    padding="valid",
    pooled_blocks=None,
):
    """`(B, T, H, W, C)` → `(B, T, F)`: conv → pool blocks on every frame.

    Then they give one vector per frame.

    The layers are named `conv1`, `pool1`, ... and `frame_features`, as in
    `build_cnn_lstm`, whose docstring has the shape flow. A detector built
    on the same encoder (`vlm_tf.models.detection`) asks for its maps
    instead: `frame_features=None` returns `(B, T, H', W', filters[-1])`,
    `padding="same"` and only the first `pooled_blocks` blocks pooled keep
    them on a grid of known stride. The layers' weights do not depend on
    either, so a backbone's load into such a detector by name.
    """
    for block, block_filters in enumerate(filters, start=1):
        x = TimeDistributed(
            keras.layers.Conv2D(
                block_filters,
                kernel_size,
                padding=padding,
                activation=None if batch_norm else conv_activation,
            ),
            name=f"conv{block}",
        )(x)
        if batch_norm:
            x = TimeDistributed(
                keras.layers.BatchNormalization(momentum=batch_norm_momentum),
                name=f"conv{block}_bn",
            )(x)
            x = TimeDistributed(
                keras.layers.Activation(conv_activation), name=f"conv{block}_{conv_activation}"
            )(x)
        if pooled_blocks is None or block <= pooled_blocks:
            x = TimeDistributed(keras.layers.MaxPooling2D(pool_size), name=f"pool{block}")(x)
    if frame_features is None:
        return x
    if frame_features == "flatten":
        return TimeDistributed(keras.layers.Flatten(), name="frame_features")(x)
    return TimeDistributed(keras.layers.GlobalAveragePooling2D(), name="frame_features")(x)


def build_cnn_lstm(
    *,
    num_classes,
    num_frames=None,
    image_size=(64, 64),
    channels=3,
    filters=TEXT_FILTERS,
    kernel_size=TEXT_KERNEL_SIZE,
    conv_activation="relu",
    pool_size=TEXT_POOL_SIZE,
    batch_norm=False,
    frame_features="flatten",
    recurrent="lstm",
    lstm_units=TEXT_LSTM_UNITS,
    lstm_activation="tanh",
    dropout=0.0,
    output_activation="softmax",
    rescale=True,
    frame_difference=False,
    batch_norm_momentum=0.9,
    name="cnn_lstm",
):
    """Builds input → conv → pool → recurrent → dense → output (the graph of §2.4).

    Shape flow, for one conv block (the text's):

        (B, T, H, W, C) → Rescaling → TimeDistributed(Conv2D 3×3, 32, ReLU) → (B, T, H-2, W-2, 32)
        → TimeDistributed(MaxPooling2D 2×2) → (B, T, (H-2)/2, (W-2)/2, 32)
        → TimeDistributed(frame_features) → (B, T, F) → LSTM(64) → (B, 64)
        → Dense(num_classes, softmax) → (B, num_classes)

    With `frame_difference=True` a `FrameDifference` layer after the
    rescaling doubles the channels C → 2C.

    The defaults are the text's layers (32 filters, 3×3 kernel, ReLU, 2×2
    pooling, LSTM with 64 units, softmax) with two exceptions, both kept
    reachable: the LSTM uses `tanh` (the text's `activation='relu'`
    lets the cell state grow without bound; pass `lstm_activation="relu"`),
    and nothing is left undefined (the text never says how a pooled map
    becomes an LSTM input; `"flatten"` is the literal reading).

    Args:
        num_classes: outputs of the final layer.
        num_frames: clip length, or `None` (the text's `shape=(None, ...)`) for any length.
        image_size: `(height, width)` of a frame.
        channels: colour channels of a frame.
        filters: filters of the conv layer, or a sequence for a stack of
            conv → pool blocks (`conv1`/`pool1`, `conv2`/`pool2`, ...).
        kernel_size: conv kernel size.
        conv_activation: activation of the conv layers.
        pool_size: max-pooling window (and stride, as in Keras).
        batch_norm: batch normalisation after each convolution.
        frame_features: how each pooled map becomes a vector: `"flatten"`
            (keeps every position, which motion direction needs) or
            `"global_average"` (discards position: cheaper, blind to where
            things are).
        recurrent: the recurrent layer: `"lstm"` (the text's listing, layer
            `lstm1`), `"gru"` (`gru1`) or `"text_gated"` (`text_gated1`, the
            cell of §4.2.2-4.2.3, `vlm_tf.layers.TextGatedRNNCell`).
        lstm_units: units of the recurrent layer, whichever it is.
        lstm_activation: LSTM activation (`"tanh"`; the text's is `"relu"`).
        dropout: dropout rate on the LSTM output.
        output_activation: final activation (`"softmax"` as in the text).
        rescale: scale [0, 255] pixels to [0, 1] inside the model.
        frame_difference: give the conv layers each frame next to its
            difference from the previous frame (`vlm_tf.layers.FrameDifference`),
            so motion is visible to a single 2-D convolution.
        batch_norm_momentum: moving-average momentum of the batch norm layers.
        name: model name.
    """
    # === Config checks ===
    filters = check_frame_encoder(
        num_classes=num_classes,
        image_size=image_size,
        filters=filters,
        kernel_size=kernel_size,
        pool_size=pool_size,
        frame_features=frame_features,
    )
    if recurrent not in RECURRENT_LAYERS:
        raise ValueError(f"recurrent must be one of {RECURRENT_LAYERS}, received {recurrent!r}")
    if recurrent != "lstm" and lstm_activation != "tanh":
        raise ValueError(
            "lstm_activation applies to recurrent='lstm' only, received "
            f"lstm_activation={lstm_activation!r} with recurrent={recurrent!r}"
        )
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), received {dropout!r}")

    # === Inputs ===
    inputs = keras.Input(shape=(num_frames, *image_size, channels), name="input_layer")
    x = apply_input_preprocessing(inputs, rescale=rescale, frame_difference=frame_difference)

    # === Layers: conv → pool per frame, one feature vector per frame ===
    x = apply_frame_encoder(
        x,
        filters=filters,
        kernel_size=kernel_size,
        conv_activation=conv_activation,
        pool_size=pool_size,
        batch_norm=batch_norm,
        batch_norm_momentum=batch_norm_momentum,
        frame_features=frame_features,
    )

    # === Layers: recurrent → dense output ===
    if recurrent == "lstm":
        x = LSTM(lstm_units, activation=lstm_activation, name="lstm1")(x)
    elif recurrent == "gru":
        x = keras.layers.GRU(lstm_units, name="gru1")(x)
    else:
        x = keras.layers.RNN(TextGatedRNNCell(lstm_units), name="text_gated1")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="dropout")(x)
    # The softmax is computed in float32 under mixed precision.
    outputs = keras.layers.Dense(
        num_classes, activation=output_activation, dtype="float32", name="output_layer"
    )(x)

    # === Functional Model ===
    return keras.Model(inputs, outputs, name=name)
