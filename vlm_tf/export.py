"""SavedModel export: a model plain TensorFlow can serve, no vlm_tf import needed.

The serving signature takes what a decoder produces, `uint8` RGB frames
`(batch, time, height, width, 3)` at the model's frame size, and returns

    probabilities  float32 (batch, num_classes)
    class_index    int64   (batch,)
    class_name     string  (batch,)

The model rescales pixels itself (its `rescaling` layer), so the signature
only casts. Load it with `tf.saved_model.load(path).signatures["serving_default"]`.

The generative runs export their own signatures: a GAN's generator takes
noise and a label and returns uint8 frames (`export_generator`); the fusion
model takes uint8 frames and returns the uint8 frames it predicts next
(`export_frame_predictor`). A restoration model takes a degraded clip's
uint8 frames, of any size, and returns them restored (`export_restorer`);
a detector takes a video's uint8 frames, of any size, and returns boxes,
scores and classes per frame (`export_detector`).
"""

from __future__ import annotations

import os
import re
import tempfile

import keras
import tensorflow as tf

from vlm_tf import atomic

SERVING_INPUT = "frames"


def export_saved_model(model, path, *, class_names):
    """Writes `model` as a SavedModel at `path` with the uint8 serving signature above."""
    _, num_frames, height, width, channels = model.input_shape
    if len(class_names) != model.output_shape[-1]:
        raise ValueError(f"{len(class_names)} class names for a model with {model.output_shape[-1]} outputs")
    names = tf.constant(list(class_names))

    @tf.function(input_signature=[tf.TensorSpec([None, num_frames, height, width, channels], tf.uint8, name=SERVING_INPUT)])
    def serve(frames):
        probabilities = tf.cast(model(tf.cast(frames, tf.float32), training=False), tf.float32)
        index = tf.argmax(probabilities, axis=-1)
        return {"probabilities": probabilities, "class_index": index, "class_name": tf.gather(names, index)}

    path = os.fspath(path)
    _write_archive(model, serve, path)
    return path


def export_generator(generator, path, *, class_names):
    """Writes a GAN's generator as a SavedModel: `noise` float32 `(batch, Z)` and `label` int32 `(batch,)` → uint8 `frames` `(batch, T, H, W, 3)`.

    The signature also returns `class_name` (string, per clip), so a served
    clip says what it was asked to show.
    """
    latent_dim = generator.input_shape[0][-1]
    names = tf.constant(list(class_names))

    @tf.function(input_signature=[tf.TensorSpec([None, latent_dim], tf.float32, name="noise"), tf.TensorSpec([None], tf.int32, name="label")])
    def serve(noise, label):
        clips = tf.cast(generator([noise, label], training=False), tf.float32)
        return {"frames": tf.cast(tf.round(tf.clip_by_value(clips, 0.0, 255.0)), tf.uint8), "class_name": tf.gather(names, label)}

    path = os.fspath(path)
    _write_archive(generator, serve, path)
    return path


def export_frame_predictor(predictor, path):
    """Writes a next-frame predictor as a SavedModel: uint8 `frames` `(batch, observed, H, W, 3)` → uint8 `next_frames` `(batch, predicted, H, W, 3)`."""
    _, observed, height, width, channels = predictor.input_shape

    @tf.function(input_signature=[tf.TensorSpec([None, observed, height, width, channels], tf.uint8, name=SERVING_INPUT)])
    def serve(frames):
        clips = tf.cast(predictor(tf.cast(frames, tf.float32), training=False), tf.float32)
        return {"next_frames": tf.cast(tf.round(tf.clip_by_value(clips, 0.0, 255.0)), tf.uint8)}

    path = os.fspath(path)
    _write_archive(predictor, serve, path)
    return path


def export_restorer(restorer, path):
    """Writes a restoration model as a SavedModel: uint8 `frames` `(T, h, w, 3)`, one degraded clip of any size → uint8 `restored` `(T, h·s, w·s, 3)`.

    Each frame is restored from the window of frames centred on it, the
    clip's first and last frames repeated past its ends, as
    `vlm_tf.inference.restore_frames` does.
    """
    from vlm_tf.training.restore import sliding_windows

    window = restorer.input_shape[1]

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8, name=SERVING_INPUT)])
    def serve(frames):
        restored = tf.cast(restorer(sliding_windows(tf.cast(frames, tf.float32), window), training=False), tf.float32)
        return {"restored": tf.cast(tf.round(tf.clip_by_value(restored, 0.0, 255.0)), tf.uint8)}

    path = os.fspath(path)
    _write_archive(restorer, serve, path)
    return path


