"""The chapter-5 CNN followed by attention over frames (§2.3), and the order-blind baseline.

Four ways to turn a clip's frame features into one vector, everything else
equal: soft, hard or multi-scale attention (`vlm_tf.layers`), or the plain
mean over time, which cannot tell a clip from the same frames in another
order. With `recurrent="lstm"` an LSTM runs first and the attention chooses
among its steps, each of which has seen the frames before it.
"""

from __future__ import annotations

import keras
import numpy as np

from vlm_tf.layers import HardAttention, MultiScaleAttention, SoftAttention
from vlm_tf.layers.transformer import ClassAttentionPooling, TubeletEmbedding
from vlm_tf.models.cnn_lstm import (
    TEXT_KERNEL_SIZE,
    TEXT_POOL_SIZE,
    apply_frame_encoder,
    apply_input_preprocessing,
    check_frame_encoder,
)

ATTENTION_KINDS = ("soft", "hard", "multiscale", "mean")
RECURRENT_CHOICES = (None, "lstm")
# The name of the layer that weighs frames, in every model that has one.
ATTENTION_LAYER = "attention"


def build_attention_classifier(
    *,
    num_classes,
    num_frames=None,
    image_size=(64, 64),
    channels=3,
    attention="soft",
    recurrent=None,
    filters=(16, 32, 64),
    kernel_size=TEXT_KERNEL_SIZE,
    conv_activation="relu",
    pool_size=TEXT_POOL_SIZE,
    batch_norm=False,
    batch_norm_momentum=0.9,
    frame_features="flatten",
    frame_difference=True,
    units=64,
    scorer_units=64,
    k=4,
    scales=(1, 2, 4),
    temperature=1.0,
    dropout=0.0,
    rescale=True,
    name="cnn_attention",
):
    """Builds input → conv → pool → [LSTM] → attention over time → dense → output.

    Shape flow:

        (B, T, H, W, C) → Rescaling [→ FrameDifference (B, T, H, W, 2C)]
        → conv/pool blocks per frame, as in build_cnn_lstm → frame_features (B, T, F)
        → Dense(units, ReLU) "frame_projection"
          or LSTM(units, return_sequences) "lstm1" → (B, T, U)
        → attention "attention": soft / hard / multiscale
          → (B, U) + weights (B, T) or (B, scales, T);
          or "temporal_mean" → (B, U)
        → Dense(num_classes, softmax) "output_layer" → (B, num_classes)

    The model's output is the class probabilities; the attention weights are
    the second output of the `attention` layer
    (`vlm_tf.tasks.tensorboard.AttentionMaps` reads them).

    `attention="mean"` with `recurrent=None` and `frame_difference=False`
    is the order-blind baseline: its output is the same for any order of the
    frames, so whatever it gets right needs no time.

    Args:
        num_classes, num_frames, image_size, channels, filters, kernel_size,
        conv_activation, pool_size, batch_norm, batch_norm_momentum,
        frame_features, frame_difference, rescale: as in `build_cnn_lstm`.
        attention: `"soft"`, `"hard"`, `"multiscale"` or `"mean"`.
        recurrent: `None` (a per-frame dense projection) or `"lstm"`.
        units: width of the projection or of the LSTM.
        scorer_units: hidden size of the attention scorers (`None`: linear).
        k: frames chosen by hard attention.
        scales: window lengths of multi-scale attention.
        temperature: hard attention's training temperature.
        dropout: dropout rate before the output layer.
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
    if attention not in ATTENTION_KINDS:
        raise ValueError(f"attention must be one of {ATTENTION_KINDS}, received {attention!r}")
    if recurrent not in RECURRENT_CHOICES:
        raise ValueError(f"recurrent must be one of {RECURRENT_CHOICES}, received {recurrent!r}")
    if int(units) < 1:
        raise ValueError(f"units must be a positive integer, received {units!r}")
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

    # === Layers: per-frame projection or LSTM steps ===
    if recurrent == "lstm":
        x = keras.layers.LSTM(units, return_sequences=True, name="lstm1")(x)
    else:
        x = keras.layers.Dense(units, activation="relu", name="frame_projection")(x)

    # === Layers: attention over time ===
    if attention == "mean":
        x = keras.layers.GlobalAveragePooling1D(name="temporal_mean")(x)
    elif attention == "soft":
        x, _ = SoftAttention(units=scorer_units, name=ATTENTION_LAYER)(x)
    elif attention == "hard":
        x, _ = HardAttention(
            k=k, units=scorer_units, temperature=temperature, name=ATTENTION_LAYER
        )(x)
    else:
        x, _ = MultiScaleAttention(scales=scales, units=scorer_units, name=ATTENTION_LAYER)(x)

    # === Layers: dense output ===
    if dropout:
        x = keras.layers.Dropout(dropout, name="dropout")(x)
    # The softmax is computed in float32 under mixed precision.
    outputs = keras.layers.Dense(
        num_classes, activation="softmax", dtype="float32", name="output_layer"
    )(x)

    # === Functional Model ===
    return keras.Model(inputs, outputs, name=name)


def attention_layer(model):
    """The model's attention layer (named `attention`).

    `None` when it has none that weighs frames.
    """
    try:
        layer = model.get_layer(ATTENTION_LAYER)
    except ValueError:
        return None
    if isinstance(layer, SoftAttention) and layer.over != "time":
        return None
    return (
        layer
        if isinstance(
            layer, (SoftAttention, HardAttention, MultiScaleAttention, ClassAttentionPooling)
        )
        else None
    )


def frame_weight_rows(model, weights, num_frames):
    """The attention layer's weights for N clips → `(N, rows, num_frames)`.

    That is what each frame received.

    Soft and hard attention give one row. Multi-scale attention gives one
    row per scale and a last row with their sum (the weight each frame has
    in the output). A transformer's class attention is summed over the
    patches of each time step and spread over the frames of its tubelet.
    """
    layer = attention_layer(model)
    weights = np.asarray(weights, np.float32)
    if isinstance(layer, MultiScaleAttention):
        return np.concatenate([weights, weights.sum(axis=1, keepdims=True)], axis=1)
    if isinstance(layer, ClassAttentionPooling):
        tubelet = next(
            each for each in model.layers if isinstance(each, TubeletEmbedding)
        ).tubelet_size[0]
        per_step = weights.sum(axis=2) / tubelet
        rows = np.zeros((len(weights), num_frames), np.float32)
        spread = np.repeat(per_step, tubelet, axis=1)[:, :num_frames]
        rows[:, : spread.shape[1]] = spread
        return rows[:, None]
    return weights[:, None]
