"""TensorBoard writers any task can add: the model's graph, the clips it trains on, which
frames an attention model weighed, and where a classifier looked (`train --explain`).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from vlm_tf.data.pipeline import pick_clips
from vlm_tf.models.attention import attention_layer, frame_weight_rows
from vlm_tf.tasks.explain import Explainer
from vlm_tf.visualize import attention_map_image, clip_montage, explanation_image


class EpochImages(keras.callbacks.Callback):
    """Writes images to TensorBoard at `log_dir` at the end of every epoch, step = epoch.

    Subclasses give `images(epoch, logs)`: `{tag: image (H, W, 3)}`, uint8 or
    floats in [0, 1]. The writer lives from the start of training to its
    end.
    """

    def __init__(self, log_dir):
        super().__init__()
        self.log_dir = log_dir

    def images(self, epoch, logs):
        raise NotImplementedError

    def on_train_begin(self, logs=None):
        self.writer = tf.summary.create_file_writer(self.log_dir)

    def on_epoch_end(self, epoch, logs=None):
        images = self.images(epoch, logs)
        with self.writer.as_default():
            for tag, image in images.items():
                tf.summary.image(tag, image[None], step=epoch)
        self.writer.flush()

    def on_train_end(self, logs=None):
        self.writer.close()


class _ClipWriter(keras.callbacks.Callback):
    """A TensorBoard writer of up to `max_clips` clips of `dataset`, named by `class_names`."""

    def __init__(self, dataset, log_dir, class_names, max_clips=4):
        super().__init__()
        self.dataset = dataset
        self.log_dir = log_dir
        self.class_names = class_names
        self.max_clips = max_clips


class ClipSamples(_ClipWriter):
    """Writes a few training clips, as the model receives them, to TensorBoard as images.

    Seeing the augmented input is the quickest check that frames are in
    order, in RGB and labelled right. A clip with corrupted copies
    (`--augment robust`) shows them in rows under it.
    """

    def on_train_begin(self, logs=None):
        clips, labels = next(iter(self.dataset))
        labels = labels.numpy()
        if labels.ndim == 2:
            labels = labels.argmax(axis=-1)
        writer = tf.summary.create_file_writer(self.log_dir)
        with writer.as_default():
            for i in range(min(self.max_clips, len(labels))):
                name = f"input_clips/{i}_{self.class_names[labels[i]]}"
                views = clips[i].numpy().reshape((-1, *clips.shape[-4:]))
                montage = np.concatenate([clip_montage(view) for view in views], axis=0)
                tf.summary.image(name, montage[None], step=0)
        writer.close()


class ModelGraph(keras.callbacks.Callback):
    """Writes the model's forward graph to TensorBoard's Graphs tab.

    `keras.callbacks.TensorBoard(write_graph=True)` writes nothing with
    Keras 3.15 on TensorFlow 2.21: it looks for `function_spec` on the train
    function, an attribute `tf.function` no longer has. Tracing the model
    ourselves gives the graph a reader wants anyway: the layers, not the
    optimizer's bookkeeping.
    """

    def __init__(self, log_dir):
        super().__init__()
        self.log_dir = log_dir

    def on_train_begin(self, logs=None):
        spec = [tf.TensorSpec(tensor.shape, tensor.dtype) for tensor in self.model.inputs]

        def forward(*inputs):
            return self.model(*inputs, training=False)

        graph = tf.function(forward).get_concrete_function(*spec).graph
        writer = tf.summary.create_file_writer(self.log_dir)
        with writer.as_default():
            tf.summary.graph(graph)
        writer.close()


class ValidationClipImages(EpochImages):
    """`EpochImages` of up to `max_clips` validation clips of different classes, picked when
    training begins.

    Subclasses give `prepare()` (once the model is known) and `clip_images()`.
    """

    def __init__(self, dataset, log_dir, class_names, max_clips=4):
        super().__init__(log_dir)
        self.dataset = dataset
        self.class_names = class_names
        self.max_clips = max_clips

    def on_train_begin(self, logs=None):
        self.clips, self.labels = pick_clips(self.dataset, self.max_clips)
        self.prepare()
        super().on_train_begin(logs)

    def prepare(self):
        raise NotImplementedError

    def clip_images(self):
        raise NotImplementedError

    def images(self, epoch, logs):
        return {} if self.clips is None else self.clip_images()


class AttentionMaps(ValidationClipImages):
    """Each epoch, which frames the model weighed for a few validation clips, as TensorBoard images.

    For models with an `attention` layer (`attention_layer`): one image per
    clip, its frames with the attention weights under them
    (`attention_map_image`), tagged `attention/<k>_<class>` at step = epoch.
    """

    def prepare(self):
        self.probe = keras.Model(self.model.input, attention_layer(self.model).output[1])

    def clip_images(self):
        rows = frame_weight_rows(
            self.model, self.probe(self.clips, training=False), self.clips.shape[1]
        )
        return {
            f"attention/{k}_{self.class_names[label]}": attention_map_image(clip, rows[k])
            for k, (clip, label) in enumerate(zip(self.clips, self.labels))
        }


class ExplanationMaps(ValidationClipImages):
    """Each epoch, where the model looked on a few validation clips (`train --explain`).

    One image per clip, tagged `explanations/<k>_<class>` at step = epoch:
    `explanation_image` of the true class by `Explainer.default_method`.
    """

    def prepare(self):
        self.explainer = Explainer(self.model)

    def clip_images(self):
        heat = self.explainer.heat(self.clips, self.labels)
        importance = self.explainer.frame_importance(self.clips, self.labels)
        return {
            f"explanations/{k}_{self.class_names[label]}": explanation_image(
                self.clips[k], heat[k], importance[k]
            )[2]
            for k, label in enumerate(self.labels)
        }
