"""Object detection in video (§6.2): the text's CNN + RNN, as a centre-point detector.

Shape flow for frames of 64×64 (`C` classes):

    (B, T, 64, 64, 3)       uint8-range RGB frames, any number T
    spatial_features        chapter 5's CNN trunk, per frame: two conv/conv/pool blocks
                            → (B, T, 16, 16, 64)
    temporal_features       a bidirectional ConvLSTM over the frames → (B, T, 16, 16, 64):
                            each place sees the same place in the frames before and after
                            (the text's RNN)
    detection_head          conv 3×3 → C centre heat maps (logits) + 4 box sides
                            → (B, T, 16, 16, C + 4)

Each cell of the 16×16 grid (a stride of 4 pixels) says how likely an
object of each class has its centre there and, if so, how far the box's
left, top, right and bottom sides lie from the cell's centre (in cells).
Decoding keeps the cells that are the largest in their 3×3 neighbourhood
(so no box-overlap suppression is needed) and turns the best of them into
boxes; this is CenterNet (Zhou et al., 2019), which needs no anchors and
only convolutions, so the whole detector is a plain Keras functional model.
`temporal=False` puts a per-frame conv in the RNN's place: the comparison
that says what the neighbouring frames add.

A detector can also stand on a classifier's frame encoder (`backbone=`,
model `detect_cnn_lstm`: cnn_lstm's frame differences and conv blocks 16,
32, 64 → (B, T, 16, 16, 64)); then `vlm-tf train --task detect --init
cnn_lstm_motion` starts its trunk from the pretrained backbone (chapter 8,
docs/transfer.md).
"""

from __future__ import annotations

import inspect

import keras
import numpy as np
import tensorflow as tf
from keras import layers, ops

from vlm_tf.data.detection_clips import STRIDE

# Keras' own TimeDistributed gives one frame when the number of frames is
# unknown inside a tf.function (a SavedModel); vlm_tf's keeps them all. vlm_tf's
# ConvLSTM2D convolves every frame's input at once, outside the loop over time.
from vlm_tf.layers import ConvLSTM2D, TimeDistributed
from vlm_tf.models.cnn_lstm import apply_frame_encoder, apply_input_preprocessing, build_cnn_lstm
from vlm_tf.models.registry import get_model_spec

# A heat map's prior: sigmoid(-2.19) = 0.1, CenterNet's start, so the first
# steps are not swamped by the loss of every empty cell.
_HEAT_PRIOR = -2.19
_BOX_LOSS_WEIGHT = 1.0


