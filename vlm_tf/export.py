"""SavedModel export: a model plain TensorFlow can serve, no vlm_tf import needed.

The serving signature takes what a decoder produces, `uint8` RGB frames
`(batch, time, height, width, 3)` at the model's frame size, and returns

    probabilities  float32 (batch, num_classes)
    class_index    int64   (batch,)
    class_name     string  (batch,)

The model rescales pixels itself (its `rescaling` layer), so the signature
only casts. Load it with `tf.saved_model.load(path).signatures["serving_default"]`.
"""

from __future__ import annotations

import os

import keras
import tensorflow as tf

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

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serving_default", serve)
    path = os.fspath(path)
    archive.write_out(path, verbose=False)
    return path