def export_detector(detector, path, *, class_names, max_detections=20):
    """Writes a detect run's model as a SavedModel: uint8 `frames` `(T, H, W, 3)`, one video of any size →

        boxes        float32 (T, K, 4)  [x_min, y_min, x_max, y_max] in the frames' pixels
        scores       float32 (T, K)     best first; `vlm-tf apply` keeps those >= 0.3
        class_index  int32   (T, K)
        class_name   string  (T, K)

    with K = `max_detections`. Frames are resized to the model's size as
    `read_frames` does (area averaging to shrink, bilinear to enlarge), and
    the boxes scaled back. Tracking stays outside: it is a few lines of
    bookkeeping per frame (`vlm_tf.tracking.IoUTracker`).
    """
    from vlm_tf.models.detection import decode_detections

    _, _, height, width, _ = detector.input_shape
    names = tf.constant(list(class_names))

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8, name=SERVING_INPUT)])
    def serve(frames):
        pixels = tf.cast(frames, tf.float32)
        size = tf.shape(frames)[1:3]
        shrinking = tf.reduce_any(size > [height, width])
        resized = tf.cond(shrinking, lambda: tf.image.resize(pixels, (height, width), method="area"), lambda: tf.image.resize(pixels, (height, width), method="bilinear"))
        outputs = detector(resized[None], training=False)[0]
        boxes, scores, classes = decode_detections(outputs, num_classes=len(class_names), max_detections=max_detections)
        scale = tf.cast(tf.stack([size[1] / width, size[0] / height] * 2), tf.float32)
        return {"boxes": boxes * scale, "scores": scores, "class_index": classes, "class_name": tf.gather(names, classes)}

    path = os.fspath(path)
    _write_archive(detector, serve, path)
    return path


def _write_archive(model, serve, path):
    """Writes a SavedModel of `model`'s weights with `serve` as its `serving_default` signature."""
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serving_default", serve)
    # Through a temporary folder: a half-written SavedModel would look finished.
    with atomic.replacing(path) as temporary:
        archive.write_out(temporary, verbose=False)


class TFLiteConversionError(ValueError):
    """The model needs ops outside TFLite's built-in set; `ops` names them."""

    def __init__(self, message, ops):
        super().__init__(message)
        self.ops = ops


def convert_to_tflite(model, *, num_frames, select_tf_ops=False):
    """Converts `model` to a TFLite flatbuffer taking uint8 frames `(1, num_frames, H, W, 3)` → probabilities.

    With `select_tf_ops=False` only TFLite's built-in ops are allowed, so the
    file runs on any TFLite interpreter; a model that needs more raises
    `TFLiteConversionError` naming the TensorFlow ops it needs (pass
    `select_tf_ops=True` to embed them, at the cost of the Flex delegate).
    The model goes through a SavedModel with that fixed signature: converting
    a concrete function of a Keras 3 model directly leaves its weights as
    uninitialised variables in the flatbuffer.
    """
    _, _, height, width, channels = model.input_shape

    @tf.function(input_signature=[tf.TensorSpec([1, num_frames, height, width, channels], tf.uint8, name=SERVING_INPUT)])
    def serve(frames):
        return {"probabilities": tf.cast(model(tf.cast(frames, tf.float32), training=False), tf.float32)}

    with tempfile.TemporaryDirectory() as directory:
        _write_archive(model, serve, directory)
        converter = tf.lite.TFLiteConverter.from_saved_model(directory)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS] + ([tf.lite.OpsSet.SELECT_TF_OPS] if select_tf_ops else [])
        try:
            return converter.convert()
        except Exception as error:  # the converter's own ConverterError, from a module that is not public
            ops = sorted(set(re.findall(r"\btf\.([A-Z][A-Za-z0-9]+)\b", str(error))))
            raise TFLiteConversionError(f"{model.name} needs TensorFlow ops outside TFLite's built-in set: {', '.join(ops) or str(error).splitlines()[0]}", ops) from None