def build_video_detector(
    num_classes,
    *,
    num_frames=None,
    image_size=(64, 64),
    filters=(32, 64),
    temporal=True,
    backbone=None,
    name="video_detector",
):
    """A functional detector: frames `(B, T, H, W, 3)` in [0, 255] → its outputs.

    The outputs are `(B, T, H/4, W/4, num_classes + 4)`.

    `H` and `W` must be multiples of 4; `num_frames=None` takes any length.
    With `backbone` (a registered CNN classifier's name) the trunk is that
    classifier's frame encoder instead of two conv/conv/pool blocks of
    `filters` (`backbone_trunk`), so its weights can come from the
    classifier's backbone (`load_trunk`).
    """
    height, width = image_size
    if height % STRIDE or width % STRIDE:
        raise ValueError(
            f"the detector's frame size must be a multiple of {STRIDE}, received {image_size}"
        )
    inputs = keras.Input((num_frames, height, width, 3), name="frames")
    if backbone is None:
        x = layers.Rescaling(1.0 / 255.0, name="rescale")(inputs)
        for block, width_ in enumerate(filters):
            for k in range(2):
                x = TimeDistributed(
                    layers.Conv2D(width_, 3, padding="same", activation="relu"),
                    name=f"spatial_features_{block + 1}{'ab'[k]}",
                )(x)
            x = TimeDistributed(layers.MaxPooling2D(2), name=f"spatial_pool_{block + 1}")(x)
    else:
        x = backbone_trunk(inputs, backbone)
    channels = x.shape[-1]
    if temporal:
        context = layers.Bidirectional(
            ConvLSTM2D(channels // 2, 3, padding="same", return_sequences=True),
            merge_mode="concat",
            name="temporal_features",
        )(x)
    else:
        context = TimeDistributed(
            layers.Conv2D(channels, 3, padding="same", activation="relu"), name="frame_features"
        )(x)
    # The frame's own features next to their temporal context: where an
    # object is shows best in its own frame.
    x = layers.Concatenate(name="features")([x, context])
    x = TimeDistributed(
        layers.Conv2D(64, 3, padding="same", activation="relu"), name="detection_head"
    )(x)
    heat = TimeDistributed(
        layers.Conv2D(num_classes, 1, bias_initializer=keras.initializers.Constant(_HEAT_PRIOR)),
        name="centre_heat",
    )(x)
    sides = TimeDistributed(layers.Conv2D(4, 1), name="box_sides")(x)
    outputs = layers.Concatenate(name="detections", dtype="float32")([heat, sides])
    return keras.Model(inputs, outputs, name=name)


def backbone_trunk(inputs, backbone):
    """The frame encoder of the registered CNN classifier `backbone` as a detector's trunk.

        (B, T, H, W, 3) → its input preprocessing (frame differences if it has them)
        → its conv blocks, "same" padding, the first two pooled → (B, T, H/4, W/4, filters[-1])

    The layers keep the classifier's names (`conv1`, `conv1_bn`, ...) and
    kernel shapes, so `load_trunk` copies a backbone's weights into them.
    """
    spec = get_model_spec(backbone)
    if spec.task != "classify" or not spec.builder.endswith(":build_cnn_lstm"):
        raise ValueError(
            f"a detector's trunk is a CNN classifier's frame encoder (vlm_tf.models.cnn_lstm); "
            f"{backbone!r} is not one"
        )
    settings = {
        name: parameter.default
        for name, parameter in inspect.signature(build_cnn_lstm).parameters.items()
    }
    settings.update(spec.kwargs)
    filters = settings["filters"]
    filters = (filters,) if isinstance(filters, int) else tuple(filters)
    if len(filters) < 2 or settings["pool_size"] ** 2 != STRIDE:
        raise ValueError(
            f"{backbone!r} has {len(filters)} conv block(s) pooled by {settings['pool_size']}; a "
            f"detector's trunk needs two blocks pooled to its stride of {STRIDE}"
        )
    x = apply_input_preprocessing(
        inputs, rescale=True, frame_difference=settings["frame_difference"]
    )
    return apply_frame_encoder(
        x,
        filters=filters,
        kernel_size=settings["kernel_size"],
        conv_activation=settings["conv_activation"],
        pool_size=settings["pool_size"],
        batch_norm=settings["batch_norm"],
        batch_norm_momentum=settings["batch_norm_momentum"],
        frame_features=None,
        padding="same",
        pooled_blocks=2,
    )


def load_trunk(detector, backbone):
    """Copies the weights of `backbone`'s layers into `detector`'s layers of the same name.

    Those are the frame encoder's (`conv1`, `conv2`, ...) when the detector
    was built on the backbone's classifier (`build_video_detector(backbone=...)`).
    Returns the names copied; refuses a backbone sharing none, or one whose
    weights have other shapes.
    """
    names = {layer.name for layer in detector.layers}
    copied = []
    for layer in backbone.layers:
        if not layer.weights or layer.name not in names:
            continue
        target = detector.get_layer(layer.name)
        shapes = [tuple(w.shape) for w in layer.weights]
        wanted = [tuple(w.shape) for w in target.weights]
        if shapes != wanted:
            raise ValueError(
                f"backbone {backbone.name!r}'s layer {layer.name!r} has weights of shapes "
                f"{shapes}; detector {detector.name!r}'s has {wanted}"
            )
        target.set_weights(layer.get_weights())
        copied.append(layer.name)
    if not copied:
        raise ValueError(
            f"backbone {backbone.name!r} shares no layer with detector {detector.name!r}: a "
            "detector takes a backbone's weights when it is built on that backbone's classifier"
        )
    return copied


@keras.saving.register_keras_serializable(package="vlm_tf")
def detection_loss(y_true, y_pred):
    """CenterNet's loss: focal loss on the centre heat maps plus L1 on the box sides.

    The L1 term is taken at object centres.

    `y_true` is `(…, C + 5)`: C Gaussian heat targets (1 at a centre cell),
    the 4 box sides at centre cells, and a mask that is 1 at centre cells.
    Both terms are divided by the number of objects.
    """
    y_pred = ops.cast(y_pred, "float32")
    num_classes = ops.shape(y_pred)[-1] - 4
    heat_true, sides_true, mask = (
        y_true[..., :num_classes],
        y_true[..., num_classes:-1],
        y_true[..., -1:],
    )
    logits, sides = y_pred[..., :num_classes], y_pred[..., num_classes:]
    probability = ops.sigmoid(logits)
    centre = ops.cast(ops.equal(heat_true, 1.0), "float32")
    positive = centre * ops.square(1.0 - probability) * -ops.log_sigmoid(logits)
    negative = (
        (1.0 - centre)
        * ops.power(1.0 - heat_true, 4.0)
        * ops.square(probability)
        * -ops.log_sigmoid(-logits)
    )
    objects = ops.maximum(ops.sum(mask), 1.0)
    box = ops.sum(mask * ops.abs(sides - sides_true))
    return (ops.sum(positive + negative) + _BOX_LOSS_WEIGHT * box) / objects


def decode_detections(outputs, *, num_classes, max_detections=20):
    """Frames' detector outputs `(N, Hg, Wg, C + 4)` → boxes, scores and classes.

    Returns `(boxes, scores, classes)`: boxes `(N, K, 4)` in input pixels,
    scores `(N, K)`, classes `(N, K)` int32.

    TensorFlow ops only, so the same decoding runs inside the SavedModel.
    The K = `max_detections` best peaks come sorted by score; a caller keeps
    those above its own threshold.
    """
    outputs = tf.cast(outputs, tf.float32)
    heat = tf.sigmoid(outputs[..., :num_classes])
    sides = tf.nn.relu(outputs[..., num_classes:])
    peaks = tf.where(tf.equal(heat, tf.nn.max_pool2d(heat, 3, 1, "SAME")), heat, 0.0)
    shape = tf.shape(heat)
    scores, flat = tf.math.top_k(
        tf.reshape(peaks, [shape[0], -1]),
        k=tf.minimum(max_detections, shape[1] * shape[2] * num_classes),
    )
    cell, classes = flat // num_classes, flat % num_classes
    row, column = cell // shape[2], cell % shape[2]
    centre_x, centre_y = tf.cast(column, tf.float32) + 0.5, tf.cast(row, tf.float32) + 0.5
    picked = tf.gather_nd(tf.reshape(sides, [shape[0], -1, 4]), cell[..., None], batch_dims=1)
    boxes = (
        tf.stack(
            [
                centre_x - picked[..., 0],
                centre_y - picked[..., 1],
                centre_x + picked[..., 2],
                centre_y + picked[..., 3],
            ],
            axis=-1,
        )
        * STRIDE
    )
    return boxes, scores, tf.cast(classes, tf.int32)


def detect_clip(model, frames, num_classes, *, max_detections=20):
    """Runs `model` over one clip `(T, H, W, 3)` at its input size.

    Per frame `(boxes (K, 4), scores (K,), classes (K,))` as numpy, best
    first.
    """
    # Keras' predict function, traced once per clip shape: called eagerly, the ConvLSTM's loop
    # over time dispatched op by op and scoring a detect run's validation clips each epoch took
    # 6x longer (docs/benchmarks.md, "Detection's scoring each epoch").
    outputs = model.predict_on_batch(np.asarray(frames, np.float32)[None])[0]
    boxes, scores, classes = (
        x.numpy()
        for x in decode_detections(outputs, num_classes=num_classes, max_detections=max_detections)
    )
    return list(zip(boxes, scores, classes))
