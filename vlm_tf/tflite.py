"""A classifier as a TFLite flatbuffer: uint8 frames `(1, time, height, width, 3)` → float32
probabilities, its weights optionally quantized (`convert_to_tflite`);
`vlm_tf.compression.quantize` writes a run's file and measures its accuracy, size and speed.
"""

from __future__ import annotations

import re
import tempfile

import keras
import numpy as np
import tensorflow as tf

from vlm_tf.compression import QUANTIZE_MODES
from vlm_tf.export import SERVING_INPUT, write_archive


class TFLiteConversionError(ValueError):
    """The model needs ops outside TFLite's built-in set; `ops` names them."""

    def __init__(self, message, ops):
        super().__init__(message)
        self.ops = ops


def convert_to_tflite(
    model, *, num_frames, select_tf_ops=False, quantize="none", representative_clips=None
):
    """Converts `model` to a TFLite flatbuffer.

    The flatbuffer takes uint8 frames `(1, num_frames, H, W, 3)` → float32
    probabilities.

    With `select_tf_ops=False` only TFLite's built-in ops are allowed, so the
    file runs on any TFLite interpreter; a model that needs more raises
    `TFLiteConversionError` naming the TensorFlow ops it needs (pass
    `select_tf_ops=True` to embed them, at the cost of the Flex delegate).
    The model goes through a SavedModel with that fixed signature: converting
    a concrete function of a Keras 3 model directly leaves its weights as
    uninitialised variables in the flatbuffer.

    `quantize` is one of `vlm_tf.compression.QUANTIZE_MODES`: `float16`
    stores the weights in 16 bits, `dynamic` in 8 (activations are quantized
    on the fly where a kernel can), `int8` stores weights and activations in
    8 bits, each activation's range calibrated on `representative_clips`,
    uint8 clips `(num_frames, H, W, 3)` like those the model will see (its
    training data); an op without an int8 kernel would stay float between a
    dequantize and a quantize (TFLite's standard fallback: in the registered
    classifiers, only the transformers' CONV_3D and their layer norms' NEG,
    docs/design.md). Under `int8` recurrent layers are unrolled over the
    `num_frames` steps (`_tflite_copy`); a mixed-precision model converts as its
    float32 copy.

    The interface is the same in every mode, the SavedModel's: uint8 frames
    in, float32 probabilities out, so a quantized file drops in where the
    float one was. Under `int8` the quantization happens inside, after the
    input's cast and before the softmax's output is dequantized: callers
    need not learn the file's scales and zero points, and the cost of the
    two conversions is two elementwise ops against a whole network.
    """
    if quantize not in QUANTIZE_MODES:
        raise ValueError(
            f"quantize must be one of {', '.join(QUANTIZE_MODES)}, received {quantize!r}"
        )
    if (quantize == "int8") != (representative_clips is not None):
        raise ValueError(
            "representative_clips are needed for quantize='int8' and only for it (received "
            f"quantize={quantize!r}, representative_clips "
            f"{'given' if representative_clips is not None else 'missing'})"
        )
    _, _, height, width, channels = model.input_shape
    if quantize == "int8":
        clips = _calibration_clips(representative_clips, (num_frames, height, width, channels))
    model = _tflite_copy(model, num_frames, unroll=quantize == "int8")

    @tf.function(
        input_signature=[
            tf.TensorSpec([1, num_frames, height, width, channels], tf.uint8, name=SERVING_INPUT)
        ]
    )
    def serve(frames):
        return {
            "probabilities": tf.cast(model(tf.cast(frames, tf.float32), training=False), tf.float32)
        }

    with tempfile.TemporaryDirectory() as directory:
        write_archive(model, serve, directory)
        converter = tf.lite.TFLiteConverter.from_saved_model(directory)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS] + (
            [tf.lite.OpsSet.SELECT_TF_OPS] if select_tf_ops else []
        )
        if quantize != "none":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantize == "float16":
            converter.target_spec.supported_types = [tf.float16]
        elif quantize == "int8":
            converter.representative_dataset = lambda: ([clip[None]] for clip in clips)
        try:
            return converter.convert()
        except (
            Exception
        ) as error:  # the converter's own ConverterError, from a module that is not public
            ops = sorted(set(re.findall(r"\btf\.([A-Z][A-Za-z0-9]+)\b", str(error))))
            raise TFLiteConversionError(
                f"{model.name} needs TensorFlow ops outside TFLite's built-in set: "
                f"{', '.join(ops) or str(error).splitlines()[0]}",
                ops,
            ) from None


def _tflite_copy(model, num_frames, *, unroll):
    """`model` as TFLite converts it: in float32 throughout.

    Its recurrent layers are unrolled over `num_frames` if `unroll`; `model`
    itself is returned when it is that already.

    A model trained in mixed precision (`--precision auto` picks mixed
    bfloat16 on an AVX-512 CPU) keeps its weights in float32 but computes
    in bfloat16, and its LSTM's loop then holds bfloat16 tensor lists,
    which only the Flex delegate runs (`TensorListReserve`); the float32
    copy converts with built-in ops, and quantization decides the file's
    precision from there.

    Unrolling is for int8 calibration: TensorFlow's calibrator crashes the
    process (a segmentation fault, tensorflow/tensorflow#75140, open since
    2.14) logging the outputs of the WHILE loop a Keras 3 LSTM, GRU or RNN
    becomes. Only the model's own layers are looked at (a recurrent layer
    inside a wrapper such as `Bidirectional` would keep its loop); the
    registered classifiers have theirs at the top. The float modes keep the
    loop: unrolled, each step multiplies its input by the input kernel, where
    `vlm_tf.layers.LSTM` otherwise does it once for all steps, and on wide
    inputs (cnn_lstm_text's) that made the float file 6x slower.
    """
    mixed = any(layer.dtype_policy.compute_dtype != "float32" for layer in model.layers)
    unroll = unroll and any(isinstance(layer, keras.layers.RNN) for layer in model.layers)
    if not (mixed or unroll):
        return model

    def clone(layer):
        config = {**layer.get_config(), "dtype": "float32"}
        if unroll and isinstance(layer, keras.layers.RNN):
            config["unroll"] = True
        return layer.__class__.from_config(config)

    frames = num_frames if unroll else model.input_shape[1]
    copy = keras.models.clone_model(
        model,
        input_tensors=keras.Input(shape=(frames, *model.input_shape[2:])),
        clone_function=clone,
    )
    copy.set_weights(model.get_weights())
    return copy


def _calibration_clips(clips, shape):
    """`clips` as one uint8 array `(N, *shape)`, checked.

    A calibration on the wrong pixels would quietly give wrong ranges.
    """
    clips = np.asarray(list(clips) if not isinstance(clips, np.ndarray) else clips)
    if clips.ndim != 5 or clips.shape[1:] != tuple(shape) or len(clips) == 0:
        raise ValueError(
            f"representative_clips must be clips of shape {tuple(shape)}, at least one, received "
            f"an array of shape {clips.shape}"
        )
    if clips.dtype != np.uint8:
        raise ValueError(
            "representative_clips must be uint8 frames, as the model's input is, received "
            f"{clips.dtype}"
        )
    return clips
